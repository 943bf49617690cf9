/**
 * Token datasets behind one interface, {@link TokenReader}: the GPT-NeoX /
 * Megatron `MMapIndexedDataset` pair (`.idx` + `.bin`), a fixed-row raw `.bin`
 * (the layout of Pythia's pre-shuffled `document.bin`: row i at byte
 * i · row_length · itemsize, no header) and 2-D NumPy `.npy` arrays.
 *
 * Reads are positioned reads of only the requested window of each row (the
 * real Pythia file is ~600 GB and is never read or mapped whole); nearby rows
 * are coalesced into one read (engine/data/token_file.ts).
 *
 * @module
 */
import { closeSync } from "node:fs";
import { UserError } from "../errors.ts";
import { type IntDtype, ITEM_SIZE, parseNpyHeader } from "./npy.ts";
import {
  attempt,
  fixedLocator,
  type Locator,
  makeReader,
  type OpenFile,
  openFile,
  readAt,
  sampleHash,
  type TokenReader,
} from "./token_file.ts";
import type { DataSpec } from "../types.ts";

export { loadDuplicates } from "./duplicates.ts";
export type { TokenReader } from "./token_file.ts";

const IDX_MAGIC = "MMIDIDX\x00\x00";
const IDX_HEADER = 34;
const IDX_DTYPES: Record<number, IntDtype | "float64" | "float32"> = {
  1: "uint8",
  2: "int8",
  3: "int16",
  4: "int32",
  5: "int64",
  6: "float64",
  7: "float32",
  8: "uint16",
};

/** Opens the data file(s) of an experiment. Throws a UserError for missing or malformed files. */
export function openTokenReader(spec: DataSpec): Promise<TokenReader> {
  return attempt(() =>
    spec.format === "raw"
      ? openRaw(spec)
      : spec.format === "npy"
      ? openNpy(spec)
      : openMegatron(spec)
  );
}

/**
 * Throws a UserError when a token id is at or above `vocab` (the data does
 * not belong to the model). `where` names the data and rows in the message;
 * with `rows` (the rows of `tokens`, `width` tokens each) it names the row.
 */
export function checkVocab(
  tokens: Int32Array,
  vocab: number,
  where: string,
  rows?: { rows: ArrayLike<number>; width: number; offset: number },
): void {
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] >= vocab || tokens[i] < 0) {
      const at = rows
        ? `row ${rows.rows[Math.floor(i / rows.width)]}, token ${
          rows.offset + (i % rows.width)
        } of the row`
        : `element ${i}`;
      throw new UserError(
        `${where}: token id ${tokens[i]} (${at}) is outside the model's vocabulary ` +
          `of ${vocab}: the data was tokenized for another model, or data.format, dtype or ` +
          `row_length is wrong.`,
      );
    }
  }
}

function openRaw(spec: DataSpec): TokenReader {
  const dtype: IntDtype = spec.dtype ?? "uint16";
  const rowLength = spec.rowLength;
  if (!rowLength) throw new UserError(`${spec.path}: data.row_length is required for format raw`);
  const file = openFile(spec.path, "raw token file");
  const rowBytes = rowLength * ITEM_SIZE[dtype];
  if (file.size === 0 || file.size % rowBytes !== 0) {
    closeSync(file.fd);
    throw new UserError(
      `${spec.path}: ${file.size} bytes is not a positive multiple of a row's ${rowBytes} ` +
        `bytes (row_length ${rowLength} × ${dtype}): check data.row_length and data.dtype, ` +
        `or the file is truncated.`,
    );
  }
  return makeReader({
    path: spec.path,
    file,
    rows: file.size / rowBytes,
    rowLength,
    dtype,
    locate: fixedLocator(0, rowLength, ITEM_SIZE[dtype]),
    fingerprint: () => sampleHash([file], `raw|${dtype}|${rowLength}`),
    close: () => Promise.resolve(closeSync(file.fd)),
  });
}

function openNpy(spec: DataSpec): TokenReader {
  const file = openFile(spec.path, ".npy token file");
  try {
    const head = readAt(file, 0, Math.min(file.size, 65536));
    const h = parseNpyHeader(head, spec.path);
    if (h.shape.length !== 2) {
      throw new UserError(
        `${spec.path}: the array has shape (${h.shape.join(", ")}); expected 2-D ` +
          `(rows, tokens per row)`,
      );
    }
    const [rows, rowLength] = h.shape;
    const need = h.dataOffset + rows * rowLength * ITEM_SIZE[h.dtype];
    if (file.size < need) {
      throw new UserError(
        `${spec.path}: the header declares ${rows} × ${rowLength} ${h.dtype} (${need} bytes) ` +
          `but the file has ${file.size} bytes: it is truncated.`,
      );
    }
    if (spec.rowLength !== undefined && spec.rowLength !== rowLength) {
      throw new UserError(
        `${spec.path}: rows have ${rowLength} tokens but data.row_length is ${spec.rowLength}: ` +
          `fix or remove data.row_length.`,
      );
    }
    return makeReader({
      path: spec.path,
      file,
      rows,
      rowLength,
      dtype: h.dtype,
      locate: fixedLocator(h.dataOffset, rowLength, ITEM_SIZE[h.dtype]),
      fingerprint: () => sampleHash([file], "npy"),
      close: () => Promise.resolve(closeSync(file.fd)),
    });
  } catch (e) {
    closeSync(file.fd);
    throw e;
  }
}

