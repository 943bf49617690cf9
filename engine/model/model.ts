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
import { HELD, withHeldCache } from "./held_cache.ts";
import {
  externalLocations,
  inspectModel,
  type ModelInfo,
  type ModelInterface,
  readConfig,
} from "./model_info.ts";
import { type ModelFile, readModelFile } from "./model_file.ts";
import { isHfFolder, readHfFolder } from "./hf/folder.ts";
import { DataType, type Model, parseModel } from "./onnx_proto.ts";
import { parseDevice, sessionOptions } from "./providers.ts";
import { ifNotFound } from "../os/fs_errors.ts";

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
  /** How greedy steps run (see {@link StepMode}). */
  readonly stepMode: StepMode;
  /** Weight MatMul/Gemm FLOPs per token (2 × weight elements; embeddings excluded). */
  readonly matmulFlopsPerToken: number;
  /**
   * Positions the model can take, where its `config.json` bounds them (a GPT-2
   * folder's learned position table, `n_positions`); undefined otherwise.
   */
  readonly maxPositions?: number;
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
   * Run greedy steps in the Loop (engine/model/loop.ts) even where the cache
   * could be held in JavaScript (tests and the bench compare the two).
   */
  loop?: boolean;
}

/** Loads an ONNX causal LM with the score head on a device (throws UserError on a bad model). */
export async function loadModel(path: string, opts: LoadOptions): Promise<LanguageModel> {
  const file = resolve(path);
  // A Hugging Face model folder: the graph is built over the checkpoint's own files.
  const hf = isHfFolder(file) ? readHfFolder(file) : null;
  const folder = hf ? hf.dataDir : dirname(file);
  let read: ModelFile;
  try {
    read = hf ? { bytes: hf.bytes, size: hf.storedBytes } : readModelFile(file);
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
  const config = hf ? hf.config : await readConfig(file);
  const info = inspectModel(parsed, file, config, opts.vocabSize);
  const locations = [...externalLocations(parsed.graph)].filter((l) => l !== basename(file));
  for (const loc of locations) {
    const target = join(folder, loc);
    const s = await stat(target).catch(ifNotFound(null));
    if (!s) {
      throw new UserError(
        `${file}: external data file ${loc} is missing (expected at ${target}); copy it beside the model.`,
      );
    }
  }
  const device = parseDevice(opts.device);
  const cpu = device.name === "cpu";
  const half = info.pastType === DataType.FLOAT16 || info.logitsType === DataType.FLOAT16;
  const { steps, graph: withHead } = headedGraph(bytes, parsed, info, cpu, half, !!opts.loop);
  const open = async (graph: Uint8Array): Promise<ort.InferenceSession> => {
    try {
      const options = sessionOptions(device, opts.threads);
      // Loaded from bytes, ORT resolves external data (the weights read in place from
      // the model file itself, and any external data files) against this folder.
      options.extra = { session: { model_external_initializers_file_folder_path: folder } };
      return await ort.InferenceSession.create(graph, options);
    } catch (e) {
      const msg = (e as Error).message;
      if (device.name !== "cpu" && /provider|backend|EP|cuda|webgpu/i.test(msg)) {
        throw new UserError(
          `${file}: the ${opts.device} execution provider is unavailable (${msg}). ${device.howToEnable}`,
        );
      }
      throw new UserError(`${file}: ONNX Runtime cannot load the model (${msg}).`);
    }
  };
  const passTokens = !cpu ? Infinity : half ? CPU_FLOAT16_PASS_TOKENS : CPU_PASS_TOKENS;
  const m: Loaded = {
    path: file,
    info,
    session: await open(withHead),
    passTokens,
    stepMode: steps,
  };
  if (m.stepMode === "held" && !(await masksUnwrittenSlots(m))) {
    await m.session.release();
    m.stepMode = "loop";
    m.session = await open(buildGreedyLoop(bytes, parsed, info));
  }
  const model = makeModel(m);
  return hf?.spec.kind === "gpt2" ? { ...model, maxPositions: hf.spec.positions } : model;
}

/**
 * How a model runs greedy steps (see {@link StepMode}) and the graph loaded for
 * it: the model with the score head, rewritten to hold the cache in JavaScript
 * on the CPU where it allows that (./held_cache.ts) unless `loop`, or wrapped
 * in the greedy Loop (./loop.ts).
 */
function headedGraph(
  bytes: Uint8Array,
  parsed: Model,
  info: ModelInfo,
  cpu: boolean,
  half: boolean,
  loop: boolean,
): { steps: StepMode; graph: Uint8Array } {
  const steps: StepMode = info.interface === "no-cache" ? "none" : cpu && half ? "stepped" : "loop";
  const held = steps === "loop" && cpu && !loop ? withHeldCache(bytes, parsed.graph, info) : null;
  const head = (b: Uint8Array) => addScoreHead(b, parsed, info.logitsType, info.vocabSize, cpu);
  if (held) return { steps: "held", graph: head(held) };
  return { steps, graph: steps === "loop" ? buildGreedyLoop(bytes, parsed, info) : head(bytes) };
}

/**
 * Whether a `held` model masks the cache's unwritten slots as its attention
 * mask says (engine/model/held_cache.ts): one row's prompt and greedy steps,
 * run with those slots zero and then filled with 3s, must give the same bits
 * (a masked slot's softmax weight is exactly 0, and 0 × 3 is 0). An export
 * that applies only the causal mask attends to them; it runs with the Loop
 * instead, never as a silently different model.
 */
async function masksUnwrittenSlots(m: Loaded): Promise<boolean> {
  // Two steps: the first has one unwritten slot (the last step's token is never cached).
  const length = 2, steps = 2, vocab = m.info.vocabSize;
  const req: ForwardRequest = {
    ids: BigInt64Array.from({ length }, (_, i) => BigInt((7 * i + 1) % vocab)),
    batch: 1,
    length,
    start: length - 1,
    targets: new BigInt64Array(1 + steps),
    suppress: new Float32Array(vocab),
    steps,
  };
  try {
    const zero = await forwardHeld(m, req), filled = await forwardHeld(m, req, 3);
    return zero.argmax.every((x, i) => x === filled.argmax[i]) &&
      zero.logprob.every((x, i) => Object.is(x, filled.logprob[i]));
  } finally {
    m.held = undefined;
  }
}

/**
 * Tokens per teacher-forced pass on the CPU. ONNX Runtime's float32 MatMul
 * (MLAS) runs ~10% slower on [4032, 512] × [512, 2048] than on [1008, 512] ×
 * [512, 2048] on the 2-core development machine (374–381 against 414–426
 * GFLOP/s: the larger output leaves the cache), and `extractable` at
 * Pythia-70M's shape ran 73 rows/s at batch 64 against 79–82 at batch 8, 16 and
 * 32. `forward` splits larger batches into passes of this many tokens at
 * most, so a larger batch is never slower; the activations stay bounded too:
 * at 1024 tokens (16 rows of 63) against 2048, `extractable` at batch 64
 * peaked 431–432 against 496–497 MB for the whole process, at 1.19× the rows/s
 * (three runs each, side by side, 2026-12-03).
 */
export const CPU_PASS_TOKENS = 1024;

/**
 * Tokens per pass for float16 models on the CPU, whose head cuts its window
 * from the model's own [batch, tokens, vocabulary] logits (engine/model/graph.ts,
 * the comment on addScoreHead): 512 tokens are 52 MB of float16 logits at Pythia's vocabulary.
 */
export const CPU_FLOAT16_PASS_TOKENS = 512;

/**
 * Tokens per part of `full`'s prompt pass when the cache is held in JavaScript
 * (engine/model/held_cache.ts): rows are independent until the greedy steps, so
 * the prompt pass runs over parts of the batch, each writing its rows' slots of
 * the cache, and its activations are those of this many tokens instead of the
 * whole batch's (~126 MB at Pythia-70M's shape and batch 64). At batch 64,
 * parts of 256 tokens against 512: whole-process peak 529–537 against 542–549
 * MB, rows/s 1.05× (three runs each, side by side, 2026-12-03).
 */
export const CPU_HELD_PROMPT_TOKENS = 256;

/**
 * How a model runs greedy steps: `loop` in one session run (engine/model/loop.ts),
 * `held` one session run per step over a cache held once in JavaScript
 * (engine/model/held_cache.ts: float32 with-past models on the CPU), `stepped`
 * one session run per step with the cache fetched and fed back through
 * JavaScript, `none` (no cache: scoring re-runs the prefix). `stepped` is for
 * float16 models on the CPU, which keep their own graph around the unembedding (engine/model/graph.ts,
 * the comment on addScoreHead): ONNX Runtime also optimizes a Loop's body less than a graph
 * (no cast of a float16 weight folded, no scaled MatMul fused), which in float16
 * can move a near-tie. In float32 the loop changes no score measured (every
 * agreement test, 1024 bench rows); on GPUs float16 runs natively.
 */
export type StepMode = "loop" | "held" | "stepped" | "none";

/** A loaded session with what {@link forward} needs to know of it. */
interface Loaded {
  path: string;
  info: ModelInfo;
  session: ort.InferenceSession;
  /** Tokens per pass at most (see {@link CPU_PASS_TOKENS}). */
  passTokens: number;
  stepMode: StepMode;
  /** `held` models: the cache buffers, kept for the next batch (see {@link heldBuffers}). */
  held?: Float32Array[];
}

function makeModel(m: Loaded): LanguageModel {
  const { path, info } = m;
  return {
    path,
    vocabSize: info.vocabSize,
    layers: info.layers,
    heads: info.heads,
    headDim: info.headDim,
    interface: info.interface,
    dtype: info.logitsType === DataType.FLOAT16 ? "float16" : "float32",
    hasPositionIds: info.hasPositionIds,
    stepMode: m.stepMode,
    matmulFlopsPerToken: info.matmulFlopsPerToken,
    passFlops: (length, window) =>
      (info.matmulFlopsPerToken - info.unembeddingFlopsPerToken) * length +
      info.unembeddingFlopsPerToken * window,
    forward: (req) => forward(m, req),
    release: () => m.session.release(),
  };
}

/** One forward pass (see {@link ForwardRequest}): split by rows, stepped through JS, or the loop. */
async function forward(m: Loaded, req: ForwardRequest): Promise<ForwardResult> {
  const steps = req.steps ?? 0;
  if (steps && (m.stepMode === "none" || req.length - req.start !== 1)) {
    throw new Error(`${m.path}: greedy steps need a cache and a one-position window`);
  }
  // Passes of at most passTokens tokens (CPU_PASS_TOKENS, CPU_FLOAT16_PASS_TOKENS): rows are
  // independent, so a batch is split by rows; not the loop's greedy steps, which gain from
  // the whole batch (the weights are read once per step for all its rows).
  const perPass = Math.max(1, Math.floor(m.passTokens / req.length));
  if (req.batch > perPass && (!steps || m.stepMode === "stepped")) {
    return await forwardInParts(m, req, perPass);
  }
  if (steps && m.stepMode === "held") return await forwardHeld(m, req);
  if (m.stepMode !== "loop") return await forwardStepped(m, req);
  return await forwardLoop(m, req);
}

/** {@link forward} over parts of `perPass` rows, concatenated. */
async function forwardInParts(
  m: Loaded,
  req: ForwardRequest,
  perPass: number,
): Promise<ForwardResult> {
  const { batch, length } = req;
  const n = length - req.start + (req.steps ?? 0);
  const argmax = new BigInt64Array(batch * n), logprob = new Float32Array(batch * n);
  for (let from = 0; from < batch; from += perPass) {
    const rows = Math.min(perPass, batch - from);
    const part = await forward(m, {
      ...req,
      batch: rows,
      ids: req.ids.subarray(from * length, (from + rows) * length),
      targets: req.targets.subarray(from * n, (from + rows) * n),
    });
    argmax.set(part.argmax, from * n);
    logprob.set(part.logprob, from * n);
  }
  return { argmax, logprob };
}

/** One pass of the headed graph, then (stepped models) one more per greedy step, the cache via JS. */
async function forwardStepped(m: Loaded, req: ForwardRequest): Promise<ForwardResult> {
  const { batch, length, start, suppress } = req;
  const steps = req.steps ?? 0;
  if (!steps) {
    const r = await pass(m, { ids: req.ids, batch, length, start, targets: req.targets, suppress });
    return { argmax: r.argmax, logprob: r.logprob };
  }
  let r = await pass(m, {
    ids: req.ids,
    batch,
    length,
    start,
    targets: stepTargets(req, 0),
    suppress,
    wantPresent: true,
  });
  const parts = [r];
  for (let j = 1; j <= steps; j++) {
    r = await pass(m, {
      ids: BigInt64Array.from(r.argmax),
      batch,
      length: 1,
      start: 0,
      targets: stepTargets(req, j),
      suppress,
      past: r.present,
      wantPresent: j < steps,
    });
    parts.push(r);
  }
  return byRow(parts, batch);
}

/**
 * The prompt pass in parts of rows, then one session run per greedy step, the
 * cache held once in JavaScript buffers (engine/model/held_cache.ts);
 * `fill`: the value of the slots not yet written (0; see {@link masksUnwrittenSlots}).
 */
async function forwardHeld(m: Loaded, req: ForwardRequest, fill = 0): Promise<ForwardResult> {
  const { info } = m;
  const steps = req.steps!;
  // Slots for the prompt and every step's token but the last's (its keys are never read).
  const capacity = req.length + steps - 1;
  const cache = heldBuffers(m, req.batch * info.heads * capacity * info.headDim, fill);
  const first = await heldPrompt(m, req, cache, capacity);
  return byRow([first, ...await heldSteps(m, req, cache, capacity, first.argmax)], req.batch);
}

/**
 * {@link forwardHeld}'s prompt pass, by parts of rows ({@link CPU_HELD_PROMPT_TOKENS}):
 * each part's keys and values go to its rows' first slots.
 */
async function heldPrompt(
  m: Loaded,
  req: ForwardRequest,
  cache: Float32Array[],
  capacity: number,
): Promise<ForwardResult> {
  const { info } = m;
  const { batch, length } = req;
  const slot = info.headDim, H = info.heads;
  const fresh = info.pastNames.map((_, i) => HELD.fresh(i));
  const first: ForwardResult = {
    argmax: new BigInt64Array(batch),
    logprob: new Float32Array(batch),
  };
  const perPart = Math.max(1, Math.floor(CPU_HELD_PROMPT_TOKENS / length));
  for (let from = 0; from < batch; from += perPart) {
    const rows = Math.min(perPart, batch - from);
    const feeds = {
      ...modelFeeds(info, req.ids.subarray(from * length, (from + rows) * length), rows, length),
      ...headFeeds(info, stepTargets(req, 0, from, rows), [rows, 1], req.suppress, req.start),
    };
    const out = await m.session.run(feeds, [HEAD.argmax, HEAD.logprob, ...fresh]);
    first.argmax.set(out[HEAD.argmax].data as BigInt64Array, from);
    first.logprob.set(out[HEAD.logprob].data as Float32Array, from);
    fresh.forEach((name, i) => {
      const keys = out[name].data as Float32Array;
      for (let r = 0; r < rows * H; r++) {
        const src = keys.subarray(r * length * slot, (r + 1) * length * slot);
        cache[i].set(src, (from * H + r) * capacity * slot);
      }
    });
  }
  return first;
}

/**
 * {@link forwardHeld}'s greedy steps over the whole batch, each fed the
 * buffers as they are with the slots written so far allowed by the mask, and
 * writing its token's keys and values to the next slot.
 */
async function heldSteps(
  m: Loaded,
  req: ForwardRequest,
  cache: Float32Array[],
  capacity: number,
  firstIds: BigInt64Array,
): Promise<ForwardResult[]> {
  const { info } = m;
  const { batch, length } = req;
  const steps = req.steps!, slot = info.headDim, H = info.heads;
  const fresh = info.pastNames.map((_, i) => HELD.fresh(i));
  const past = cache.map((c) => new ort.Tensor("float32", c, [batch, H, capacity, slot]));
  const mask = new BigInt64Array(batch * (capacity + 1));
  for (let b = 0; b < batch; b++) {
    const row = b * (capacity + 1);
    mask.fill(1n, row, row + length);
    mask[row + capacity] = 1n;
  }
  const parts: ForwardResult[] = [];
  let previous = firstIds;
  for (let j = 1; j <= steps; j++) {
    const position = length + j - 1;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: idsTensor(info, BigInt64Array.from(previous), [batch, 1]),
      attention_mask: idsTensor(info, mask, [batch, capacity + 1]),
      position_ids: idsTensor(info, new BigInt64Array(batch).fill(BigInt(position)), [batch, 1]),
      ...headFeeds(info, stepTargets(req, j), [batch, 1], req.suppress, 0),
    };
    info.pastNames.forEach((name, i) => feeds[name] = past[i]);
    const keep = j < steps;
    const out = await m.session.run(feeds, [HEAD.argmax, HEAD.logprob, ...(keep ? fresh : [])]);
    const r = {
      argmax: out[HEAD.argmax].data as BigInt64Array,
      logprob: out[HEAD.logprob].data as Float32Array,
    };
    parts.push(r);
    previous = r.argmax;
    if (!keep) break;
    fresh.forEach((name, i) => {
      const keys = out[name].data as Float32Array;
      for (let r = 0; r < batch * H; r++) {
        cache[i].set(keys.subarray(r * slot, (r + 1) * slot), (r * capacity + position) * slot);
      }
    });
    for (let b = 0; b < batch; b++) mask[b * (capacity + 1) + position] = 1n;
  }
  return parts;
}

