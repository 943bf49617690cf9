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
import { hash32, hashKey } from "../../engine/random.ts";
import type { ScoreChunk, ScoreSource } from "../../engine/store/scored_checkpoint.ts";
import {
  listBuilder,
  ListCursor,
  RangesCursor,
  rangesOf,
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
  /** The signal counted. */
  signal: Signal;
  /** Bins per fold. */
  bins: number;
  /** Folds of rows (their hash mod `folds`). */
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
 * Bins of one signal for the rows of a chunk, into `out` (as {@link binOf},
 * a typed loop per signal).
 */
function chunkBins(signal: Signal, c: ScoreChunk, l: number, out: Uint16Array): void {
  const n = c.rows.length;
  if (signal !== "nll") {
    const values = signal === "score" ? c.matches : c.prefix!;
    const lut = binLookup(l);
    for (let i = 0; i < n; i++) out[i] = lut[values[i]];
    return;
  }
  const nll = c.nll!;
  for (let i = 0; i < n; i++) out[i] = nllBin(nll[i]);
}

/**
 * Code of each row of a chunk: −1 when the target did not score it, else
 * fold · 2 + (1 when the target memorized it). The fold is {@link foldOf}'s,
 * in int32 arithmetic (hash = hi · 2^16 + lo, so hash mod k = ((hi mod k) ·
 * 2^16 + lo) mod k), many times faster than the double `%` of a uint32.
 */
export function rowCodes(
  rows: Uint32Array,
  code: Int32Array,
  seen: RangesCursor,
  mem: ListCursor,
  folds: number,
  seed: number,
): void {
  const key = hashKey(seed);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!seen.has(r)) {
      code[i] = -1;
      continue;
    }
    let fold = 0;
    if (folds > 1) {
      let z = r ^ key;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      z ^= z >>> 16;
      fold = ((((z >>> 16) % folds) << 16) + (z & 0xffff)) % folds;
    }
    code[i] = fold * 2 + (mem.has(r) ? 1 : 0);
  }
}

/** Largest row index a {@link codeTable} covers (one byte per row: 256 MB). */
export const CODE_TABLE_MAX_ROWS = 1 << 28;

/**
 * The {@link rowCodes} of every row up to the target's last scored row, in
 * one byte per row (−1 for rows it did not score), or null when that would
 * exceed {@link CODE_TABLE_MAX_ROWS} rows or the codes do not fit a byte.
 * The codes depend on the target and the folds alone, not on the run, so the
 * histograms of every run look them up instead of hashing each row and
 * walking the target's row sets again (a third of the report's time on a
 * paper-shape store). Built once per target, folds and seed, and kept for as
 * long as the target's row sets are (146 MB at the paper's 146M rows).
 */
export function codeTable(
  target: { scored: RowRanges; memorized: RowList },
  folds: number,
  seed: number,
): Int8Array | null {
  const b = target.scored.bounds;
  const end = b.length > 0 ? b[b.length - 1] : 0;
  if (end > CODE_TABLE_MAX_ROWS || folds * 2 > 127) return null;
  let perTarget = codeTables.get(target.scored);
  if (!perTarget) codeTables.set(target.scored, perTarget = new Map());
  const key = `${folds}:${seed}:${target.memorized.length}`;
  const known = perTarget.get(key);
  if (known?.memorized === target.memorized) return known.table;
  // Shared memory: the report's reader threads look it up too (tasks/report_scan.ts).
  const table = new Int8Array(new SharedArrayBuffer(end)).fill(-1);
  const seen = new RangesCursor(target.scored), mem = new ListCursor(target.memorized);
  const block = 1 << 16, rows = new Uint32Array(block), code = new Int32Array(block);
  for (let k = 0; k < b.length; k += 2) {
    for (let start = b[k]; start < b[k + 1]; start += block) {
      const n = Math.min(block, b[k + 1] - start);
      for (let i = 0; i < n; i++) rows[i] = start + i;
      rowCodes(rows.subarray(0, n), code, seen, mem, folds, seed);
      table.set(code.subarray(0, n), start);
    }
  }
  perTarget.set(key, { memorized: target.memorized, table });
  return table;
}
const codeTables = new WeakMap<RowRanges, Map<string, { memorized: RowList; table: Int8Array }>>();

/** {@link rowCodes} by lookup in a {@link codeTable}. */
function tableCodes(rows: Uint32Array, code: Int32Array, table: Int8Array): void {
  const end = table.length;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    code[i] = r < end ? table[r] : -1;
  }
}

