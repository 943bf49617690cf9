/**
 * The analysis as a library: how well cheap runs (smaller models, earlier
 * checkpoints) predict the target's memorization, as the `summary.json`
 * of a report (every number the report shows). Pure: give it the
 * experiment and the per-row scores of each (model, step) run.
 *
 * @example Analyse four runs of a two-model suite
 * ```ts
 * import assert from "node:assert/strict";
 * import { analyze, type CheckpointScores, parseExperiment } from "./mod.ts";
 *
 * const experiment = parseExperiment(
 *   `suite:
 *   sequences_per_step: 4
 *   steps: [1, 2]
 *   models:
 *     - {name: small, parameters: 1000, path: "small/{step}.onnx"}
 *     - {name: big, parameters: 8000, path: "big/{step}.onnx"}
 * data: {format: raw, path: data.bin, row_length: 64}
 * analysis: {bootstrap: 10}
 * `,
 *   "/tmp/suite.yaml",
 * );
 * // matches[i] of row i: 32 = the whole continuation reproduced (memorized).
 * const run = (model: string, step: number, matches: number[]): CheckpointScores => ({
 *   model,
 *   step,
 *   continuation: 32,
 *   rows: Uint32Array.from(matches, (_, i) => i),
 *   matches: Uint8Array.from(matches),
 * });
 * const summary = analyze({
 *   experiment,
 *   scores: [
 *     run("small", 1, [32, 0, 0, 0]),
 *     run("small", 2, [32, 32, 0, 0, 0, 32, 0, 0]),
 *     run("big", 1, [32, 32, 0, 0]),
 *     run("big", 2, [32, 32, 32, 0, 0, 0, 0, 0]),
 *   ],
 * });
 * assert.deepEqual([summary.target.model, summary.target.step], ["big", 2]);
 * assert.equal(summary.target.memorized, 3);
 * const small = summary.predictors.find((p) => p.model === "small" && p.step === 2)!;
 * assert.equal(small.precision, 2 / 3);
 * assert.equal(small.recall, 2 / 3);
 * ```
 *
 * @module
 */
export { type AnalysisInput, analyze } from "./analysis.ts";
export { loadExperiment, parseExperiment } from "../../engine/config/config.ts";
export type { AnalysisSettings } from "../../engine/types.ts";
export type { Checkpoint } from "../../engine/types.ts";
export type { CheckpointScores } from "../../engine/types.ts";
export type { ComputeForRecall } from "./summary.ts";
export type { CurvePoint } from "./summary.ts";
export type { CountedHistograms, LabelHistogram, Signal } from "./histograms.ts";
export type { DataFormat } from "../../engine/types.ts";
export type { DataSpec } from "../../engine/types.ts";
export type { DeviceSlot } from "../../engine/types.ts";
export type { Experiment } from "../../engine/types.ts";
export type { LoadOptions } from "../../engine/config/config.ts";
export type {
  FeatureCost,
  FeaturePredictor,
  FeaturePredictors,
  FeatureSignal,
  FeatureSummary,
  PersonalKindRow,
  PredictorSignal,
  RunSignal,
} from "./summary.ts";
export type { FormFit } from "./summary.ts";
export type { HeldOut } from "./summary.ts";
export type { Interval } from "./summary.ts";
export type { Matrix } from "./summary.ts";
export type { MemorizationSettings } from "../../engine/types.ts";
export type { ModelSpec } from "../../engine/types.ts";
export type { PredictorId } from "./summary.ts";
export type { PredictorKind } from "./summary.ts";
export type { PredictorRow } from "./summary.ts";
export type { RecallOver } from "./summary.ts";
export type { Recommendation } from "./summary.ts";
export type {
  FeatureChunk,
  FeatureMeta,
  MaskedHit,
  PersonalIndex,
  RowFeatures,
} from "../../engine/data/features/row_features.ts";
export type { PersonalKind } from "../../engine/data/features/personal.ts";
export type { RowList } from "../../engine/rowset.ts";
export type { RowRanges } from "../../engine/rowset.ts";
export type { RowSelection } from "../../engine/types.ts";
export type { ScoredCheckpoint } from "../../engine/store/scored_checkpoint.ts";
export type { ScalingFit } from "./summary.ts";
export type { ScoreChunk } from "../../engine/store/scored_checkpoint.ts";
export type { ScoreSource } from "../../engine/store/scored_checkpoint.ts";
export type { Suite } from "../../engine/types.ts";
export type { Summary } from "./summary.ts";
export type { ThresholdCurve } from "./summary.ts";
export type { MeasuredPoint } from "./summary.ts";
export type { ProgressSink } from "../../engine/types.ts";