/**
 * Each row's target of greedy step `j` (0: the pass) for rows `from` … `from +
 * rows` of a request with steps, whose window is its last position.
 */
function stepTargets(req: ForwardRequest, j: number, from = 0, rows = req.batch): BigInt64Array {
  const n = 1 + req.steps!;
  const targets = new BigInt64Array(rows);
  for (let b = 0; b < rows; b++) targets[b] = req.targets[(from + b) * n + j];
  return targets;
}

/** The score head's feeds: the targets (of shape `dims`), the suppressed ids, the window's start. */
function headFeeds(
  info: ModelInfo,
  targets: BigInt64Array,
  dims: number[],
  suppress: Float32Array,
  start: number,
): Record<string, ort.Tensor> {
  return {
    [HEAD.targets]: new ort.Tensor("int64", targets, dims),
    [HEAD.suppress]: new ort.Tensor("float32", suppress, [info.vocabSize]),
    [HEAD.start]: new ort.Tensor("int64", BigInt64Array.of(BigInt(start)), [1]),
  };
}

/**
 * The cache buffers of {@link forwardHeld}, `size` elements each, filled with
 * `fill` (0; a masked slot's softmax weight is 0, and 0 × a stale finite value
 * is 0, but not 0 × ∞): kept on the model and reused while large enough, so a
 * worker holds one set.
 */
