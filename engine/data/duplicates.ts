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
import { excerpt, UserError } from "../errors.ts";
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
  const seen = new Set<number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const cells = line.split(",").map((c) => c.trim());
    // Digits only: an empty cell (`,5`, or `6,` of a file cut mid-write) is not 0.
    if (cells.length !== 2 || !cells.every((c) => /^\d{1,10}$/.test(c))) {
      if (i === 0 && pairs.length === 0 && !/^\d/.test(line)) continue; // header
      throw new UserError(
        `${path}:${i + 1}:1: expected "row,count" with two non-negative integers, got ` +
          excerpt(line),
      );
    }
    const [row, count] = cells.map(Number);
    if (row >= MAX_ROWS || count > 0xffffffff) {
      throw new UserError(
        `${path}:${i + 1}:1: row ${row} or count ${count} is beyond what a row index (< 2^32) ` +
          "or a count (< 2^32) can be",
      );
    }
    if (seen.has(row)) throw new UserError(`${path}:${i + 1}:1: row ${row} is listed twice`);
    seen.add(row);
    pairs.push([row, count]);
    if (row > max) max = row;
  }
  if (max + 1 > MAX_LISTED) {
    throw new UserError(
      `${path}: row ${max} is listed, but a duplicates CSV may name rows below ${MAX_LISTED} ` +
        "(give a .npy of one count per row for more)",
    );
  }
  const out = new Uint32Array(max + 1);
  for (const [row, count] of pairs) out[row] = count;
  return out;
}

/** Row indices are below 2^32 (the store addresses rows with 32 bits). */
const MAX_ROWS = 2 ** 32;
/** Rows a CSV of duplicate counts may reach (the dense array it becomes: 4 bytes per row). */
const MAX_LISTED = 2 ** 28;
