/**
 * The shard file format of the result store (little-endian): a 64-byte header =
 * magic `MEMOSHRD`, u32 version, u32 row count n, u32 continuation l, u32 shard
 * index, 32-byte key (settings hash + checkpoint fingerprint), 8 bytes zero;
 * then rows u32[n], nll f32[n], matches u8[n], prefix u8[n].
 *
 * @module
 */
import type { RowScores } from "../types.ts";

/** Version of the shard file format and of the settings hash. */
export const STORE_VERSION = 1;
const MAGIC = "MEMOSHRD";
const HEADER_BYTES = 64;

/** Encodes one shard's scores with its key into the shard file format. */
export function encodeShard(
  scores: RowScores,
  continuation: number,
  shard: number,
  key: string,
): Uint8Array {
  const n = scores.rows.length;
  const out = new Uint8Array(HEADER_BYTES + 10 * n);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, STORE_VERSION, true);
  view.setUint32(12, n, true);
  view.setUint32(16, continuation, true);
  view.setUint32(20, shard, true);
  out.set(hexBytes(key), 24);
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++, at += 4) view.setUint32(at, scores.rows[i], true);
  for (let i = 0; i < n; i++, at += 4) view.setFloat32(at, scores.nll[i], true);
  out.set(scores.matches.subarray(0, n), at);
  out.set(scores.prefix.subarray(0, n), at + n);
  return out;
}

/** A decoded shard file. */
export interface DecodedShard extends RowScores {
  continuation: number;
  shard: number;
  /** Hex key the shard was written with. */
  key: string;
}

/** Decodes a shard file; returns null when it is truncated, of another version or not a shard. */
export function decodeShard(bytes: Uint8Array): DecodedShard | null {
  if (bytes.length < HEADER_BYTES) return null;
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8, true) !== STORE_VERSION) return null;
  const n = view.getUint32(12, true);
  if (bytes.length !== HEADER_BYTES + 10 * n) return null;
  const rows = new Uint32Array(n);
  const nll = new Float32Array(n);
  let at = HEADER_BYTES;
  for (let i = 0; i < n; i++, at += 4) rows[i] = view.getUint32(at, true);
  for (let i = 0; i < n; i++, at += 4) nll[i] = view.getFloat32(at, true);
  return {
    rows,
    nll,
    matches: bytes.slice(at, at + n),
    prefix: bytes.slice(at + n, at + 2 * n),
    continuation: view.getUint32(16, true),
    shard: view.getUint32(20, true),
    key: bytesHex(bytes.subarray(24, 56)),
  };
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32 && 2 * i < hex.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

function bytesHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
