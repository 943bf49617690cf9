/**
 * Scoring throughput, side by side in one run on the largest nano model:
 * rows/s of the reference algorithm (free-running greedy, no cache, full
 * logits copied out and arg-maxed in JavaScript, batched like the engine),
 * of `extractable` and of `full`; and the achieved FLOP/s of the
 * teacher-forced pass against a large ONNX MatMul (the practical peak).
 *
 * FLOPs of a pass = 2 × (weight elements of every MatMul/Gemm in the graph)
 * × tokens, counting the unembedding only on the l positions the score head
 * keeps (it windows the hidden state before it): all projections, MLPs and
 * the unembedding as executed; not the embedding lookup, attention scores,
 * norms or activations.
 *
 * Run: deno run -P=bench bench/scoring.ts
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { existsSync } from "node:fs";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadModel, modelFeeds, readModelInfo } from "../engine/model/model.ts";
import { DataType, encodeModel, floatTensor } from "../engine/model/onnx_proto.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import type { MemorizationSettings } from "../engine/types.ts";

const NANO = new URL("../experiments/nano/", import.meta.url).pathname;
const K = 32, L = 32, ROWS = 64, BATCH = 64;

function largestNano(): string {
  const dirs = existsSync(NANO)
    ? [...Deno.readDirSync(NANO)].filter((e) => /^s\d+$/.test(e.name)).map((e) => e.name)
    : [];
  const paths = dirs.map((d) => `${NANO}${d}/step143.onnx`).filter((p) => existsSync(p));
  if (!paths.length) throw new Error(`no nano checkpoints under ${NANO}: generate the suite first`);
  return paths.sort((a, b) => Number(a.match(/s(\d+)\//)![1]) - Number(b.match(/s(\d+)\//)![1]))
    .at(-1)!;
}

function plainSession(path: string, threads: number) {
  return ort.InferenceSession.create(path, {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  });
}

/**
 * The teacher-forced pass without the score head: full logits to JS, then
 * masked argmax and log-softmax at the l continuation positions there.
 */
async function logitsPass(
  session: ort.InferenceSession,
  path: string,
  tokens: Int32Array,
  rows: number,
) {
  const info = await readModelInfo(path);
  const V = info.vocabSize, T = K + L - 1;
  const ids = new BigInt64Array(rows * T);
  for (let b = 0; b < rows; b++) {
    for (let i = 0; i < T; i++) ids[b * T + i] = BigInt(tokens[b * (K + L) + i]);
  }
  const logits = (await session.run(modelFeeds(info, ids, rows, T), ["logits"])).logits
    .data as Float32Array;
  let sink = 0;
  for (let b = 0; b < rows; b++) {
    for (let j = 0; j < L; j++) {
      const at = (b * T + K - 1 + j) * V;
      let best = 1, max = -Infinity, sum = 0;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[at + v]);
      for (let v = 0; v < V; v++) sum += Math.exp(logits[at + v] - max);
      for (let v = 2; v < V; v++) if (logits[at + v] > logits[at + best]) best = v;
      sink += best + logits[at + tokens[b * (K + L) + K + j]] - max - Math.log(sum);
    }
  }
  return sink;
}

/** The reference algorithm, batched: l full forward passes, logits to JS, argmax there. */
async function referenceRun(path: string, tokens: Int32Array, rows: number, threads: number) {
  const info = await readModelInfo(path);
  const session = await plainSession(path, threads);
  const V = info.vocabSize;
  const seqs = Array.from(
    { length: rows },
    (_, b) => Array.from(tokens.subarray(b * (K + L), b * (K + L) + K)),
  );
  for (let j = 0; j < L; j++) {
    const len = K + j;
    const ids = BigInt64Array.from(seqs.flat(), BigInt);
    const logits = (await session.run(modelFeeds(info, ids, rows, len), ["logits"])).logits
      .data as Float32Array;
    for (let b = 0; b < rows; b++) {
      const at = (b * len + len - 1) * V;
      let best = 1; // id 0 (end-of-text) is suppressed
      for (let v = 2; v < V; v++) if (logits[at + v] > logits[at + best]) best = v;
      seqs[b].push(best);
    }
  }
  await session.release();
}