/** `.bin`/`.idx` paths of a megatron prefix or of either file. */
export function megatronPaths(path: string): { bin: string; idx: string } {
  const prefix = /\.(bin|idx)$/.test(path) ? path.slice(0, -4) : path;
  return { bin: `${prefix}.bin`, idx: `${prefix}.idx` };
}

function openMegatron(spec: DataSpec): TokenReader {
  const { bin: binPath, idx: idxPath } = megatronPaths(spec.path);
  const idx = openFile(idxPath, "megatron index (.idx)");
  let bin: OpenFile | undefined;
  try {
    const bad = (why: string): never => {
      throw new UserError(
        `${idxPath}: not a valid MMapIndexedDataset index: ${why}. Expected a GPT-NeoX/` +
          `Megatron .idx (magic MMIDIDX, version 1); for headerless fixed rows use format raw.`,
      );
    };
    const head = readAt(idx, 0, IDX_HEADER);
    if (head.length < IDX_HEADER) bad(`the file has only ${idx.size} bytes (header is 34)`);
    if (new TextDecoder().decode(head.subarray(0, 9)) !== IDX_MAGIC) bad("wrong magic bytes");
    const view = new DataView(head.buffer);
    const u64 = (at: number) => view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    const version = u64(9);
    if (version !== 1) bad(`version ${version} (expected 1)`);
    const code = head[17];
    const dtype = IDX_DTYPES[code];
    if (!dtype) return bad(`unknown dtype code ${code}`);
    if (dtype === "float32" || dtype === "float64") {
      return bad(`dtype ${dtype} holds no token ids (expected an integer type)`);
    }
    const count = u64(18);
    const docs = u64(26);
    const expected = IDX_HEADER + count * 12 + docs * 8;
    if (idx.size !== expected) {
      bad(
        `${count} sequences and ${docs} documents need ${expected} bytes but the file has ` +
          `${idx.size} (truncated or corrupt)`,
      );
    }
    if (count === 0) bad("it lists no sequences");
    bin = openFile(binPath, "megatron data (.bin)");
    const item = ITEM_SIZE[dtype];
    const locate = megatronLocator(idx, count);
    const lastRow = locate(Uint32Array.of(count - 1));
    const lastEnd = lastRow.pos[0] + lastRow.size[0] * item;
    if (lastEnd > bin.size) {
      throw new UserError(
        `${binPath}: the index says the data ends at byte ${lastEnd} but the file has ` +
          `${bin.size} bytes: the .bin is truncated or belongs to another index.`,
      );
    }
    const first = locate(Uint32Array.of(0));
    if (spec.rowLength !== undefined && first.size[0] !== spec.rowLength) {
      throw new UserError(
        `${idxPath}: row 0 has ${first.size[0]} tokens but data.row_length is ` +
          `${spec.rowLength}: fix or remove data.row_length.`,
      );
    }
    const data = bin;
    return makeReader({
      path: binPath,
      file: data,
      rows: count,
      rowLength: spec.rowLength ?? first.size[0],
      dtype,
      locate,
      fingerprint: () => sampleHash([idx, data], "megatron"),
      close: () => {
        closeSync(data.fd);
        closeSync(idx.fd);
        return Promise.resolve();
      },
    });
  } catch (e) {
    closeSync(idx.fd);
    if (bin) closeSync(bin.fd);
    throw e;
  }
}

/** Reads sizes (int32) and byte pointers (int64) from the `.idx` in cached blocks. */
function megatronLocator(file: OpenFile, count: number): Locator {
  const BLOCK = 8192;
  const cache = new Map<number, { sizes: Int32Array; pointers: Float64Array }>();
  const block = (b: number) => {
    let hit = cache.get(b);
    if (hit) return hit;
    const n = Math.min(BLOCK, count - b * BLOCK);
    const sizeBytes = readAt(file, IDX_HEADER + b * BLOCK * 4, n * 4);
    const ptrBytes = readAt(file, IDX_HEADER + count * 4 + b * BLOCK * 8, n * 8);
    const sv = new DataView(sizeBytes.buffer);
    const pv = new DataView(ptrBytes.buffer);
    const sizes = new Int32Array(n);
    const pointers = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      sizes[i] = sv.getInt32(4 * i, true);
      pointers[i] = pv.getUint32(8 * i, true) + pv.getUint32(8 * i + 4, true) * 2 ** 32;
    }
    hit = { sizes, pointers };
    if (cache.size >= 64) cache.delete(cache.keys().next().value!);
    cache.set(b, hit);
    return hit;
  };
  return (rows) => {
    const pos = new Float64Array(rows.length);
    const size = new Int32Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const b = block(Math.floor(rows[i] / BLOCK));
      pos[i] = b.pointers[rows[i] % BLOCK];
      size[i] = b.sizes[rows[i] % BLOCK];
    }
    return { pos, size };
  };
}

/** Opens the data once for its row count and fingerprint (what planning and the store need). */
export async function dataFacts(spec: DataSpec): Promise<{ rows: number; fingerprint: string }> {
  const reader = await openTokenReader(spec);
  try {
    return { rows: reader.rows, fingerprint: await reader.fingerprint() };
  } finally {
    await reader.close();
  }
}
