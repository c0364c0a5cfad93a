// The overview's period picker: the date fields matter only for a custom period.
(function () {
  "use strict";
  function sync() {
    var select = document.getElementById("period");
    if (!select) return;
    Array.prototype.forEach.call(document.querySelectorAll("[data-show-for]"), function (node) {
      node.hidden = select.value !== node.getAttribute("data-show-for");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("period");
    if (select) select.addEventListener("change", sync);
    sync();
  });
})();
