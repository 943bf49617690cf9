/**
 * The forecast's short HTML page: the rule, how many rows it flags, what the
 * calibration expects of it (held-out precision and recall with intervals)
 * and the assumptions. Static: no script, a CSP that allows nothing but the
 * inline style.
 *
 * @module
 */
import { escapeHtml as e } from "./html.ts";
import { PAGE_STYLE } from "./page_assets.ts";
import type { ForecastFile } from "../analysis/forecast.ts";
import type { Estimate } from "../analysis/summary.ts";
import { checkpointLabel } from "../../engine/types.ts";

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const est = (v: Estimate) =>
  `${v.value.toFixed(3)} <span class="ci">[${v.lo.toFixed(3)}, ${v.hi.toFixed(3)}]</span>`;

/** The page text of a forecast. */
export function forecastPage(f: ForecastFile): string {
  const t = checkpointLabel(f.calibration.target);
  const over = f.expected.recallOver === "all"
    ? "of the rows the target will memorize"
    : "of the target's memorized rows the predictor scores";
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Forecast: ${e(f.run.experiment)}</title>
<style>${PAGE_STYLE}</style></head>
<body><main>
<h1>Forecast for ${e(f.run.experiment)}</h1>
<p class="verdict">Rows with <strong>${
    e(f.rule)
  }</strong> are predicted to be memorized: ${f.flagged}
of ${f.run.rowsScored} rows scored. Calibrated on ${e(f.calibration.experiment)} (target ${e(t)}),
this rule catches ${pct(f.expected.recall.value)} ${over} at precision
${f.expected.precision.value.toFixed(3)}, held out.</p>
<div class="table-wrap"><table>
<thead><tr><th scope="col">expected</th><th scope="col">value [95% CI]</th><th scope="col">in-sample</th></tr></thead>
<tbody>
<tr><td>precision</td><td>${est(f.expected.precision)}</td><td>${
    f.inSample.precision.toFixed(3)
  }</td></tr>
<tr><td>recall</td><td>${est(f.expected.recall)}</td><td>${f.inSample.recall.toFixed(3)}</td></tr>
<tr><td>compute (of the calibration target's)</td><td>${pct(f.computeFraction)}</td><td></td></tr>
</tbody></table></div>
<p>Files: <code>flagged.parquet</code>, <code>flagged.csv</code> (<code>index,signal</code>),
<code>forecast.json</code>. Minimum precision ${f.expected.minPrecision}; choice cross-fitted over
${f.expected.folds} folds of rows.</p>
<h2>Assumptions</h2>
<ul>${f.assumptions.map((a) => `<li>${e(a)}</li>`).join("\n")}</ul>
<p class="muted">Calibration: ${e(f.calibration.run)} (${f.calibration.memorized} memorized of
${f.calibration.rowsScored} rows). Run: ${e(f.run.run)}.</p>
</main></body></html>
`;
}
