/**
 * The report of a run without a trained target (`target: none`): a short
 * page and `summary.json` ({@link NoTargetSummary}) listing what was scored, and
 * `predictors.csv` with one line per run. Written atomically.
 *
 * @module
 */
import type { NoTargetSummary } from "../analysis/no_target_summary.ts";
import { escapeHtml as e } from "./html.ts";
import { PAGE_STYLE } from "./page_assets.ts";
import { type RenderedReport, writeReportFiles } from "./report_files.ts";

/** The page of a runs summary (static: no script; the CSP allows only the inline style). */
export function noTargetPage(s: NoTargetSummary): string {
  const rows = s.runs.map((r) =>
    `<tr><td>${e(r.model)}</td><td>${r.step}</td><td>${r.compute.toExponential(2)}</td>` +
    `<td>${r.rowsScored}</td><td>${r.memorized}</td><td>${(100 * r.rate).toFixed(2)}%</td>` +
    `<td>${e(r.signals.join(", ") || "binary")}</td></tr>`
  ).join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(s.experiment.name)}: scored runs</title>
<style>${PAGE_STYLE}</style></head>
<body><main>
<h1>${e(s.experiment.name)}</h1>
<p class="verdict">${e(s.note)}</p>
<div class="table-wrap"><table>
<thead><tr><th scope="col">model</th><th scope="col">step</th><th scope="col">compute (FLOPs)</th>
<th scope="col">rows scored</th><th scope="col">memorized</th><th scope="col">rate</th>
<th scope="col">signals</th></tr></thead>
<tbody>${rows}</tbody></table></div>
<p class="muted">Experiment file: ${e(s.experiment.file)}</p>
</main></body></html>
`;
}

/** `model,step,parameters,compute,rows_scored,memorized,rate` lines. */
export function noTargetCsv(s: NoTargetSummary): string {
  const q = (t: string) => (/[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t);
  const lines = ["model,step,parameters,compute,rows_scored,memorized,rate"];
  for (const r of s.runs) {
    lines.push(
      [q(r.model), r.step, r.parameters, r.compute, r.rowsScored, r.memorized, r.rate].join(","),
    );
  }
  return lines.join("\r\n") + "\r\n";
}

/** Writes report.html, summary.json and predictors.csv of a runs summary. */
export async function writeNoTargetReport(
  s: NoTargetSummary,
  outDir: string,
): Promise<RenderedReport> {
  const t0 = performance.now();
  return await writeReportFiles(outDir, s, noTargetCsv(s), noTargetPage(s), t0);
}
