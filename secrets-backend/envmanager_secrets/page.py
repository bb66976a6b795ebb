"""The HTML of the plugin's page: per type, the keys the Deployment resolves from envmanager,
where each comes from, and which metastore rows they shadow. Everything in it comes from the
names lookup or Airflow's metastore and is escaped; links go only to envmanager's own pages."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import urlsplit

SOURCES = {
    "WORKSPACE": "Workspace object",
    "OVERRIDE": "Workspace object with a Deployment override",
    "DEPLOYMENT": "Deployment object",
}
# (document key, heading, Airflow's own name for a row of the metastore, or "" if none)
SECTIONS = (
    ("connections", "Connections", "connection"),
    ("variables", "Airflow variables", "variable"),
    ("environmentVariables", "Environment variables", ""),
    ("metricsExports", "Metrics exports", ""),
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  padding: 16px 24px; color: #1a202c; background: #fff; font-size: 14px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h2 .count { color: #718096; font-weight: normal; }
p.lead, p.meta { margin: 4px 0; color: #4a5568; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e2e8f0;
  vertical-align: top; }
th { font-weight: 600; color: #4a5568; background: #f7fafc; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  background: #edf2f7; color: #2d3748; white-space: nowrap; }
td:last-child { white-space: nowrap; }
.badge.override { background: #fefcbf; color: #744210; }
.badge.deployment { background: #e9d8fd; color: #44337a; }
.badge.secret { background: #fed7d7; color: #822727; }
.badge.shadow { background: #feebc8; color: #7b341e; }
.empty { color: #718096; }
.error { padding: 12px; border-radius: 6px; background: #fff5f5; color: #822727;
  border: 1px solid #feb2b2; }
a { color: #2b6cb0; }
"""


# Airflow frames plugin pages in a sandbox without popups, so a plain link to envmanager (which
# refuses to be framed) would do nothing: the frame is same-origin with Airflow's UI, so the
# click opens the link in a new tab of the top window instead.
OPEN_IN_NEW_TAB = """
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[target=_blank]");
  if (!link || window.top === window) return;
  event.preventDefault();
  window.top.open(link.href, "_blank", "noopener,noreferrer");
});
"""


def envmanager_link(ui_url: str, path: Any) -> str | None:
    """An absolute link to an envmanager page, or None: only a path on envmanager's own site
    (the server's answer is not trusted to name another site or a script)."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        return None
    if "\\" in path or any(ord(c) < 33 for c in path):
        return None
    base = urlsplit(ui_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        return None
    return ui_url.rstrip("/") + path


def _anchor(link: str, html: str) -> str:
    # A new tab: the page sits in Airflow's frame, and envmanager refuses to be framed.
    href = escape(link, quote=True)
    return f'<a href="{href}" target="_blank" rel="noopener noreferrer">{html}</a>'


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _source(entry: dict[str, Any]) -> str:
    source = entry.get("source")
    label = SOURCES.get(source, "Unknown")
    css = {"OVERRIDE": "override", "DEPLOYMENT": "deployment"}.get(source, "")
    html = f'<span class="badge {css}">{_text(label)}</span>'
    fields = [f for f in entry.get("overriddenFields") or [] if isinstance(f, str)]
    if source == "OVERRIDE" and fields:
        html += " overrides " + ", ".join(f"<code>{_text(f)}</code>" for f in fields)
    return html


def _row(entry: dict[str, Any], kind: str, shadow: str, shadowed: set[str], ui_url: str) -> str:
    key = entry.get("key")
    cells = [f"<td><code>{_text(key)}</code>"]
    if entry.get("isSecret"):
        cells[0] += ' <span class="badge secret">secret</span>'
    cells[0] += "</td>"
    cells.append(f"<td>{_source(entry)}</td>")
    if kind == "connections":
        cells.append(f"<td>{_text(entry.get('connType'))}</td>")
        cells.append(f"<td>{_text(entry.get('host'))}</td>")
    if shadow:
        if key in shadowed:
            cells.append(
                f'<td><span class="badge shadow">shadows the metastore {shadow}</span></td>'
            )
        else:
            cells.append('<td class="empty">none</td>')
    link = envmanager_link(ui_url, entry.get("path"))
    if link:
        cells.append(f"<td>{_anchor(link, 'Open in envmanager')}</td>")
    else:
        cells.append("<td></td>")
    return f'<tr data-key="{escape(str(key), quote=True)}">{"".join(cells)}</tr>'


def _section(
    document: dict[str, Any],
    kind: str,
    heading: str,
    shadow: str,
    shadowed: dict[str, set[str]],
    ui_url: str,
) -> str:
    entries = [e for e in document.get(kind) or [] if isinstance(e, dict)]
    head = ["Key", "Source"]
    if kind == "connections":
        head += ["Type", "Host"]
    if shadow:
        head.append("Metastore row")
    head.append("")
    html = f'<section id="{kind}"><h2>{heading} <span class="count">({len(entries)})</span></h2>'
    if not entries:
        return html + '<p class="empty">None from envmanager.</p></section>'
    rows = "".join(_row(e, kind, shadow, shadowed.get(kind, set()), ui_url) for e in entries)
    header = "".join(f"<th>{h}</th>" for h in head)
    return html + f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></section>"


def render_page(
    *,
    document: dict[str, Any] | None,
    shadowed: dict[str, set[str]],
    ui_url: str,
    read_at: float | None = None,
    cache_ttl: float = 0,
    error: str = "",
    nonce: str = "",
) -> str:
    """The whole page. `shadowed` maps "connections" / "variables" to the keys that also have
    a row in Airflow's metastore, which Airflow never reads while envmanager serves the key.
    With a `nonce` (the response's Content-Security-Policy allows that one script), links open
    in a new tab when the page is framed."""
    body = ["<h1>Environment from envmanager</h1>"]
    if document is not None:
        deployment = document.get("deployment") or {}
        workspace = document.get("workspace") or {}
        name = f"<strong>{_text(deployment.get('name'))}</strong>"
        link = envmanager_link(ui_url, deployment.get("path"))
        if link:
            name = _anchor(link, name)
        body.append(
            f'<p class="lead">What Deployment {name} in Workspace '
            f"<strong>{_text(workspace.get('name'))}</strong> resolves from envmanager: keys "
            "and where they come from, never a value. Airflow asks envmanager first, then "
            "<code>AIRFLOW_CONN_*</code> / <code>AIRFLOW_VAR_*</code>, then its metastore: a "
            "metastore row with a key listed here is not used.</p>"
        )
        if read_at is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(read_at))
            body.append(
                f'<p class="meta">Read from envmanager at {stamp}; kept for '
                f"{cache_ttl:g} s (the secrets backend's <code>cache_ttl</code>).</p>"
            )
    if error:
        body.append(f'<p class="error" role="alert">{_text(error)}</p>')
    if document is not None:
        for kind, heading, shadow in SECTIONS:
            body.append(_section(document, kind, heading, shadow, shadowed, ui_url))
    script = (
        f'<script nonce="{escape(nonce, quote=True)}">{OPEN_IN_NEW_TAB}</script>' if nonce else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Environment (envmanager)</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}{script}</body></html>"
    )
