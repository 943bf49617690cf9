/**
 * The report as a library: renders a run folder (scored by `deno task
 * experiment`, or made by an import) into a self-contained `report.html`
 * with `summary.json` and `predictors.csv`, from the stored scores alone.
 *
 * @example Import two runs' reference CSVs and render their report
 * ```ts
 * import assert from "node:assert/strict";
 * import { existsSync } from "node:fs";
 * import { mkdir, readFile, writeFile } from "node:fs/promises";
 * import { join } from "node:path";
 * import { importAndReport, parseExperiment } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const experiment = parseExperiment(
 *   `suite:
 *   sequences_per_step: 4
 *   steps: [2]
 *   models:
 *     - {name: small, parameters: 1000, path: "small/{step}.onnx"}
 *     - {name: big, parameters: 8000, path: "big/{step}.onnx"}
 * data: {format: raw, path: data.bin, row_length: 64}
 * analysis: {bootstrap: 10}
 * `,
 *   join(dir, "suite.yaml"),
 * );
 * const memorized: Record<string, number[]> = { small: [0, 5], big: [0, 1, 2] };
 * for (const model of ["small", "big"]) {
 *   const folder = join(dir, "evals", `memorization_${model}_2`);
 *   await mkdir(folder, { recursive: true });
 *   const lines = Array.from({ length: 8 }, (_, r) => `${r},${memorized[model].includes(r) ? 1 : 0}`);
 *   await writeFile(join(folder, "rank-0.csv"), `index,accuracy\n${lines.join("\n")}\n`);
 * }
 * const report = await importAndReport({
 *   inputs: [join(dir, "evals")],
 *   experiment,
 *   output: join(dir, "run"),
 *   command: "example",
 *   log: () => {},
 * });
 * assert.ok(existsSync(report.html));
 * const summary = JSON.parse(await readFile(report.summary, "utf8"));
 * assert.equal(summary.target.memorized, 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { importAndReport, type ImportRunOptions } from "./import.ts";
export { loadAnalysisInput, type RenderOptions, renderReport } from "./report.ts";
export { predictorsCsv, type RenderedReport, writeReport } from "../reports/page/report_files.ts";
export { loadExperiment, parseExperiment } from "../engine/config/config.ts";
export type { LoadOptions } from "../engine/config/config.ts";
export type { AnalysisInput } from "../reports/analysis/analysis.ts";
export type { Experiment } from "../engine/types.ts";
export type { OpenedRun, RunFolder } from "../engine/plan/run_folder.ts";
export type { Summary } from "../reports/analysis/summary.ts";
export type { AnalysisSettings } from "../engine/types.ts";
export type { CheckpointScores } from "../engine/types.ts";
export type { ComputeForRecall } from "../reports/analysis/summary.ts";
export type { DataSpec } from "../engine/types.ts";
export type { DeviceSlot } from "../engine/types.ts";
export type { Job } from "../engine/types.ts";
export type { Manifest } from "../engine/store/store.ts";
export type { Matrix } from "../reports/analysis/summary.ts";
export type { MemorizationSettings } from "../engine/types.ts";
export type { PlannedRun } from "../engine/plan/run_folder.ts";
export type { PredictorId } from "../reports/analysis/summary.ts";
export type { PredictorRow } from "../reports/analysis/summary.ts";
export type { RecallOver } from "../reports/analysis/summary.ts";
export type { Recommendation } from "../reports/analysis/summary.ts";
export type { RowSelection } from "../engine/types.ts";
export type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
export type { ScalingFit } from "../reports/analysis/summary.ts";
export type { Suite } from "../engine/types.ts";
export type { ThresholdCurve } from "../reports/analysis/summary.ts";
export type { CheckpointRecord } from "../engine/store/store.ts";
export type { CurvePoint } from "../reports/analysis/summary.ts";
export type { DataFormat } from "../engine/types.ts";
export type { FormFit } from "../reports/analysis/summary.ts";
export type { HeldOut } from "../reports/analysis/summary.ts";
export type { Interval } from "../reports/analysis/summary.ts";
export type { ModelSpec } from "../engine/types.ts";
export type { Plan } from "../engine/plan/plan.ts";
export type { PredictorKind } from "../reports/analysis/summary.ts";
export type { RowList } from "../engine/rowset.ts";
export type { RowRanges } from "../engine/rowset.ts";
export type { ScoreSource } from "../engine/store/scored_checkpoint.ts";
export type { Checkpoint } from "../engine/types.ts";
export type { CheckpointRows } from "../engine/plan/plan.ts";
export type { ScoreChunk } from "../engine/store/scored_checkpoint.ts";
export type { TrainingFlops } from "../engine/plan/plan.ts";
export type { MeasuredPoint } from "../reports/analysis/summary.ts";
export type { ProgressSink } from "../engine/types.ts";
export type { ProgressOptions, WorkOptions } from "../engine/run/progress.ts";
