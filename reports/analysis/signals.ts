/**
 * A cheap run's continuous signals as thresholded predictors of the
 * target's memorization: its score (matches / l), its matched prefix and its
 * continuation NLL. Each gives a precision–recall curve over thresholds, the
 * recall it reaches at the binary predictor's precision, and the threshold
 * maximizing recall at the minimum precision.
 *
 * @module
 */
import type { ThresholdCurve } from "./summary.ts";
import {
  averagePrecision,
  bestAtPrecision,
  type Classifier,
  confusion,
  prCurve,
  rates,
  thinCurve,
} from "./metrics.ts";
import type { Run } from "./runs.ts";
import type { Candidate } from "./recommend.ts";
import { signalHistograms, signalRows } from "./histograms.ts";

/** Curve points kept per signal in the summary (the optimum is found at full resolution). */
const MAX_POINTS = 120;

/** Threshold curves of a run's signals and, per signal, its best threshold as a candidate predictor. */
export function signalCurves(
  run: Run,
  target: Run,
  binaryPrecision: number | null,
  minPrecision: number,
): {
  curves: ThresholdCurve[];
  candidates: { candidate: Omit<Candidate, "index">; classifier: Classifier }[];
} {
  const s = run.source;
  if (!s) return { curves: [], candidates: [] };
  const l = run.continuation;
  const curves: ThresholdCurve[] = [];
  const candidates: { candidate: Omit<Candidate, "index">; classifier: Classifier }[] = [];
  // Folds are not used here (one fold): the in-sample curve of every row.
  for (const hist of signalHistograms(s, l, target, { folds: 1, seed: 0 })) {
    const signal = hist.signal;
    const { points, bins } = prCurve(hist);
    const atBinary = binaryPrecision === null ? null : bestAtPrecision(points, binaryPrecision);
    const best = bestAtPrecision(points, minPrecision);
    curves.push({
      ...run.id,
      signal,
      points: thinCurve(points, MAX_POINTS),
      averagePrecision: averagePrecision(points),
      recallAtBinaryPrecision: atBinary ? atBinary.recall : null,
      best,
    });
    if (!best) continue;
    const bestBin = bins[points.indexOf(best)];
    // Score or prefix = l is the binary predictor itself: not a new candidate.
    if (signal !== "nll" && bestBin === 0) continue;
    const cls: Classifier = {
      scored: run.scored,
      memorized: signalRows(s, signal, l, (b) => b <= bestBin),
    };
    const c = confusion(cls.scored, cls.memorized, target.scored, target.memorized);
    const r = rates(c.tp, c.fp, c.fn);
    candidates.push({
      candidate: {
        id: run.id,
        signal,
        threshold: best.threshold,
        precision: r.precision ?? 0,
        precisionCI: r.precisionCI,
        recall: r.recall ?? 0,
        recallCI: r.recallCI,
        compute: run.compute,
      },
      classifier: cls,
    });
  }
  return { curves, candidates };
}
