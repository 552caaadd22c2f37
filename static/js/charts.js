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

  // The words of Intl.RelativeTimeFormat("en", {numeric: "auto"}), as the server writes them too
  // (brokers/templatetags/broker_tags.py relative_time), without Intl: its locale data costs tens of
  // milliseconds on first use, on a phone before the first paint.
  var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
  var named = {
    "minute 0": "this minute", "day -1": "yesterday", "day 1": "tomorrow", "month -1": "last month",
    "month 1": "next month", "year -1": "last year", "year 1": "next year"
  };
  function relative(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    for (var i = 0; i < units.length; i++) {
      var unit = units[i][0];
      if (Math.abs(seconds) >= units[i][1] || unit === "minute") {
        var n = Math.round(seconds / units[i][1]);
        if (named[unit + " " + n]) return named[unit + " " + n];
        var words = Math.abs(n) + " " + unit + (Math.abs(n) === 1 ? "" : "s");
        return n < 0 ? words + " ago" : "in " + words;
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
