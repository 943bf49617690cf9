/**
 * Predictor metrics over compact row bit sets: confusion counts of a predictor
 * against the target on the rows both scored, precision/recall/F1 with Wilson
 * intervals, and precision–recall curves of thresholded signals from
 * histograms. Everything streams over 32-bit words, so paper-size row counts
 * (146M rows → 18 MB per bit set) stay cheap.
 *
 * @module
 */
import type { CurvePoint, Interval } from "./summary.ts";
import { wilson } from "./stats.ts";

/** A bit set over dataset rows: bit r of word r >>> 5. */
export type Bits = Uint32Array;

/** An empty bit set able to hold rows [0, size). */
export function makeBits(size: number): Bits {
  return new Uint32Array(Math.ceil(size / 32));
}

/** Sets row `r`. */
export function setBit(bits: Bits, r: number): void {
  bits[r >>> 5] |= 1 << (r & 31);
}

/** Whether row `r` is set. */
export function hasBit(bits: Bits, r: number): boolean {
  return (bits[r >>> 5] & (1 << (r & 31))) !== 0;
}

/**
 * The same words as signed integers: V8 keeps int32 values unboxed, while
 * Uint32Array elements ≥ 2^31 are read as doubles (several times slower).
 */
function signed(bits: Bits): Uint32Array {
  return new Int32Array(bits.buffer, bits.byteOffset, bits.length) as unknown as Uint32Array;
}

/** Number of set bits of a 32-bit word. */
export function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Number of set bits of a bit set. */
export function countBits(bits: Bits): number {
  let n = 0;
  for (let w = 0; w < bits.length; w++) if (bits[w] !== 0) n += popcount(bits[w]);
  return n;
}

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
 * Confusion counts of predictor (seen `pSeen`, memorized `pMem`) against the
 * target (`tSeen`, `tMem`), restricted to rows both have seen.
 */
export function confusion(pSeen: Bits, pMem: Bits, tSeen: Bits, tMem: Bits): Confusion {
  let tp = 0, fp = 0, fn = 0, n = 0;
  [pSeen, pMem, tSeen, tMem] = [signed(pSeen), signed(pMem), signed(tSeen), signed(tMem)];
  const words = Math.min(pSeen.length, tSeen.length);
  for (let w = 0; w < words; w++) {
    const both = pSeen[w] & tSeen[w];
    if (both === 0) continue;
    const pm = pMem[w] & both;
    const tm = tMem[w] & both;
    n += popcount(both);
    if ((pm | tm) === 0) continue;
    tp += popcount(pm & tm);
    fp += popcount(pm & ~tm);
    fn += popcount(tm & ~pm);
  }
  return { tp, fp, fn, tn: n - tp - fp - fn, n };
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
  seen: Bits;
  mem: Bits;
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
 * exact too. Cost: one pass over the positive rows, then resamples ×
 * patterns × classifiers.
 */
export function bootstrapConfusions(
  classifiers: readonly Classifier[],
  tSeen: Bits,
  tMem: Bits,
  resamples: number,
  poissonDraw: (mean: number) => number,
): { counts: Float64Array; patterns: number } {
  const k = classifiers.length;
  classifiers = classifiers.map((c) => ({ seen: signed(c.seen), mem: signed(c.mem) }));
  tSeen = signed(tSeen);
  tMem = signed(tMem);
  const codes = new Uint8Array(k);
  const byHash = new Map<number, number>();
  const byString = new Map<string, number>();
  const patternCodes: Uint8Array[] = [];
  const patternRows: number[] = [];
  for (let w = 0; w < tSeen.length; w++) {
    const ts = tSeen[w];
    if (ts === 0) continue;
    let u = tMem[w] & ts;
    for (const c of classifiers) u |= c.mem[w] & c.seen[w] & ts;
    while (u !== 0) {
      const bit = u & -u;
      u ^= bit;
      const t = (tMem[w] & bit) !== 0;
      let h1 = 0x811c9dc5, h2 = 0x01000193;
      for (let i = 0; i < k; i++) {
        const c = classifiers[i];
        let code = 0;
        if ((c.seen[w] & bit) !== 0) {
          const p = (c.mem[w] & bit) !== 0;
          code = p ? (t ? 1 : 2) : (t ? 3 : 0);
        }
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