/** Counts an integer signal's rows by code and bin (`lut`: bin of each value). */
function countInt(
  values: Uint8Array,
  n: number,
  lut: Uint8Array,
  code: Int32Array,
  h: Float64Array,
  width: number,
): void {
  for (let i = 0; i < n; i++) {
    const x = code[i];
    if (x >= 0) h[x * width + lut[values[i]]]++;
  }
}

/** The three signals' counts in one loop (score, prefix, nll); returns the largest finite NLL. */
function countAll(
  c: ScoreChunk,
  n: number,
  lut: Uint8Array,
  code: Int32Array,
  counts: Float64Array[],
  width: number,
): number {
  const matches = c.matches, prefix = c.prefix!, nll = c.nll!;
  const hs = counts[0], hp = counts[1], hn = counts[2];
  let max = 0;
  for (let i = 0; i < n; i++) {
    const x = code[i];
    if (x < 0) continue;
    hs[x * width + lut[matches[i]]]++;
    hp[x * width + lut[prefix[i]]]++;
    const v = nll[i];
    hn[x * NLL_BINS + nllBin(v)]++;
    if (v - v === 0 && v > max) max = v; // finite
  }
  return max;
}

/** Counts NLL rows by code and bin; returns the largest finite NLL counted (0 when none). */
function countNll(nll: Float32Array, n: number, code: Int32Array, h: Float64Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) {
    const x = code[i];
    if (x < 0) continue;
    const v = nll[i];
    h[x * NLL_BINS + nllBin(v)]++;
    if (v - v === 0 && v > max) max = v; // finite
  }
  return max;
}

/** Bin of an NLL value: floor(v / NLL_BIN) within 0 … NLL_BINS − 1; the last for NaN and ±∞. */
function nllBin(v: number): number {
  if (v - v !== 0) return NLL_BINS - 1; // not finite
  const f = Math.floor(v / NLL_BIN);
  return f < 0 ? 0 : f > NLL_BINS - 1 ? NLL_BINS - 1 : f;
}

/** Bin of each integer value 0..255 (score or prefix): l − min(l, value). */
function binLookup(l: number): Uint8Array {
  let lut = lookups.get(l);
  if (!lut) lookups.set(l, lut = Uint8Array.from({ length: 256 }, (_, v) => l - Math.min(l, v)));
  return lut;
}
const lookups = new Map<number, Uint8Array>();

/**
 * Histograms of every signal of a run's source against the target, over the
 * rows both scored, in one pass over the source (a {@link HistogramCounter}
 * fed every chunk).
 */
export function signalHistograms(
  source: ScoreSource,
  l: number,
  target: { scored: RowRanges; memorized: RowList },
  opts: HistogramOptions,
): LabelHistogram[] {
  const counter = new HistogramCounter(signalsOf(source), l, target, opts);
  for (let k = 0; k < source.chunks; k++) counter.add(source.chunk(k));
  return counter.histograms();
}

/**
 * Histograms counted ahead of the analysis, against a target under given
 * folds and seed, per run's score source: the report counts them during the
 * store reader's pass (tasks/report.ts), so the analysis needs no pass of its
 * own for them. The analysis uses them only for that target, folds and seed.
 */
export interface CountedHistograms {
  /** The target they were counted against. */
  target: { model: string; step: number };
  /** The folds of rows they were counted in. */
  folds: number;
  /** The seed of the rows' fold hash. */
  seed: number;
  /** Each run's histograms (as {@link signalHistograms} gives them), by its source. */
  bySource: Map<ScoreSource, LabelHistogram[]>;
}

/**
 * {@link signalHistograms} chunk by chunk, for a reader that sees the chunks
 * anyway (the report's first pass over the store, tasks/report.ts): per
 * chunk, each row gets a code (−1: not counted; else fold · 2 + memorized by
 * the target), then each signal's bins are counted in a typed loop. A chunk
 * is counted when given and not kept.
 */
export class HistogramCounter {
  readonly #signals: readonly Signal[];
  readonly #l: number;
  readonly #folds: number;
  readonly #binsOf: number[];
  /** counts[s][(fold · 2 + positive) · bins + bin] */
  readonly #counts: Float64Array[];
  readonly #seen: RangesCursor;
  readonly #mem: ListCursor;
  readonly #table: Int8Array | null;
  readonly #opts: HistogramOptions;
  #code = new Int32Array(0);
  #maxNll = 0;

