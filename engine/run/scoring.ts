/**
 * Batched memorization scores (DESIGN.md, "Definitions"): one teacher-forced
 * pass over the first k + l − 1 tokens gives, per row, the exact matched
 * prefix of greedy generation (hence `memorized`), the teacher-forced matches
 * and the continuation's mean negative log-likelihood. Mode `full` then runs
 * greedy generation after the first mismatch (exactness lemma), so `matches`
 * equals free-running greedy generation.
 *
 * Greedy = ArgMax with ties to the lowest id and the suppressed ids never
 * chosen. NLL = mean over the l continuation tokens of −log softmax(logits)
 * at the true token, with the full, unsuppressed softmax.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { UserError } from "../errors.ts";
import type { LanguageModel, Past } from "../model/model.ts";
import type { MemorizationSettings } from "../types.ts";

/** Per-row results of {@link scoreBatch}. */
export interface BatchScores {
  /** Matched continuation tokens 0..l (teacher-forced in `extractable` mode). */
  matches: Uint8Array;
  /** Length of the exact matched prefix 0..l (`memorized` ⇔ prefix = l). */
  prefix: Uint8Array;
  /** Teacher-forced mean NLL of the continuation (nats/token). */
  nll: Float32Array;
}

const suppressCache = new WeakMap<LanguageModel, Map<string, Float32Array>>();

/** The additive ArgMax mask: −∞ at the suppressed ids (ids outside the vocabulary are moot). */
export function suppressVector(model: LanguageModel, ids: number[]): Float32Array {
  let byModel = suppressCache.get(model);
  if (!byModel) suppressCache.set(model, byModel = new Map());
  const key = ids.join(",");
  let v = byModel.get(key);
  if (!v) {
    v = new Float32Array(model.vocabSize);
    for (const id of ids) if (id >= 0 && id < v.length) v[id] = -Infinity;
    byModel.set(key, v);
  }
  return v;
}

/**
 * Scores `batch` rows; `tokens` holds each row's tokens [offset, offset + k + l)
 * (batch × (k + l), row-major).
 */
export async function scoreBatch(
  model: LanguageModel,
  tokens: Int32Array,
  batch: number,
  settings: MemorizationSettings,
): Promise<BatchScores> {
  const k = settings.context;
  const l = settings.continuation;
  const width = k + l;
  if (k < 1 || l < 1 || l > 255) {
    throw new UserError(
      `memorization context ${k} / continuation ${l}: need context ≥ 1 and 1 ≤ continuation ≤ 255.`,
    );
  }
  if (tokens.length !== batch * width) {
    throw new Error(`scoreBatch: ${tokens.length} tokens for ${batch} rows of ${width}`);
  }
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] < 0 || tokens[i] >= model.vocabSize) {
      throw new UserError(
        `${model.path}: token id ${tokens[i]} (batch row ${
          Math.floor(i / width)
        }) is outside the model's vocabulary of ${model.vocabSize}; the data and the model do not belong together.`,
      );
    }
  }
  if (batch === 0) {
    return { matches: new Uint8Array(0), prefix: new Uint8Array(0), nll: new Float32Array(0) };
  }
  const suppress = suppressVector(model, settings.suppressedTokens);
  const t = k + l - 1;
  const ids = new BigInt64Array(batch * t);
  const targets = new BigInt64Array(batch * l);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) ids[b * t + i] = BigInt(tokens[b * width + i]);
    for (let j = 0; j < l; j++) targets[b * l + j] = BigInt(tokens[b * width + k + j]);
  }
  const full = settings.mode === "full";
  const tf = await model.forward({
    ids,
    batch,
    length: t,
    start: k - 1,
    targets,
    suppress,
    wantPresent: full && model.interface !== "no-cache",
  });
  const matches = new Uint8Array(batch);
  const prefix = new Uint8Array(batch);
  const nll = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    let p = -1;
    let m = 0;
    let sum = 0;
    for (let j = 0; j < l; j++) {
      const ok = tf.argmax[b * l + j] === targets[b * l + j];
      if (ok) m++;
      else if (p < 0) p = j;
      sum -= tf.logprob[b * l + j];
    }
    prefix[b] = p < 0 ? l : p;
    matches[b] = m;
    nll[b] = sum / l;
  }
  if (full) {
    const gen = Array.from(tf.argmax, Number);
    if (model.interface === "no-cache") {
      await generateNoCache(model, tokens, batch, k, l, prefix, gen, suppress);
    } else await generateWithPast(model, tf.present!, batch, k, l, prefix, gen, suppress);
    for (let b = 0; b < batch; b++) {
      let m = 0;
      for (let j = 0; j < l; j++) if (gen[b * l + j] === tokens[b * width + k + j]) m++;
      matches[b] = m;
    }
  }
  return { matches, prefix, nll };
}

