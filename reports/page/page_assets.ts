/**
 * The report page's own stylesheet and script (inlined by reports/page/html.ts).
 * The script renders the compiled Vega specs with Vega's CSP-compliant
 * expression interpreter and shows tooltips, writing only with
 * `textContent`. It records its state in `window.__report` for tests.
 *
 * @module
 */

/** The page stylesheet: readable on a laptop, printable. */
export const PAGE_STYLE = `
:root { color-scheme: light; --muted: #555; --line: #d8d8d8; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
  margin: 0 auto; padding: 1.5rem; max-width: 1120px; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid var(--accent); padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
h4 { margin: .2rem 0; }
.lead { font-size: 1.05rem; }
.verdict { font-size: 1.05rem; background: #f3f7fb; border-left: 4px solid var(--accent);
  padding: .7rem 1rem; }
ul.verdict { list-style: none; margin: .6rem 0 .4rem; padding: .5rem 1rem; }
ul.verdict li { margin: .15rem 0; }
#answer figure { margin: .4rem 0 1rem; }
#answer figure h3 { margin: .2rem 0 0; }
#answer figure p.muted { margin: 0 0 .2rem; }
table.budgets td { white-space: nowrap; }
table.budgets details p { white-space: normal; max-width: 36em; margin: .3rem 0; }
ul.why { margin: .2rem 0 1rem; font-size: .9rem; }
p.why-head { margin: .6rem 0 0; font-weight: 600; font-size: .95rem; }
details.table > summary h3 { display: inline-block; margin: 1.2rem 0 .4rem; }
details.table > summary { cursor: pointer; }
.muted { color: var(--muted); font-size: .9em; }
.ci { color: var(--muted); font-size: .88em; white-space: nowrap; }
.warn { color: #a33a00; }
.banner { border: 2px solid #D55E00; background: #fff4ec; padding: .4rem 1rem; margin: .6rem 0; }
.banner ul { margin: .3rem 0 0; columns: 2; }
.banner summary { cursor: pointer; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td { overflow-wrap: break-word; }
td:first-child { white-space: nowrap; }
td code { overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .86em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f6f6; padding: .6rem; margin: .3rem 0; }
pre.sample mark { background: #ffe9a8; }
th mark { background: #ffe9a8; font-weight: 600; }
table.flagged td { vertical-align: middle; }
table.flagged td:nth-child(-n+2) { white-space: nowrap; width: 1%; }
table.flagged pre.sample { margin: 0; padding: .2rem .4rem; font-size: .78rem; }
pre.sample .nl { color: #999; }
pre.sample .ctx { color: #444; }
.example { border-top: 1px solid var(--line); padding: .5rem 0; }
.caught { margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: .1rem .5rem; }
.caught li { background: #eef3f8; border-radius: 3px; padding: 0 .4rem; font-size: .88em; }
footer { margin-top: 2rem; }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.settings dt { font-weight: 600; }
dl.settings dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 1rem 0 2rem; }
.chart { overflow-x: auto; min-height: 40px; }
.report-tooltip { position: fixed; z-index: 10; pointer-events: none; display: none; background: #fff;
  border: 1px solid #999; box-shadow: 0 2px 6px rgba(0,0,0,.2); padding: .3rem .5rem; font-size: 12px;
  max-width: 360px; }
.report-tooltip td { border: 0; padding: 0 .4rem 0 0; }
.chart-error { color: #a33a00; }
.chart-note { color: #a33a00; font-weight: 600; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .report-tooltip { display: none !important; }
  figure, .example, table { break-inside: avoid; }
  .chart { overflow: visible; }
}
`;

/** The page script (a classic script; needs the globals `vega` and `vegaInterpreter`). */
export const PAGE_SCRIPT = `(function () {
"use strict";
var state = { done: false, views: [], errors: [] };
window.__report = state;
var tip = document.createElement("div");
tip.className = "report-tooltip";
tip.setAttribute("role", "tooltip");
document.body.appendChild(tip);
function show(_handler, event, item, value) {
  if (value === null || value === undefined || value === "") { tip.style.display = "none"; return; }
  tip.textContent = "";
  if (typeof value === "object") {
    var table = document.createElement("table");
    Object.keys(value).forEach(function (key) {
      var tr = document.createElement("tr");
      var th = document.createElement("td");
      th.textContent = key;
      th.style.fontWeight = "600";
      var td = document.createElement("td");
      td.textContent = String(value[key]);
      tr.appendChild(th);
      tr.appendChild(td);
      table.appendChild(tr);
    });
    tip.appendChild(table);
  } else {
    tip.textContent = String(value);
  }
  tip.style.display = "block";
  var x = event.clientX + 14, y = event.clientY + 14;
  var w = tip.offsetWidth, h = tip.offsetHeight;
  if (x + w > window.innerWidth) x = Math.max(0, event.clientX - w - 14);
  if (y + h > window.innerHeight) y = Math.max(0, event.clientY - h - 14);
  tip.style.left = x + "px";
  tip.style.top = y + "px";
}
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
var specs = JSON.parse(document.getElementById("report-specs").textContent);
Promise.all(specs.map(function (entry) {
  var el = document.getElementById("chart-" + entry.id);
  try {
    var view = new vega.View(vega.parse(entry.spec, null, { ast: true }), {
      expr: vegaInterpreter, renderer: "svg", container: el, hover: true
    });
    view.tooltip(show);
    state.views.push({ id: entry.id, view: view });
    return view.runAsync();
  } catch (err) {
    return Promise.reject(err);
  }
}).map(function (p, i) {
  return p.catch(function (err) {
    var el = document.getElementById("chart-" + specs[i].id);
    var msg = document.createElement("p");
    msg.className = "chart-error";
    msg.textContent = "This chart could not be rendered: " + err;
    el.appendChild(msg);
    state.errors.push(String(err));
    console.error(err);
  });
})).then(function () {
  state.done = true;
  document.documentElement.setAttribute("data-rendered", state.errors.length ? "errors" : "ok");
});
})();`;