/** Seconds per call of `fn` (the best of `reps`, after one warm-up when reps > 0). */
async function time(fn: () => Promise<unknown>, reps: number): Promise<number> {
  if (reps === 0) reps = 1;
  else await fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** A 2048³ fp32 ONNX MatMul (input × initializer): `run` once, `flops` per run. */
async function matmulSession(threads: number, n = 2048) {
  const bytes = encodeModel({
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    graph: {
      name: "matmul",
      nodes: [{ opType: "MatMul", inputs: ["a", "w"], outputs: ["y"], attributes: [] }],
      inputs: [{ name: "a", elemType: DataType.FLOAT, dims: [n, n] }],
      outputs: [{ name: "y", elemType: DataType.FLOAT, dims: [n, n] }],
      initializers: [
        floatTensor("w", [n, n], Array.from({ length: n * n }, (_, i) => (i % 7) / 7)),
      ],
    },
  });
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
  const a = new ort.Tensor("float32", Float32Array.from({ length: n * n }, (_, i) => (i % 5) / 5), [
    n,
    n,
  ]);
  return { run: () => session.run({ a }), flops: 2 * n ** 3, release: () => session.release() };
}

/** Runs the scoring bench for 1 and 2 threads; returns the measured numbers by name. */
export async function runScoringBench(): Promise<Record<string, number>> {
  const path = largestNano();
  const reader = await openTokenReader({ format: "megatron", path: `${NANO}data/train` });
  const tokens = await reader.readWindow(
    Uint32Array.from({ length: ROWS }, (_, i) => i * 17),
    0,
    K + L,
  );
  await reader.close();
  const settings = (mode: MemorizationSettings["mode"]): MemorizationSettings => ({
    offset: 0,
    context: K,
    continuation: L,
    mode,
    suppressedTokens: [0],
  });
  const out: Record<string, number> = {};
  console.log(
    `scoring bench: ${path.slice(NANO.length)}, ${ROWS} rows, k = ${K}, l = ${L}, batch ${BATCH}`,
  );
  for (const threads of [1, 2]) {
    const model = await loadModel(path, { device: "cpu", threads });
    const score = (mode: MemorizationSettings["mode"]) => async () => {
      for (let s = 0; s < ROWS; s += BATCH) {
        const n = Math.min(BATCH, ROWS - s);
        await scoreBatch(model, tokens.subarray(s * (K + L), (s + n) * (K + L)), n, settings(mode));
      }
    };
    const plain = await plainSession(path, threads);
    const mm = await matmulSession(threads);
    // Interleaved rounds (best of each), so a busy machine hurts all sides alike.
    const best = { ref: Infinity, ext: Infinity, logits: Infinity, full: Infinity, mm: Infinity };
    for (let round = 0; round < 3; round++) {
      if (round < 2) {
        best.ref = Math.min(
          best.ref,
          await time(() => referenceRun(path, tokens, ROWS, threads), 0),
        );
      }
      best.ext = Math.min(best.ext, await time(score("extractable"), 3));
      best.logits = Math.min(
        best.logits,
        await time(() => logitsPass(plain, path, tokens, ROWS), 1),
      );
      best.full = Math.min(best.full, await time(score("full"), 2));
      best.mm = Math.min(best.mm, await time(mm.run, 2));
    }
    await plain.release();
    await mm.release();
    const { ref, ext, full } = best;
    const tfLogits = best.logits;
    const flops = model.passFlops(K + L - 1, L) * ROWS;
    const peak = mm.flops / best.mm;
    await model.release();
    const r = {
      [`t${threads}_reference_rows_per_s`]: ROWS / ref,
      [`t${threads}_extractable_rows_per_s`]: ROWS / ext,
      [`t${threads}_tf_full_logits_rows_per_s`]: ROWS / tfLogits,
      [`t${threads}_full_rows_per_s`]: ROWS / full,
      [`t${threads}_extractable_speedup`]: ref / ext,
      [`t${threads}_full_speedup`]: ref / full,
      [`t${threads}_score_head_speedup`]: tfLogits / ext,
      [`t${threads}_teacher_forced_gflops`]: flops / ext / 1e9,
      [`t${threads}_matmul_gflops`]: peak / 1e9,
      [`t${threads}_teacher_forced_of_peak`]: flops / ext / peak,
    };
    Object.assign(out, r);
    console.table(
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.toPrecision(4))])),
    );
  }
  return out;
}

if (import.meta.main) await runScoringBench();