  /**
   * `target`: the target's row sets, or the {@link codeTable} of them (for
   * the folds and seed of `opts`) as another thread built it.
   */
  constructor(
    signals: readonly Signal[],
    l: number,
    target: { scored: RowRanges; memorized: RowList } | { table: Int8Array },
    opts: HistogramOptions,
  ) {
    this.#signals = signals;
    this.#l = l;
    this.#folds = opts.folds ?? FOLDS;
    this.#binsOf = signals.map((signal) => binCount(signal, l));
    this.#counts = this.#binsOf.map((bins) => new Float64Array(this.#folds * 2 * bins));
    const sets = "table" in target
      ? { scored: rangesOf([]), memorized: new Uint32Array(0) }
      : target;
    this.#seen = new RangesCursor(sets.scored);
    this.#mem = new ListCursor(sets.memorized);
    this.#table = "table" in target ? target.table : codeTable(target, this.#folds, opts.seed);
    this.#opts = opts;
  }

  /** Counts a chunk's rows (chunks in row order, as a source gives them). */
  add(c: ScoreChunk): void {
    const rows = c.rows, n = rows.length, l = this.#l, signals = this.#signals;
    if (this.#code.length < n) this.#code = new Int32Array(n);
    const code = this.#code, counts = this.#counts, include = this.#opts.include;
    if (this.#table) tableCodes(rows, code, this.#table);
    else rowCodes(rows, code, this.#seen, this.#mem, this.#folds, this.#opts.seed);
    if (include) { for (let i = 0; i < n; i++) if (!include(rows[i])) code[i] = -1; }
    if (signals.length === 3) {
      this.#maxNll = Math.max(
        this.#maxNll,
        countAll(c, n, binLookup(l), code, counts, this.#binsOf[0]),
      );
      return;
    }
    for (let s = 0; s < signals.length; s++) {
      const signal = signals[s];
      if (signal === "nll") {
        this.#maxNll = Math.max(this.#maxNll, countNll(c.nll!, n, code, counts[s]));
      } else {
        const values = signal === "score" ? c.matches : c.prefix!;
        countInt(values, n, binLookup(l), code, counts[s], this.#binsOf[s]);
      }
    }
  }

  /** The histograms of the chunks counted so far. */
  histograms(): LabelHistogram[] {
    const l = this.#l, folds = this.#folds, maxNll = this.#maxNll;
    return this.#signals.map((signal, s) => {
      const width = this.#binsOf[s], h = this.#counts[s];
      const pos = new Float64Array(width), neg = new Float64Array(width);
      const foldPos = new Float64Array(width * folds), foldNeg = new Float64Array(width * folds);
      for (let f = 0; f < folds; f++) {
        for (let b = 0; b < width; b++) {
          const p = h[(f * 2 + 1) * width + b], q = h[f * 2 * width + b];
          foldPos[f * width + b] = p, foldNeg[f * width + b] = q;
          pos[b] += p, neg[b] += q;
        }
      }
      const thresholds = Array.from({ length: width }, (_, b) => {
        if (signal === "score") return (l - b) / l;
        if (signal === "prefix") return l - b;
        return b === NLL_BINS - 1
          ? Math.max(maxNll, NLL_BIN * NLL_BINS)
          : Number(((b + 1) * NLL_BIN).toFixed(2));
      });
      return { signal, bins: width, folds, pos, neg, foldPos, foldNeg, thresholds };
    });
  }
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

/**
 * {@link signalRows} for several selections in one pass over the source; a
 * selection may give `maxBin` instead of `keep` (rows whose bin is ≤ it).
 */
export function signalRowsMany(
  source: ScoreSource,
  l: number,
  wants: readonly (
    | { signal: Signal; keep: (bin: number, row: number) => boolean }
    | { signal: Signal; maxBin: number }
  )[],
): RowList[] {
  const outs = wants.map(() => listBuilder());
  if (wants.length === 0) return [];
  let bins = new Uint16Array(0);
  for (let k = 0; k < source.chunks; k++) {
    const c = source.chunk(k);
    const rows = c.rows, n = rows.length;
    if (bins.length < n) bins = new Uint16Array(n);
    for (let w = 0; w < wants.length; w++) {
      const want = wants[w], out = outs[w];
      if ("maxBin" in want && want.signal !== "nll") {
        // bin = l − min(l, v) ≤ maxBin ⟺ v ≥ l − maxBin.
        const values = want.signal === "score" ? c.matches : c.prefix!, min = l - want.maxBin;
        for (let i = 0; i < n; i++) if (values[i] >= min) out.add(rows[i]);
      } else if ("maxBin" in want) {
        chunkBins(want.signal, c, l, bins);
        const max = want.maxBin;
        for (let i = 0; i < n; i++) if (bins[i] <= max) out.add(rows[i]);
      } else {
        chunkBins(want.signal, c, l, bins);
        for (let i = 0; i < n; i++) if (want.keep(bins[i], rows[i])) out.add(rows[i]);
      }
    }
  }
  return outs.map((o) => o.done());
}
