/**
 * Compressibility of a window: compressed / raw size of its bytes under raw
 * DEFLATE (node:zlib `deflateRawSync`, level 9, no header: the zlib-entropy
 * signal of Carlini et al. 2021) and the share of distinct tokens.
 * Templated or repetitive text (licence boilerplate, zero-filled tables,
 * repeated log lines) compresses well and is memorized with little
 * repetition; ordinary prose and code do not.
 *
 * The bytes compressed are the decoded text (UTF-8) when a decoder is given,
 * which is what the ratio means in the literature; without one, the token ids
 * as little-endian uint16 (uint32 when an id exceeds 65535). Windows are
 * short (64 tokens ≈ 200 characters), so DEFLATE's fixed overhead keeps the
 * ratio near or above 1 for text without repeats: the feature ranks windows,
 * its absolute value is not a compression rate.
 *
 * @module
 */
import { deflateRawSync } from "node:zlib";
import type { Tokens } from "./window_counts.ts";

/** Compressed / raw size of `bytes` under raw DEFLATE level 9 (NaN for no bytes). */
export function compressionRatio(bytes: Uint8Array): number {
  if (bytes.length === 0) return NaN;
  return deflateRawSync(bytes, { level: 9 }).length / bytes.length;
}

/** The token ids as little-endian bytes (uint16, or uint32 when an id exceeds 65535). */
export function tokenBytes(tokens: ArrayLike<number>): Uint8Array {
  let wide = false;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] > 0xffff) wide = true;
  const out = new Uint8Array(tokens.length * (wide ? 4 : 2));
  const view = new DataView(out.buffer);
  for (let i = 0; i < tokens.length; i++) {
    if (wide) view.setUint32(4 * i, tokens[i], true);
    else view.setUint16(2 * i, tokens[i], true);
  }
  return out;
}

/** Distinct tokens / tokens of a window (1: no token repeats). */
export function distinctShare(tokens: ArrayLike<number>): number {
  if (tokens.length === 0) return NaN;
  return new Set(Array.from(tokens)).size / tokens.length;
}

/** Compressibility features of each window (`width` tokens, row-major). */
export interface CompressFeatures {
  /** Compressed / raw size (text when decoded, else token bytes). */
  compression: Float64Array;
  /** Distinct tokens / width. */
  distinct: Float64Array;
  /** What was compressed. */
  of: "text" | "tokens";
}

/**
 * The compressibility features of windows; `decode` (ids → text) compresses
 * the text. `texts`, when given, are the windows' decoded texts (the features
 * step decodes each window once for this and for personal data).
 */
export function compressFeatures(
  windows: Tokens,
  width: number,
  decode?: (ids: number[]) => string,
  texts?: readonly string[],
): CompressFeatures {
  const n = windows.length / width;
  const compression = new Float64Array(n), distinct = new Float64Array(n);
  const enc = new TextEncoder();
  for (let q = 0; q < n; q++) {
    const w = windows.subarray(q * width, (q + 1) * width);
    const text = texts ? texts[q] : decode ? decode(Array.from(w)) : null;
    const bytes = text !== null ? enc.encode(text) : tokenBytes(w);
    compression[q] = compressionRatio(bytes);
    distinct[q] = distinctShare(w);
  }
  return { compression, distinct, of: texts || decode ? "text" : "tokens" };
}