function heldBuffers(m: Loaded, size: number, fill = 0): Float32Array[] {
  if (!m.held || m.held[0].length < size) {
    m.held = undefined;
    m.held = m.info.pastNames.map(() => new Float32Array(size));
  }
  return m.held.map((c) => c.subarray(0, size).fill(fill));
}

/** The pass and every greedy step in one session run of the loop graph (engine/model/loop.ts). */
async function forwardLoop(m: Loaded, req: ForwardRequest): Promise<ForwardResult> {
  const { batch, length } = req;
  const steps = req.steps ?? 0;
  const feeds: Record<string, ort.Tensor> = {
    ...headFeeds(m.info, req.targets, [batch, length - req.start + steps], req.suppress, req.start),
    [LOOP.ids]: new ort.Tensor("int64", req.ids, [batch, length]),
    [LOOP.trips]: new ort.Tensor("int64", BigInt64Array.of(BigInt(1 + steps)), []),
  };
  const out = await m.session.run(feeds, [HEAD.argmax, HEAD.logprob]);
  const argmax = out[HEAD.argmax].data as BigInt64Array;
  const logprob = out[HEAD.logprob].data as Float32Array;
  if (!steps) return { argmax, logprob };
  // [1 + steps, batch, 1] → batch × (1 + steps).
  const parts = Array.from({ length: 1 + steps }, (_, j) => ({
    argmax: argmax.subarray(j * batch, (j + 1) * batch),
    logprob: logprob.subarray(j * batch, (j + 1) * batch),
  }));
  return byRow(parts, batch);
}

