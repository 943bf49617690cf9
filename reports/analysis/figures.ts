/**
 * The paper's other figures as data: score correlations between models and
 * between checkpoints, score distributions, memorization rate against row
 * index and against duplicate count, and the pairwise predictor matrix.
 *
 * @module
 */
import type { Matrix, PredictorId, Summary } from "./summary.ts";
import { confusion, rates } from "./metrics.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import { pearsonFromSums } from "./stats.ts";
import type {
  ScoreChunk,
  ScoredCheckpoint,
  ScoreSource,
} from "../../engine/store/scored_checkpoint.ts";
import {
  forEachRow,
  intersectCount,
  intersectRanges,
  ListCursor,
  lowerBound,
  rangesCountIn,
  restrictList,
} from "../../engine/rowset.ts";
import { checkpointLabel } from "../../engine/types.ts";
import type { RowFeatures } from "../../engine/data/features/row_features.ts";

/** Matches of rows asked in ascending order, read chunk by chunk from a source. */
class MatchCursor {
  #k = -1;
  #i = 0;
  #chunk: ScoreChunk | null = null;
  constructor(readonly source: ScoreSource) {}
  /**
   * Matches of rows [start, start + n) into `out` (NaN for a row the source
   * lacks); rows must not decrease between calls.
   */
  fill(start: number, n: number, out: Float64Array): void {
    let t = 0;
    while (t < n) {
      const c = this.#chunk;
      if (c) {
        const rows = c.rows, matches = c.matches, len = rows.length;
        let i = this.#i;
        while (t < n) {
          const row = start + t;
          while (i < len && rows[i] < row) i++;
          if (i === len) break;
          // A run of consecutive rows (a shard is usually one): rows ascend strictly, so the
          // span is consecutive when its ends are; copied in one typed conversion.
          const k = Math.min(n - t, len - i);
          if (rows[i] === row && rows[i + k - 1] === row + k - 1) {
            out.set(matches.subarray(i, i + k), t);
            t += k, i += k;
            continue;
          }
          out[t++] = rows[i] === row ? matches[i] : NaN;
        }
        this.#i = i;
        if (t === n) return;
      }
      if (++this.#k >= this.source.chunks) {
        out.fill(NaN, t, n);
        return;
      }
      this.#chunk = this.source.chunk(this.#k);
      this.#i = 0;
    }
  }
}

/** Rows per block of the correlation sums. */
const BLOCK = 1 << 14;

/**
 * Pearson correlations of `matches` between runs, on the rows every one of
 * them scored. Runs without per-row scores count l on memorized rows and 0
 * elsewhere; when no run has per-row scores the sums come from set
 * intersections alone (exactly the same sums).
 */
export function correlationMatrix(runs: readonly ScoredCheckpoint[]): Matrix {
  const labels = runs.map((s) => checkpointLabel(s));
  if (runs.length === 0) return { labels, values: [], rows: 0 };
  let common = runs[0].scored;
  for (const r of runs.slice(1)) common = intersectRanges(common, r.scored);
  const n = common.size, m = runs.length;
  const sx = new Float64Array(m), sxx = new Float64Array(m), sxy = new Float64Array(m * m);
  if (runs.every((r) => !r.source)) {
    const mem = runs.map((r) => restrictList(r.memorized, common));
    for (let i = 0; i < m; i++) {
      const l = runs[i].continuation;
      sx[i] = l * mem[i].length;
      sxx[i] = l * l * mem[i].length;
      for (let j = 0; j < m; j++) {
        sxy[i * m + j] = l * runs[j].continuation * intersectCount(mem[i], mem[j]);
      }
    }
  } else {
    // Blocks of common rows: each run's values of the block in a column (typed loops), then
    // the sums column by column. The sums are of integers (< 2^53), so exact in any order.
    const fills = runs.map((r) => {
      if (r.source) {
        const c = new MatchCursor(r.source);
        return (start: number, n: number, out: Float64Array) => c.fill(start, n, out);
      }
      const c = new ListCursor(r.memorized), l = r.continuation;
      return (start: number, n: number, out: Float64Array) => {
        for (let i = 0; i < n; i++) out[i] = c.has(start + i) ? l : 0;
      };
    });
    const cols = runs.map(() => new Float64Array(BLOCK));
    const b = common.bounds;
    for (let k = 0; k < b.length; k += 2) {
      for (let start = b[k]; start < b[k + 1]; start += BLOCK) {
        const n = Math.min(BLOCK, b[k + 1] - start);
        for (let i = 0; i < m; i++) fills[i](start, n, cols[i]);
        for (let i = 0; i < m; i++) {
          const x = cols[i];
          let s = 0, ss = 0;
          for (let t = 0; t < n; t++) s += x[t], ss += x[t] * x[t];
          sx[i] += s, sxx[i] += ss, sxy[i * m + i] += ss;
          for (let j = i + 1; j < m; j++) {
            const y = cols[j];
            let d = 0;
            for (let t = 0; t < n; t++) d += x[t] * y[t];
            sxy[i * m + j] += d, sxy[j * m + i] += d;
          }
        }
      }
    }
    // The cursors stop at the last common row: let the sources go of their buffers.
    for (const r of runs) r.source?.close?.();
  }
  const values = runs.map((_, i) =>
    runs.map((_, j) => pearsonFromSums(n, sx[i], sx[j], sxx[i], sxx[j], sxy[i * m + j]))
  );
  return { labels, values, rows: n };
}

