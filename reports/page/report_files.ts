/**
 * Writes a report's files (report.html, summary.json, predictors.csv) from a
 * {@link Summary}, each atomically (temporary file + rename).
 *
 * @module
 */
import { join } from "node:path";
import { writeAtomic } from "../../engine/store/store.ts";
import { buildCharts, compileChart } from "./charts.ts";
import { renderHtml } from "./html.ts";
import type { Summary } from "../analysis/summary.ts";
import { vendorScripts } from "./vendor.ts";

/** Where the rendered files are. */
export interface RenderedReport {
  /** Path of report.html. */
  html: string;
  /** Path of summary.json. */
  summary: string;
  /** Path of predictors.csv. */
  csv: string;
  /** Wall time of the render (whole render for renderReport, writing only for writeReport). */
  seconds: number;
}

/** Writes report.html, summary.json and predictors.csv for a summary into a folder. */
export async function writeReport(
  summary: Summary,
  outDir: string,
): Promise<RenderedReport> {
  const t0 = performance.now();
  const charts = buildCharts(summary).map((chart) => ({ chart, vega: compileChart(chart) }));
  const html = await renderHtml(summary, charts, await vendorScripts());
  return await writeReportFiles(outDir, summary, predictorsCsv(summary), html, t0);
}

/**
 * Writes a report's three files atomically (summary.json first, report.html
 * last, so a page never points to a missing summary); `t0` is when the
 * render started (for `seconds`).
 */
export async function writeReportFiles(
  outDir: string,
  summary: unknown,
  csv: string,
  html: string,
  t0: number,
): Promise<RenderedReport> {
  const paths = {
    html: join(outDir, "report.html"),
    summary: join(outDir, "summary.json"),
    csv: join(outDir, "predictors.csv"),
  };
  await writeAtomic(paths.summary, JSON.stringify(summary, null, 2) + "\n");
  await writeAtomic(paths.csv, csv);
  await writeAtomic(paths.html, html);
  return { ...paths, seconds: (performance.now() - t0) / 1000 };
}

const CSV_COLUMNS = [
  "model",
  "step",
  "final",
  "parameters",
  "rows_compared",
  "coverage",
  "tp",
  "fp",
  "fn",
  "tn",
  "precision",
  "precision_lo",
  "precision_hi",
  "recall",
  "recall_lo",
  "recall_hi",
  "f1",
  "predictor_rate",
  "target_rate",
  "compute",
  "compute_fraction",
  "memorized_coverage",
  "recall_all",
  "recall_all_lo",
  "recall_all_hi",
];

/** The predictor table as CSV (RFC 4180; empty cell = undefined). */
export function predictorsCsv(summary: Summary): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const p of summary.predictors) {
    lines.push(
      [
        csvText(p.model),
        p.step,
        p.final,
        p.parameters,
        p.rowsCompared,
        p.coverage,
        p.tp,
        p.fp,
        p.fn,
        p.tn,
        p.precision,
        p.precisionCI?.lo,
        p.precisionCI?.hi,
        p.recall,
        p.recallCI?.lo,
        p.recallCI?.hi,
        p.f1,
        p.predictorRate,
        p.targetRate,
        p.compute,
        p.computeFraction,
        p.memorizedCoverage,
        p.recallAll,
        p.recallAllCI?.lo,
        p.recallAllCI?.hi,
      ].map((v) => (v === null || v === undefined ? "" : String(v))).join(","),
    );
  }
  return lines.join("\r\n") + "\r\n";
}

/** Quotes a CSV text cell; defuses leading formula characters for spreadsheets. */
function csvText(text: string): string {
  const safe = /^[=+@\t\r-]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
