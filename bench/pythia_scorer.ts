/**
 * One scorer of the `pythia` bench, run in its own process so its peak
 * resident memory is its own: loads the model, scores rows [0, rows) of the
 * Megatron data (context 32, continuation 32, end-of-text id 0 suppressed)
 * and prints one JSON line: seconds since the process started (loading
 * included), rows/s, peak RSS (maxrss) and per-row free-running (or, for
 * `extractable`, teacher-forced) matches and matched prefixes.
 *
 * Scorers: `extractable` and `full` (the project: the worker's loader and
 * scoring function, on BENCH_DEVICE, default cpu), `reference` (the reference algorithm through a plain
 * onnxruntime session: no cache, full logits, l passes per row, argmax in
 * JavaScript), `transformers` (transformers.js `generate`, greedy, 32 new
 * tokens, end-of-text suppressed; `plant` is the same, also printing the
 * generated tokens).
 *
 * Usage: deno run -P=bench bench/pythia_scorer.ts <scorer> <model.onnx> <data> <rows> <batch> <threads>
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import process from "node:process";
import { basename, dirname } from "node:path";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadModel, modelFeeds, readModelInfo } from "../engine/model/model.ts";
import { scoreBatch } from "../engine/run/scoring.ts";

const K = 32, L = 32, W = K + L;

/** What one scorer process reports. */
export interface ScorerResult {
  scorer: string;
  rows: number;
  batch: number;
  seconds: number;
  rowsPerS: number;
  peakRssMb: number;
  /** CPU seconds (user + system) of the process: rows per CPU-second hold up on a busy machine. */
  cpuSeconds: number;
  matches: number[];
  prefix: number[];
  /** The project's scorers: seconds to load the model (session created, score head added). */
  loadSeconds?: number;
  /** The project's scorers: peak RSS right after loading (MB). */
  loadPeakRssMb?: number;
  /** `plant` only: each row's 32 generated tokens. */
  generated?: number[][];
}

/** Peak resident memory of this process (getrusage maxrss, KiB on Linux). */
function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function tally(gen: ArrayLike<number>, tokens: Int32Array, b: number) {
  let m = 0, p = -1;
  for (let j = 0; j < L; j++) {
    if (gen[j] === tokens[b * W + K + j]) m++;
    else if (p < 0) p = j;
  }
  return { m, p: p < 0 ? L : p };
}

async function project(
  mode: "extractable" | "full",
  path: string,
  tokens: Int32Array,
  o: Opts,
): Promise<
  { matches: number[]; prefix: number[]; loadSeconds: number; loadPeakRssMb: number }
> {
  const device = Deno.env.get("BENCH_DEVICE") ?? "cpu";
  const t0 = performance.now();
  // BENCH_LOOP=1: greedy steps in the Loop instead of over the cache held in JavaScript.
  const loop = Deno.env.get("BENCH_LOOP") === "1";
  const model = await loadModel(path, { device, threads: o.threads, loop });
  const loadSeconds = (performance.now() - t0) / 1000, loadPeakRssMb = peakRssMb();
  const matches: number[] = [], prefix: number[] = [];
  for (let s = 0; s < o.rows; s += o.batch) {
    const n = Math.min(o.batch, o.rows - s);
    const r = await scoreBatch(model, tokens.subarray(s * W, (s + n) * W), n, {
      offset: 0,
      context: K,
      continuation: L,
      mode,
      suppressedTokens: [0],
    });
    matches.push(...r.matches);
    prefix.push(...r.prefix);
  }
  await model.release();
  return { matches, prefix, loadSeconds, loadPeakRssMb };
}

