/**
 * The per-row pieces of the `features` step (tasks/features.ts): the work
 * that depends on a selected row's own window only, done once per chunk of
 * `R` selected rows (chunk c: selected rows `[c · R, (c + 1) · R)`) by
 * whichever process or thread is given it, kept as files under
 * `features/<key>/rows-<R>/` so that it is done once, resumed after a crash
 * and spread over shard groups and threads:
 *
 * - `hashes-NNNNN.bin`: the 64-bit hashes of the chunk's scored windows and
 *   contexts (engine/data/features/window_counts.ts `hashLanes`), planar
 *   uint32: window low lanes, window high lanes, context low, context high
 *   (16 B per row). The tables of every shard group and of the assembly are
 *   built from them (`addHashes`), never from the windows again.
 * - `part-NNNNN.bin`: the chunk's per-row features: a 24-byte header
 *   (float64 seconds the piece took, uint32 first selected row, row count,
 *   bytes of personal lines, 1 when the windows were decoded to text), then
 *   float64 compression and float64 distinct share per row (rounded to 1e-6,
 *   as the record holds them), then the rows with personal data as the
 *   record's `personal.jsonl` lines (masked only).
 *
 * Each file is written atomically; a file of the wrong size or header is a
 * UserError (exit 2) naming it. The same functions run on the main thread
 * and on the step's worker threads (tasks/features_worker.ts).
 *
 * @module
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import { join } from "node:path";
import type { TokenReader } from "../engine/data/datasets.ts";
import { readAt } from "../engine/data/token_file.ts";
import {
  hashLanes,
  scanAll,
  tableFromView,
  type TableView,
  windowHash,
} from "../engine/data/features/window_counts.ts";
import { compressFeatures } from "../engine/data/features/compress.ts";
import { detectPersonal, redactedHits } from "../engine/data/features/personal.ts";
import type { MaskedHit } from "../engine/data/features/rows_file.ts";
import { writeAtomic } from "../engine/os/atomic.ts";
import { UserError } from "../engine/errors.ts";
import { lowerBound } from "../engine/rowset.ts";

/** Bytes of a part file's header. */
const PART_HEADER = 24;

/** What a piece or a scan needs of the experiment: the data and the window settings. */
export interface PieceContext {
  reader: TokenReader;
  /** Scored window: offset, width (context + continuation), context width. */
  offset: number;
  width: number;
  context: number;
  /** The suite's tokenizer (undefined: token bytes are compressed, no personal data). */
  decode?: (ids: number[]) => string;
}

/** A chunk of selected rows to compute the pieces of. */
export interface PieceJob {
  /** The features folder and the rows per chunk (the pieces' folder is `rows-<R>`). */
  dir: string;
  chunkRows: number;
  /** Chunk index and its selected rows. */
  c: number;
  first: number;
  rows: Uint32Array;
  /** Write the hashes file, the part file. */
  hashes: boolean;
  part: boolean;
}

/** A block of a data shard's rows scanned into shared counts (several threads per shard). */
export interface ScanJob {
  tables: TableView[];
  counts: Uint32Array[];
  /** Data rows `[first, first + count)`. */
  first: number;
  count: number;
}

const pad = (c: number) => String(c).padStart(5, "0");

/** The folder of the pieces of chunks of `chunkRows` rows. */
export const piecesDir = (dir: string, chunkRows: number) => join(dir, `rows-${chunkRows}`);

/** The hashes file of chunk c. */
export const hashesFile = (dir: string, chunkRows: number, c: number) =>
  join(piecesDir(dir, chunkRows), `hashes-${pad(c)}.bin`);

/** The part file of chunk c. */
export const partFile = (dir: string, chunkRows: number, c: number) =>
  join(piecesDir(dir, chunkRows), `part-${pad(c)}.bin`);

/**
 * Computes the chunk's pieces asked for (its windows read once) and writes
 * each file atomically; returns the seconds taken.
 */
export async function computePiece(ctx: PieceContext, job: PieceJob): Promise<number> {
  const t0 = performance.now();
  const windows = await ctx.reader.readWindow(job.rows, ctx.offset, ctx.width);
  if (job.hashes) {
    const lanes = [ctx.width, ctx.context].map((w) => hashLanes(windowHash(w), windows, ctx.width));
    const planes = lanes.flatMap(({ lo, hi }) => [lo, hi]).map((a) => new Uint8Array(a.buffer));
    await writeAtomic(hashesFile(job.dir, job.chunkRows, job.c), planes);
  }
  if (job.part) {
    const texts = ctx.decode
      ? Array.from(
        job.rows,
        (_, i) => ctx.decode!(Array.from(windows.subarray(i * ctx.width, (i + 1) * ctx.width))),
      )
      : undefined;
    const compress = compressFeatures(windows, ctx.width, ctx.decode, texts);
    const personal = texts ? personalText(job.rows, texts) : new Uint8Array(0);
    const seconds = secondsSince(t0);
    const head = new DataView(new ArrayBuffer(PART_HEADER));
    head.setFloat64(0, seconds, true);
    [job.first, job.rows.length, personal.length, texts ? 1 : 0]
      .forEach((v, i) => head.setUint32(8 + 4 * i, v, true));
    await writeAtomic(partFile(job.dir, job.chunkRows, job.c), [
      new Uint8Array(head.buffer),
      new Uint8Array(Float64Array.from(compress.compression, round).buffer),
      new Uint8Array(Float64Array.from(compress.distinct, round).buffer),
      personal,
    ]);
  }
  return secondsSince(t0);
}