/** Histogram of matches 0..l of one run (without per-row scores: 0 or l). */
export function distribution(run: ScoredCheckpoint): PredictorId & { counts: number[] } {
  const l = run.continuation;
  const counts = new Array<number>(l + 1).fill(0);
  if (run.matchCounts) {
    run.matchCounts.forEach((n, m) => (counts[m] = n));
  } else if (run.source) {
    for (let k = 0; k < run.source.chunks; k++) {
      for (const m of run.source.chunk(k).matches) counts[Math.min(m, l)]++;
    }
  } else {
    counts[l] = run.memorized.length;
    counts[0] = run.scored.size - run.memorized.length;
  }
  return { model: run.model, step: run.step, counts };
}

/** Memorization rate of a run in `buckets` equal ranges of row index (empty ranges omitted). */
export function rateByRow(
  run: AnalysedCheckpoint,
  size: number,
  buckets = 20,
): Summary["rateByRow"][number] {
  const width = Math.max(32, Math.ceil(size / buckets / 32) * 32);
  const out: Summary["rateByRow"][number]["buckets"] = [];
  for (let start = 0; start < size; start += width) {
    const end = Math.min(size, start + width);
    const rows = rangesCountIn(run.scored, start, end);
    const mem = lowerBound(run.memorized, end) - lowerBound(run.memorized, start);
    if (rows > 0) out.push({ start, end, rows, rate: mem / rows });
  }
  return { ...run.id, buckets: out };
}

/** Bin of a duplicate count: 0, 1, 2, 3–4, 5–8, 9–16, … */
function dupBin(d: number): number {
  return d <= 2 ? d : 1 + Math.ceil(Math.log2(d));
}

/** Rows and memorized rows per duplicate bin of one run, counted row by row. */
class DuplicateBins {
  readonly rows: number[] = [];
  readonly mem: number[] = [];
  readonly memorized: ListCursor;
  constructor(readonly run: ScoredCheckpoint) {
    this.memorized = new ListCursor(run.memorized);
  }
  /** Counts row `r` (rows ascending) with `d` duplicates. */
  add(r: number, d: number): void {
    const b = dupBin(d);
    this.rows[b] = (this.rows[b] ?? 0) + 1;
    this.mem[b] = (this.mem[b] ?? 0) + (this.memorized.has(r) ? 1 : 0);
  }
  /** The chart's bins: each non-empty bin's duplicate range, rows and rate. */
  result(): PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] } {
    const bins = [];
    for (let b = 0; b < this.rows.length; b++) {
      if (!this.rows[b]) continue;
      const min = b <= 2 ? b : 2 ** (b - 2) + 1;
      const max = b <= 2 ? b : 2 ** (b - 1);
      bins.push({ min, max, rows: this.rows[b], rate: this.mem[b] / this.rows[b] });
    }
    return { model: this.run.model, step: this.run.step, bins };
  }
}

/** Memorization rate of a run against each row's duplicate count, in powers-of-two bins. */
export function rateByDuplicates(
  run: ScoredCheckpoint,
  duplicates: Uint32Array,
): PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] } {
  const bins = new DuplicateBins(run);
  forEachRow(run.scored, (r) => {
    if (r < duplicates.length) bins.add(r, duplicates[r]);
  });
  return bins.result();
}

/**
 * {@link rateByDuplicates} of each run against the computed window counts of
 * the row features, in one walk over the record's chunks beside each run's
 * scored rows (memory: one chunk, nothing per row). The same bins as against
 * `computedDuplicates(features)` (one count per data row up to the last row
 * with features, 0 for a row without): a scored row without features counts
 * 0 duplicates, and rows past the last row with features are left out.
 */
export function rateByComputedDuplicates(
  runs: readonly ScoredCheckpoint[],
  features: RowFeatures,
): (PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] })[] {
  const walks = runs.map((run) => ({ bins: new DuplicateBins(run), j: 0, r: 0 }));
  for (let k = 0; k < features.chunks; k++) {
    const c = features.chunk(k);
    if (c.rows.length === 0) continue;
    const end = c.rows[c.rows.length - 1];
    for (const w of walks) {
      const b = w.bins.run.scored.bounds;
      // the run's scored rows up to the chunk's last row, each looked up in the chunk
      for (let i = 0; w.j < b.length;) {
        if (w.r < b[w.j]) w.r = b[w.j];
        if (w.r >= b[w.j + 1]) {
          w.j += 2;
          continue;
        }
        if (w.r > end) break;
        while (i < c.rows.length && c.rows[i] < w.r) i++;
        w.bins.add(w.r, i < c.rows.length && c.rows[i] === w.r ? c.window[i] : 0);
        w.r++;
      }
    }
  }
  return walks.map((w) => w.bins.result());
}

/** Precision and recall of run i predicting run j, for every pair. */
export function pairMatrix(runs: readonly AnalysedCheckpoint[]): Summary["pairMatrix"] {
  const precision = runs.map(() => new Array<number | null>(runs.length).fill(null));
  const recall = runs.map(() => new Array<number | null>(runs.length).fill(null));
  runs.forEach((p, i) =>
    runs.forEach((t, j) => {
      const c = confusion(p.scored, p.memorized, t.scored, t.memorized);
      const r = rates(c.tp, c.fp, c.fn);
      precision[i][j] = r.precision;
      recall[i][j] = r.recall;
    })
  );
  return { labels: runs.map((r) => checkpointLabel(r.id)), precision, recall };
}
