/**
 * The files of the experiment's `features` step (tasks/features.ts writes
 * them) in `features/<key>/` of the run folder, and their reader for the
 * report, export and forecast. The values and their helpers are in
 * row_features.ts (pure), re-exported here.
 *
 * - `<column>.<type>`, one per column of `FEATURE_COLUMNS` (`rows.uint32`,
 *   `window.uint32`, …, `compression.float64`, `distinct.float64`):
 *   little-endian elements, one per selected row, rows ascending; streamed
 *   from chunks (sync or async: the features step computes each chunk as it
 *   is written), each file atomic, in parts of at most 64 MiB.
 * - `personal.jsonl`: one line `{"row":R,"hits":[{kind,start,end,masked}]}`
 *   per row with personal data, rows ascending, values **masked only**.
 * - `rows.json`, written last (its presence means the step finished): the
 *   version, key, `of`, seconds, shards, tokens, `count` (rows), the column
 *   files with their types and sizes, and the personal file's row count.
 *
 * Reading checks everything before a value is used: the version (another
 * version, e.g. 1's per-row JSON arrays, reads as null: the step recomputes
 * it), the metadata's fields, each file's size against count × width, and per
 * chunk the values (rows strictly ascending, finite shares in [0, 1] or ≥ 0,
 * steps ≥ 0 or −1); a damaged file is a UserError (exit 2) naming it.
 * Memory: one chunk of each column, and per row with personal data its row,
 * kinds and line offset (the hits are read back on demand).
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { excerpt, UserError } from "../../errors.ts";
import { type AtomicFile, openAtomic, writeAtomic } from "../../os/atomic.ts";
import { ifNotFound } from "../../os/fs_errors.ts";
import { parseJsonText, schemaProblem } from "../../os/json_file.ts";
import { lowerBound } from "../../rowset.ts";
import { PERSONAL_KINDS } from "./personal.ts";
import {
  columnArray,
  type ColumnType,
  columnWidth,
  FEATURE_CHUNK_ROWS,
  FEATURE_COLUMNS,
  type FeatureChunk,
  type FeatureMeta,
  FEATURES_VERSION,
  kindMask,
  type MaskedHit,
  type PersonalIndex,
  type RowFeatures,
} from "./row_features.ts";

export * from "./row_features.ts";

/** Bytes written per part of a column file (bounded memory while writing). */
export const WRITE_SLICE_BYTES = 64 << 20;
/** The personal file's longest line (a row's masked hits). */
const PERSONAL_LINE_BYTES = 1 << 20;
/** A `rows.json` larger than this is not version 2's metadata (version 1 held every row). */
const META_MAX_BYTES = 1 << 20;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("the row features' files are little-endian: this host is big-endian");
}

const columnFile = (name: string, type: string) => `${name}.${type}`;
const PERSONAL_FILE = "personal.jsonl";

/** The metadata of `rows.json` as written (its schema validates it when read). */
const metaSchema = z.object({
  version: z.literal(FEATURES_VERSION),
  key: z.string(),
  of: z.enum(["text", "tokens"]),
  seconds: z.number().nonnegative(),
  shards: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  count: z.number().int().nonnegative().max(2 ** 32 - 1),
  columns: z.array(z.object({
    name: z.string(),
    type: z.enum(["uint32", "int32", "float64"]),
    file: z.string(),
    bytes: z.number().int().nonnegative(),
  })),
  personal: z.object({ file: z.literal(PERSONAL_FILE), rows: z.number().int().nonnegative() }),
});
type MetaFile = z.infer<typeof metaSchema>;

/** The parts of a typed array as bytes, at most {@link WRITE_SLICE_BYTES} each (views, no copy). */
function* slices(a: Uint32Array | Int32Array | Float64Array): Generator<Uint8Array> {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (let at = 0; at < bytes.length; at += WRITE_SLICE_BYTES) {
    yield bytes.subarray(at, Math.min(bytes.length, at + WRITE_SLICE_BYTES));
  }
}

/** The personal file's lines of `hits`, encoded in parts of about 1 MiB; counts them in `counted`. */
function* personalLines(
  hits: Iterable<readonly [number, readonly MaskedHit[]]>,
  counted: { rows: number },
): Generator<Uint8Array> {
  const enc = new TextEncoder();
  let text = "";
  for (const [row, h] of hits) {
    text += JSON.stringify({ row, hits: h }) + "\n";
    counted.rows++;
    if (text.length >= 1 << 20) {
      yield enc.encode(text);
      text = "";
    }
  }
  if (text.length > 0) yield enc.encode(text);
}

/** The rows with personal data of a chunk of the record, ascending: row and masked hits. */
export type PersonalRows = Iterable<readonly [number, readonly MaskedHit[]]>;

