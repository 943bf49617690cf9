/**
 * A run's continuous signals reduced to per-label histograms: for each signal
 * (score = matches / l, matched prefix, continuation NLL), the count of rows
 * per bin among rows the target memorized (`pos`) and the target scored but
 * did not memorize (`neg`), kept per fold of rows. Precision–recall curves,
 * thresholds and the bootstrap need nothing else, so no float per row per run
 * is held in memory: the histograms are built in one pass over the run's
 * {@link ScoreSource} (a store shard at a time).
 *
 * Bins run from the strongest evidence of memorization (bin 0) to the
 * weakest. Integer signals are exact (score and prefix: bin = l − value, l+1
 * bins); NLL uses bins of {@link NLL_BIN} nats/token (bin b holds
 * [b·0.01, (b+1)·0.01)), the last bin everything from 9.99 up, NaN included.
 *
 * Folds (for cross-fitting): row r belongs to fold {@link foldOf}(r, seed, K),
 * a seeded hash of the row index mod K ({@link FOLDS} = 5 by default), so
 * thresholds can be chosen on some folds and measured on the others;
 * {@link signalRows} then lists the rows a per-fold threshold selects.
 *
 * @module
 */
import { hash32 } from "../../engine/random.ts";
import type { ScoreChunk, ScoreSource } from "../../engine/store/scored_checkpoint.ts";
import {
  listBuilder,
  ListCursor,
  RangesCursor,
  type RowList,
  type RowRanges,
} from "../../engine/rowset.ts";

/** Default number of folds of rows. */
export const FOLDS = 5;
/** NLL bin width (nats/token). */
export const NLL_BIN = 0.01;
/** NLL bin count; the last bin holds everything above (NLL_BINS − 1) · NLL_BIN. */
export const NLL_BINS = 1000;

/** A thresholdable per-row signal. */
export type Signal = "score" | "prefix" | "nll";

/** The fold of a row: a seeded 32-bit hash (murmur3 finalizer) of its index, mod `folds`. */
export function foldOf(row: number, seed: number, folds: number = FOLDS): number {
  return hash32(row, seed) % folds;
}

/** Number of bins of a signal. */
export function binCount(signal: Signal, l: number): number {
  return signal === "nll" ? NLL_BINS : l + 1;
}

/** Bin of row i of a chunk (strongest evidence first). */
export function binOf(signal: Signal, c: ScoreChunk, i: number, l: number): number {
  if (signal === "score") return l - Math.min(l, c.matches[i]);
  if (signal === "prefix") return l - Math.min(l, c.prefix![i]);
  const v = c.nll![i];
  return Number.isFinite(v)
    ? Math.min(NLL_BINS - 1, Math.max(0, Math.floor(v / NLL_BIN)))
    : NLL_BINS - 1;
}

/** Per-label, per-fold counts of one signal of one run against the target. */
export interface LabelHistogram {
  signal: Signal;
  /** Bins per fold. */
  bins: number;
  folds: number;
  /** Rows per bin the target memorized, all folds (length `bins`). */
  pos: Float64Array;
  /** Rows per bin the target scored and did not memorize, all folds. */
  neg: Float64Array;
  /** Per fold: `foldPos[f · bins + b]`. */
  foldPos: Float64Array;
  /** Per fold: `foldNeg[f · bins + b]`. */
  foldNeg: Float64Array;
  /** Threshold value of each bin (predict "memorized" for bins 0..b). */
  thresholds: number[];
}

/** Options of {@link signalHistograms}. */
export interface HistogramOptions {
  /** Number of folds (default {@link FOLDS}). */
  folds?: number;
  /** Seed of {@link foldOf}. */
  seed: number;
  /** Only rows for which this holds are counted (default: all). */
  include?: (row: number) => boolean;
}

/** The signals a source carries, in report order. */
export function signalsOf(source: ScoreSource): Signal[] {
  const out: Signal[] = ["score"];
  if (source.prefix) out.push("prefix");
  if (source.nll) out.push("nll");
  return out;
}

/**
 * Histograms of every signal of a run's source against the target, over the
 * rows both scored, in one pass over the source.
 */
export function signalHistograms(
  source: ScoreSource,
  l: number,
  target: { scored: RowRanges; memorized: RowList },
  opts: HistogramOptions,
): LabelHistogram[] {
  const folds = opts.folds ?? FOLDS;
  const signals = signalsOf(source);
  const hs = signals.map((signal) => {
    const bins = binCount(signal, l);
    return {
      signal,
      bins,
      folds,
      pos: new Float64Array(bins),
      neg: new Float64Array(bins),
      foldPos: new Float64Array(bins * folds),
      foldNeg: new Float64Array(bins * folds),
      thresholds: [] as number[],
    };
  });
  const seen = new RangesCursor(target.scored);
  const mem = new ListCursor(target.memorized);
  let maxNll = 0;
  for (let k = 0; k < source.chunks; k++) {
    const c = source.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      const r = c.rows[i];
      if (!seen.has(r) || (opts.include && !opts.include(r))) continue;
      const positive = mem.has(r);
      const f = folds > 1 ? foldOf(r, opts.seed, folds) : 0;
      for (const h of hs) {
        const b = binOf(h.signal, c, i, l);
        if (positive) h.pos[b]++, h.foldPos[f * h.bins + b]++;
        else h.neg[b]++, h.foldNeg[f * h.bins + b]++;
      }
      if (c.nll && Number.isFinite(c.nll[i])) maxNll = Math.max(maxNll, c.nll[i]);
    }
  }
  for (const h of hs) {
    h.thresholds = Array.from({ length: h.bins }, (_, b) => {
      if (h.signal === "score") return (l - b) / l;
      if (h.signal === "prefix") return l - b;
      return b === NLL_BINS - 1
        ? Math.max(maxNll, NLL_BIN * NLL_BINS)
        : Number(((b + 1) * NLL_BIN).toFixed(2));
    });
  }
  return hs;
}

/**
 * The rows of a source whose signal bin passes `keep(bin, row)`, e.g.
 * `(b) => b <= best` or, cross-fitted, `(b, r) => b <= bestOf[foldOf(r, seed)]`.
 * One pass over the source; memory is the selected rows.
 */
export function signalRows(
  source: ScoreSource,
  signal: Signal,
  l: number,
  keep: (bin: number, row: number) => boolean,
): RowList {
  return signalRowsMany(source, l, [{ signal, keep }])[0];
}

/** {@link signalRows} for several selections in one pass over the source. */
export function signalRowsMany(
  source: ScoreSource,
  l: number,
  wants: readonly { signal: Signal; keep: (bin: number, row: number) => boolean }[],
): RowList[] {
  const outs = wants.map(() => listBuilder());
  if (wants.length === 0) return [];
  for (let k = 0; k < source.chunks; k++) {
    const c = source.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      for (let w = 0; w < wants.length; w++) {
        if (wants[w].keep(binOf(wants[w].signal, c, i, l), c.rows[i])) outs[w].add(c.rows[i]);
      }
    }
  }
  return outs.map((o) => o.done());
}
