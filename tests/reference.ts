/**
 * The reference memorization score, written as plainly as possible: for each
 * row, free-running greedy generation with no cache, one token at a time,
 * from the full logits of the unmodified model (argmax with the suppressed ids
 * excluded, ties to the lowest id). NLL from one teacher-forced pass, in
 * float64. Also records each greedy step's top-2 margin, to detect genuine
 * floating-point ties.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { modelFeeds, readModelInfo } from "../engine/model/model.ts";

/** The reference result of one row. */
export interface ReferenceRow {
  matches: number;
  prefix: number;
  nll: number;
  generated: number[];
  /** Per greedy step: (top1 − top2) / max(1, |top1|) over the unsuppressed logits. */
  margins: number[];
  /** Teacher-forced greedy matches (what `extractable` mode reports as matches). */
  tfMatches: number;
  /** Per continuation position: the teacher-forced top-2 margin. */
  tfMargins: number[];
}

/** Relative top-2 margin below which a greedy step counts as a floating-point tie. */
export const TIE = 1e-5;

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** A forward pass over one sequence returning its logits as float64 rows. */
export async function makeLogitsFn(
  path: string,
  threads = 1,
): Promise<
  {
    logits: (ids: number[], from?: number) => Promise<Float64Array[]>;
    release: () => Promise<void>;
  }
> {
  const info = await readModelInfo(path);
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const V = info.vocabSize;
  /** Logits at positions [from, ids.length) (all by default). */
  const logits = async (ids: number[], from = 0) => {
    const feeds = modelFeeds(info, BigInt64Array.from(ids, BigInt), 1, ids.length);
    const out = (await session.run(feeds, ["logits"])).logits;
    const data = out.data as Float32Array | Uint16Array;
    const rows: Float64Array[] = [];
    for (let t = from; t < ids.length; t++) {
      const row = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        const x = data[t * V + v];
        row[v] = data instanceof Uint16Array ? f16ToF32(x) : x;
      }
      rows.push(row);
    }
    return rows;
  };
  return { logits, release: () => session.release() };
}

/** Greedy choice: the highest unsuppressed logit, the lowest id among equals; and its margin. */
export function greedy(row: Float64Array, suppressed: Set<number>): { id: number; margin: number } {
  let best = -1, second = -Infinity;
  for (let v = 0; v < row.length; v++) {
    if (suppressed.has(v)) continue;
    if (best < 0 || row[v] > row[best]) {
      if (best >= 0) second = Math.max(second, row[best]);
      best = v;
    } else second = Math.max(second, row[v]);
  }
  return { id: best, margin: (row[best] - second) / Math.max(1, Math.abs(row[best])) };
}

/** Scores rows (batch × (k + l) tokens) with the reference algorithm. */
export async function referenceScores(
  path: string,
  tokens: Int32Array,
  batch: number,
  k: number,
  l: number,
  suppressedTokens: number[],
  threads = 1,
): Promise<ReferenceRow[]> {
  const { logits, release } = await makeLogitsFn(path, threads);
  const suppressed = new Set(suppressedTokens);
  const rows: ReferenceRow[] = [];
  try {
    for (let b = 0; b < batch; b++) {
      const row = Array.from(tokens.subarray(b * (k + l), (b + 1) * (k + l)));
      const truth = row.slice(k);
      const seq = row.slice(0, k);
      const generated: number[] = [];
      const margins: number[] = [];
      for (let j = 0; j < l; j++) {
        const last = (await logits(seq, seq.length - 1))[0];
        const { id, margin } = greedy(last, suppressed);
        generated.push(id);
        margins.push(margin);
        seq.push(id);
      }
      const tf = [...new Array(k - 1), ...await logits(row.slice(0, k + l - 1), k - 1)];
      let nll = 0;
      let tfMatches = 0;
      const tfMargins: number[] = [];
      for (let j = 0; j < l; j++) {
        const z = tf[k - 1 + j];
        const g = greedy(z, suppressed);
        if (g.id === truth[j]) tfMatches++;
        tfMargins.push(g.margin);
        let max = -Infinity;
        for (const x of z) max = Math.max(max, x);
        let sum = 0;
        for (const x of z) sum += Math.exp(x - max);
        nll -= z[truth[j]] - max - Math.log(sum);
      }
      let prefix = generated.findIndex((g, j) => g !== truth[j]);
      if (prefix < 0) prefix = l;
      const matches = generated.filter((g, j) => g === truth[j]).length;
      rows.push({ matches, prefix, nll: nll / l, generated, margins, tfMatches, tfMargins });
    }
  } finally {
    await release();
  }
  return rows;
}