/** The `personal.jsonl` lines of a chunk's rows whose decoded window holds personal data. */
function personalText(rows: Uint32Array, texts: readonly string[]): Uint8Array {
  let out = "";
  for (const [i, text] of texts.entries()) {
    const hits = detectPersonal(text);
    if (hits.length > 0) {
      out += JSON.stringify({ row: rows[i], hits: redactedHits(text, hits) }) + "\n";
    }
  }
  return new TextEncoder().encode(out);
}

/** Scans a block of data rows (each row a segment) into the job's counts. */
export async function scanBlock(ctx: PieceContext, job: ScanJob): Promise<void> {
  const len = ctx.reader.rowLength;
  const rows = Uint32Array.from({ length: job.count }, (_, i) => job.first + i);
  const tokens = await ctx.reader.readWindow(rows, 0, len);
  const tables = job.tables.map(tableFromView);
  for (let r = 0; r < rows.length; r++) scanAll(tables, tokens, r * len, (r + 1) * len, job.counts);
}

/**
 * The file at `path` opened, its size checked against `want` (a UserError
 * naming it otherwise, saying what it holds: `what`), and `use` called.
 */
export function withCheckedFile<T>(
  path: string,
  want: number | ((size: number) => boolean),
  what: string,
  use: (file: { fd: number; size: number }) => T,
): T {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (typeof want === "number" ? size !== want : !want(size)) {
      throw damagedPiece(
        path,
        `${size} bytes, expected ${typeof want === "number" ? want : "more"} (${what})`,
      );
    }
    return use({ fd, size });
  } finally {
    closeSync(fd);
  }
}

/** A damaged file of the step: exit 2 naming it, and how to compute it again. */
export function damagedPiece(path: string, why: string): UserError {
  return new UserError(
    `${path}: ${why}: the file is damaged; delete it and rerun deno task experiment to ` +
      "compute it again",
  );
}

/** Chunk c's hashes (16 B per row, checked): each width's low and high lanes. */
export function readHashes(
  path: string,
  count: number,
): { window: [Uint32Array, Uint32Array]; context: [Uint32Array, Uint32Array] } {
  const what = `the 64-bit hashes of ${count} rows' windows and contexts, 16 B each`;
  const planes = withCheckedFile(path, 16 * count, what, (f) => {
    const bytes = readAt(f, 0, 16 * count).slice();
    return [0, 1, 2, 3].map((k) => new Uint32Array(bytes.buffer, 4 * count * k, count));
  });
  return { window: [planes[0], planes[1]], context: [planes[2], planes[3]] };
}

/** A chunk's part as read back: its seconds, whether of text, its columns and personal rows. */
export interface Part {
  seconds: number;
  text: boolean;
  compression: Float64Array;
  distinct: Float64Array;
  personal: [number, MaskedHit[]][];
}

/** Chunk c's part file read and checked (header, size, personal lines of its rows, ascending). */
export function readPart(path: string, first: number, rows: Uint32Array): Part {
  const n = rows.length;
  return withCheckedFile(
    path,
    (size) => size >= PART_HEADER + 16 * n,
    `a part of ${n} rows`,
    (f) => {
      const head = new DataView(readAt(f, 0, PART_HEADER).slice().buffer);
      const [at, count, bytes, text] = [0, 1, 2, 3].map((i) => head.getUint32(8 + 4 * i, true));
      if (at !== first || count !== n || f.size !== PART_HEADER + 16 * n + bytes || text > 1) {
        throw damagedPiece(
          path,
          `header (rows ${at}…+${count}, ${bytes} bytes of personal lines) does not fit ` +
            `rows ${first}…+${n} in ${f.size} bytes`,
        );
      }
      const body = readAt(f, PART_HEADER, 16 * n + bytes).slice();
      return {
        seconds: head.getFloat64(0, true),
        text: text === 1,
        compression: new Float64Array(body.buffer, 0, n),
        distinct: new Float64Array(body.buffer, 8 * n, n),
        personal: parsePersonal(path, new TextDecoder().decode(body.subarray(16 * n)), rows),
      };
    },
  );
}

/** A part's personal lines: each a row of the chunk, ascending, with its masked hits. */
function parsePersonal(path: string, text: string, rows: Uint32Array): [number, MaskedHit[]][] {
  const out: [number, MaskedHit[]][] = [];
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  let last = -1;
  for (const line of lines) {
    let v: { row?: unknown; hits?: unknown };
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw damagedPiece(path, `a personal line is not JSON (${(e as Error).message})`);
    }
    const row = v.row;
    const j = typeof row === "number" ? lowerBound(rows, row) : -1;
    if (typeof row !== "number" || row <= last || rows[j] !== row || !Array.isArray(v.hits)) {
      throw damagedPiece(
        path,
        `a personal line's row ${String(row)} is not a row of the chunk after ${last}`,
      );
    }
    last = row;
    out.push([row, v.hits as MaskedHit[]]);
  }
  return out;
}

export function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

export function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
