/**
 * Writes Megatron (GPT-NeoX MMapIndexedDataset) token data of random rows:
 * `<prefix>.bin` (uint16 tokens, rows back to back) and `<prefix>.idx`
 * (docs/design.md, "Pythia facts"), generated and written a block of rows at a time.
 *
 * @module
 */
import { splitmix32 } from "../engine/random.ts";
import { closeSync, openSync, writeSync } from "node:fs";

/** Options of {@link writeMegatron}. */
export interface MegatronOptions {
  rows: number;
  /** Tokens per row (Pythia: 2049). */
  rowLength?: number;
  /** Tokens are drawn uniformly from [1, vocab) (0, end-of-text, never occurs). */
  vocab: number;
  seed?: number;
}

/** Writes `<prefix>.bin` and `<prefix>.idx`; returns the prefix (the reader's `path`). */
export function writeMegatron(prefix: string, o: MegatronOptions): string {
  const len = o.rowLength ?? 2049;
  if (o.vocab > 65536) throw new Error(`vocabulary ${o.vocab} does not fit uint16 tokens`);
  const next = splitmix32(o.seed ?? 1);
  const bin = openSync(`${prefix}.bin`, "w");
  try {
    const block = new Uint16Array(len * 256);
    for (let at = 0; at < o.rows; at += 256) {
      const n = Math.min(256, o.rows - at) * len;
      for (let i = 0; i < n; i++) {
        block[i] = 1 + (next() % (o.vocab - 1));
      }
      writeSync(bin, new Uint8Array(block.buffer, 0, n * 2));
    }
  } finally {
    closeSync(bin);
  }
  const n = o.rows;
  const view = new DataView(new ArrayBuffer(34 + n * 12 + (n + 1) * 8));
  new TextEncoder().encode("MMIDIDX\x00\x00").forEach((b, i) => view.setUint8(i, b));
  view.setBigUint64(9, 1n, true);
  view.setUint8(17, 8); // uint16
  view.setBigUint64(18, BigInt(n), true);
  view.setBigUint64(26, BigInt(n + 1), true);
  for (let i = 0; i < n; i++) {
    view.setInt32(34 + 4 * i, len, true);
    view.setBigInt64(34 + 4 * n + 8 * i, BigInt(i * len * 2), true);
  }
  for (let i = 0; i <= n; i++) view.setBigInt64(34 + 12 * n + 8 * i, BigInt(i), true);
  const idx = openSync(`${prefix}.idx`, "w");
  try {
    writeSync(idx, new Uint8Array(view.buffer));
  } finally {
    closeSync(idx);
  }
  return prefix;
}
