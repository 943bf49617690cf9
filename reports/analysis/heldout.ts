/**
 * The analysis's held-out layer: per-fold counts of every candidate predictor
 * (binary memorization, and each continuous signal's histogram per fold),
 * their cross-fits, the thresholded points the laws of that kind are fitted
 * to, and the compute needed to reach each recall. Rows fall into folds by
 * `foldOf(row, analysis.seed, analysis.folds)` (histograms.ts); recall's
 * denominator is the target's memorized rows of each fold (`recall_over:
 * all`, rows a predictor never scored count as missed) or only those the
 * predictor scored (`covered`).
 *
 * @module
 */
import {
  type ComputeForRecall,
  isFeatureSignal,
  type PredictorId,
  type RecallOver,
  type Recommendation,
  type ThresholdCurve,
} from "./summary.ts";
import type { AnalysedCheckpoint, Resamples } from "./checkpoints.ts";
import { ListCursor, RangesCursor } from "../../engine/rowset.ts";
import { foldOf, type LabelHistogram } from "./histograms.ts";
import { type Counts, type crossFit, type FoldedSignal, selectHeldOut } from "./crossfit.ts";
import { type Candidate, measuredOf } from "./recommend.ts";
import { rates } from "./metrics.ts";
import type { FittedLaw } from "./families.ts";
import { computeForRecall, measuredComputeForRecall } from "./compute_for_recall.ts";
import type { Random } from "../../engine/random.ts";
import { poisson } from "./stats.ts";
import { checkpointKey } from "../../engine/types.ts";

/** How rows are folded and recall is counted. */
export interface FoldSettings {
  folds: number;
  seed: number;
  recallOver: RecallOver;
}

/** The target's memorized rows per fold (recall's denominator under `recall_over: all`). */
export function foldPositives(target: AnalysedCheckpoint, s: FoldSettings): number[] {
  const out = new Array<number>(s.folds).fill(0);
  for (const r of target.memorized) out[s.folds > 1 ? foldOf(r, s.seed, s.folds) : 0]++;
  return out;
}

/**
 * A run's binary memorization as a two-bin folded signal (bin 0: memorized
 * by the run, bin 1: scored and not memorized; rows the target did not
 * memorize in bin 1 are not counted, precision and recall do not need them).
 */
export function binaryFolded(
  run: AnalysedCheckpoint,
  target: AnalysedCheckpoint,
  s: FoldSettings,
  positives: readonly number[],
): FoldedSignal {
  const k = s.folds;
  const pos = Array.from({ length: k }, () => new Float64Array(2));
  const neg = Array.from({ length: k }, () => new Float64Array(2));
  const fold = (r: number) => (k > 1 ? foldOf(r, s.seed, k) : 0);
  const tScored = new RangesCursor(target.scored);
  const tMem = new ListCursor(target.memorized);
  for (const r of run.memorized) {
    if (!tScored.has(r)) continue;
    (tMem.has(r) ? pos : neg)[fold(r)][0]++;
  }
  const pScored = new RangesCursor(run.scored);
  const pMem = new ListCursor(run.memorized);
  for (const r of target.memorized) {
    if (pScored.has(r) && !pMem.has(r)) pos[fold(r)][1]++;
  }
  return {
    pos,
    neg,
    positives: s.recallOver === "all" ? [...positives] : pos.map((p) => p[0] + p[1]),
    thresholds: [1, 0],
    fixed: true,
  };
}

/** A signal's label histogram (per fold) as a folded signal. */
export function signalFolded(
  h: LabelHistogram,
  s: FoldSettings,
  positives: readonly number[],
): FoldedSignal {
  const pos = Array.from(
    { length: h.folds },
    (_, f) => h.foldPos.slice(f * h.bins, (f + 1) * h.bins),
  );
  const neg = Array.from(
    { length: h.folds },
    (_, f) => h.foldNeg.slice(f * h.bins, (f + 1) * h.bins),
  );
  return {
    pos,
    neg,
    positives: s.recallOver === "all"
      ? [...positives]
      : pos.map((p) => p.reduce((a, v) => a + v, 0)),
    thresholds: h.thresholds,
    fixed: false,
  };
}

/** The held-out numbers of a cross-fit, for the summary's curves. */
export function heldOutOf(
  fit: ReturnType<typeof crossFit>,
  thresholds: readonly number[],
): NonNullable<ThresholdCurve["heldOut"]> {
  const h = rates(fit.heldOut.tp, fit.heldOut.fp, fit.heldOut.fn);
  const i = rates(fit.inSample.counts.tp, fit.inSample.counts.fp, fit.inSample.counts.fn);
  const thr = (b: number | null) => (b === null ? null : thresholds[b]);
  return {
    threshold: thr(fit.inSample.bin),
    foldThresholds: fit.folds.map((f) => thr(f.bin)),
    precision: h.precision,
    precisionCI: h.precisionCI,
    recall: h.recall,
    recallCI: h.recallCI,
    inSample: { precision: fit.inSample.bin === null ? null : i.precision, recall: i.recall },
  };
}

