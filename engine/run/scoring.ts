/**
 * Batched memorization scores (docs/design.md, "Definitions"). Mode
 * `extractable`: one teacher-forced pass over the first k + l − 1 tokens
 * gives, per row, the exact matched prefix of greedy generation (hence
 * `memorized`; exact by the lemma in docs/design.md), the teacher-forced
 * matches and the continuation's mean negative log-likelihood.
 * Mode `full`: free-running greedy generation (with the KV cache: a prompt pass
 * and l − 1 batched steps, the least work that gives the exact score), so
 * `matches` equals free-running greedy generation; its NLL is reported only for
 * rows whose matched prefix reaches l − 1 (where it is teacher-forced), NaN for
 * the others (the NLL signal of every row comes from `extractable`).
 *
 * Greedy = ArgMax with ties to the lowest id and the suppressed ids never
 * chosen. NLL = mean over the l continuation tokens of −log softmax(logits)
 * at the true token, with the full, unsuppressed softmax.
 *
 * @module
 */
import { UserError } from "../errors.ts";
import type { LanguageModel } from "../model/model.ts";
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
  // Both modes run the model over positions 0 … k + l − 2.
  if (model.maxPositions !== undefined && width - 1 > model.maxPositions) {
    throw new UserError(
      `${model.path}: memorization context ${k} + continuation ${l} needs ${width - 1} ` +
        `positions, but config.json's n_positions is ${model.maxPositions} (the model's learned ` +
        "position table); use a shorter context or continuation.",
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
  if (settings.mode === "full" && model.interface !== "no-cache") {
    return await freeRunning(model, tokens, batch, k, l, suppress);
  }
  const t = k + l - 1;
  const ids = new BigInt64Array(batch * t);
  const targets = new BigInt64Array(batch * l);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) ids[b * t + i] = BigInt(tokens[b * width + i]);
    for (let j = 0; j < l; j++) targets[b * l + j] = BigInt(tokens[b * width + k + j]);
  }
  const tf = await model.forward({ ids, batch, length: t, start: k - 1, targets, suppress });
  const scores = tally(tf.argmax, tf.logprob, tokens, batch, k, l, 0);
  if (settings.mode === "full") {
    const gen = Array.from(tf.argmax, Number);
    await generateNoCache(model, tokens, batch, k, l, scores.prefix, gen, suppress);
    return tally(BigInt64Array.from(gen, BigInt), tf.logprob, tokens, batch, k, l, l - 1);
  }
  return scores;
}

/**
 * Scores from per-row greedy ids and target log-probabilities (batch × l):
 * matches, the matched prefix and the mean NLL, which is reported (else NaN)
 * only for rows whose prefix is at least `exactFrom`: the log-probabilities
 * are teacher-forced only up to and including the first mismatch.
 */
function tally(
  argmax: BigInt64Array,
  logprob: Float32Array,
  tokens: Int32Array,
  batch: number,
  k: number,
  l: number,
  exactFrom: number,
): BatchScores {
  const width = k + l;
  const matches = new Uint8Array(batch);
  const prefix = new Uint8Array(batch);
  const nll = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    let p = -1;
    let m = 0;
    let sum = 0;
    for (let j = 0; j < l; j++) {
      if (Number(argmax[b * l + j]) === tokens[b * width + k + j]) m++;
      else if (p < 0) p = j;
      sum -= logprob[b * l + j];
    }
    prefix[b] = p < 0 ? l : p;
    matches[b] = m;
    nll[b] = prefix[b] >= exactFrom ? sum / l : NaN;
  }
  return { matches, prefix, nll };
}

/**
 * Free-running greedy generation with the KV cache, every row of the batch in
 * every step (so the weights are read once per step for the whole batch), in
 * one session run (engine/model/loop.ts: the cache stays inside ONNX
 * Runtime): one pass over the k context tokens with the head on its last
 * position, then l − 1 single-token steps fed the previous greedy token. This
 * is the least work that gives the exact score: a row is verified against its
 * true continuation as it generates (generation equals teacher forcing up to
 * the first mismatch), and no position is computed twice. Each step's target
 * is the true token, so the log-probabilities are teacher-forced up to the
 * first mismatch (the NLL is exact, and reported, for rows whose prefix
 * reaches l − 1).
 */
async function freeRunning(
  model: LanguageModel,
  tokens: Int32Array,
  batch: number,
  k: number,
  l: number,
  suppress: Float32Array,
): Promise<BatchScores> {
  const width = k + l;
  const ids = new BigInt64Array(batch * k);
  const targets = new BigInt64Array(batch * l);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < k; i++) ids[b * k + i] = BigInt(tokens[b * width + i]);
    for (let j = 0; j < l; j++) targets[b * l + j] = BigInt(tokens[b * width + k + j]);
  }
  const out = await model.forward({
    ids,
    batch,
    length: k,
    start: k - 1,
    targets,
    suppress,
    steps: l - 1,
  });
  return tally(out.argmax, out.logprob, tokens, batch, k, l, l - 1);
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
