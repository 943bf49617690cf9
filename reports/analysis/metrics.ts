/**
 * Predictor metrics over row sets (scored rows as ranges, memorized rows as
 * sorted lists: engine/rowset.ts): confusion counts of a predictor
 * against the target on the rows both scored, precision/recall/F1 with Wilson
 * intervals, and precision–recall curves of thresholded signals from
 * histograms. Cost and memory follow the memorized rows, not the data size.
 *
 * @module
 */
import type { CurvePoint, Interval } from "./summary.ts";
import { wilson } from "./stats.ts";
import {
  intersectCount,
  intersectRanges,
  RangesCursor,
  restrictList,
  type RowList,
  type RowRanges,
} from "../../engine/rowset.ts";

/** Confusion counts of a predictor against the target on the rows both scored. */
export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  /** Rows compared (scored by both). */
  n: number;
}

/**
 * Confusion counts of predictor (scored `pSeen`, memorized `pMem`) against the
 * target (`tSeen`, `tMem`), restricted to rows both have scored.
 */
export function confusion(
  pSeen: RowRanges,
  pMem: RowList,
  tSeen: RowRanges,
  tMem: RowList,
): Confusion {
  const both = intersectRanges(pSeen, tSeen);
  const pm = restrictList(pMem, both);
  const tm = restrictList(tMem, both);
  const tp = intersectCount(pm, tm);
  const fp = pm.length - tp, fn = tm.length - tp;
  return { tp, fp, fn, tn: both.size - tp - fp - fn, n: both.size };
}

/** Precision, recall and F1 (null when undefined) with 95% Wilson intervals. */
export interface Rates {
  precision: number | null;
  precisionCI: Interval | null;
  recall: number | null;
  recallCI: Interval | null;
  f1: number | null;
}

/** Precision = TP/(TP+FP), recall = TP/(TP+FN), F1, each with a Wilson score interval. */
export function rates(tp: number, fp: number, fn: number): Rates {
  const precision = tp + fp > 0 ? tp / (tp + fp) : null;
  const recall = tp + fn > 0 ? tp / (tp + fn) : null;
  const f1 = 2 * tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : null;
  return {
    precision,
    precisionCI: wilson(tp, tp + fp),
    recall,
    recallCI: wilson(tp, tp + fn),
    f1,
  };
}

/**
 * Counts of a binned signal split by the target's truth: `pos[b]` rows in
 * bin b the target memorized, `neg[b]` the others. Bins are ordered from the
 * strongest evidence of memorization (bin 0) to the weakest.
 */
export interface SignalHistogram {
  pos: Float64Array;
  neg: Float64Array;
  /** Threshold value of each bin (predict "memorized" for bins 0..b). */
  thresholds: number[];
}

/**
 * The precision–recall curve of a thresholded signal: one point per
 * non-empty bin, predicting "memorized" for every bin up to and including
 * it; `bins[i]` is the bin of `points[i]`.
 */
export function prCurve(hist: SignalHistogram): { points: CurvePoint[]; bins: number[] } {
  let totalPos = 0;
  for (const v of hist.pos) totalPos += v;
  const points: CurvePoint[] = [];
  const bins: number[] = [];
  let tp = 0, fp = 0;
  for (let b = 0; b < hist.pos.length; b++) {
    if (hist.pos[b] === 0 && hist.neg[b] === 0 && b !== hist.pos.length - 1) continue;
    tp += hist.pos[b];
    fp += hist.neg[b];
    points.push({
      threshold: hist.thresholds[b],
      precision: tp + fp > 0 ? tp / (tp + fp) : null,
      recall: totalPos > 0 ? tp / totalPos : 0,
    });
    bins.push(b);
  }
  return { points, bins };
}

/** Average precision: Σ (R_i − R_{i−1}) · P_i over the curve's points (null without positives). */
export function averagePrecision(points: CurvePoint[]): number | null {
  let ap = 0, prev = 0, any = false;
  for (const p of points) {
    if (p.precision !== null) {
      ap += (p.recall - prev) * p.precision;
      prev = p.recall;
      any = true;
    }
  }
  return any && prev > 0 ? ap : null;
}

/** The point with the highest recall among those with precision ≥ `minPrecision` (null when none). */
export function bestAtPrecision(points: CurvePoint[], minPrecision: number): CurvePoint | null {
  let best: CurvePoint | null = null;
  for (const p of points) {
    if (p.precision === null || p.precision < minPrecision - 1e-12 || p.recall <= 0) continue;
    if (best === null || p.recall > best.recall) best = p;
  }
  return best;
}

