/**
 * The forecast's page: the rule, how many rows it flags, what the
 * calibration expects of it (held-out precision and recall with intervals);
 * the flagged rows it is most confident about, decoded (token ids without a
 * tokenizer); two charts of the calibration (the signal's distribution over
 * rows the target memorized and did not, with the threshold; the
 * precision–recall curve with the chosen point); the assumptions. Drawn with
 * Vega like the report (reports/page/html.ts `chartPage`: no network, only
 * its own inline scripts).
 *
 * @module
 */
import { chartPage, type CompiledChart, escapeHtml as e, figure } from "./html.ts";
import { type Chart, compileChart } from "./charts.ts";
import { fmt, HEIGHT, nom, type Row, unit, WIDTH } from "./chart_style.ts";
import { type VendorScripts, vendorScripts } from "./vendor.ts";
import type { ForecastFile } from "../analysis/forecast.ts";
import { NLL_DISPLAY_BIN } from "../analysis/forecast_figures.ts";
import type { Estimate } from "../analysis/summary.ts";
import { checkpointLabel } from "../../engine/types.ts";

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const est = (v: Estimate) =>
  `${v.value.toFixed(3)} <span class="ci">[${v.lo.toFixed(3)}, ${v.hi.toFixed(3)}]</span>`;

const MEMORIZED = "memorized by the target";
const NOT_MEMORIZED = "not memorized";

/** What the signal's values are, for axis titles. */
function signalTitle(signal: ForecastFile["signal"]): string {
  return signal === "nll"
    ? `continuation NLL (nats/token, bins of ${NLL_DISPLAY_BIN})`
    : signal === "score"
    ? "score (matched continuation tokens, fraction)"
    : signal === "prefix"
    ? "matched prefix (tokens)"
    : signal === "combined" || signal === "data-only"
    ? `out-of-fold probability of memorization (${signal} model, bins of 0.01)`
    : "memorized by the predictor (1) or not (0)";
}

