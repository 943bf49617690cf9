/**
 * Runs of the suite for the analysis: every (model, step)'s {@link ScoredCheckpoint}
 * (scored rows as ranges, memorized rows as a sorted list, per-row scores as a
 * re-readable source) with its parameters and compute, and the bootstrap
 * resamples of confusion counts shared by the scaling bands and the
 * recommendations.
 *
 * @module
 */
import type { Experiment, ModelSpec } from "../../engine/types.ts";
import type { PredictorId } from "./summary.ts";
import { UserError } from "../../engine/errors.ts";
import type { ScoredCheckpoint } from "../../engine/store/scored_checkpoint.ts";
import { rangesEnd } from "../../engine/rowset.ts";

/** One (model, step) run of the suite with what the analysis derives from its id. */
export interface AnalysedCheckpoint extends ScoredCheckpoint {
  id: PredictorId;
  parameters: number;
  compute: number;
  final: boolean;
}

/** The parameter count entering C = 6·N·D (non-embedding falls back to total when unknown). */
export function parametersOf(spec: ModelSpec, exp: Experiment): number {
  return exp.analysis.parameterCount === "non-embedding"
    ? spec.nonEmbeddingParameters ?? spec.parameters
    : spec.parameters;
}

/** C = 6 · N · D, D = step · sequencesPerStep · tokensPerSequence. */
export function computeOf(parameters: number, step: number, exp: Experiment): number {
  return 6 * parameters * step * exp.suite.sequencesPerStep * exp.suite.tokensPerSequence;
}

/** The model spec of a run (throws naming the known models when absent). */
export function specOf(exp: Experiment, model: string): ModelSpec {
  const spec = exp.suite.models.find((m) => m.name === model);
  if (!spec) {
    throw new UserError(
      `scores name model "${model}", which the experiment ${exp.file} does not list ` +
        `(suite.models: ${exp.suite.models.map((m) => m.name).join(", ")}); add it to the suite`,
    );
  }
  return spec;
}

/** A run from its data (the store reader's, an import's, or built directly by a benchmark). */
export function analysedFrom(data: ScoredCheckpoint, exp: Experiment): AnalysedCheckpoint {
  const spec = specOf(exp, data.model);
  const parameters = parametersOf(spec, exp);
  const last = spec.checkpoints.length > 0
    ? Math.max(...spec.checkpoints.map((c) => c.step))
    : data.step;
  return {
    ...data,
    id: { model: data.model, step: data.step },
    parameters,
    compute: computeOf(parameters, data.step, exp),
    final: data.step >= last,
  };
}

/** Number of rows addressed by the runs: 1 + the largest row scored. */
export function rowSpace(runs: readonly ScoredCheckpoint[]): number {
  let max = 0;
  for (const r of runs) max = Math.max(max, rangesEnd(r.scored));
  return max;
}

/** Bootstrap resamples of (TP, FP, FN) per classifier: see metrics.bootstrapConfusions. */
export interface Resamples {
  /** Layout [resample][classifier][tp, fp, fn]. */
  counts: Float64Array;
  classifiers: number;
  resamples: number;
}

/** Recall of classifier i in resample b (NaN when undefined). */
export function bootRecall(r: Resamples, b: number, i: number): number {
  const o = (b * r.classifiers + i) * 3;
  const d = r.counts[o] + r.counts[o + 2];
  return d > 0 ? r.counts[o] / d : NaN;
}

/** Precision of classifier i in resample b (NaN when undefined). */
export function bootPrecision(r: Resamples, b: number, i: number): number {
  const o = (b * r.classifiers + i) * 3;
  const d = r.counts[o] + r.counts[o + 1];
  return d > 0 ? r.counts[o] / d : NaN;
}
