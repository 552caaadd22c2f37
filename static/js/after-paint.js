// Starts the page's scripts, and fetches what else it links to but does not show (the web app manifest),
// once its first content is on screen. Written into every page (base.html) and allowed by its hash in
// script-src (pagecache/inline.py); whole-line comments are left out there.
// Each waits in a <template data-after-paint>: inert, so the browser neither fetches nor runs it while
// the page is being parsed and painted, and with JavaScript off the server-rendered page works on its
// own. A `defer` script would run before the first paint of a small page, and Chrome fetches the
// manifest right after its first frame: either request would stand between the page and its largest paint.
(function () {
  "use strict";
  var started = false;
  var running = 0;
  // Once every script has run (or failed to load), the page says so: <html data-after-paint="done">.
  function ran() {
    if (--running <= 0) document.documentElement.setAttribute("data-after-paint", "done");
  }
  function start() {
    if (started) return;
    started = true;
    var templates = document.querySelectorAll("template[data-after-paint]");
    for (var i = 0; i < templates.length; i++) {
      var waiting = templates[i].content.children;
      for (var j = 0; j < waiting.length; j++) {
        if (waiting[j].tagName === "SCRIPT") {
          // A new element: one cloned from a template would not run.
          var script = document.createElement("script");
          script.src = waiting[j].getAttribute("src");
          // In document order, as `defer` ran them.
          script.async = false;
          script.onload = script.onerror = ran;
          running++;
          document.body.appendChild(script);
        } else {
          document.head.appendChild(document.importNode(waiting[j], true));
        }
      }
    }
    if (!running) ran();
  }
  // After the task that reported the paint, not inside it.
  function soon() { setTimeout(start, 0); }
  // A page loaded out of sight paints nothing until it is shown: it starts at once.
  if (document.visibilityState !== "hidden") {
    try {
      if (PerformanceObserver.supportedEntryTypes.indexOf("paint") >= 0) {
        new PerformanceObserver(function (list, observer) {
          if (list.getEntriesByName("first-contentful-paint").length) {
            observer.disconnect();
            soon();
          }
        }).observe({ type: "paint", buffered: true });
        // Should no paint ever be reported, the page still gets its scripts.
        addEventListener("load", function () { setTimeout(start, 3000); });
        return;
      }
    } catch (e) {
      // No paint timing in this browser: as `defer` would.
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", soon);
  else soon();
})();
