// Tooltips for the TrustMetrics chart (templates/trustmetrics/_score_section.html).
(function () {
  // Tooltips for the server-rendered chart: the SVG reads fine without this.
  document.querySelectorAll("[data-trust-chart]").forEach(function (fig) {
    var tip = fig.querySelector(".trust-tip");
    function show(ev) {
      var dot = ev.target.closest("circle[data-tip]");
      if (!dot) return;
      tip.textContent = dot.getAttribute("data-tip");
      tip.hidden = false;
      var box = fig.getBoundingClientRect(), d = dot.getBoundingClientRect();
      var x = d.left - box.left + 10, y = d.top - box.top + 10;
      tip.style.left = Math.min(x, box.width - tip.offsetWidth - 4) + "px";
      tip.style.top = y + "px";
    }
    function hide() { tip.hidden = true; }
    fig.addEventListener("pointerover", show);
    fig.addEventListener("focusin", show);
    fig.addEventListener("pointerleave", hide);
    fig.addEventListener("focusout", hide);
    fig.addEventListener("keydown", function (ev) { if (ev.key === "Escape") hide(); });
  });
})();
