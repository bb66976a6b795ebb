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

  // Connection forms: show the fields the chosen connection type uses, with its labels.
  const typesNode = document.getElementById("conn-types-data");
  if (typesNode) {
    const types = JSON.parse(typesNode.textContent);
    document.querySelectorAll("[data-conn-form]").forEach((form) => {
      const typeInput = form.querySelector("[data-field=conn_type] input");
      const defaults = {};
      form.querySelectorAll(".field").forEach((f) => {
        const label = f.querySelector("label");
        if (label) defaults[f.dataset.field] = label.textContent;
      });
      const apply = () => {
        const spec = types[typeInput.value.trim()];
        ["host", "schema", "login", "password", "port", "extra"].forEach((name) => {
          const field = form.querySelector(`[data-field=${name}]`);
          if (!field) return;
          const used = !spec || Object.keys(spec).length === 0 || name in spec;
          const hasValue = field.querySelector("input, textarea").value;
          field.hidden = !used && !hasValue;
          const label = field.querySelector("label");
          if (label) label.textContent = (spec && spec[name]) || defaults[name];
        });
      };
      typeInput.addEventListener("input", apply);
      apply();
    });
  }

  // Close open menus when clicking elsewhere.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.menu-button[open], details.picker[open]").forEach((d) => {
      if (!d.contains(event.target)) d.removeAttribute("open");
    });
  });
})();
