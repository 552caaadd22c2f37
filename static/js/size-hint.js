/* Best execution: says beside the size field, as it is typed, which accounts cannot take that size as it is (not a
   whole number of their lot steps, or below their minimum order), before Calculate. The rules come with the page
   (#exec-lot-rules, from execution.selectors.lot_rules); the server's note after Calculate says the same without
   JavaScript, so this only warns earlier. The hint is a polite live region named by the field's aria-describedby. */
(function () {
  "use strict";
  var rulesEl = document.getElementById("exec-lot-rules");
  var hint = document.getElementById("size-hint");
  var size = document.getElementById("id_size");
  var unit = document.getElementById("id_unit");
  var instrument = document.getElementById("id_instrument");
  if (!rulesEl || !hint || !size || !instrument) return;
  var rules = JSON.parse(rulesEl.textContent);
  var MAX_NAMES = 3;

  function state() { return [instrument.value, size.value, unit ? unit.value : ""].join("|"); }
  // The size as submitted: the server's note already speaks for it, so the hint waits for a change.
  var submitted = state();
  var serverNote = !!document.getElementById("size-advice");

  var described = (size.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  if (described.indexOf("size-hint") < 0) {
    described.push("size-hint");
    size.setAttribute("aria-describedby", described.join(" "));
  }

  // Read like the form does (execution/forms.py): commas, underscores and spaces ignored; a positive number.
  function parse(text) {
    var cleaned = text.trim().replace(/[,_\s]/g, "");
    if (!/^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(cleaned)) return null;
    var v = Number(cleaned);
    return isFinite(v) && v > 0 ? v : null;
  }
  function near(x) { return Math.abs(x - Math.round(x)) <= 1e-9 * Math.max(1, Math.abs(x)); }
  function lotsText(v) { var t = Number(v.toFixed(6)).toString(); return t + " lot" + (t === "1" ? "" : "s"); }

  function message(lots, symbol) {
    var groups = {}, order = [];
    rules.accounts.forEach(function (a) {
      if (a.on.indexOf(symbol) < 0) return;
      var steps = lots / a.step;
      var below = lots < a.min - 1e-9;
      if (!below && near(steps)) return;
      var key = a.step + "/" + a.min;
      if (!groups[key]) { groups[key] = { step: a.step, min: a.min, below: below, names: [] }; order.push(key); }
      groups[key].names.push(a.name);
    });
    if (!order.length) return "";
    var parts = order.map(function (key) {
      var g = groups[key];
      var names = g.names.slice(0, MAX_NAMES).join(", ") + (g.names.length > MAX_NAMES ? " and " + (g.names.length - MAX_NAMES) + " more" : "");
      var rule = g.below ? "below the minimum order of " + lotsText(g.min)
        : "not a whole number of " + lotsText(g.step).replace(/s$/, "") + " steps" + (g.min !== g.step ? " (minimum " + lotsText(g.min) + ")" : "");
      var steps = Math.floor(lots / g.step + 1e-9);
      var lower = steps * g.step >= g.min - 1e-9 && steps > 0 ? steps * g.step : null;
      var upper = Math.max(g.min, Math.ceil(lots / g.step - 1e-9) * g.step);
      var sizes = (lower !== null ? lotsText(lower) + " or " : "") + lotsText(upper);
      return rule + ": " + names + " (nearest sizes they take: " + sizes + ")";
    });
    return "Not every account can take " + lotsText(lots) + " as it is: " + parts.join("; ") +
      ". They would fill less, and the rest would show as unfilled.";
  }

  function update() {
    var text = "";
    var v = parse(size.value);
    var lot = rules.lot[instrument.value];
    if (v !== null && lot && !(serverNote && state() === submitted)) {
      text = message(unit && unit.value === "units" ? v / lot : v, instrument.value);
    }
    if (hint.textContent !== text) hint.textContent = text;
    hint.hidden = !text;
  }

  size.addEventListener("input", update);
  instrument.addEventListener("change", update);
  if (unit) unit.addEventListener("change", update);
  update();
})();
