/**
 * The paper's other figures as data: score correlations between models and
 * between checkpoints, score distributions, memorization rate against row
 * index and against duplicate count, and the pairwise predictor matrix.
 *
 * @module
 */
import type { CheckpointScores } from "../../engine/types.ts";
import type { Matrix, PredictorId, Summary } from "./summary.ts";
import {
  type Bits,
  confusion,
  countBits,
  hasBit,
  makeBits,
  popcount,
  rates,
  setBit,
} from "./metrics.ts";
import { isMemorized, label, type Run } from "./runs.ts";
import { pearsonFromSums } from "./stats.ts";

/** Pearson correlations of `matches` between runs, on the rows every one of them scored. */
export function correlationMatrix(scores: readonly CheckpointScores[], size: number): Matrix {
  const labels = scores.map((s) => label(s));
  if (scores.length === 0) return { labels, values: [], rows: 0 };
  let common: Bits | null = null;
  for (const s of scores) {
    const b = makeBits(size);
    for (const r of s.rows) setBit(b, r);
    if (common === null) common = b;
    else for (let w = 0; w < b.length; w++) common[w] &= b[w];
  }
  const n = countBits(common!);
  const cols = scores.map((s) => {
    const v = new Uint8Array(n);
    let j = 0;
    for (let i = 0; i < s.rows.length; i++) if (hasBit(common!, s.rows[i])) v[j++] = s.matches[i];
    return v;
  });
  const values = cols.map((a) =>
    cols.map((b) => {
      let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
      for (let i = 0; i < n; i++) {
        sx += a[i];
        sy += b[i];
        sxx += a[i] * a[i];
        syy += b[i] * b[i];
        sxy += a[i] * b[i];
      }
      return pearsonFromSums(n, sx, sy, sxx, syy, sxy);
    })
  );
  return { labels, values, rows: n };
}

/** Histogram of matches 0..l of one run. */
export function distribution(s: CheckpointScores): PredictorId & { counts: number[] } {
  const counts = new Array<number>(s.continuation + 1).fill(0);
  for (const m of s.matches) counts[Math.min(m, s.continuation)]++;
  return { model: s.model, step: s.step, counts };
}

/** Memorization rate of a run in `buckets` equal ranges of row index (empty ranges omitted). */
export function rateByRow(run: Run, size: number, buckets = 20): Summary["rateByRow"][number] {
  const width = Math.max(32, Math.ceil(size / buckets / 32) * 32);
  const out: Summary["rateByRow"][number]["buckets"] = [];
  for (let start = 0; start < size; start += width) {
    const end = Math.min(size, start + width);
    let rows = 0, mem = 0;
    for (let w = start >>> 5; w < Math.ceil(end / 32); w++) {
      if (run.seen[w] === 0) continue;
      rows += popcount(run.seen[w]);
      mem += popcount(run.mem[w] & run.seen[w]);
    }
    if (rows > 0) out.push({ start, end, rows, rate: mem / rows });
  }
  return { ...run.id, buckets: out };
}

/** Bin of a duplicate count: 0, 1, 2, 3–4, 5–8, 9–16, … */
function dupBin(d: number): number {
  return d <= 2 ? d : 1 + Math.ceil(Math.log2(d));
}

/** Memorization rate of a run against each row's duplicate count, in powers-of-two bins. */
export function rateByDuplicates(
  s: CheckpointScores,
  duplicates: Uint32Array,
): PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] } {
  const rows: number[] = [];
  const mem: number[] = [];
  for (let i = 0; i < s.rows.length; i++) {
    const r = s.rows[i];
    if (r >= duplicates.length) continue;
    const b = dupBin(duplicates[r]);
    rows[b] = (rows[b] ?? 0) + 1;
    mem[b] = (mem[b] ?? 0) + (isMemorized(s, i) ? 1 : 0);
  }
  const bins = [];
  for (let b = 0; b < rows.length; b++) {
    if (!rows[b]) continue;
    const min = b <= 2 ? b : 2 ** (b - 2) + 1;
    const max = b <= 2 ? b : 2 ** (b - 1);
    bins.push({ min, max, rows: rows[b], rate: mem[b] / rows[b] });
  }
  return { model: s.model, step: s.step, bins };
}

/** Precision and recall of run i predicting run j, for every pair. */
export function pairMatrix(runs: readonly Run[]): Summary["pairMatrix"] {
  const precision = runs.map(() => new Array<number | null>(runs.length).fill(null));
  const recall = runs.map(() => new Array<number | null>(runs.length).fill(null));
  runs.forEach((p, i) =>
    runs.forEach((t, j) => {
      const c = confusion(p.seen, p.mem, t.seen, t.mem);
      const r = rates(c.tp, c.fp, c.fn);
      precision[i][j] = r.precision;
      recall[i][j] = r.recall;
    })
  );
  return { labels: runs.map((r) => label(r.id)), precision, recall };
}
