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

/** Key/value cache of a batch: per layer key then value, each [B, heads, length, headDim]. */
export interface Past {
  length: number;
  tensors: ort.Tensor[];
}

/** One forward pass through the model and its score head. */
export interface ForwardRequest {
  /** Token ids, batch × length, row-major. */
  ids: BigInt64Array;
  batch: number;
  length: number;
  /** Cache of the earlier positions (with-past/merged only); absent: none. */
  past?: Past;
  /** First position (0-based within `ids`) returned by the head. */
  start: number;
  /** Targets for the log-probabilities, batch × (length − start). */
  targets: BigInt64Array;
  /** 0 or −∞ per vocabulary id (−∞: never chosen by ArgMax). */
  suppress: Float32Array;
  /** Also return the cache of all positions (with-past/merged only). */
  wantPresent?: boolean;
  /**
   * With `wantPresent`: one buffer per cache tensor that ONNX Runtime writes the
   * cache into (from byte 0), saving a copy and an allocation per step.
   */
  presentInto?: ArrayBuffer[];
}

/** The head's outputs: greedy ids and target log-probabilities, batch × (length − start). */
export interface ForwardResult {
  argmax: BigInt64Array;
  logprob: Float32Array;
  present?: Past;
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
  /**
   * ONNX Runtime's CPU memory arena (default on). It reuses the head's chunk
   * buffers and the pass's activations instead of fresh pages from the system
   * each time: `extractable` at Pythia-70M's shape, batch 64, 72 rows/s with it
   * and 61 without, peak RSS 626 against 846 MB. Greedy steps (`full`), whose
   * shapes change every step, gain nothing from it and it keeps ~200 MB more, so
   * workers scoring in `full` mode turn it off.
   */
  arena?: boolean;
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
  const withHead = addScoreHead(bytes, parsed, info.logitsType, info.vocabSize);
  const device = parseDevice(opts.device);
  let session: ort.InferenceSession;
  try {
    const options = sessionOptions(device, opts.threads, opts.arena ?? true);
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
  return makeModel(file, info, session);
}

function makeModel(
  path: string,
  info: ModelInfo,
  session: ort.InferenceSession,
): LanguageModel {
  const f16 = info.pastType === DataType.FLOAT16;
  const cacheType = f16 ? "float16" : "float32";
  const idsTensor = (data: BigInt64Array, dims: number[]) =>
    info.idsType === DataType.INT32
      ? new ort.Tensor("int32", Int32Array.from(data, Number), dims)
      : new ort.Tensor("int64", data, dims);
  const forward = async (req: ForwardRequest): Promise<ForwardResult> => {
    const { batch, length } = req;
    const pastLen = req.past?.length ?? 0;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: idsTensor(req.ids, [batch, length]),
      [HEAD.targets]: new ort.Tensor("int64", req.targets, [batch, length - req.start]),
      [HEAD.suppress]: new ort.Tensor("float32", req.suppress, [info.vocabSize]),
      [HEAD.start]: new ort.Tensor("int64", BigInt64Array.of(BigInt(req.start)), [1]),
    };
    if (info.hasAttentionMask) {
      const total = pastLen + length;
      feeds.attention_mask = idsTensor(new BigInt64Array(batch * total).fill(1n), [batch, total]);
    }
    if (info.hasPositionIds) {
      const pos = new BigInt64Array(batch * length);
      for (let i = 0; i < pos.length; i++) pos[i] = BigInt(pastLen + (i % length));
      feeds.position_ids = idsTensor(pos, [batch, length]);
    }
    if (info.interface !== "no-cache") {
      info.pastNames.forEach((name, i) => {
        feeds[name] = req.past?.tensors[i] ??
          new ort.Tensor(
            cacheType,
            f16 ? new Uint16Array(0) : new Float32Array(0),
            [batch, info.heads, 0, info.headDim],
          );
      });
      if (info.interface === "merged") {
        feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(req.past ? 1 : 0), [1]);
      }
    } else if (req.past) throw new Error(`${path}: a no-cache model takes no past`);
    const present = req.wantPresent && info.interface !== "no-cache";
    const fetches: Record<string, ort.Tensor | null> = {
      [HEAD.argmax]: null,
      [HEAD.logprob]: null,
    };
    const into = present && req.presentInto
      ? req.presentInto.map((buf) => {
        const dims = [batch, info.heads, pastLen + length, info.headDim];
        const size = dims.reduce((a, b) => a * b, 1);
        const view = f16 ? new Uint16Array(buf, 0, size) : new Float32Array(buf, 0, size);
        return nativeFloat16(new ort.Tensor(cacheType, view, dims));
      })
      : null;
    if (present) info.presentNames.forEach((n, i) => fetches[n] = into?.[i] ?? null);
    for (const t of Object.values(feeds)) nativeFloat16(t);
    const out = await session.run(feeds, fetches);
    const result: ForwardResult = {
      argmax: out[HEAD.argmax].data as BigInt64Array,
      logprob: out[HEAD.logprob].data as Float32Array,
    };
    if (present) {
      result.present = {
        length: pastLen + length,
        tensors: into ?? info.presentNames.map((n) => out[n]),
      };
    }
    return result;
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
    passFlops: (length, window) =>
      (info.matmulFlopsPerToken - info.unembeddingFlopsPerToken) * length +
      info.unembeddingFlopsPerToken * window,
    forward,
    release: () => session.release(),
  };
}

/**
 * Makes a float16 tensor readable by ORT's native binding: onnxruntime-common
 * stores float16 data as a `Float16Array` where one exists (Deno), which the
 * binding does not accept as a typed array; a `Uint16Array` view of the same
 * bytes is what it reads.
 */
export function nativeFloat16(t: ort.Tensor): ort.Tensor {
  const data = t.data as ArrayBufferView;
  if (t.type === "float16" && !(data instanceof Uint16Array)) {
    const view = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    (t as unknown as { cpuData: Uint16Array }).cpuData = view;
  }
  return t;
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
