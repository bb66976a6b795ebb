// Small behaviours of the pages (no inline script anywhere: the CSP forbids it).
(function () {
  // Native <dialog>s: open from [data-open-dialog], close from [data-close].
  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog) { opener.closest("details")?.removeAttribute("open"); dialog.showModal(); }
    }
    const closer = event.target.closest("dialog [data-close]");
    if (closer) closer.closest("dialog").close();
    // Cancel on a create panel (a <details>): close it, and the button that opened it has focus.
    const cancel = event.target.closest("details [data-close-details]");
    if (cancel) {
      const panel = cancel.closest("details");
      panel.removeAttribute("open");
      panel.querySelector("summary")?.focus();
    }
  });

  // A dialog whose form came back with errors opens again, showing them next to the fields.
  document.querySelectorAll("dialog[data-open-on-load]").forEach((dialog) => dialog.showModal());

  // Forms that ask first.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Promote an environment variable: the button waits until its key is typed exactly.
  document.querySelectorAll("[data-confirm-key]").forEach((input) => {
    const button = input.closest("form").querySelector("button[type=submit]");
    input.addEventListener("input", () => { button.disabled = input.value !== input.dataset.confirmKey; });
  });

  // Forms whose fields depend on one choice (a connection's type, a metrics export's auth
  // type): show the fields the chosen value uses, with its labels. A field that holds a value
  // stays visible; with no script every field shows. The form's JSON (forms.py `chooser`):
  // {chooser, fields, choices: {value: {field: label}}, emptyShowsAll}.
  document.querySelectorAll("[data-field-chooser]").forEach((form) => {
    const node = document.getElementById(form.dataset.fieldChooser);
    if (!node) return;
    const config = JSON.parse(node.textContent);
    const chooser = form.querySelector(`[data-field=${config.chooser}] input, [data-field=${config.chooser}] select`);
    if (!chooser) return;
    const defaults = {};
    form.querySelectorAll(".field").forEach((f) => {
      const label = f.querySelector("label");
      if (label) defaults[f.dataset.field] = label.textContent;
    });
    const apply = () => {
      const spec = config.choices[chooser.value.trim()];
      const showAll = !spec || (config.emptyShowsAll && Object.keys(spec).length === 0);
      config.fields.forEach((name) => {
        const field = form.querySelector(`[data-field=${name}]`);
        if (!field) return;
        const used = showAll || name in spec;
        const hasValue = field.querySelector("input, textarea, select").value;
        field.hidden = !used && !hasValue;
        // Its "Clear the stored …" box goes with it.
        const clear = form.querySelector(`[data-field=clear_${name}]`);
        if (clear) clear.hidden = field.hidden;
        const label = field.querySelector("label");
        if (label) label.textContent = (spec && spec[name]) || defaults[name];
      });
    };
    chooser.addEventListener("input", apply);
    chooser.addEventListener("change", apply);
    apply();
  });

  // Each table in a box of its own that scrolls sideways when the window is narrower than
  // the table (static/css/app.css); the page itself never does.
  document.querySelectorAll("table.table").forEach((table) => {
    const box = document.createElement("div");
    box.className = "table-scroll";
    table.replaceWith(box);
    box.append(table);
  });

  // A Copy button on each snippet to paste elsewhere (a new token, a configuration).
  document.querySelectorAll("pre.copy").forEach((pre) => {
    const box = document.createElement("div");
    box.className = "copy-box";
    pre.replaceWith(box);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", pre.dataset.copyLabel || "Copy");
    box.append(pre, button);
    button.addEventListener("click", async () => {
      const text = pre.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // No clipboard API (an insecure origin): select it, as a copy by hand would.
        const range = document.createRange();
        range.selectNodeContents(pre);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });

  // Close open menus when clicking elsewhere.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.menu-button[open], details.picker[open]").forEach((d) => {
      if (!d.contains(event.target)) d.removeAttribute("open");
    });
  });
})();
