/**
 * The model adapter: the one place that knows ONNX causal-LM I/O names. It
 * loads a model (external data too), detects its interface, reads its shape
 * (layers, heads, head size, vocabulary), appends the score head
 * (engine/model/graph.ts) and runs forward passes that return only small tensors.
 *
 * Interfaces: Optimum `text-generation-with-past` (`input_ids`,
 * `attention_mask`, optional `position_ids`, `past_key_values.{i}.key|value`
 * → `logits`, `present.{i}.key|value`), the legacy merged decoder (the same
 * plus `use_cache_branch`), and `no-cache` (`input_ids` [+ `attention_mask`]
 * [+ `position_ids`] → `logits`).
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { addScoreHead, HEAD } from "./graph.ts";
import { buildGreedyLoop, LOOP } from "./loop.ts";
import {
  externalLocations,
  inspectModel,
  type ModelInfo,
  type ModelInterface,
  readConfig,
} from "./model_info.ts";
import { type ModelFile, readModelFile } from "./model_file.ts";
import { DataType, type Model, parseModel } from "./onnx_proto.ts";
import { parseDevice, sessionOptions } from "./providers.ts";

/** One forward pass through the model and its score head, optionally followed by greedy steps. */
export interface ForwardRequest {
  /** Token ids, batch × length, row-major. */
  ids: BigInt64Array;
  batch: number;
  length: number;
  /** First position (0-based within `ids`) returned by the head. */
  start: number;
  /**
   * Targets for the log-probabilities, batch × (length − start + steps): the
   * pass's window, then one per greedy step.
   */
  targets: BigInt64Array;
  /** 0 or −∞ per vocabulary id (−∞: never chosen by ArgMax). */
  suppress: Float32Array;
  /**
   * Greedy steps after the pass (models with a cache only; the pass's window must
   * then be its last position): step s is fed the previous greedy id, with the KV
   * cache kept inside ONNX Runtime (engine/model/loop.ts).
   */
  steps?: number;
}

/** The head's outputs: greedy ids and target log-probabilities, batch × (length − start + steps). */
export interface ForwardResult {
  argmax: BigInt64Array;
  logprob: Float32Array;
}

/** A loaded causal language model with the score head. */
export interface LanguageModel {
  readonly path: string;
  readonly vocabSize: number;
  readonly layers: number;
  /** Attention heads (0 when unknown for a no-cache export without config.json). */
  readonly heads: number;
  readonly headDim: number;
  readonly interface: ModelInterface;
  /** Element type of logits and cache. */
  readonly dtype: "float32" | "float16";
  /** Whether positions are fed explicitly. */
  readonly hasPositionIds: boolean;
  /** Weight MatMul/Gemm FLOPs per token (2 × weight elements; embeddings excluded). */
  readonly matmulFlopsPerToken: number;
  /**
   * Most tokens one teacher-forced pass should hold ({@link CPU_PASS_TOKENS} on
   * the CPU, unbounded on GPUs); scoring splits larger batches into passes.
   */
  readonly passTokens: number;
  /** Weight MatMul FLOPs of one row's pass over `length` tokens whose head window is `window`. */
  passFlops(length: number, window: number): number;
  /** Runs one forward pass (blocks the thread while ORT computes). */
  forward(req: ForwardRequest): Promise<ForwardResult>;
  release(): Promise<void>;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** `cpu`, `cuda:N` or `webgpu:N`. */
  device: string;
  /** Intra-op threads (CPU). */
  threads: number;
  /** Declared vocabulary size; must match the graph's. */
  vocabSize?: number;
}

/** Loads an ONNX causal LM with the score head on a device (throws UserError on a bad model). */
export async function loadModel(path: string, opts: LoadOptions): Promise<LanguageModel> {
  const file = resolve(path);
  let read: ModelFile;
  try {
    read = readModelFile(file);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code) {
      throw new UserError(
        `${file}: cannot read the model file (${err.message}); check the checkpoint path in the experiment file.`,
      );
    }
    throw new UserError(`${file}: not an ONNX model (${err.message}).`);
  }
  const bytes = read.bytes;
  let parsed: Model;
  try {
    parsed = parseModel(bytes);
  } catch (e) {
    throw new UserError(`${file}: not an ONNX model (${(e as Error).message}).`);
  }
  const info = inspectModel(parsed, file, await readConfig(file), opts.vocabSize);
  const locations = [...externalLocations(parsed.graph)].filter((l) => l !== basename(file));
  for (const loc of locations) {
    const target = join(dirname(file), loc);
    const s = await stat(target).catch(() => null);
    if (!s) {
      throw new UserError(
        `${file}: external data file ${loc} is missing (expected at ${target}); copy it beside the model.`,
      );
    }
  }
  const withHead = info.interface === "no-cache"
    ? addScoreHead(bytes, parsed, info.logitsType, info.vocabSize)
    : buildGreedyLoop(bytes, parsed, info);
  const device = parseDevice(opts.device);
  let session: ort.InferenceSession;
  try {
    const options = sessionOptions(device, opts.threads);
    // Loaded from bytes, ORT resolves external data (the weights read in place from
    // the model file itself, and any external data files) against this folder.
    options.extra = { session: { model_external_initializers_file_folder_path: dirname(file) } };
    session = await ort.InferenceSession.create(withHead, options);
  } catch (e) {
    const msg = (e as Error).message;
    if (device.name !== "cpu" && /provider|backend|EP|cuda|webgpu/i.test(msg)) {
      throw new UserError(
        `${file}: the ${opts.device} execution provider is unavailable (${msg}). ${device.howToEnable}`,
      );
    }
    throw new UserError(`${file}: ONNX Runtime cannot load the model (${msg}).`);
  }
  return makeModel(file, info, session, device.name === "cpu" ? CPU_PASS_TOKENS : Infinity);
}

