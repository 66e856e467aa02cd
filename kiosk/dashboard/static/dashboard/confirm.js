(function () {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  const form = document.getElementById("confirm-form");
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-switch-url]");
    if (!button) return;
    form.action = button.dataset.switchUrl;
    document.getElementById("confirm-action").value = button.dataset.switchAction || "";
    document.getElementById("confirm-title").textContent = button.dataset.switchTitle || "";
    document.getElementById("confirm-reason").value = "";
    document.getElementById("confirm-check").checked = false;
    const submit = document.getElementById("confirm-submit");
    submit.className = button.dataset.switchAction === "enable" ? "primary" : "danger";
    dialog.showModal();
    document.getElementById("confirm-reason").focus();
  });
  document.getElementById("confirm-cancel").addEventListener("click", function () { dialog.close(); });
})();