/** A model's key/value cache after `length` positions (the `present` outputs of a pass). */
export interface Past {
  length: number;
  tensors: ort.Tensor[];
}

/** What one {@link pass} runs: a request without greedy steps, after an optional cache. */
interface PassInput extends Omit<ForwardRequest, "steps"> {
  /** The cache of the positions before `ids` (default: none). */
  past?: Past | null;
  /** Fetch the cache after `ids` too. */
  wantPresent?: boolean;
}

/** One run of the plain (headed) graph over `ids` after `past` (stepped and no-cache models). */
async function pass(
  m: Loaded,
  p: PassInput,
): Promise<ForwardResult & { present: Past | null }> {
  const { info } = m;
  const past = p.past ?? null;
  const feeds: Record<string, ort.Tensor> = {
    ...modelFeeds(info, p.ids, p.batch, p.length, past),
    ...headFeeds(info, p.targets, [p.batch, p.length - p.start], p.suppress, p.start),
  };
  for (const t of Object.values(feeds)) nativeFloat16(t);
  const fetch = [HEAD.argmax, HEAD.logprob, ...(p.wantPresent ? info.presentNames : [])];
  const out = await m.session.run(feeds, fetch);
  return {
    argmax: out[HEAD.argmax].data as BigInt64Array,
    logprob: out[HEAD.logprob].data as Float32Array,
    present: p.wantPresent
      ? { length: (past?.length ?? 0) + p.length, tensors: info.presentNames.map((n) => out[n]) }
      : null,
  };
}