async function reference(path: string, tokens: Int32Array, o: Opts) {
  const info = await readModelInfo(path);
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ["cpu"],
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const V = info.vocabSize;
  const matches: number[] = [], prefix: number[] = [];
  for (let s = 0; s < o.rows; s += o.batch) {
    const n = Math.min(o.batch, o.rows - s);
    const seqs = Array.from(
      { length: n },
      (_, b) => Array.from(tokens.subarray((s + b) * W, (s + b) * W + K)),
    );
    for (let j = 0; j < L; j++) {
      const len = K + j;
      const ids = BigInt64Array.from(seqs.flat(), BigInt);
      const out = (await session.run(modelFeeds(info, ids, n, len), ["logits"])).logits;
      const data = out.data as Float32Array | Uint16Array;
      // float16 logits come as a Float16Array where the runtime has one (Deno), else as bits.
      const f16 = out.type === "float16" && data instanceof Uint16Array;
      const value = (i: number) => f16 ? half(data[i]) : data[i];
      for (let b = 0; b < n; b++) {
        const at = (b * len + len - 1) * V;
        let best = 1; // id 0 (end-of-text) is suppressed
        for (let v = 2; v < V; v++) if (value(at + v) > value(at + best)) best = v;
        seqs[b].push(best);
      }
    }
    seqs.forEach((seq, b) => {
      const t = tally(seq.slice(K), tokens, s + b);
      matches.push(t.m);
      prefix.push(t.p);
    });
  }
  await session.release();
  return { matches, prefix };
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

async function transformers(path: string, tokens: Int32Array, o: Opts) {
  const tjs = await import("@huggingface/transformers");
  const dir = dirname(dirname(path));
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = dirname(dir) + "/";
  const model = await tjs.AutoModelForCausalLM.from_pretrained(basename(dir), {
    local_files_only: true,
    dtype: basename(path) === "model_fp16.onnx" ? "fp16" : "fp32",
    device: "cpu",
    session_options: { intraOpNumThreads: o.threads, interOpNumThreads: 1 },
  });
  const matches: number[] = [], prefix: number[] = [], generated: number[][] = [];
  for (let s = 0; s < o.rows; s += o.batch) {
    const n = Math.min(o.batch, o.rows - s);
    const ids = new BigInt64Array(n * K);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < K; i++) ids[b * K + i] = BigInt(tokens[(s + b) * W + i]);
    }
    const input_ids = new tjs.Tensor("int64", ids, [n, K]);
    const attention_mask = new tjs.Tensor("int64", new BigInt64Array(n * K).fill(1n), [n, K]);
    const out = await model.generate({
      input_ids,
      attention_mask,
      max_new_tokens: L,
      min_new_tokens: L,
      do_sample: false,
      suppress_tokens: [0],
    }) as { data: BigInt64Array; dims: number[] };
    const width = out.dims[1];
    for (let b = 0; b < n; b++) {
      const gen = Array.from(out.data.subarray(b * width + K, b * width + K + L), Number);
      const t = tally(gen, tokens, s + b);
      matches.push(t.m);
      prefix.push(t.p);
      generated.push(gen);
    }
  }
  await model.dispose();
  return { matches, prefix, generated };
}

interface Opts {
  rows: number;
  batch: number;
  threads: number;
}

if (import.meta.main) {
  const [scorer, path, data, rows, batch, threads] = Deno.args;
  const o = { rows: Number(rows), batch: Number(batch), threads: Number(threads) };
  const reader = await openTokenReader({ format: "megatron", path: data });
  const tokens = await reader.readWindow(Uint32Array.from({ length: o.rows }, (_, i) => i), 0, W);
  await reader.close();
  const run = scorer === "reference"
    ? reference(path, tokens, o)
    : scorer === "transformers" || scorer === "plant"
    ? transformers(path, tokens, o)
    : project(scorer.replace(/^folder-/, "") as "extractable" | "full", path, tokens, o);
  const got: { matches: number[]; prefix: number[]; generated?: number[][] } = await run;
  if (scorer !== "plant") delete got.generated;
  const seconds = performance.now() / 1000;
  const result: ScorerResult = {
    scorer,
    rows: o.rows,
    batch: o.batch,
    seconds,
    rowsPerS: o.rows / seconds,
    peakRssMb: peakRssMb(),
    cpuSeconds: (process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime) / 1e6,
    ...got,
  };
  console.log(JSON.stringify(result));
}