/** A chunk of the record as written: its columns and, optionally, its rows' personal data. */
export type RecordPart = FeatureChunk & { personal?: PersonalRows };

/** The files of a record being written: one per column, then the personal file. */
interface RecordFiles {
  columns: AtomicFile[];
  personal: AtomicFile;
}

/**
 * Appends the parts to the column files and each part's personal rows to the
 * personal file; returns the rows written.
 */
async function writeParts(
  files: RecordFiles,
  parts: Iterable<RecordPart> | AsyncIterable<RecordPart>,
  counted: { rows: number },
): Promise<number> {
  let count = 0;
  for await (const c of parts) {
    for (const [j, { name }] of FEATURE_COLUMNS.entries()) {
      if (c[name].length !== c.rows.length) {
        throw new Error(`column ${name}: ${c[name].length} elements beside ${c.rows.length} rows`);
      }
      for (const part of slices(c[name])) await files.columns[j].write(part);
    }
    for (const part of personalLines(c.personal ?? [], counted)) await files.personal.write(part);
    count += c.rows.length;
  }
  return count;
}

/** The record's metadata as given to {@link writeRowFeatures}. */
export type RecordMeta = Omit<FeatureMeta, "version" | "count">;

/**
 * Writes the record into `dir`, streamed: the column files side by side from
 * `parts` (rows ascending, sync or async: the features step computes each
 * chunk as it is written; each column written in parts of at most
 * {@link WRITE_SLICE_BYTES}) and the personal file from each part's
 * `personal` rows, then from `personal` (rows with hits, ascending, after
 * every part's), each file atomic, then `rows.json` (last: its presence means
 * the record is whole). `meta` may be a function, called once the parts are
 * written (the step's measured seconds include the assembly). Memory: one
 * part and one slice.
 */
export async function writeRowFeatures(
  dir: string,
  meta: RecordMeta | (() => RecordMeta),
  parts: Iterable<RecordPart> | AsyncIterable<RecordPart>,
  personal: PersonalRows = [],
): Promise<string> {
  const opened: AtomicFile[] = [];
  const counted = { rows: 0 };
  let count: number;
  try {
    for (const { name, type } of FEATURE_COLUMNS) {
      opened.push(await openAtomic(join(dir, columnFile(name, type))));
    }
    opened.push(await openAtomic(join(dir, PERSONAL_FILE)));
    const files = { columns: opened.slice(0, -1), personal: opened[opened.length - 1] };
    count = await writeParts(files, parts, counted);
    for (const part of personalLines(personal, counted)) await files.personal.write(part);
  } catch (e) {
    for (const f of opened) await f.abort();
    throw e;
  }
  for (const f of opened) await f.commit();
  const record: MetaFile = {
    version: FEATURES_VERSION,
    ...(typeof meta === "function" ? meta() : meta),
    count,
    columns: FEATURE_COLUMNS.map(({ name, type }) => ({
      name,
      type,
      file: columnFile(name, type),
      bytes: count * columnWidth(type),
    })),
    personal: { file: PERSONAL_FILE, rows: counted.rows },
  };
  const path = join(dir, "rows.json");
  await writeAtomic(path, JSON.stringify(record, null, 2) + "\n");
  return path;
}

/**
 * The row features of a run folder's current settings (the newest rows.json
 * under `features/`), or null when the step has not finished or the newest
 * record is of another version (recomputed by the step). `chunkRows`: rows
 * per chunk read (default {@link FEATURE_CHUNK_ROWS}).
 */