/** A run's best held-out thresholded signal: the point a thresholded law is fitted to. */
export interface ThresholdedPoint {
  id: PredictorId;
  compute: number;
  counts: Counts;
}

/**
 * Per run with thresholded candidates, the cross-fitted choice among its own
 * signals (and thresholds): its held-out counts. Runs where no signal reaches
 * the floor on all rows are left out.
 */
export function thresholdedPoints(
  candidates: readonly Candidate[],
  floor: number,
  positives: readonly number[],
): ThresholdedPoint[] {
  const byRun = new Map<string, Candidate[]>();
  for (const c of candidates) {
    if (c.signal === "binary" || isFeatureSignal(c.signal)) continue;
    const key = checkpointKey(c.id.model, c.id.step);
    byRun.set(key, [...(byRun.get(key) ?? []), c]);
  }
  const out: ThresholdedPoint[] = [];
  for (const cs of byRun.values()) {
    const sel = selectHeldOut(
      cs.map((c) => ({ compute: c.compute, fit: c.fit })),
      Infinity,
      floor,
      positives,
    );
    if (sel.pick === null) continue;
    out.push({ id: cs[0].id, compute: cs[0].compute, counts: sel.heldOut });
  }
  return out;
}

/**
 * Poisson-bootstrap resamples of the thresholded points' held-out counts:
 * each count gets a Poisson(count) draw per resample (the sum of Poisson(1)
 * row weights; exact per point for fixed fold thresholds, independent
 * between points).
 */
export function pointResamples(
  points: readonly ThresholdedPoint[],
  resamples: number,
  random: Random,
): Resamples {
  const k = points.length;
  const counts = new Float64Array(resamples * k * 3);
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < k; i++) {
      const o = (b * k + i) * 3, c = points[i].counts;
      counts[o] = poisson(c.tp, random);
      counts[o + 1] = poisson(c.fp, random);
      counts[o + 2] = poisson(c.fn, random);
    }
  }
  return { counts, classifiers: k, resamples };
}

/**
 * The measured frontier, held out: the cross-fitted recommendation at every
 * distinct candidate compute (ascending), i.e. the recall reached at the
 * floor with that much compute.
 */
export function heldOutFrontier(
  candidates: readonly Candidate[],
  floor: number,
  positives: readonly number[],
): { budget: number; measured: Recommendation["measured"] }[] {
  const selectable = candidates.map((c) => ({ compute: c.compute, fit: c.fit }));
  const budgets = [...new Set(candidates.map((c) => c.compute))].sort((a, b) => a - b);
  return budgets.map((budget) => ({
    budget,
    measured: measuredOf(candidates, selectHeldOut(selectable, budget, floor, positives)),
  }));
}

/** What {@link computeForRecalls} needs. */
export interface ComputeForRecallInput {
  recalls: readonly number[];
  candidates: readonly Candidate[];
  laws: readonly FittedLaw[];
  minPrecision: number;
  targetCompute: number;
  positives: readonly number[];
}

/**
 * The compute needed for each recall: from the measured frontier (the
 * held-out recommendation at every distinct candidate compute) and from each
 * recommendable family's recall law of each kind (inverted with its
 * precision law, bootstrap interval from the refits).
 */
export function computeForRecalls(input: ComputeForRecallInput): ComputeForRecall[] {
  const { candidates, minPrecision: floor, targetCompute: c0 } = input;
  const frontier = heldOutFrontier(candidates, floor, input.positives);
  const steps = frontier.map((f) => ({
    budget: f.budget,
    recall: f.measured?.recall ?? 0,
    recallLo: f.measured?.recallCI?.lo ?? 0,
    recallHi: f.measured?.recallCI?.hi ?? 0,
  }));
  const frac = (c: number | null) => (c === null ? null : c / c0);
  return input.recalls.map((recall) => {
    const m = measuredComputeForRecall(steps, recall);
    const at = frontier.find((f) => f.budget === m.compute)?.measured ?? null;
    const laws: ComputeForRecall["laws"] = [];
    for (const law of input.laws) {
      if (law.metric !== "recall") continue;
      const kind = law.kind ?? "binary";
      const prec = input.laws.find((l) =>
        l.metric === "precision" && l.family === law.family && (l.kind ?? "binary") === kind
      ) ?? null;
      const need = computeForRecall(law, prec, recall, floor, c0);
      laws.push({
        family: law.family,
        kind,
        form: law.form.name,
        fraction: frac(need.compute),
        lo: frac(need.lo),
        hi: frac(need.hi),
        reached: need.reached,
      });
    }
    return {
      recall,
      measured: {
        fraction: frac(m.compute),
        lo: frac(m.lo),
        hi: frac(m.hi),
        precision: at?.precision ?? null,
        pick: at
          ? {
            model: at.model,
            step: at.step,
            signal: at.signal,
            threshold: at.threshold,
            ...(at.runs ? { runs: at.runs } : {}),
          }
          : null,
      },
      laws,
    };
  });
}
