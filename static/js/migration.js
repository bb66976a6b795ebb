// "Migrate from Airflow" pages: selection (filter, select all/none, confirm dialog) and the
// live progress of a run. No inline script: the Content-Security-Policy forbids it.
(function () {
  const form = document.getElementById("migration-form");
  if (form) {
    const boxes = () => [...form.querySelectorAll("input[name=keys]:not(:disabled)")];
    const update = () => {
      const n = boxes().filter((b) => b.checked).length;
      document.getElementById("selected-count").textContent = n;
      document.getElementById("dialog-count").textContent = n;
      document.getElementById("migrate-button").disabled = n === 0;
    };
    form.addEventListener("change", update);
    form.querySelectorAll("[data-select]").forEach((btn) =>
      btn.addEventListener("click", () => {
        boxes()
          .filter((b) => !b.closest("tr").hidden)
          .forEach((b) => { b.checked = btn.dataset.select === "all"; });
        update();
      }),
    );
    document.getElementById("candidate-filter").addEventListener("input", (e) => {
      const q = e.target.value.toLowerCase();
      form.querySelectorAll("tbody tr").forEach((tr) => { tr.hidden = !tr.dataset.key.includes(q); });
    });
    const dialog = document.getElementById("migrate-dialog");
    document.getElementById("migrate-button").addEventListener("click", () => dialog.showModal());
    update();
  }

  const box = document.getElementById("run-status");
  if (box && box.dataset.active === "1") {
    // Poll the run for a live progress bar; reload when its status changes.
    let last = null;
    setInterval(async () => {
      const r = await fetch(box.dataset.api, { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const run = await r.json();
      const p = run.progress;
      const done = p.deleted + p.keptChanged + p.conflict + p.failed + p.undone;
      box.querySelector("progress").value = Math.round((100 * (done + 0.5 * p.verified)) / Math.max(p.total, 1));
      if (last !== null && run.status !== last) location.reload();
      last = run.status;
    }, 1000);
  }
})();