/**
 * Tokens per teacher-forced pass on the CPU. ONNX Runtime's float32 MatMul
 * (MLAS) runs ~10% slower on [4032, 512] × [512, 2048] than on [1008, 512] ×
 * [512, 2048] on the 2-core development machine (374–381 against 414–426
 * GFLOP/s: the larger output leaves the cache), and `extractable` at
 * Pythia-70M's shape ran 73 rows/s at batch 64 against 79–82 at batch 8, 16 and
 * 32. Batches above this are scored in passes of this many tokens at most, so
 * a larger batch is never slower; the activations stay bounded too.
 */
export const CPU_PASS_TOKENS = 2048;

function makeModel(
  path: string,
  info: ModelInfo,
  session: ort.InferenceSession,
  passTokens: number,
): LanguageModel {
  const idsTensor = (data: BigInt64Array, dims: number[]) =>
    info.idsType === DataType.INT32
      ? new ort.Tensor("int32", Int32Array.from(data, Number), dims)
      : new ort.Tensor("int64", data, dims);
  const looped = info.interface !== "no-cache";
  const forward = async (req: ForwardRequest): Promise<ForwardResult> => {
    const { batch, length } = req;
    const steps = req.steps ?? 0;
    const window = length - req.start;
    if (steps && (!looped || window !== 1)) {
      throw new Error(`${path}: greedy steps need a cache and a one-position window`);
    }
    const feeds: Record<string, ort.Tensor> = {
      [HEAD.targets]: new ort.Tensor("int64", req.targets, [batch, window + steps]),
      [HEAD.suppress]: new ort.Tensor("float32", req.suppress, [info.vocabSize]),
      [HEAD.start]: new ort.Tensor("int64", BigInt64Array.of(BigInt(req.start)), [1]),
    };
    if (looped) {
      feeds[LOOP.ids] = new ort.Tensor("int64", req.ids, [batch, length]);
      feeds[LOOP.trips] = new ort.Tensor("int64", BigInt64Array.of(BigInt(1 + steps)), []);
    } else {
      feeds.input_ids = idsTensor(req.ids, [batch, length]);
      if (info.hasAttentionMask) {
        feeds.attention_mask = idsTensor(new BigInt64Array(batch * length).fill(1n), [
          batch,
          length,
        ]);
      }
      if (info.hasPositionIds) {
        const pos = new BigInt64Array(batch * length);
        for (let i = 0; i < pos.length; i++) pos[i] = BigInt(i % length);
        feeds.position_ids = idsTensor(pos, [batch, length]);
      }
    }
    const out = await session.run(feeds, [HEAD.argmax, HEAD.logprob]);
    const argmax = out[HEAD.argmax].data as BigInt64Array;
    const logprob = out[HEAD.logprob].data as Float32Array;
    if (!steps) return { argmax, logprob };
    // [1 + steps, batch, 1] → batch × (1 + steps).
    const n = 1 + steps;
    const a = new BigInt64Array(batch * n), lp = new Float32Array(batch * n);
    for (let j = 0; j < n; j++) {
      for (let b = 0; b < batch; b++) {
        a[b * n + j] = argmax[j * batch + b];
        lp[b * n + j] = logprob[j * batch + b];
      }
    }
    return { argmax: a, logprob: lp };
  };
  return {
    path,
    vocabSize: info.vocabSize,
    layers: info.layers,
    heads: info.heads,
    headDim: info.headDim,
    interface: info.interface,
    dtype: info.logitsType === DataType.FLOAT16 ? "float16" : "float32",
    hasPositionIds: info.hasPositionIds,
    matmulFlopsPerToken: info.matmulFlopsPerToken,
    passTokens,
    passFlops: (length, window) =>
      (info.matmulFlopsPerToken - info.unembeddingFlopsPerToken) * length +
      info.unembeddingFlopsPerToken * window,
    forward,
    release: () => session.release(),
  };
}

/**
 * Plain feeds for a forward pass over `ids` without any past (for reference
 * implementations that fetch `logits` from an unmodified session).
 */
export function plainFeeds(
  info: ModelInfo,
  ids: BigInt64Array,
  batch: number,
  length: number,
): Record<string, ort.Tensor> {
  const t = (data: BigInt64Array, dims: number[]) =>
    info.idsType === DataType.INT32
      ? new ort.Tensor("int32", Int32Array.from(data, Number), dims)
      : new ort.Tensor("int64", data, dims);
  const feeds: Record<string, ort.Tensor> = { input_ids: t(ids, [batch, length]) };
  if (info.hasAttentionMask) {
    feeds.attention_mask = t(new BigInt64Array(batch * length).fill(1n), [batch, length]);
  }
  if (info.hasPositionIds) {
    feeds.position_ids = t(
      BigInt64Array.from({ length: batch * length }, (_, i) => BigInt(i % length)),
      [batch, length],
    );
  }
  const f16 = info.pastType === DataType.FLOAT16;
  for (const name of info.pastNames) {
    feeds[name] = new ort.Tensor(
      f16 ? "float16" : "float32",
      f16 ? new Uint16Array(0) : new Float32Array(0),
      [batch, info.heads, 0, info.headDim],
    );
  }
  if (info.interface === "merged") {
    feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(0), [1]);
  }
  return feeds;
}

export { type ModelInfo, type ModelInterface, readModelInfo } from "./model_info.ts";
