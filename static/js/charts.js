// Progressive enhancement for server-rendered pages: tooltips on chart points, and relative times
// ("3 hours ago") next to absolute ones, computed in the browser so a cached page never shows a frozen age.
(function () {
  "use strict";
  document.querySelectorAll("[data-trust-chart]").forEach(function (fig) {
    var tip = fig.querySelector(".chart-tip");
    if (!tip) return;
    function show(ev) {
      var dot = ev.target.closest && ev.target.closest("[data-tip]");
      if (!dot) return;
      tip.textContent = dot.getAttribute("data-tip");
      tip.hidden = false;
      var box = fig.getBoundingClientRect(), d = dot.getBoundingClientRect();
      tip.style.left = Math.max(0, Math.min(d.left - box.left + 10, box.width - tip.offsetWidth - 4)) + "px";
      tip.style.top = (d.top - box.top + 12) + "px";
    }
    function hide() { tip.hidden = true; }
    fig.addEventListener("pointerover", show);
    fig.addEventListener("focusin", show);
    fig.addEventListener("pointerleave", hide);
    fig.addEventListener("focusout", hide);
    fig.addEventListener("keydown", function (ev) { if (ev.key === "Escape") hide(); });
  });

  var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  function relative(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    var fmt = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat("en", { numeric: "auto" }) : null;
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1] || units[i][0] === "minute") {
        var n = Math.round(seconds / units[i][1]);
        return fmt ? fmt.format(n, units[i][0]) : Math.abs(n) + " " + units[i][0] + "s ago";
      }
    }
    return "";
  }
  function refresh() {
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var span = el.nextElementSibling && el.nextElementSibling.classList.contains("relative-time")
        ? el.nextElementSibling : null;
      if (!span) {
        span = document.createElement("span");
        span.className = "relative-time muted";
        el.insertAdjacentElement("afterend", span);
      }
      span.textContent = " (" + relative(when) + ")";
    });
  }
  refresh();
  setInterval(refresh, 60000);
})();