/** The signal's distribution over the calibration's memorized and not-memorized rows, threshold marked. */
export function distributionChart(f: ForecastFile): Chart {
  const g = f.figures;
  const total = (k: "memorized" | "notMemorized") => g.distribution.reduce((a, d) => a + d[k], 0);
  const pos = total("memorized");
  const neg = total("notMemorized");
  const values: Row[] = g.distribution.flatMap((d) => [
    { value: d.value, group: MEMORIZED, rows: d.memorized, share: pos > 0 ? d.memorized / pos : 0 },
    {
      value: d.value,
      group: NOT_MEMORIZED,
      rows: d.notMemorized,
      share: neg > 0 ? d.notMemorized / neg : 0,
    },
  ]);
  const side = g.signal === "nll" ? "below" : "at or above";
  const threshold = g.threshold ?? 1;
  const color = {
    ...nom("group", "calibration rows"),
    scale: { domain: [MEMORIZED, NOT_MEMORIZED], range: ["#D55E00", "#0072B2"] },
  };
  const tip = [
    nom("group", "rows"),
    fmt("value", "signal", ".3~g"),
    fmt("rows", "rows"),
    fmt("share", "share of the group", ".1%"),
  ];
  const x = { field: "value", type: "quantitative", title: signalTitle(g.signal) };
  const y = { field: "share", type: "quantitative", title: "share of the group's rows" };
  const bars = g.signal === "binary" || g.signal === "prefix" ||
    (g.signal === "score" && g.distribution.length < 40);
  return {
    id: "forecast-distribution",
    title: `The ${
      g.signal === "binary" ? "predictor's memorization" : g.signal
    } on the calibration`,
    description: `How the predictor's ${g.signal} is spread over the calibration rows the target ` +
      `memorized (${pos}) and did not (${neg}), each as a share of its group; the rule flags the ` +
      `rows ${g.signal === "binary" ? "the predictor memorized" : `${side} the dashed line`}.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values },
          mark: bars
            ? { type: "bar", opacity: 0.75, size: g.signal === "binary" ? 40 : 6 }
            : { type: "area", interpolate: "step-after", opacity: 0.45 },
          encoding: {
            x,
            y: { ...y, ...(bars ? {} : { stack: null }) },
            color,
            ...(bars ? { xOffset: nom("group", "rows") } : {}),
            tooltip: tip,
          },
        },
        {
          data: { values: [{ threshold, rule: f.rule }] },
          mark: { type: "rule", strokeDash: [5, 4], color: "#000000", strokeWidth: 1.5 },
          encoding: {
            x: { field: "threshold", type: "quantitative" },
            tooltip: [nom("rule", "rule"), fmt("threshold", "threshold", ".3~g")],
          },
        },
      ],
    }),
  };
}

/** The calibration's precision–recall curve of the signal, the chosen threshold marked. */
export function curveChart(f: ForecastFile): Chart {
  const g = f.figures;
  const min = f.expected.minPrecision;
  const chosen = [
    {
      point: "chosen threshold, in-sample",
      threshold: g.chosen.threshold ?? 1,
      precision: g.chosen.precision,
      recall: g.chosen.recall,
    },
    {
      point: "expected on other rows (held out)",
      threshold: g.chosen.threshold ?? 1,
      precision: g.chosen.heldOutPrecision,
      recall: g.chosen.heldOutRecall,
    },
  ];
  const x = { field: "recall", type: "quantitative", title: "recall", scale: { domain: [0, 1] } };
  const y = {
    field: "precision",
    type: "quantitative",
    title: "precision",
    scale: { domain: [0, 1] },
  };
  const tip = [
    fmt("threshold", "threshold", ".3~g"),
    fmt("precision", "precision", ".3f"),
    fmt("recall", "recall", ".3f"),
  ];
  return {
    id: "forecast-pr",
    title: "Precision–recall on the calibration",
    description:
      `Every threshold of the ${g.signal} of ${
        checkpointLabel(f.predictor)
      } against the calibration target's memorization (in-sample); the diamond is the chosen ` +
      `threshold, the square what it is expected to keep on rows it was not chosen on; dashed: ` +
      `the precision floor ${min}.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values: [{ floor: min }] },
          mark: { type: "rule", strokeDash: [4, 4], color: "#777777" },
          encoding: {
            y: { field: "floor", type: "quantitative" },
            tooltip: [fmt("floor", "precision floor", ".3~g")],
          },
        },
        {
          // Strictest threshold first: the curve's own order.
          data: { values: g.curve.map((p, i) => ({ ...p, i })) },
          mark: { type: "line", point: { size: 12 }, color: "#0072B2" },
          encoding: { x, y, order: { field: "i", type: "quantitative" }, tooltip: tip },
        },
        {
          data: { values: chosen },
          mark: { type: "point", filled: false, size: 200, strokeWidth: 2, color: "#000000" },
          encoding: {
            x,
            y,
            shape: {
              ...nom("point", "point"),
              scale: { range: ["diamond", "square"] },
            },
            tooltip: [nom("point", "point"), ...tip],
          },
        },
      ],
    }),
  };
}

/** The most confident flagged rows, one table row each: index, signal value, text (or token ids). */
function examples(f: ForecastFile): string {
  if (f.examples.length === 0) return `<p class="muted">The rule flags no row.</p>`;
  // One flowing block per row: line breaks of the text shown as ↵, so no row is cut off.
  const flat = (text: string) => e(text).replace(/\r?\n/g, `<span class="nl">↵</span>`);
  const rows = f.examples.map((x) => {
    const text = x.context !== null || x.continuation !== null
      ? `<pre class="sample"><span class="ctx">${flat(x.context ?? "")}</span><mark>${
        flat(x.continuation ?? "")
      }</mark></pre>`
      : x.tokens.length > 0
      ? `<pre class="sample">${e(x.tokens.join(" "))}</pre>`
      : `<span class="muted">no tokens available for this row</span>`;
    const value = f.signal === "binary" ? "memorized" : e(String(Number(x.value.toFixed(3))));
    const personal = x.personal && x.personal.length > 0
      ? `<br><span class="muted">personal data: ${e(x.personal.join(", "))}</span>`
      : "";
    return `<tr><td>${x.row}${personal}</td><td>${value}</td><td>${text}</td></tr>`;
  });
  const ids = f.examples.some((x) => x.context === null && x.tokens.length > 0);
  return `<div class="table-wrap"><table class="flagged"><thead><tr><th scope="col">row</th>
<th scope="col">${e(f.signal)}</th><th scope="col">context <mark>continuation</mark>${
    ids ? " (token ids: no tokenizer given)" : ""
  }</th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table></div>`;
}

/** The page's lead on personal data: "of N flagged rows, M contain personal data" (with kinds). */
function personalLead(f: ForecastFile): string {
  if (!f.personal) return "";
  const kinds = Object.entries(f.personal.kinds).map(([k, n]) => `${e(k)} ${n}`).join(", ");
  return `<p class="verdict" id="personal">Of ${f.flagged} flagged rows, ${f.personal.withPersonal}
contain personal data${kinds ? ` (${kinds})` : ""}.</p>`;
}

/** The page text of a forecast. */
export async function forecastPage(
  f: ForecastFile,
  vendor?: VendorScripts,
): Promise<string> {
  const t = checkpointLabel(f.calibration.target);
  const over = f.expected.recallOver === "all"
    ? "of the rows the target will memorize"
    : "of the target's memorized rows the predictor scores";
  const charts: CompiledChart[] = [distributionChart(f), curveChart(f)].map((chart) => ({
    chart,
    vega: compileChart(chart),
  }));
  const order = f.signal === "nll"
    ? "lowest NLL first"
    : f.signal === "binary"
    ? "by row"
    : `highest ${f.signal} first`;
  const body = `<main>
<h1>Forecast for ${e(f.run.experiment)}</h1>
${personalLead(f)}
${
    f.warnings?.length
      ? `<div class="banner" role="alert"><strong>Warning:</strong><ul>${
        f.warnings.map((w) => `<li>${e(w)}</li>`).join("")
      }</ul></div>\n`
      : ""
  }<p class="verdict" id="verdict">Rows with <strong>${
    e(f.rule)
  }</strong> are predicted to be memorized:
${f.flagged} of ${f.run.rowsScored} rows scored. Calibrated on
${e(f.calibration.experiment)} (target ${e(t)}), this rule catches ${
    pct(f.expected.recall.value)
  } ${over} at precision ${f.expected.precision.value.toFixed(3)}, held out.</p>
<div class="table-wrap"><table>
<thead><tr><th scope="col">expected</th><th scope="col">value [95% CI]</th><th scope="col">in-sample</th></tr></thead>
<tbody>
<tr><td>precision</td><td>${est(f.expected.precision)}</td><td>${
    f.inSample.precision.toFixed(3)
  }</td></tr>
<tr><td>recall</td><td>${est(f.expected.recall)}</td><td>${f.inSample.recall.toFixed(3)}</td></tr>
<tr><td>compute (of the calibration target's)</td><td>${pct(f.computeFraction)}</td><td></td></tr>
</tbody></table></div>
<section id="flagged">
<h2>The ${f.examples.length} most confident flagged rows</h2>
<p class="muted">Of the ${f.flagged} flagged rows, ${order}; every flagged row is in
<code>flagged.parquet</code> and <code>flagged.csv</code> (<code>index,signal</code>).</p>
${examples(f)}
</section>
<section id="calibration">
<h2>The rule on the calibration</h2>
${charts.map(figure).join("\n")}
</section>
<p>Files: <code>flagged.parquet</code>, <code>flagged.csv</code> (<code>index,signal</code>),
<code>forecast.json</code>. Minimum precision ${f.expected.minPrecision}; choice cross-fitted over
${f.expected.folds} folds of rows.</p>
<h2>Assumptions</h2>
<ul>${f.assumptions.map((a) => `<li>${e(a)}</li>`).join("\n")}</ul>
<p class="muted">Calibration: ${e(f.calibration.run)} (${f.calibration.memorized} memorized of
${f.calibration.rowsScored} rows). Run: ${e(f.run.run)}.</p>
</main>`;
  return await chartPage(
    `Forecast: ${f.run.experiment}`,
    body,
    charts,
    vendor ?? await vendorScripts(),
  );
}
