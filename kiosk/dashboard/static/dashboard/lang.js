// The language menu submits its form on change (no inline handler: the pages' CSP allows
// scripts from this origin's files only).
(function () {
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
