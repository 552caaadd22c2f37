// Alert toasts: live.js hands every {"type": "alert"} message from the page's WebSocket to this script as a
// "bw:alert" event on document. Shown in a polite live region, so screen readers announce them too.
(function () {
  "use strict";
  var region = null;

  function ensureRegion() {
    if (region) return region;
    region = document.createElement("div");
    region.className = "toasts";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    document.body.appendChild(region);
    return region;
  }

  function show(msg) {
    var toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("data-kind", String(msg.kind || ""));
    var text = document.createElement("p");
    text.textContent = String(msg.message || "Alert");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss alert");
    close.textContent = "×";
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(text);
    toast.appendChild(close);
    ensureRegion().appendChild(toast);
    setTimeout(function () { toast.remove(); }, 15000);
  }

  document.addEventListener("bw:alert", function (ev) { show(ev.detail || {}); });
})();
