// The proof page's Print button (no inline handler: the page's CSP allows no inline script).
document.addEventListener("DOMContentLoaded", function () {
  const button = document.getElementById("print");
  if (button) button.addEventListener("click", function () { window.print(); });
});
