/**
 * The shard file format of the result store (little-endian), version 2: a
 * 64-byte header = magic `MEMOSHRD`, u32 version, u32 row count n, u32
 * continuation l, u32 shard index, 32-byte key (settings hash + checkpoint
 * fingerprint), u64 checksum; then rows u32[n], nll f32[n], matches u8[n],
 * prefix u8[n].
 *
 * The checksum is the xxHash64 (seed 0) of the header's first 56 bytes followed
 * by the payload, so a flipped byte anywhere but in the checksum itself (which
 * then no longer matches) is detected on every read. Version 1 shards (the
 * same layout with 8 zero bytes instead of the checksum) are not read: they
 * cannot be verified, and since the format version is part of the settings
 * hash, a store of version 1 is moved to `stale/` and rescored as a whole
 * (see docs/reliability.md).
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import xxhash from "xxhash-wasm";
import type { RowScores } from "../types.ts";

/** Version of the shard file format and of the settings hash. */
export const STORE_VERSION = 2;
const MAGIC = "MEMOSHRD";
const HEADER_BYTES = 64;
/** Where the checksum (8 bytes) sits in the header. */
export const CHECKSUM_AT = 56;
const { create64 } = await xxhash();
const MAGIC_BYTES = new TextEncoder().encode(MAGIC);
/** Whether typed arrays are little-endian here (the file's order: then they view it directly). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Encodes one shard's scores with its key into the shard file format (checksum included). */
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
  if (LITTLE_ENDIAN) {
    new Uint32Array(out.buffer, at, n).set(scores.rows.subarray(0, n));
    new Float32Array(out.buffer, at + 4 * n, n).set(scores.nll.subarray(0, n));
    at += 8 * n;
  } else {
    for (let i = 0; i < n; i++, at += 4) view.setUint32(at, scores.rows[i], true);
    for (let i = 0; i < n; i++, at += 4) view.setFloat32(at, scores.nll[i], true);
  }
  out.set(scores.matches.subarray(0, n), at);
  out.set(scores.prefix.subarray(0, n), at + n);
  view.setBigUint64(CHECKSUM_AT, shardChecksum(out), true);
  return out;
}

/** A decoded shard file. */
export interface DecodedShard extends RowScores {
  continuation: number;
  shard: number;
  /** Hex key the shard was written with. */
  key: string;
}

/** Why bytes are not a readable shard (one phrase, e.g. "checksum mismatch (…)"). */
export interface ShardProblem {
  problem: string;
}

/**
 * Decodes and verifies a shard file; returns what is wrong instead when it is
 * truncated, of another format version, not a shard, or fails its checksum.
 * The arrays view `bytes` where the machine is little-endian (no copy): they
 * change when `bytes` does (e.g. a {@link FileBuffer}'s next read).
 * `verified`: these very bytes passed the checksum before (see
 * {@link FileBuffer.identity}); the rest is still checked.
 */
export function decodeShard(
  bytes: Uint8Array,
  opts: { verified?: boolean } = {},
): DecodedShard | ShardProblem {
  if (bytes.length < HEADER_BYTES) {
    return {
      problem: `truncated: ${bytes.length} bytes, shorter than the ${HEADER_BYTES}-byte header`,
    };
  }
  if (MAGIC_BYTES.some((b, i) => bytes[i] !== b)) {
    return { problem: `not a shard file (its first 8 bytes are not "${MAGIC}")` };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== STORE_VERSION) {
    return {
      problem: version === 1
        ? "shard format version 1 (written before shards carried checksums)"
        : `shard format version ${version} (this harness reads version ${STORE_VERSION})`,
    };
  }
  const n = view.getUint32(12, true);
  const expected = HEADER_BYTES + 10 * n;
  if (bytes.length !== expected) {
    return {
      problem: `${bytes.length < expected ? "truncated" : "too long"}: ${bytes.length} bytes, ` +
        `the header's ${n} rows need ${expected}`,
    };
  }
  const stored = view.getBigUint64(CHECKSUM_AT, true);
  const actual = opts.verified ? stored : shardChecksum(bytes);
  if (stored !== actual) {
    return {
      problem: `checksum mismatch (stored xxh64 ${hex64(stored)}, contents hash to ${
        hex64(actual)
      })`,
    };
  }
  let rows: Uint32Array, nll: Float32Array;
  const at = HEADER_BYTES + 8 * n;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    rows = new Uint32Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES, n);
    nll = new Float32Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES + 4 * n, n);
  } else {
    rows = new Uint32Array(n);
    nll = new Float32Array(n);
    for (let i = 0, b = HEADER_BYTES; i < n; i++, b += 4) rows[i] = view.getUint32(b, true);
    for (let i = 0, b = HEADER_BYTES + 4 * n; i < n; i++, b += 4) nll[i] = view.getFloat32(b, true);
  }
  return {
    rows,
    nll,
    matches: bytes.subarray(at, at + n),
    prefix: bytes.subarray(at + n, at + 2 * n),
    continuation: view.getUint32(16, true),
    shard: view.getUint32(20, true),
    key: bytesHex(bytes.subarray(24, 56)),
  };
}

/**
 * Reads whole files (shards) into one buffer reused from file to file, so a
 * pass over a store allocates once instead of once per shard (a fresh 10 MB
 * array per shard costs more than reading it: page faults, zeroing, garbage).
 */
export class FileBuffer {
  #bytes = new Uint8Array(0);
  /**
   * The last file read as the file system sees it (device, inode, size,
   * modification time): an atomic replacement (a new file renamed over it)
   * or a write changes it.
   */
  identity = "";
  /** The file's bytes: a view of the buffer, valid until the next read. */
  read(path: string): Uint8Array {
    const fd = openSync(path, "r");
    try {
      const stat = fstatSync(fd);
      const size = stat.size;
      this.identity = `${stat.dev}:${stat.ino}:${size}:${stat.mtimeMs}`;
      if (size > this.#bytes.length) this.#bytes = new Uint8Array(size);
      let at = 0;
      while (at < size) {
        const n = readSync(fd, this.#bytes, at, size - at, at);
        if (n === 0) break; // the file shrank: decoding reports it truncated
        at += n;
      }
      return this.#bytes.subarray(0, at);
    } finally {
      closeSync(fd);
    }
  }
}

/** Bytes of a shard's header (what {@link shardHeaderKey} reads). */
export const SHARD_HEADER_BYTES = HEADER_BYTES;

/**
 * The key in a shard's header, or null when the bytes do not start with a
 * header of this format version (unverified: the checksum covers the whole file).
 */
export function shardHeaderKey(head: Uint8Array): string | null {
  if (head.length < HEADER_BYTES || MAGIC_BYTES.some((b, i) => head[i] !== b)) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return view.getUint32(8, true) === STORE_VERSION ? bytesHex(head.subarray(24, 56)) : null;
}

/** True when {@link decodeShard} found a problem. */
export function isShardProblem(r: DecodedShard | ShardProblem): r is ShardProblem {
  return "problem" in r;
}

/** xxHash64 of a shard file's bytes without its checksum field. */
function shardChecksum(bytes: Uint8Array): bigint {
  return create64(0n)
    .update(bytes.subarray(0, CHECKSUM_AT))
    .update(bytes.subarray(HEADER_BYTES))
    .digest();
}

function hex64(x: bigint): string {
  return x.toString(16).padStart(16, "0");
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
