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

  // The accounts that cannot take ``lots`` of ``symbol`` as it is, one item per lot rule: [{rule, names, sizes}].
  function offGrid(lots, symbol) {
    var groups = {}, order = [];
    rules.accounts.forEach(function (a) {
      if (a.on.indexOf(symbol) < 0) return;
      var below = lots < a.min - 1e-9;
      if (!below && near(lots / a.step)) return;
      var key = a.step + "/" + a.min;
      if (!groups[key]) { groups[key] = { step: a.step, min: a.min, below: below, names: [] }; order.push(key); }
      groups[key].names.push(a.name);
    });
    return order.map(function (key) {
      var g = groups[key];
      var names = g.names.slice(0, MAX_NAMES).join(", ") + (g.names.length > MAX_NAMES ? " and " + (g.names.length - MAX_NAMES) + " more" : "");
      var rule = g.below ? "Below the minimum order of " + lotsText(g.min)
        : "Not a whole number of " + lotsText(g.step).replace(/s$/, "") + " steps" + (g.min !== g.step ? " (minimum " + lotsText(g.min) + ")" : "");
      var steps = Math.floor(lots / g.step + 1e-9);
      var lower = steps * g.step >= g.min - 1e-9 && steps > 0 ? steps * g.step : null;
      var upper = Math.max(g.min, Math.ceil(lots / g.step - 1e-9) * g.step);
      return rule + ": " + names + ". Nearest sizes they take: " + (lower !== null ? lotsText(lower) + " or " : "") + lotsText(upper) + ".";
    });
  }

  var shown = "";
  function update() {
    var items = [], lots = null;
    var v = parse(size.value);
    var lot = rules.lot[instrument.value];
    if (v !== null && lot && !(serverNote && state() === submitted)) {
      lots = unit && unit.value === "units" ? v / lot : v;
      items = offGrid(lots, instrument.value);
    }
    var key = items.length ? lots + "|" + items.join("|") : "";
    if (key === shown) return;  // unchanged: the live region says nothing again
    shown = key;
    hint.replaceChildren();
    hint.hidden = !items.length;
    if (!items.length) return;
    var lead = document.createElement("strong");
    lead.textContent = "Not every account can take " + lotsText(lots) + " as it is.";
    hint.appendChild(lead);
    hint.appendChild(document.createTextNode(" They would fill less, and the rest would show as unfilled:"));
    var list = document.createElement("ul");
    items.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    hint.appendChild(list);
  }

  size.addEventListener("input", update);
  instrument.addEventListener("change", update);
  if (unit) unit.addEventListener("change", update);
  update();
})();
