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
    const connection = config.catalog && connectionForm(form, config, chooser);
    chooser.addEventListener("input", apply);
    chooser.addEventListener("change", apply);
    if (connection) {
      chooser.addEventListener("input", connection);
      chooser.addEventListener("change", connection);
    }
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
  // A connection form for its type, as Airflow's own shows it: the type's placeholders, and
  // its extra fields (each stored as a key of extra), drawn as forms.py `extra_form_field`
  // draws them. The fields the server drew for a type come back when it is chosen again, with
  // what was typed; only the chosen type's fields are sent.
  function connectionForm(form, config, chooser) {
    const node = document.getElementById(config.catalog);
    const box = form.querySelector("[data-extra-fields]");
    if (!node || !box) return null;
    const catalog = JSON.parse(node.textContent);
    const note = form.querySelector("[data-unknown-type-note]");
    const kept = {};
    let shown = box.dataset.connType || "";
    const defaultPlaceholders = {};
    ["host", "schema", "login", "password", "port", "extra"].forEach((name) => {
      const input = form.querySelector(`[data-field=${name}] input, [data-field=${name}] textarea`);
      if (input) defaultPlaceholders[name] = input.getAttribute("placeholder") || "";
    });
    const serverType = shown;
    const extraInput = (field) => {
      const id = `id_${config.fieldPrefix}extra__${field.name}`;
      const wrap = document.createElement("div");
      wrap.className = "field";
      wrap.dataset.field = `extra__${field.name}`;
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = field.label;
      let input;
      const listed = field.choices || [];
      if (listed.length || field.kind === "boolean") {
        input = document.createElement("select");
        const choices = listed.length ? listed : ["true", "false"];
        input.add(new Option("— not set —", ""));
        choices.forEach((c) => input.add(new Option(c, c)));
      } else {
        input = document.createElement("input");
        input.type = field.sensitive ? "password" : "text";
        if (field.kind === "integer") input.inputMode = "numeric";
        if (field.kind === "number") input.inputMode = "decimal";
        if (field.placeholder) input.placeholder = field.placeholder;
      }
      input.id = id;
      input.name = `${config.fieldPrefix}extra__${field.name}`;
      input.dataset.extraName = field.name;
      input.autocomplete = field.sensitive ? "new-password" : "off";
      wrap.append(label, input);
      if (field.description) {
        const help = document.createElement("small");
        help.className = "muted";
        help.textContent = field.description;
        wrap.append(help);
      }
      return wrap;
    };
    return () => {
      const type = chooser.value.trim();
      const spec = catalog[type];
      if (note) note.hidden = !type || Boolean(spec);
      Object.entries(defaultPlaceholders).forEach(([name, original]) => {
        const input = form.querySelector(`[data-field=${name}] input, [data-field=${name}] textarea`);
        // A stored secret's "(unchanged)" placeholder and the server's own stay as they are.
        if (!input || type === serverType) return;
        const airflow = spec && spec.fields[name] && spec.fields[name].placeholder;
        input.placeholder = airflow || (original.startsWith("•") ? original : "");
      });
      if (type === shown) return;
      const fragment = document.createDocumentFragment();
      while (box.firstChild) fragment.append(box.firstChild);
      kept[shown] = fragment;
      shown = type;
      if (kept[type]) box.append(kept[type]);
      else if (spec) spec.extraFields.forEach((field) => box.append(extraInput(field)));
    };
  }

  // Before a form is sent: every field's problem at once, next to it (the browser's own
  // bubbles show one at a time), and a JSON box that does not hold a JSON object is named
  // with the reason. Nothing is sent, so nothing typed is lost.
  document.querySelectorAll("form").forEach((form) => {
    if (form.querySelector(".form-grid")) form.noValidate = true;
  });
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.noValidate || !form.querySelector(".form-grid")) return;
    form.querySelectorAll("[data-client-error]").forEach((e) => e.remove());
    const problems = [];
    form.querySelectorAll("input, textarea, select").forEach((input) => {
      if (input.closest("[hidden]") || input.disabled) return;
      let message = input.willValidate && !input.checkValidity() ? input.validationMessage : "";
      if (!message && input.dataset.jsonObject && input.value.trim()) {
        try {
          const parsed = JSON.parse(input.value);
          if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
            message = 'Must be a JSON object, like {"key": "value"}.';
          }
        } catch (error) {
          message = `Not valid JSON: ${error.message}`;
        }
      }
      if (message) problems.push([input, message]);
    });
    if (!problems.length) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    problems.forEach(([input, message]) => {
      const error = document.createElement("small");
      error.className = "error";
      error.setAttribute("role", "alert");
      error.dataset.clientError = "";
      error.textContent = message;
      const field = input.closest(".field");
      (field || input.parentElement).append(error);
      if (field) field.classList.add("has-error");
    });
    problems[0][0].focus();
  }, true);

  // Close open menus when clicking elsewhere.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.menu-button[open], details.picker[open]").forEach((d) => {
      if (!d.contains(event.target)) d.removeAttribute("open");
    });
  });
})();
