/* Live spreads: the board (#live-board) and a broker's live quotes ([data-live-broker]).
   Protocol: docs/websocket-protocol.md. Plain JavaScript, no framework. */
(function () {
  "use strict";

  var STATE_TEXT = {
    connecting: "Connecting…",
    live: "Live",
    delayed: "Delayed: no quotes for a few seconds",
    reconnecting: "Reconnecting",
    offline: "Offline",
    login: "Log in to see live quotes"
  };

  /* One WebSocket with reconnect (exponential backoff with jitter) and resubscription. */
  function LiveSocket(opts) {
    this.path = opts.path;
    this.subscription = opts.subscription; // function -> {instruments: [...], brokers: [...]|null}
    this.onMessage = opts.onMessage;
    this.onState = opts.onState;
    this.attempt = 0;
    this.timer = null;
    this.ws = null;
    this.openedOnce = false;
    this.delayedAfter = opts.delayedAfterMs || 5000;
    this.lastQuoteAt = 0; // performance.now() of the last quote (or snapshot) received
    this.state = "";
  }

  LiveSocket.prototype.setState = function (state, delay) {
    this.state = state;
    this.onState(state, delay);
  };

  /* "Live" only while quotes arrive: an open socket that has carried none for a few seconds is
     "Delayed" (the feeds, Redis or the server's hub may be stuck); a closed one is "Reconnecting". */
  LiveSocket.prototype.check = function () {
    if (!this.ws || this.ws.readyState !== 1 || !this.lastQuoteAt) return;
    var state = performance.now() - this.lastQuoteAt > this.delayedAfter ? "delayed" : "live";
    if (state !== this.state) this.setState(state);
  };

  LiveSocket.prototype.url = function () {
    var sub = this.subscription();
    var q = [];
    if (sub.instruments && sub.instruments.length) q.push("instruments=" + encodeURIComponent(sub.instruments.join(",")));
    if (sub.brokers && sub.brokers.length) q.push("brokers=" + encodeURIComponent(sub.brokers.join(",")));
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + this.path + (q.length ? "?" + q.join("&") : "");
  };

  LiveSocket.prototype.connect = function () {
    var self = this;
    clearTimeout(this.timer);
    this.setState(this.attempt ? "reconnecting" : "connecting");
    var ws;
    try {
      // The subscription travels in the URL, so every reconnect resubscribes to the current choice.
      ws = new WebSocket(this.url());
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      self.openedOnce = true;
      self.lastQuoteAt = 0; // "Live" once the snapshot or a quote comes, not merely on open
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      // Personal alerts go to static/js/toast.js, not to the board.
      if (msg && msg.type === "alert") { document.dispatchEvent(new CustomEvent("bw:alert", { detail: msg })); return; }
      if (msg.type === "quotes" || msg.type === "snapshot") {
        self.lastQuoteAt = performance.now();
        // A snapshot of quotes that are all old is not "Live" either.
        if (msg.type === "snapshot" && msg.quotes.every(function (q) { return msg.server_time_us - q.ts_ingest > self.delayedAfter * 1000; })) {
          self.lastQuoteAt -= self.delayedAfter + 1;
        }
        self.check();
      }
      self.onMessage(msg);
    };
    ws.onclose = function () {
      if (self.ws !== ws) return;
      self.ws = null;
      self.retry();
    };
  };

  LiveSocket.prototype.retry = function () {
    var self = this;
    this.attempt += 1;
    var delay = Math.min(30000, 500 * Math.pow(2, this.attempt - 1));
    delay = Math.round(delay * (0.5 + Math.random() / 2));
    this.setState(navigator.onLine === false ? "offline" : "reconnecting", delay);
    this.timer = setTimeout(function () { self.connect(); }, delay);
  };

  LiveSocket.prototype.send = function (obj) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(obj));
  };

  LiveSocket.prototype.reconnectNow = function () {
    if (this.ws && this.ws.readyState <= 1) return;
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  };

  function showState(el, state, delay) {
    if (!el) return;
    el.setAttribute("data-state", state);
    var text = STATE_TEXT[state] || state;
    if (state === "reconnecting" && delay) text += " in " + Math.max(1, Math.round(delay / 1000)) + " s";
    el.querySelector(".label").textContent = text;
  }

  function fmt(n, digits) { return typeof n === "number" && isFinite(n) ? n.toFixed(digits) : "–"; }

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  /* Latency from ts_ingest (µs) to now, median of the last 200 updates. */
  function LatencyMeter(el) {
    this.el = el;
    this.samples = [];
  }
  LatencyMeter.prototype.add = function (tsIngestUs) {
    if (!this.el || typeof tsIngestUs !== "number") return;
    this.samples.push(Date.now() - tsIngestUs / 1000);
    if (this.samples.length > 200) this.samples.shift();
  };
  LatencyMeter.prototype.render = function () {
    if (!this.el || !this.samples.length) return;
    var s = this.samples.slice().sort(function (a, b) { return a - b; });
    this.el.textContent = s[Math.floor(s.length / 2)].toFixed(1) + " ms";
  };

  /* ----- the board ----- */
  function Board(root, config) {
    this.root = root;
    this.config = config;
    this.staleAfter = config.staleAfterMs || 5000;
    this.pip = {};
    this.precision = {};
    this.cells = {};   // "broker:SYMBOL" -> td
    this.state = {};   // "broker:SYMBOL" -> {ts, seen, spread}
    var self = this;
    config.instruments.forEach(function (i) { self.pip[i.symbol] = i.pip; self.precision[i.symbol] = i.precision; });
    this.byInstrument = {}; // SYMBOL -> its cells' keys, for the best-spread mark
    Array.prototype.forEach.call(root.querySelectorAll("td[data-k]"), function (td) {
      var k = td.getAttribute("data-k");
      var symbol = k.slice(k.indexOf(":") + 1);
      self.cells[k] = td;
      (self.byInstrument[symbol] = self.byInstrument[symbol] || []).push(k);
    });
    this.latency = new LatencyMeter(document.getElementById("live-latency"));
    this.offsetUs = 0; // browser clock - server clock, from the snapshot's server_time_us
  }

  /* How old a quote is, by its own ts_ingest (on the server's clock), not by when it reached us. */
  Board.prototype.ageMs = function (q) {
    return Math.max(0, (Date.now() * 1000 - this.offsetUs - q.ts_ingest) / 1000);
  };

  Board.prototype.subscription = function () {
    return {
      instruments: this.config.instruments.map(function (i) { return i.symbol; }),
      brokers: this.config.brokers.map(function (b) { return b.slug; })
    };
  };

  Board.prototype.quote = function (q, ageMs, animate) {
    var key = q.broker + ":" + q.instrument;
    var td = this.cells[key];
    if (!td) return;
    var prev = this.state[key];
    if (prev && prev.ts > q.ts_ingest) return; // an older quote arriving late never overwrites a newer one
    var pip = this.pip[q.instrument] || 1;
    var digits = this.precision[q.instrument] || 5;
    var spread = (q.ask - q.bid) / pip;
    this.state[key] = { ts: q.ts_ingest, seen: performance.now() - (ageMs || 0), spread: spread };
    var spr = td.querySelector(".spr");
    if (!spr || !td.querySelector(".bid")) {
      td.innerHTML = '<span class="spr"></span><span class="px"><span class="bid"></span> / <span class="ask"></span></span>';
      spr = td.querySelector(".spr");
    }
    var changed = !prev || prev.spread !== spread || td.querySelector(".bid").textContent !== fmt(q.bid, digits);
    spr.textContent = fmt(spread, 1);
    td.querySelector(".bid").textContent = fmt(q.bid, digits);
    td.querySelector(".ask").textContent = fmt(q.ask, digits);
    td.classList.toggle("stale", (ageMs || 0) > this.staleAfter);
    if (animate && changed) flash(td);
    this.best(q.instrument);
  };

  Board.prototype.best = function (symbol) {
    var self = this;
    var now = performance.now();
    var best = Infinity;
    var keys = this.byInstrument[symbol] || [];
    keys.forEach(function (k) {
      var s = self.state[k];
      if (s && now - s.seen <= self.staleAfter && s.spread < best) best = s.spread;
    });
    keys.forEach(function (k) {
      var s = self.state[k];
      var isBest = !!s && best !== Infinity && now - s.seen <= self.staleAfter && Math.abs(s.spread - best) < 1e-9;
      self.cells[k].classList.toggle("best", isBest);
    });
  };

  Board.prototype.sweep = function () {
    var self = this;
    var now = performance.now();
    var touched = {};
    Object.keys(this.state).forEach(function (k) {
      var stale = now - self.state[k].seen > self.staleAfter;
      var td = self.cells[k];
      if (td.classList.contains("stale") !== stale) {
        td.classList.toggle("stale", stale);
        touched[k.slice(k.indexOf(":") + 1)] = true;
      }
    });
    Object.keys(touched).forEach(function (s) { self.best(s); });
    this.latency.render();
  };

  Board.prototype.status = function (st) {
    Array.prototype.forEach.call(this.root.querySelectorAll('[data-feed="' + st.broker + '"]'), function (el) {
      el.innerHTML = "";
      var span = document.createElement("span");
      span.className = "feed-" + st.status;
      span.title = "feed " + st.status;
      span.textContent = st.status;
      el.appendChild(span);
    });
  };

  Board.prototype.message = function (msg) {
    var self = this;
    if (msg.type === "quotes") {
      msg.quotes.forEach(function (q) { self.quote(q, self.ageMs(q), true); self.latency.add(q.ts_ingest); });
    } else if (msg.type === "snapshot") {
      this.offsetUs = Date.now() * 1000 - msg.server_time_us;
      msg.quotes.forEach(function (q) { self.quote(q, self.ageMs(q), false); });
      (msg.status || []).forEach(function (st) { self.status(st); });
    } else if (msg.type === "status") {
      this.status(msg);
    }
  };

  /* ----- one broker's live quotes (its profile page) ----- */
  function BrokerWidget(root) {
    this.root = root;
    this.slug = root.getAttribute("data-live-broker");
    this.rows = {};
    var self = this;
    Array.prototype.forEach.call(root.querySelectorAll("tr[data-k]"), function (tr) {
      self.rows[tr.getAttribute("data-instrument")] = tr;
    });
  }
  BrokerWidget.prototype.subscription = function () {
    return { instruments: Object.keys(this.rows), brokers: [this.slug] };
  };
  BrokerWidget.prototype.message = function (msg) {
    var self = this;
    var quotes = msg.type === "quotes" || msg.type === "snapshot" ? msg.quotes : [];
    quotes.forEach(function (q) {
      var tr = self.rows[q.instrument];
      if (!tr || q.broker !== self.slug) return;
      var digits = parseInt(tr.getAttribute("data-precision"), 10) || 5;
      var pip = parseFloat(tr.getAttribute("data-pip")) || 1;
      tr.querySelector(".bid").textContent = fmt(q.bid, digits);
      tr.querySelector(".ask").textContent = fmt(q.ask, digits);
      tr.querySelector(".spr").textContent = fmt((q.ask - q.bid) / pip, 1);
      tr.setAttribute("data-seen", String(Date.now()));
      tr.classList.remove("stale");
      if (msg.type === "quotes") flash(tr);
    });
  };
  BrokerWidget.prototype.sweep = function () {
    var now = Date.now();
    Object.keys(this.rows).forEach(function (s) {
      var tr = this.rows[s];
      var seen = parseInt(tr.getAttribute("data-seen") || "0", 10);
      if (seen) tr.classList.toggle("stale", now - seen > 5000);
    }, this);
  };

  function start(view, root, delayedAfterMs) {
    var stateEl = root.querySelector(".live-conn") || document.getElementById("live-conn");
    var sock = new LiveSocket({
      path: root.getAttribute("data-ws-path") || "/ws/spreads/",
      delayedAfterMs: delayedAfterMs,
      subscription: function () { return view.subscription(); },
      onMessage: function (msg) { view.message(msg); },
      onState: function (state, delay) { showState(stateEl, state, delay); }
    });
    sock.connect();
    setInterval(function () { view.sweep(); sock.check(); }, 1000);
    window.addEventListener("online", function () { sock.reconnectNow(); });
    root.liveSocket = sock; // for debugging from the console
  }

  /* ----- the logged-out page: a shared copy, refreshed in place every few seconds ----- */
  function publicRefresh(config) {
    function showAge() {
      var t = document.querySelector("#live-public time[data-asof]");
      var out = document.querySelector("#live-public [data-asof-age]");
      if (!t || !out) return;
      var age = Math.max(0, Math.round((Date.now() - Date.parse(t.getAttribute("datetime"))) / 1000));
      out.textContent = "(" + age + " s ago)";
    }
    function refresh() {
      fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-public");
          var current = document.getElementById("live-public");
          // A visitor who logged in elsewhere gets the trader's board on the next full load instead.
          if (fresh && current) current.replaceWith(fresh);
          showAge();
        })
        .catch(function () { /* offline: the copy shown keeps its time, which keeps ageing */ });
    }
    showAge();
    setInterval(showAge, 1000);
    setInterval(refresh, config.refreshMs || 5000);
  }

  function init() {
    var boardRoot = document.getElementById("live-board");
    var configEl = document.getElementById("live-config");
    if (boardRoot && configEl) {
      var config = JSON.parse(configEl.textContent);
      start(new Board(boardRoot, config), document.body, config.delayedAfterMs);
    }
    var publicRoot = document.getElementById("live-public");
    var publicConfig = document.getElementById("live-public-config");
    if (publicRoot && publicConfig) publicRefresh(JSON.parse(publicConfig.textContent));
    // The profile page is cached for everyone: show live quotes only to a logged-in visitor,
    // whose per-request account navigation says so.
    var signedIn = !!document.querySelector(".account-nav .who");
    Array.prototype.forEach.call(document.querySelectorAll("[data-live-broker]"), function (root) {
      if (!signedIn) return;
      root.querySelector(".broker-live-invite").hidden = true;
      root.querySelector(".broker-live-body").hidden = false;
      start(new BrokerWidget(root), root);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
