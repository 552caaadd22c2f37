/* Best execution: logged-in traders see the estimate follow the market (polls the JSON endpoint). */
(function () {
  "use strict";
  var section = document.getElementById("exec-result");
  var configEl = document.getElementById("exec-config");
  if (!section || !configEl || section.dataset.live !== "1" || !window.fetch) return;
  var config = JSON.parse(configEl.textContent);
  var apiUrl = section.dataset.api;
  var statusEl = document.getElementById("exec-status");
  var labelEl = statusEl.querySelector(".label");
  var ageEl = document.getElementById("exec-age");
  var EVERY_MS = 1000, MAX_BACKOFF_MS = 15000, TIMEOUT_MS = 5000;
  var failures = 0, lastOk = Date.now(), timer = null, inFlight = false;

  var grouped2 = new Intl.NumberFormat("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var grouped0 = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
  // Half away from zero on the number's shortest decimal form, as the server's floatformat rounds: 9.375 and
  // 2.675 show as 9.38 and 2.68 on both, so a live update never moves a figure by a cent.
  function halfUp(v, digits) {
    var scaled = Number(String(Math.abs(v)) + "e" + digits);
    if (!isFinite(scaled)) return v;
    return (v < 0 ? -1 : 1) * Number(Math.round(scaled) + "e-" + digits);
  }
  function price(v) { return v === null || v === undefined ? "–" : v.toFixed(config.priceDigits); }
  function pips(v) { return v === null || v === undefined ? "–" : v.toFixed(2); }
  function money(v) { return v === null || v === undefined ? "–" : grouped2.format(halfUp(v, 2)); }
  // Like floatformat:"-2g": a whole number without decimals, any other with two.
  function qty(v) { return Number.isInteger(v) ? grouped0.format(v) : grouped2.format(halfUp(v, 2)); }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  // Each figure cell names its column: on a phone the rows are cards and the header row is hidden.
  var LABELS = ["Average fill price", "Spread cost (pips)", "Spread cost (USD)", "Commission (USD)", "All-in (USD)", "Filled (units)", "Penalty for unfilled (USD)", "All-in with penalty (USD)", "Split takes (units)", "Lot step / minimum", "Depth age"];
  var REASONS = { minimum: ": below this account's minimum order", lot_step: ": not a whole number of lot steps", depth: ": not enough depth" };
  function lots(v) { return Number(v).toString() + " lot"; }
  function labelled(tr) {
    var cells = tr.querySelectorAll("td");
    if (cells.length === LABELS.length) cells.forEach(function (td, i) { td.dataset.label = LABELS[i]; });
    else if (cells.length === 2) cells[1].dataset.label = LABELS[LABELS.length - 1];
    return tr;
  }
  function figure(td, name) { td.dataset.figure = name; return td; }
  // The same figures as the page's server-rendered cells (templates/execution/_filled.html).
  function filledCell(r, reason) {
    var td = el("td");
    td.appendChild(figure(el("span", qty(r.filled_units)), "filled_units"));
    if (r.unfilled_units > 0) {
      td.appendChild(document.createTextNode(" "));
      td.appendChild(el("strong", r.filled_units > 0 ? "Partial" : "Fills nothing", "partial-mark"));
      td.appendChild(document.createTextNode(" "));
      var short = el("span", "short ", "shortfall");
      short.appendChild(figure(el("span", qty(r.unfilled_units)), "unfilled_units"));
      if (reason && REASONS[reason]) short.appendChild(document.createTextNode(REASONS[reason]));
      td.appendChild(short);
    } else {
      td.appendChild(document.createTextNode(" "));
      td.appendChild(el("span", "in full", "muted"));
    }
    return td;
  }
  function excluded(text, span) {
    var td = el("td", text, "excluded");
    td.colSpan = span;
    return td;
  }
  function costCells(tr, r) {
    tr.appendChild(el("td", price(r.average_price)));
    tr.appendChild(el("td", pips(r.cost_pips)));
    tr.appendChild(figure(el("td", money(r.spread_cost_usd)), "spread_cost_usd"));
    tr.appendChild(figure(el("td", money(r.commission_usd)), "commission_usd"));
    var allIn = figure(el("td"), "all_in_usd");
    allIn.appendChild(el("strong", money(r.all_in_usd)));
    tr.appendChild(allIn);
  }

  function renderRows(data) {
    var body = document.createElement("tbody");
    body.id = "exec-rows";
    data.brokers.forEach(function (r) {
      var nothing = r.status === "ok" && r.average_price === null;
      var tr = el("tr", null, "exec-row status-" + r.status + (r.best ? " best" : "") + (r.partial ? " partial" : "") + (nothing ? " fills-nothing" : ""));
      tr.dataset.broker = r.broker;
      tr.dataset.account = r.account;
      var th = el("th", r.name);
      th.scope = "row";
      if (r.account) { th.appendChild(document.createTextNode(" ")); th.appendChild(el("span", r.account, "muted")); }
      if (r.best) { th.appendChild(document.createTextNode(" ")); th.appendChild(el("span", "Best", "best-mark")); }
      tr.appendChild(th);
      if (r.status === "ok") {
        costCells(tr, r);
        tr.appendChild(filledCell(r, r.unfilled_reason));
        tr.appendChild(figure(el("td", money(r.penalty_usd)), "penalty_usd"));
        tr.appendChild(figure(el("td", money(r.all_in_with_penalty_usd)), "all_in_with_penalty_usd"));
        tr.appendChild(figure(el("td", qty(r.split_size)), "split_size"));
        tr.appendChild(figure(el("td", lots(r.lot_step_lots) + " / " + lots(r.min_lots)), "lot_step"));
        tr.appendChild(el("td", r.age_s.toFixed(1) + " s"));
      } else if (r.status === "stale") {
        tr.appendChild(excluded("Stale depth: excluded", LABELS.length - 1));
        tr.appendChild(el("td", r.age_s.toFixed(1) + " s"));
      } else {
        tr.appendChild(excluded(r.status === "bad_depth" ? "Unreadable depth: excluded" : "No depth", LABELS.length));
      }
      body.appendChild(labelled(tr));
    });
    var old = document.getElementById("exec-rows");
    old.parentNode.replaceChild(body, old);

    var foot = document.getElementById("exec-split");
    var tr = el("tr", null, "exec-split");
    var th = el("th", "Split across brokers");
    th.scope = "row";
    tr.appendChild(th);
    var s = data.split;
    if (s) {
      costCells(tr, s);
      tr.appendChild(filledCell(s, null));
      tr.appendChild(figure(el("td", money(s.penalty_usd)), "penalty_usd"));
      tr.appendChild(figure(el("td", money(s.all_in_with_penalty_usd)), "all_in_with_penalty_usd"));
      tr.appendChild(figure(el("td", qty(s.filled)), "split_size"));
      tr.appendChild(el("td", "Each account's own"));
      tr.appendChild(el("td"));
    } else {
      tr.appendChild(excluded("No fresh depth", LABELS.length));
    }
    foot.replaceChildren(labelled(tr));
  }

  function renderSummary(data) {
    document.getElementById("exec-mid").textContent = price(data.consensus_mid);
    var best = data.brokers.filter(function (r) { return r.best; }).map(function (r) { return r.account ? r.name + " (" + r.account + ")" : r.name; });
    document.getElementById("exec-best").textContent = best.length ? best.join(", ") : "None fills the whole order";
    var split = document.getElementById("exec-split-summary");
    split.replaceChildren();
    if (data.split && data.split.all_in_usd !== null) {
      split.appendChild(document.createTextNode("$" + money(data.split.all_in_usd)));
      if (data.split.saving_usd_vs_best !== null && data.split.saving_usd_vs_best >= 0.005) {
        split.appendChild(document.createTextNode(" "));
        split.appendChild(el("span", "(saves $" + money(data.split.saving_usd_vs_best) + ")", "muted"));
      }
    } else {
      split.textContent = "–";
    }
    // Which account each leg of the split uses, as the server renders it.
    var legs = data.brokers.filter(function (r) { return r.split_size > 0; });
    var legsEl = document.getElementById("exec-split-legs");
    legsEl.replaceChildren();
    if (legs.length) {
      var list = el("ul", null, "split-legs");
      legs.forEach(function (r) { list.appendChild(el("li", r.name + (r.account ? " (" + r.account + ")" : "") + ": " + qty(r.split_size) + " units")); });
      legsEl.appendChild(list);
    } else {
      legsEl.textContent = "–";
    }
    var notes = document.getElementById("exec-notes");
    notes.replaceChildren();
    data.notes.forEach(function (n) { notes.appendChild(el("li", n)); });
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    labelEl.textContent = text;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    if (document.hidden) { setStatus("paused", "Paused while this tab is hidden."); return; }
    if (inFlight) return;
    inFlight = true;
    var ctrl = "AbortController" in window ? new AbortController() : null;
    var abort = ctrl ? setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS) : null;
    fetch(apiUrl, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin", signal: ctrl ? ctrl.signal : undefined })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          if (!resp.ok) throw new Error(data.error || ("HTTP " + resp.status));
          return data;
        });
      })
      .then(function (data) {
        failures = 0;
        lastOk = Date.now();
        renderRows(data);
        renderSummary(data);
        section.classList.remove("is-outdated");
        var t = new Date(lastOk).toLocaleTimeString("en-GB");
        setStatus("live", "Live: updated " + t + ".");
        ageEl.textContent = data.max_age_s === null ? "No fresh depth." : "Depth up to " + data.max_age_s.toFixed(1) + " s old.";
        schedule(EVERY_MS);
      })
      .catch(function (err) {
        failures += 1;
        var wait = Math.min(EVERY_MS * Math.pow(2, failures), MAX_BACKOFF_MS);
        var since = Math.round((Date.now() - lastOk) / 1000);
        section.classList.add("is-outdated");
        setStatus("error", "Update failed (" + (err.name === "AbortError" ? "timed out" : err.message) + "); figures are " + since + " s old, retrying in " + Math.round(wait / 1000) + " s.");
        schedule(wait);
      })
      .finally(function () { inFlight = false; if (abort) clearTimeout(abort); });
  }

  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });
  statusEl.dataset.state = "live";
  schedule(EVERY_MS);
})();
