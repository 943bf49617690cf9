/**
 * A cheap run's continuous signals as thresholded predictors of the
 * target's memorization: its score (matches / l), its matched prefix and its
 * continuation NLL. Each gives a precision–recall curve over thresholds, the
 * recall it reaches at the binary predictor's precision, and the threshold
 * maximizing recall at the minimum precision, chosen on all rows and, for
 * honest numbers, cross-fitted over folds of rows (crossfit.ts).
 *
 * @module
 */
import type { ThresholdCurve } from "./summary.ts";
import {
  averagePrecision,
  bestAtPrecision,
  type Classifier,
  prCurve,
  rates,
  thinCurve,
} from "./metrics.ts";
import { crossFit } from "./crossfit.ts";
import { type FoldSettings, heldOutOf, signalFolded } from "./heldout.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import type { Candidate } from "./recommend.ts";
import {
  type CountedHistograms,
  type Signal,
  signalHistograms,
  signalRowsMany,
} from "./histograms.ts";

/** Curve points kept per signal in the summary (the optimum is found at full resolution). */
const MAX_POINTS = 120;

/**
 * Threshold curves of a run's signals and, per signal, its threshold chosen
 * on all rows as a candidate predictor, with the choice cross-fitted over
 * folds of rows (`heldOut`, and the candidate's `fit`).
 */
export function signalCurves(
  run: AnalysedCheckpoint,
  target: AnalysedCheckpoint,
  binaryPrecision: number | null,
  minPrecision: number,
  folds: FoldSettings,
  positives: readonly number[],
  counted?: CountedHistograms,
): {
  curves: ThresholdCurve[];
  candidates: { candidate: Omit<Candidate, "index">; classifier: Classifier }[];
} {
  const s = run.source;
  if (!s) return { curves: [], candidates: [] };
  const l = run.continuation;
  const curves: ThresholdCurve[] = [];
  const candidates: { candidate: Omit<Candidate, "index">; classifier: Classifier }[] = [];
  const ahead = counted && counted.folds === folds.folds && counted.seed === folds.seed &&
      counted.target.model === target.id.model && counted.target.step === target.id.step
    ? counted.bySource.get(s)
    : undefined;
  const hists = ahead ?? signalHistograms(s, l, target, { folds: folds.folds, seed: folds.seed });
  const pending: { signal: Signal; maxBin: number; cls: Classifier }[] = [];
  for (const hist of hists) {
    const signal = hist.signal;
    const { points } = prCurve(hist);
    const atBinary = binaryPrecision === null ? null : bestAtPrecision(points, binaryPrecision);
    const best = bestAtPrecision(points, minPrecision);
    const fit = crossFit(signalFolded(hist, folds, positives), minPrecision);
    const anyPositive = positives.some((p) => p > 0);
    curves.push({
      ...run.id,
      signal,
      points: thinCurve(points, MAX_POINTS),
      averagePrecision: averagePrecision(points),
      recallAtBinaryPrecision: atBinary ? atBinary.recall : null,
      best,
      heldOut: anyPositive ? heldOutOf(fit, hist.thresholds) : null,
    });
    const bestBin = fit.inSample.bin;
    if (bestBin === null) continue;
    // Score or prefix = l is the binary predictor itself: not a new candidate.
    if (signal !== "nll" && bestBin === 0) continue;
    // Its rows are selected below, for every signal in one pass over the source.
    const cls: Classifier = {
      scored: folds.recallOver === "all" ? target.scored : run.scored,
      memorized: new Uint32Array(0),
    };
    pending.push({ signal, maxBin: bestBin, cls });
    const r = rates(fit.inSample.counts.tp, fit.inSample.counts.fp, fit.inSample.counts.fn);
    candidates.push({
      candidate: {
        id: run.id,
        signal,
        threshold: hist.thresholds[bestBin],
        precision: r.precision ?? 0,
        precisionCI: r.precisionCI,
        recall: r.recall ?? 0,
        recallCI: r.recallCI,
        compute: run.compute,
        fit,
      },
      classifier: cls,
    });
  }
  signalRowsMany(s, l, pending).forEach((rows, i) => (pending[i].cls.memorized = rows));
  return { curves, candidates };
}