/**
 * Greedy steps with the KV cache. At step j (predicting continuation token j)
 * every row with prefix p < j is active; all active rows have exactly
 * k + j − 1 cached positions, so no padding is needed. A row joins at
 * j = p + 1 with the teacher-forced cache of its first k + p tokens (equal to
 * the generation's cache up to the mismatch), appended after the active rows.
 * The cache lives in two buffer sets used in turn (a step reads one and ONNX
 * Runtime writes the next into the other). `gen` (batch × l) holds the
 * teacher-forced argmax on entry and the generated tokens on return.
 */
async function generateWithPast(
  model: LanguageModel,
  tfPresent: Past,
  batch: number,
  k: number,
  l: number,
  prefix: Uint8Array,
  gen: number[],
  suppress: Float32Array,
): Promise<void> {
  const sets = [0, 1].map(() =>
    tfPresent.tensors.map((t) => {
      const [, heads, , headDim] = t.dims;
      const bytes = (t.data as Float32Array | Uint16Array).BYTES_PER_ELEMENT;
      return new ArrayBuffer(batch * heads * (k + l) * headDim * bytes);
    })
  );
  let current = 0; // the set holding `past`
  let active: number[] = [];
  let past: Past | null = null;
  for (let j = 1; j < l; j++) {
    const joining: number[] = [];
    for (let b = 0; b < batch; b++) if (prefix[b] === j - 1) joining.push(b);
    if (joining.length) {
      past = appendRows(sets[current], active.length, tfPresent, joining, k + j - 1);
      active = active.concat(joining);
    }
    if (!active.length) continue;
    const n = active.length;
    const ids = BigInt64Array.from(active, (b) => BigInt(gen[b * l + j - 1]));
    const out = await model.forward({
      ids,
      batch: n,
      length: 1,
      past: past!,
      start: 0,
      targets: new BigInt64Array(n),
      suppress,
      wantPresent: j < l - 1,
      presentInto: sets[1 - current],
    });
    active.forEach((b, i) => gen[b * l + j] = Number(out.argmax[i]));
    past = out.present ?? null;
    current = 1 - current;
  }
}

/**
 * Writes the joining rows' teacher-forced cache, cut to `length` positions,
 * after the first `activeRows` rows of `buffers` (which hold the active rows'
 * cache of the same length); returns the cache of all rows as views.
 */
function appendRows(
  buffers: ArrayBuffer[],
  activeRows: number,
  tf: Past,
  joining: number[],
  length: number,
): Past {
  const tensors = tf.tensors.map((src, i) => {
    const [, heads, tfLen, headDim] = src.dims;
    const rows = activeRows + joining.length;
    // Copy bits: float16 data may come as a Float16Array (values, not bits).
    const raw = src.data as Float32Array | Uint16Array;
    const half = raw.BYTES_PER_ELEMENT === 2;
    const data = half ? new Uint16Array(raw.buffer, raw.byteOffset, raw.length) : raw;
    const size = rows * heads * length * headDim;
    const out = half ? new Uint16Array(buffers[i], 0, size) : new Float32Array(buffers[i], 0, size);
    const rowSize = heads * length * headDim;
    joining.forEach((b, r) => {
      for (let h = 0; h < heads; h++) {
        const from = (b * heads + h) * tfLen * headDim;
        out.set(
          data.subarray(from, from + length * headDim),
          (activeRows + r) * rowSize + h * length * headDim,
        );
      }
    });
    return new ort.Tensor(src.type, out, [rows, heads, length, headDim]);
  });
  return { length, tensors };
}

/** Greedy steps without a cache: at step j the active rows are re-run over k + j tokens. */
async function generateNoCache(
  model: LanguageModel,
  tokens: Int32Array,
  batch: number,
  k: number,
  l: number,
  prefix: Uint8Array,
  gen: number[],
  suppress: Float32Array,
): Promise<void> {
  const width = k + l;
  for (let j = 1; j < l; j++) {
    const active: number[] = [];
    for (let b = 0; b < batch; b++) if (prefix[b] < j) active.push(b);
    if (!active.length) continue;
    const len = k + j;
    const ids = new BigInt64Array(active.length * len);
    active.forEach((b, r) => {
      for (let i = 0; i < k; i++) ids[r * len + i] = BigInt(tokens[b * width + i]);
      for (let i = 0; i < j; i++) ids[r * len + k + i] = BigInt(gen[b * l + i]);
    });
    const out = await model.forward({
      ids,
      batch: active.length,
      length: len,
      start: len - 1,
      targets: new BigInt64Array(active.length),
      suppress,
    });
    active.forEach((b, r) => gen[b * l + j] = Number(out.argmax[r]));
  }
}
