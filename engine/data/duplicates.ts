/**
 * The optional per-row duplicate counts of the training data (how often each
 * row's sequence occurs in the corpus), used by the analysis to relate
 * memorization to duplication. Either a 1-D integer `.npy` (one count per
 * row) or a CSV of `row,count` lines (a header line is allowed; rows not
 * listed get 0, meaning unknown).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { UserError } from "../errors.ts";
import { decodeInts, ITEM_SIZE, parseNpyHeader } from "./npy.ts";

/** Loads duplicate counts: element i is the count of row i. Throws a UserError on bad files. */
export async function loadDuplicates(path: string): Promise<Uint32Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new UserError(
      `${path}: cannot read the duplicates file (${(e as { code?: string }).code ?? e}): ` +
        `check data.duplicates in the experiment file.`,
    );
  }
  if (bytes[0] === 0x93) return fromNpy(bytes, path);
  return fromCsv(new TextDecoder().decode(bytes), path);
}

function fromNpy(bytes: Uint8Array, path: string): Uint32Array {
  const h = parseNpyHeader(bytes, path);
  if (h.shape.length !== 1) {
    throw new UserError(
      `${path}: duplicates must be a 1-D array (one count per row), got shape ` +
        `(${h.shape.join(", ")})`,
    );
  }
  const n = h.shape[0];
  if (bytes.length < h.dataOffset + n * ITEM_SIZE[h.dtype]) {
    throw new UserError(`${path}: the header declares ${n} counts but the file is truncated`);
  }
  const tmp = new Int32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = decodeInts(view, h.dataOffset, h.dtype, n, tmp, 0);
  if (bad >= 0) {
    throw new UserError(`${path}: count of row ${bad} is negative or too large (${tmp[bad]})`);
  }
  return new Uint32Array(tmp.buffer);
}

function fromCsv(text: string, path: string): Uint32Array {
  const pairs: [number, number][] = [];
  let max = -1;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const cells = line.split(",").map((c) => c.trim());
    const [row, count] = cells.map(Number);
    if (cells.length !== 2 || !Number.isSafeInteger(row) || !Number.isSafeInteger(count)) {
      if (i === 0 && pairs.length === 0 && !/^\d/.test(line)) continue; // header
      throw new UserError(
        `${path}:${i + 1}:1: expected "row,count" with two non-negative integers, got ` +
          `${JSON.stringify(line)}`,
      );
    }
    if (row < 0 || count < 0 || count > 0xffffffff) {
      throw new UserError(`${path}:${i + 1}:1: row and count must be non-negative integers`);
    }
    pairs.push([row, count]);
    if (row > max) max = row;
  }
  const out = new Uint32Array(max + 1);
  for (const [row, count] of pairs) out[row] = count;
  return out;
}
