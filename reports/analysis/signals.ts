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
  hasBit,
  makeBits,
  popcount,
  prCurve,
  rates,
  setBit,
  type SignalHistogram,
  thinCurve,
} from "./metrics.ts";
import type { Run } from "./runs.ts";
import type { Candidate } from "./recommend.ts";

/** NLL bin width (nats/token) and bin count; the last bin holds everything above. */
export const NLL_BIN = 0.01;
const NLL_BINS = 1000;
/** Curve points kept per signal in the summary (the optimum is found at full resolution). */
const MAX_POINTS = 120;

type Signal = "score" | "prefix" | "nll";

/** Bin of a row's signal value, strongest evidence first (bin 0). */
function binOf(signal: Signal, run: Run, i: number, l: number): number {
  const s = run.scores!;
  if (signal === "score") return l - Math.min(l, s.matches[i]);
  if (signal === "prefix") return l - Math.min(l, s.prefix![i]);
  const v = s.nll![i];
  return Number.isFinite(v)
    ? Math.min(NLL_BINS - 1, Math.max(0, Math.floor(v / NLL_BIN)))
    : NLL_BINS - 1;
}

function histogram(signal: Signal, run: Run, target: Run): SignalHistogram {
  const s = run.scores!;
  const l = s.continuation;
  const bins = signal === "nll" ? NLL_BINS : l + 1;
  const pos = new Float64Array(bins);
  const neg = new Float64Array(bins);
  let maxNll = 0;
  for (let i = 0; i < s.rows.length; i++) {
    const r = s.rows[i];
    if (!hasBit(target.seen, r)) continue;
    const b = binOf(signal, run, i, l);
    if (hasBit(target.mem, r)) pos[b]++;
    else neg[b]++;
    if (signal === "nll" && Number.isFinite(s.nll![i])) maxNll = Math.max(maxNll, s.nll![i]);
  }
  const thresholds = Array.from({ length: bins }, (_, b) => {
    if (signal === "score") return (l - b) / l;
    if (signal === "prefix") return l - b;
    return b === NLL_BINS - 1
      ? Math.max(maxNll, NLL_BIN * NLL_BINS)
      : Number(((b + 1) * NLL_BIN).toFixed(2));
  });
  return { pos, neg, thresholds };
}

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
  const s = run.scores;
  if (!s) return { curves: [], candidates: [] };
  const signals: Signal[] = ["score"];
  if (s.prefix) signals.push("prefix");
  if (s.nll) signals.push("nll");
  const curves: ThresholdCurve[] = [];
  const candidates: { candidate: Omit<Candidate, "index">; classifier: Classifier }[] = [];
  for (const signal of signals) {
    const hist = histogram(signal, run, target);
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
    const mem = makeBits(run.mem.length * 32);
    for (let i = 0; i < s.rows.length; i++) {
      if (binOf(signal, run, i, s.continuation) <= bestBin) setBit(mem, s.rows[i]);
    }
    const cls: Classifier = { seen: run.seen, mem };
    let tp = 0, fp = 0, fn = 0;
    for (let w = 0; w < mem.length; w++) {
      const both = run.seen[w] & target.seen[w];
      const p = mem[w] & both, t = target.mem[w] & both;
      tp += popcount(p & t);
      fp += popcount(p & ~t);
      fn += popcount(t & ~p);
    }
    const r = rates(tp, fp, fn);
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
