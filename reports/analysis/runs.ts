/**
 * Runs as compact bit sets: every (model, step)'s scored and memorized rows,
 * its compute, and the bootstrap resamples of confusion counts shared by the
 * scaling bands and the recommendations.
 *
 * @module
 */
import type { CheckpointScores, Experiment, ModelSpec } from "../../engine/types.ts";
import type { PredictorId } from "./summary.ts";
import { UserError } from "../../engine/errors.ts";
import { type Bits, makeBits, setBit } from "./metrics.ts";

/** One (model, step) run of the suite, as bit sets over dataset rows. */
export interface Run {
  id: PredictorId;
  /** Its scores (absent when the run was built from bit sets directly). */
  scores?: CheckpointScores;
  seen: Bits;
  mem: Bits;
  parameters: number;
  compute: number;
  final: boolean;
}

/** Whether row i of a run is memorized: the matched prefix (or, without one, the matches) reaches l. */
export function isMemorized(s: CheckpointScores, i: number): boolean {
  return (s.prefix ? s.prefix[i] : s.matches[i]) >= s.continuation;
}

/** `model/step` label of a run. */
export function label(id: PredictorId): string {
  return `${id.model}@${id.step}`;
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

/** Builds one run's bit sets from its scores (rows must be ascending). */
export function runFromScores(s: CheckpointScores, size: number, exp: Experiment): Run {
  const seen = makeBits(size);
  const mem = makeBits(size);
  for (let i = 0; i < s.rows.length; i++) {
    setBit(seen, s.rows[i]);
    if (isMemorized(s, i)) setBit(mem, s.rows[i]);
  }
  return runFromBits({ model: s.model, step: s.step }, seen, mem, exp, s);
}

/** A run from bit sets built elsewhere (benchmarks, imports of memorized-row lists). */
export function runFromBits(
  id: PredictorId,
  seen: Bits,
  mem: Bits,
  exp: Experiment,
  scores?: CheckpointScores,
): Run {
  const spec = specOf(exp, id.model);
  const parameters = parametersOf(spec, exp);
  const last = spec.checkpoints.length > 0
    ? Math.max(...spec.checkpoints.map((c) => c.step))
    : id.step;
  return {
    id,
    scores,
    seen,
    mem,
    parameters,
    compute: computeOf(parameters, id.step, exp),
    final: id.step >= last,
  };
}

/** Number of rows addressed by the bit sets: 1 + the largest row scored. */
export function rowSpace(scores: readonly CheckpointScores[]): number {
  let max = -1;
  for (const s of scores) if (s.rows.length > 0) max = Math.max(max, s.rows[s.rows.length - 1]);
  return max + 1;
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
