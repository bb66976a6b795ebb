"""The lookup's HTTP transport: one kept-alive ``http.client`` connection per thread.

A lookup is one small GET on a task's path, so the client's own cost counts: ``requests``
spends about 0.5 ms of Python per call before and after the wire (its session merges, hooks,
adapters and urllib3's pool), ``http.client`` about 0.1 ms. Where the environment sends the URL
through a proxy, lookups keep going through ``requests`` (its proxy handling, unchanged).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.utils
from requests.utils import DEFAULT_CA_BUNDLE_PATH


class TransportError(Exception):
    """The request did not get an answer; ``str()`` is the failure's kind only (no URL, no
    token): ``ConnectionError``, ``ConnectTimeout`` or ``ReadTimeout``."""


class LookupTransport:
    """GET ``base_url + path`` with the token; answers ``(status, body)``."""

    def __init__(self, base_url: str, token: str) -> None:
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        # requests consults the environment (proxies, ~/.netrc, CA bundle) on every call when
        # trust_env is on; read it once here instead, since every task lookup pays for it.
        settings = self.session.merge_environment_settings(base_url, {}, None, None, None)
        self.session.proxies.update(settings["proxies"])
        self.session.verify = settings["verify"]
        self.session.trust_env = False
        self.base_url = base_url
        self._proxied = requests.utils.select_proxy(base_url, self.session.proxies) is not None
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._ssl = _ssl_context(settings["verify"]) if self._https else None
        self._local = threading.local()

    def get(self, path: str, connect_timeout: float, read_timeout: float) -> tuple[int, bytes]:
        if self._proxied:
            return self._via_requests(path, connect_timeout, read_timeout)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._send(conn, path, read_timeout)
            except TimeoutError as exc:
                conn.close()
                raise TransportError("ReadTimeout") from exc
            except (ConnectionError, http.client.BadStatusLine):
                # A kept-alive connection the server closed while idle (reset, or closed
                # before any status line): normal, not a failure of this attempt. A fresh
                # connection answers, or the attempt fails below.
                conn.close()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                raise TransportError("ConnectionError") from exc
        try:
            conn = self._connect(connect_timeout)
        except TimeoutError as exc:
            raise TransportError("ConnectTimeout") from exc
        except OSError as exc:
            raise TransportError("ConnectionError") from exc
        self._local.conn = conn
        try:
            return self._send(conn, path, read_timeout)
        except TimeoutError as exc:
            conn.close()
            raise TransportError("ReadTimeout") from exc
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            raise TransportError("ConnectionError") from exc

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn.connect()
        assert conn.sock is not None
        # Small requests and answers: send each at once rather than wait for an ACK.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _send(
        self, conn: http.client.HTTPConnection, path: str, read_timeout: float
    ) -> tuple[int, bytes]:
        if conn.sock is None:  # closed by a "Connection: close" answer: open it again
            raise ConnectionResetError
        conn.sock.settimeout(read_timeout)
        conn.request("GET", self._prefix + path, headers=self._headers)
        response = conn.getresponse()
        body = response.read()
        if response.will_close:
            conn.close()
        return response.status, body

    def _via_requests(self, path: str, connect: float, read: float) -> tuple[int, bytes]:
        try:
            resp = self.session.get(self.base_url + path, timeout=(connect, read))
        except requests.ConnectTimeout as exc:
            raise TransportError("ConnectTimeout") from exc
        except requests.Timeout as exc:
            raise TransportError("ReadTimeout") from exc
        except requests.ConnectionError as exc:
            raise TransportError("ConnectionError") from exc
        return resp.status_code, resp.content


def _ssl_context(verify: Any) -> ssl.SSLContext:
    """The trust requests would use: its CA bundle (certifi, or REQUESTS_CA_BUNDLE /
    CURL_CA_BUNDLE), a file or folder given, or none when verification is off."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True or not verify:
        verify = DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)
