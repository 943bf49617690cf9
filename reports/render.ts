/**
 * Renders a run folder's report (report.html, summary.json, predictors.csv)
 * from the stored scores, without scoring. (Placeholder signature; the report
 * issue fills it in.)
 *
 * @module
 */

/** Where the rendered files are. */
export interface RenderedReport {
  html: string;
  summary: string;
  csv: string;
}

/** Reads the run folder's store, analyses it and writes the report files. */
export function renderReport(_runDir: string): Promise<RenderedReport> {
  return Promise.reject(new Error("renderReport: not implemented yet"));
}
