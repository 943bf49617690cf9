/**
 * Positioned reads of token rows from one file, shared by the formats of
 * `datasets.ts`: a format only says where each row starts and how long it is
 * (a {@link Locator}); {@link makeReader} reads the requested window of each
 * row, coalescing nearby rows into one read. Reads are synchronous `pread`s
 * (`fs.readSync` with a position: ~6 µs per small read in Deno 2.9 against
 * ~40 µs for the promise API), done in the worker thread that owns the
 * reader; offsets are plain Numbers (exact to 2^53), so files beyond 4 GiB
 * work.
 *
 * @module
 */
import { fstatSync, openSync, readSync } from "node:fs";
import { UserError } from "../errors.ts";
import { decodeInts, type IntDtype, ITEM_SIZE } from "./npy.ts";

/** Reads token windows of rows of a training-data file. */
export interface TokenReader {
  /** The data file (for megatron: the `.bin`). */
  readonly path: string;
  /** Number of rows (training sequences). */
  readonly rows: number;
  /** Tokens per row (megatron: the declared row_length, else the length of row 0). */
  readonly rowLength: number;
  /** Element type on disk. */
  readonly dtype: IntDtype;
  /**
   * Tokens [start, start + length) of each row, row-major
   * (`rows.length × length`). Throws a UserError for a row too short or a
   * token outside [0, 2^31).
   */
  readWindow(rows: Uint32Array, start: number, length: number): Promise<Int32Array>;
  /** A cheap, stable content fingerprint (size + SHA-256 of sampled blocks). */
  fingerprint(): Promise<string>;
  /** Closes the file(s). */
  close(): Promise<void>;
}

/** Gap (bytes) between two row windows below which they are read together. */
const COALESCE_GAP = 16 * 1024;
/** Largest single coalesced read. */
const MAX_READ = 4 * 1024 * 1024;

/** Runs `fn` and returns its result, or its exception, as a promise. */
export function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

/** An open file descriptor and the file's size. */
export interface OpenFile {
  fd: number;
  size: number;
}

/** Opens a file for positioned reads, with a UserError when it is missing. */
export function openFile(path: string, what: string): OpenFile {
  try {
    const fd = openSync(path, "r");
    return { fd, size: fstatSync(fd).size };
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UserError(
      `${path}: cannot open the ${what} (${code ?? (e as Error).message}): check data.path in ` +
        `the experiment file (relative paths resolve against the experiment file's folder).`,
    );
  }
}

/**
 * Reads `length` bytes at `position` into `into` (when large enough) or a new
 * buffer; loops over short reads, so the result is shorter only at the end.
 */