/**
 * The model's own inputs for `ids` (batch × length) after `past`: token ids,
 * the attention mask and positions when the model takes them, and the cache
 * (empty without `past`) with `use_cache_branch` for the cached interfaces.
 * The score head's passes add its inputs; without `past` these are the feeds
 * of a plain forward pass that fetches `logits` from the unmodified model
 * (the reference implementations in tests/ and bench/).
 */
export function modelFeeds(
  info: ModelInfo,
  ids: BigInt64Array,
  batch: number,
  length: number,
  past: Past | null = null,
): Record<string, ort.Tensor> {
  const pastLen = past?.length ?? 0;
  const feeds: Record<string, ort.Tensor> = { input_ids: idsTensor(info, ids, [batch, length]) };
  if (info.hasAttentionMask) {
    const total = pastLen + length;
    feeds.attention_mask = idsTensor(info, new BigInt64Array(batch * total).fill(1n), [
      batch,
      total,
    ]);
  }
  if (info.hasPositionIds) {
    const pos = new BigInt64Array(batch * length);
    for (let i = 0; i < pos.length; i++) pos[i] = BigInt(pastLen + (i % length));
    feeds.position_ids = idsTensor(info, pos, [batch, length]);
  }
  if (info.interface !== "no-cache") {
    const cacheType = info.pastType === DataType.FLOAT16 ? "float16" : "float32";
    info.pastNames.forEach((name, i) => {
      feeds[name] = past?.tensors[i] ??
        new ort.Tensor(
          cacheType,
          cacheType === "float16" ? new Uint16Array(0) : new Float32Array(0),
          [batch, info.heads, 0, info.headDim],
        );
    });
    if (info.interface === "merged") {
      feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(past ? 1 : 0), [1]);
    }
  }
  return feeds;
}

