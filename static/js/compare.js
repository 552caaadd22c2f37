// Compare picker: at most four boxes, and a shareable ?brokers=a,b URL instead of one ?pick= per box.
(function () {
  "use strict";
  var form = document.querySelector(".compare-picker");
  if (!form) return;
  var max = parseInt(form.dataset.max, 10) || 4;
  var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="pick"]'));
  var hidden = form.querySelector('input[name="brokers"]');
  function picked() { return boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }); }
  function sync() {
    var full = picked().length >= max;
    boxes.forEach(function (b) { b.disabled = full && !b.checked; });
  }
  boxes.forEach(function (b) { b.addEventListener("change", sync); });
  var error = form.querySelector(".picker-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (picked().length === 0) {
      // Nothing ticked: say so here instead of reloading the same empty page.
      if (error) error.textContent = "No broker chosen: tick two to four brokers, then Compare.";
      if (boxes.length) boxes[0].focus();
      return;
    }
    hidden.value = picked().join(",");
    window.location.assign(form.action + "?brokers=" + picked().map(encodeURIComponent).join(","));
  });
  sync();
})();