export function readAt(
  file: OpenFile,
  position: number,
  length: number,
  into?: Uint8Array,
): Uint8Array {
  const buf = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const bytesRead = readSync(file.fd, buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** SHA-256 (hex) of size + first/last 64 KiB + 4 sampled 4 KiB blocks of each file. */
export async function sampleHash(files: OpenFile[], tag: string): Promise<string> {
  const parts: Uint8Array[] = [new TextEncoder().encode(tag)];
  for (const file of files) {
    const size = file.size;
    parts.push(new TextEncoder().encode(`|${size}|`));
    parts.push(readAt(file, 0, Math.min(size, 65536)));
    for (let k = 1; k <= 4; k++) {
      const at = Math.floor((size * k) / 5 / 4096) * 4096;
      parts.push(readAt(file, at, Math.min(4096, size - at)));
    }
    parts.push(readAt(file, Math.max(0, size - 65536), Math.min(size, 65536)));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) [all.set(p, at), at += p.length];
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Where rows are: byte offsets of row starts and their lengths in tokens. */
export type Locator = (rows: Uint32Array) => { pos: Float64Array; size: Int32Array };

/** A reader over one data file given a row locator (shared by the three formats). */
export function makeReader(o: {
  path: string;
  file: OpenFile;
  rows: number;
  rowLength: number;
  dtype: IntDtype;
  locate: Locator;
  fingerprint: () => Promise<string>;
  close: () => Promise<void>;
}): TokenReader {
  const item = ITEM_SIZE[o.dtype];
  /** Reused read buffer (a fresh 4 MiB buffer per read costs more than the read). */
  let scratch = new Uint8Array(0);
  return {
    path: o.path,
    rows: o.rows,
    rowLength: o.rowLength,
    dtype: o.dtype,
    fingerprint: o.fingerprint,
    close: o.close,
    readWindow: (rows, start, length) => attempt(() => readWindow(rows, start, length)),
  };

  function readWindow(rows: Uint32Array, start: number, length: number): Int32Array {
    for (const r of rows) {
      if (r >= o.rows) {
        throw new RangeError(`${o.path}: row ${r} requested but the data has ${o.rows} rows`);
      }
    }
    const out = new Int32Array(rows.length * length);
    if (rows.length === 0 || length === 0) return out;
    const { pos, size } = o.locate(rows);
    checkWindows(o.path, o.file.size, rows, { pos, size }, start, length, item);
    const order = Array.from(rows.keys());
    order.sort((a, b) => pos[a] - pos[b]);
    const bytes = length * item;
    for (let g = 0; g < order.length;) {
      const first = pos[order[g]] + start * item;
      let last = g;
      while (
        last + 1 < order.length &&
        pos[order[last + 1]] + start * item - (pos[order[last]] + start * item + bytes) <=
          COALESCE_GAP &&
        pos[order[last + 1]] + start * item + bytes - first <= MAX_READ
      ) last++;
      const span = pos[order[last]] + start * item + bytes - first;
      if (scratch.length < span) scratch = new Uint8Array(Math.max(span, 65536));
      const buf = readAt(o.file, first, span, scratch);
      if (buf.length < span) {
        throw new UserError(`${o.path}: short read at byte ${first}: the file is truncated.`);
      }
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      for (let j = g; j <= last; j++) {
        const i = order[j];
        const at = pos[i] + start * item - first;
        const bad = decodeInts(view, at, o.dtype, length, out, i * length);
        if (bad >= 0) {
          throw new UserError(
            `${o.path}: row ${rows[i]} holds the value ${out[bad]} which is not a token id ` +
              `(expected 0 ≤ id < 2^31): wrong data.format or dtype?`,
          );
        }
      }
      g = last + 1;
    }
    return out;
  }
}

/**
 * Refuses a row shorter than the window of tokens `[start, start + length)`
 * and one whose window ends past the file (`item` bytes per token).
 */
function checkWindows(
  path: string,
  fileSize: number,
  rows: Uint32Array,
  { pos, size }: { pos: Float64Array; size: Int32Array },
  start: number,
  length: number,
  item: number,
): void {
  for (let i = 0; i < rows.length; i++) {
    if (size[i] < start + length) {
      throw new UserError(
        `${path}: row ${rows[i]} has ${size[i]} tokens but scoring needs tokens ` +
          `[${start}, ${start + length}) (memorization offset + context + continuation): ` +
          `lower them, or exclude short rows from the data.`,
      );
    }
    const end = pos[i] + (start + length) * item;
    if (end > fileSize) {
      throw new UserError(
        `${path}: row ${rows[i]} ends at byte ${end} but the file has ${fileSize} bytes: ` +
          `the file is truncated or the index does not belong to it.`,
      );
    }
  }
}

/** A fixed-stride locator: row r starts at dataOffset + r · rowLength · item. */
export function fixedLocator(dataOffset: number, rowLength: number, item: number): Locator {
  return (rows) => {
    const pos = new Float64Array(rows.length);
    const size = new Int32Array(rows.length).fill(rowLength);
    for (let i = 0; i < rows.length; i++) pos[i] = dataOffset + rows[i] * rowLength * item;
    return { pos, size };
  };
}