/** Token ids, masks or positions as the model's ids type. */
function idsTensor(info: ModelInfo, data: BigInt64Array, dims: number[]): ort.Tensor {
  return info.idsType === DataType.INT32
    ? new ort.Tensor("int32", Int32Array.from(data, Number), dims)
    : new ort.Tensor("int64", data, dims);
}

/** Rows of per-step outputs ([steps][batch]) as batch × steps, row-major. */
function byRow(
  parts: { argmax: ArrayLike<bigint>; logprob: ArrayLike<number> }[],
  batch: number,
): ForwardResult {
  const n = parts.length;
  const argmax = new BigInt64Array(batch * n), logprob = new Float32Array(batch * n);
  parts.forEach((p, j) => {
    for (let b = 0; b < batch; b++) {
      argmax[b * n + j] = p.argmax[b];
      logprob[b * n + j] = p.logprob[b];
    }
  });
  return { argmax, logprob };
}

/**
 * Makes a float16 tensor readable by ORT's native binding: onnxruntime-common
 * stores float16 data as a `Float16Array` where one exists (Deno), which the
 * binding does not accept as a typed array; a `Uint16Array` view of the same
 * bytes is what it reads.
 */
function nativeFloat16(t: ort.Tensor): ort.Tensor {
  const data = t.data as ArrayBufferView;
  if (t.type === "float16" && !(data instanceof Uint16Array)) {
    const view = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    (t as unknown as { cpuData: Uint16Array }).cpuData = view;
  }
  return t;
}

export { type ModelInfo, type ModelInterface, readModelInfo } from "./model_info.ts";