/** Thins a curve to at most `max` points (keeping the ends), for the summary. */
export function thinCurve(points: CurvePoint[], max: number): CurvePoint[] {
  if (points.length <= max) return points;
  const out: CurvePoint[] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]);
  return out;
}

/** A binary classifier over rows: the rows it scored and those it calls memorized. */
export interface Classifier {
  scored: RowRanges;
  memorized: RowList;
}

/**
 * Poisson-bootstrap confusion counts: for each of `resamples` resamples,
 * weighted (TP, FP, FN) of every classifier against the target, as a
 * Float64Array laid out [resample][classifier][tp, fp, fn].
 *
 * Every row gets an independent Poisson(1) weight per resample. Precision and
 * recall depend only on TP, FP and FN, and a row that no classifier and not
 * the target calls memorized adds to none of them, so only rows in the union
 * of positives need weights: drawing none for the others changes no
 * precision or recall (exact, not an approximation). Rows with the same
 * pattern (each classifier's TP/FP/FN/none code) are pooled: the sum of n
 * independent Poisson(1) weights is Poisson(n), so one draw per pattern is
 * exact too. Patterns are numbered in ascending row order of their first
 * row, and drawn in that order. Cost: one merge over the positive rows
 * (memory: the row lists only), then resamples × patterns × classifiers.
 */
export function bootstrapConfusions(
  classifiers: readonly Classifier[],
  tSeen: RowRanges,
  tMem: RowList,
  resamples: number,
  poissonDraw: (mean: number) => number,
): { counts: Float64Array; patterns: number } {
  const k = classifiers.length;
  // Positive rows of each classifier and of the target, within the target's scored rows.
  const heads = classifiers.map((c) => restrictList(restrictList(c.memorized, c.scored), tSeen));
  heads.push(restrictList(tMem, tSeen));
  const at = new Int32Array(heads.length);
  const seen = classifiers.map((c) => new RangesCursor(c.scored));
  const codes = new Uint8Array(k);
  const byHash = new Map<number, number>();
  const byString = new Map<string, number>();
  const patternCodes: Uint8Array[] = [];
  const patternRows: number[] = [];
  const positive = new Uint8Array(heads.length);
  for (;;) {
    // The next row of the union: the smallest head; mark who holds it.
    let row = Infinity;
    for (let h = 0; h < heads.length; h++) {
      if (at[h] < heads[h].length && heads[h][at[h]] < row) row = heads[h][at[h]];
    }
    if (row === Infinity) break;
    for (let h = 0; h < heads.length; h++) {
      positive[h] = at[h] < heads[h].length && heads[h][at[h]] === row ? 1 : 0;
      if (positive[h]) at[h]++;
    }
    const t = positive[k] === 1;
    let h1 = 0x811c9dc5, h2 = 0x01000193;
    for (let i = 0; i < k; i++) {
      let code = 0;
      if (seen[i].has(row)) code = positive[i] ? (t ? 1 : 2) : (t ? 3 : 0);
      codes[i] = code;
      h1 = Math.imul(h1 ^ code, 0x01000193);
      h2 = Math.imul(h2 ^ (code + i), 0x5bd1e995) ^ (h2 >>> 15);
    }
    const key = (h1 >>> 0) * 2097152 + ((h2 >>> 0) & 0x1fffff);
    let id = byHash.get(key);
    if (id !== undefined && !sameCodes(patternCodes[id], codes)) {
      const s = String.fromCharCode(...codes);
      id = byString.get(s);
      if (id === undefined) {
        id = patternCodes.length;
        byString.set(s, id);
        patternCodes.push(codes.slice());
        patternRows.push(0);
      }
    } else if (id === undefined) {
      id = patternCodes.length;
      byHash.set(key, id);
      patternCodes.push(codes.slice());
      patternRows.push(0);
    }
    patternRows[id]++;
  }
  const counts = new Float64Array(resamples * k * 3);
  for (let b = 0; b < resamples; b++) {
    const base = b * k * 3;
    for (let p = 0; p < patternCodes.length; p++) {
      const weight = poissonDraw(patternRows[p]);
      if (weight === 0) continue;
      const pc = patternCodes[p];
      for (let i = 0; i < k; i++) if (pc[i] !== 0) counts[base + i * 3 + pc[i] - 1] += weight;
    }
  }
  return { counts, patterns: patternCodes.length };
}

function sameCodes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