export async function readRowFeatures(
  runDir: string,
  opts: { chunkRows?: number } = {},
): Promise<RowFeatures | null> {
  const base = join(runDir, "features");
  let newest: { path: string; mtime: number } | null = null;
  try {
    for await (const e of Deno.readDir(base)) {
      if (!e.isDirectory) continue;
      const path = join(base, e.name, "rows.json");
      const st = await Deno.stat(path).catch(ifNotFound(null));
      const mtime = st?.mtime?.getTime() ?? 0;
      if (st && (!newest || mtime > newest.mtime)) newest = { path, mtime };
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!newest) return null;
  const meta = await readMeta(newest.path);
  if (!meta) return null;
  const dir = join(newest.path, "..");
  const columns = checkColumns(dir, meta);
  const personal = await readPersonal(join(dir, PERSONAL_FILE), meta);
  return fileFeatures(meta, columns, personal, opts.chunkRows ?? FEATURE_CHUNK_ROWS);
}

/** `rows.json`'s metadata; null when it is of another version (1 held every row: never parsed). */
async function readMeta(path: string): Promise<MetaFile | null> {
  const size = (await stat(path)).size;
  const file = await open(path, "r");
  let text: string;
  try {
    const head = new Uint8Array(Math.min(size, META_MAX_BYTES));
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    text = new TextDecoder().decode(head.subarray(0, bytesRead));
  } finally {
    await file.close();
  }
  const version = /^\s*\{\s*"version"\s*:\s*(\d+)/.exec(text)?.[1];
  if (version !== undefined && Number(version) !== FEATURES_VERSION) return null;
  if (size > META_MAX_BYTES) {
    throw new UserError(
      `${path}: ${size} bytes, more than the ${META_MAX_BYTES} the metadata of row features ` +
        `(version ${FEATURES_VERSION}) can have; delete its folder to recompute the features`,
    );
  }
  const value = parseJsonText<unknown>(text, path, { schema: z.unknown() });
  const v = (value as { version?: unknown } | null)?.version;
  if (typeof v === "number" && v !== FEATURES_VERSION) return null;
  const parsed = metaSchema.safeParse(value);
  if (!parsed.success) throw damaged(path, schemaProblem(parsed.error, value));
  return parsed.data;
}

/** A damaged features file: exit 2 naming it, and how to recompute. */
function damaged(path: string, why: string): UserError {
  return new UserError(
    `${path}: ${why}. The row features are damaged: delete the folder ${
      join(path, "..")
    } and rerun deno task experiment to recompute them`,
  );
}

/** Each column's file path, checked: present, of the metadata's type, count × width bytes. */
function checkColumns(dir: string, meta: MetaFile): Map<keyof FeatureChunk, string> {
  const out = new Map<keyof FeatureChunk, string>();
  const rowsJson = join(dir, "rows.json");
  for (const { name, type } of FEATURE_COLUMNS) {
    const c = meta.columns.find((x) => x.name === name);
    if (!c || c.type !== type || c.file !== columnFile(name, type)) {
      throw damaged(rowsJson, `columns: no ${type} column ${name} in ${columnFile(name, type)}`);
    }
    const path = join(dir, c.file);
    const expected = meta.count * columnWidth(type);
    const size = fileSize(path);
    if (size === null) throw damaged(path, "the column file is missing");
    if (size !== expected || c.bytes !== expected) {
      throw damaged(
        path,
        `${size} bytes, expected ${meta.count} rows × ${columnWidth(type)} bytes = ${expected} ` +
          "(truncated or corrupted)",
      );
    }
    out.set(name, path);
  }
  return out;
}

function fileSize(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Reads elements `[start, end)` of a column file into a fresh typed array. */
function readColumn(
  path: string,
  type: ColumnType,
  start: number,
  end: number,
): Uint32Array | Int32Array | Float64Array {
  const a = columnArray(type, end - start);
  const bytes = new Uint8Array(a.buffer);
  const w = columnWidth(type);
  const fd = openSync(path, "r");
  try {
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, start * w + got);
      if (n === 0) break;
      got += n;
    }
    if (got < bytes.length) {
      throw damaged(path, `${fstatSync(fd).size} bytes: it was cut short while being read`);
    }
  } finally {
    closeSync(fd);
  }
  return a;
}

/** A record whose chunks are read from its column files (validated per chunk). */
function fileFeatures(
  meta: MetaFile,
  paths: Map<keyof FeatureChunk, string>,
  personal: PersonalIndex,
  chunkSize: number,
): RowFeatures {
  const { columns: _c, personal: _p, ...rest } = meta;
  return {
    ...rest,
    chunkSize,
    chunks: Math.ceil(meta.count / chunkSize),
    chunk(k) {
      const start = k * chunkSize, end = Math.min(meta.count, start + chunkSize);
      const out = {} as Record<keyof FeatureChunk, unknown>;
      for (const { name, type } of FEATURE_COLUMNS) {
        out[name] = readColumn(paths.get(name)!, type, start, end);
      }
      const c = out as FeatureChunk;
      const before = start > 0 ? readColumn(paths.get("rows")!, "uint32", start - 1, start)[0] : -1;
      checkChunk(c, paths, start, before);
      return c;
    },
    personal,
  };
}

/** The values of a chunk read from files: rows ascending, counts, steps and shares in range. */
function checkChunk(
  c: FeatureChunk,
  paths: Map<keyof FeatureChunk, string>,
  start: number,
  before: number,
): void {
  const bad = (name: keyof FeatureChunk, i: number, why: string) =>
    damaged(paths.get(name)!, `element ${start + i} (row ${c.rows[i]}): ${why}`);
  let last = before;
  for (let i = 0; i < c.rows.length; i++) {
    if (c.rows[i] <= last) throw bad("rows", i, `not above the row before it (${last})`);
    last = c.rows[i];
    if (c.step[i] < 0) throw bad("step", i, `${c.step[i]} is negative`);
    if (c.nextStep[i] < -1) throw bad("nextStep", i, `${c.nextStep[i]} is below −1`);
    if (c.rowCopies[i] < 1) throw bad("rowCopies", i, "0 rows hold the row's window");
    const r = c.compression[i], d = c.distinct[i];
    if (!(r >= 0 && Number.isFinite(r))) throw bad("compression", i, `${r} is not a ratio ≥ 0`);
    if (!(d >= 0 && d <= 1)) throw bad("distinct", i, `${d} is not a share in [0, 1]`);
  }
}

/** Growable typed arrays of the personal index while it is read. */
class Growing<T extends Uint32Array | Uint8Array | Float64Array> {
  #n = 0;
  constructor(private a: T, private make: (n: number) => T) {}
  push(v: number): void {
    if (this.#n === this.a.length) {
      const b = this.make(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.#n++] = v;
  }
  done(): T {
    return this.a.slice(0, this.#n) as T;
  }
}

/** A line of the personal file: its row and masked hits. */
const personalLine = z.object({
  row: z.number().int().nonnegative(),
  hits: z.array(z.object({
    kind: z.enum(PERSONAL_KINDS as [string, ...string[]]),
    start: z.number().int().nonnegative(),
    end: z.number().int().nonnegative(),
    masked: z.string(),
  })).min(1),
});

/**
 * The personal file streamed into its index (row, kinds, byte offset of each
 * line); each line validated (rows ascending, kinds known, spans ordered).
 */
async function readPersonal(path: string, meta: MetaFile): Promise<PersonalIndex> {
  const rows = new Growing(new Uint32Array(1024), (n) => new Uint32Array(n));
  const kinds = new Growing(new Uint8Array(1024), (n) => new Uint8Array(n));
  const offsets = new Growing(new Float64Array(1024), (n) => new Float64Array(n));
  let last = -1, line = 0;
  for await (const l of byteLines(path)) {
    line++;
    const hit = parseLine(path, line, l.text);
    if (hit.row <= last) throw damaged(`${path}:${line}`, `row ${hit.row} after row ${last}`);
    last = hit.row;
    rows.push(hit.row);
    kinds.push(kindMask(hit.hits as MaskedHit[]));
    offsets.push(l.offset);
    offsets.push(l.end);
  }
  if (line !== meta.personal.rows) {
    throw damaged(path, `${line} lines, rows.json says ${meta.personal.rows} (truncated?)`);
  }
  const at = offsets.done();
  const list = rows.done();
  return {
    rows: list,
    kinds: kinds.done(),
    hits(row) {
      const j = lowerBound(list, row);
      if (j >= list.length || list[j] !== row) return [];
      const bytes = new Uint8Array(at[2 * j + 1] - at[2 * j]);
      const fd = openSync(path, "r");
      try {
        readSync(fd, bytes, 0, bytes.length, at[2 * j]);
      } finally {
        closeSync(fd);
      }
      return parseLine(path, j + 1, new TextDecoder().decode(bytes)).hits as MaskedHit[];
    },
  };
}

function parseLine(path: string, line: number, text: string): z.infer<typeof personalLine> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw damaged(`${path}:${line}`, `not valid JSON (${excerpt((e as Error).message)})`);
  }
  const parsed = personalLine.safeParse(value);
  if (!parsed.success) throw damaged(`${path}:${line}`, schemaProblem(parsed.error, value));
  for (const h of parsed.data.hits) {
    if (h.end <= h.start) throw damaged(`${path}:${line}`, `span ${h.start}–${h.end} is empty`);
  }
  return parsed.data;
}

/** The lines of a file with their byte offsets (`[offset, end)` without the newline). */
async function* byteLines(
  path: string,
): AsyncGenerator<{ text: string; offset: number; end: number }> {
  const file = await open(path, "r").catch((e) => {
    if ((e as { code?: string }).code === "ENOENT") throw damaged(path, "the file is missing");
    throw e;
  });
  const dec = new TextDecoder();
  const buf = new Uint8Array(PERSONAL_LINE_BYTES * 2);
  let have = 0, base = 0;
  try {
    for (;;) {
      const { bytesRead } = await file.read(buf, have, buf.length - have, null);
      have += bytesRead;
      let start = 0;
      for (let nl = buf.indexOf(10, start); nl >= 0 && nl < have; nl = buf.indexOf(10, start)) {
        yield { text: dec.decode(buf.subarray(start, nl)), offset: base + start, end: base + nl };
        start = nl + 1;
      }
      if (bytesRead === 0) {
        if (have > start) throw damaged(path, "the last line has no line ending (cut short?)");
        return;
      }
      if (have - start > PERSONAL_LINE_BYTES) {
        throw damaged(path, `a line at byte ${base + start} is longer than ${PERSONAL_LINE_BYTES}`);
      }
      buf.copyWithin(0, start, have);
      have -= start;
      base += start;
    }
  } finally {
    await file.close();
  }
}
