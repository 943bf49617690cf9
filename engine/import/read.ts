/**
 * Readers of the import's input files, streamed: Parquet one row group at a
 * time (only the columns asked for, read lazily from disk, so a `tokens`
 * column is never loaded unless asked), CSV line by line, and a file's
 * SHA-256 in one streamed pass. Values are checked where they are read;
 * every error names the file and the row (record number within the file,
 * 0-based for Parquet, the line number for CSV).
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { createHash } from "node:crypto";
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetRead,
  snappyUncompress,
} from "hyparquet";
import { excerpt, UserError } from "../errors.ts";
import { boundedLines } from "../os/lines.ts";
import { fsProblem } from "../os/fs_errors.ts";

/** Size and SHA-256 (hex) of a file. */
export async function fileDigest(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) {
      hash.update(chunk as Uint8Array);
      bytes += (chunk as Uint8Array).length;
    }
  } catch (e) {
    throw fsProblem(path, e, "input file");
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Columns of one row group: name → values (INT64 as bigint, others as numbers). */
export type ColumnChunkValues = Record<string, ArrayLike<unknown>>;

/** The Parquet metadata hyparquet reads from a footer. */
type Metadata = Awaited<ReturnType<typeof parquetMetadataAsync>>;
type AsyncBuffer = Awaited<ReturnType<typeof asyncBufferFromFile>>;

/**
 * Bounds on the work one Parquet file may ask for, checked against its footer
 * before anything is allocated.
 */
export const PARQUET_LIMITS = {
  /** Row groups of one file (a row group per row of a million-row file is refused). */
  rowGroups: 1 << 20,
  /** Bytes one decompressed page may claim, at most (writers use 1 MiB pages). */
  pageBytes: 256 << 20,
  /** Uncompressed bytes per row a flat column chunk may claim (INT64 is 8), plus 1 MiB. */
  flatBytesPerRow: 64,
  /** List values per row, on average over a row group (a Pythia row is 2049 tokens). */
  listValuesPerRow: 1 << 16,
};

/** A UserError naming the file for whatever a Parquet reader threw on its bytes. */
function damagedParquet(path: string, where: string, e: unknown): Error {
  if (e instanceof UserError) return e;
  const fs = fsProblem(path, e, "Parquet file");
  if (fs instanceof UserError) return fs;
  const message = e instanceof Error ? e.message : String(e);
  return new UserError(
    `${path}: ${where}: not a readable Parquet file (${
      message.length > 120 ? `${message.slice(0, 120)}…` : message
    }); the file is damaged or not Parquet: download or export it again`,
  );
}

/** An open Parquet file: its buffer and its checked footer. */
interface ParquetFile {
  path: string;
  file: AsyncBuffer;
  metadata: Metadata;
  /** First record of each row group, and the total as the last entry. */
  starts: number[];
}

/**
 * Opens a Parquet file and checks its footer: row counts that add up, at most
 * `maxRows` rows (the rows the run can have: a footer claiming 5e9 rows is
 * refused before an array is sized by it), a bounded number of row groups,
 * column chunks inside the file.
 */
async function openParquet(path: string, maxRows = Number.MAX_SAFE_INTEGER): Promise<ParquetFile> {
  let file: AsyncBuffer, metadata: Metadata;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw damagedParquet(path, "the footer", e);
  }
  const groups = metadata.row_groups ?? [];
  if (groups.length > PARQUET_LIMITS.rowGroups) {
    throw new UserError(
      `${path}: ${groups.length} row groups, more than the ${PARQUET_LIMITS.rowGroups} accepted; ` +
        "rewrite the file with larger row groups",
    );
  }
  const starts = [0];
  for (const [g, group] of groups.entries()) {
    const n = Number(group.num_rows);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new UserError(`${path}: row group ${g} claims ${String(group.num_rows)} rows`);
    }
    const at = starts[starts.length - 1] + n;
    if (at > maxRows) {
      throw new UserError(
        `${path}: the footer claims ${
          at > Number(metadata.num_rows) ? at : String(metadata.num_rows)
        } rows or more, more than the ${maxRows} rows this run can have; ` +
          "the file is damaged or belongs to another run",
      );
    }
    for (const chunk of group.columns ?? []) {
      const m = chunk.meta_data;
      const data = Number(m?.data_page_offset ?? 0), dict = Number(m?.dictionary_page_offset ?? 0);
      const end = (dict > 0 && dict < data ? dict : data) + Number(m?.total_compressed_size ?? 0);
      if (!(end <= file.byteLength)) {
        throw new UserError(
          `${path}: row group ${g}: column ${
            m?.path_in_schema?.join(".") ?? "?"
          } ends at byte ${end}, beyond the file's ${file.byteLength} bytes (truncated?)`,
        );
      }
    }
    starts.push(at);
  }
  if (Number(metadata.num_rows) !== starts[starts.length - 1]) {
    throw new UserError(
      `${path}: the footer claims ${String(metadata.num_rows)} rows but its row groups hold ${
        starts[starts.length - 1]
      }; the file is damaged`,
    );
  }
  return { path, file, metadata, starts };
}

/** The leaf columns of a Parquet file (top-level names) with their physical type. */
export async function parquetColumns(path: string): Promise<Map<string, string | undefined>> {
  const meta = (await openParquet(path)).metadata;
  const out = new Map<string, string | undefined>();
  try {
    // Top-level children of the root, with the type of a flat column.
    let i = 1;
    const root = meta.schema[0].num_children ?? 0;
    const skip = (j: number): number => {
      if (j >= meta.schema.length) throw new Error("schema shorter than its num_children");
      let next = j + 1;
      for (let c = 0; c < (meta.schema[j].num_children ?? 0); c++) next = skip(next);
      return next;
    };
    for (let c = 0; c < root; c++) {
      const el = meta.schema[i];
      if (!el) throw new Error("schema shorter than its num_children");
      out.set(el.name, el.num_children ? "GROUP" : el.type);
      i = skip(i);
    }
  } catch (e) {
    throw damagedParquet(path, "the schema", e);
  }
  return out;
}

/**
 * Reads the named columns of one row group: its metadata alone is handed to
 * the reader (so time is linear in the number of row groups), each column
 * chunk's claimed size is bounded by its rows, and no page may decompress to
 * more than its chunk claims (a page claiming 2 GiB is refused before the
 * buffer is allocated).
 */
async function readRowGroup(
  pq: ParquetFile,
  g: number,
  columns: string[],
  onChunk: (column: string, at: number, data: ArrayLike<unknown>) => void,
): Promise<void> {
  const group = pq.metadata.row_groups[g];
  const rows = pq.starts[g + 1] - pq.starts[g];
  let pageBound = 0;
  for (const chunk of group.columns ?? []) {
    const m = chunk.meta_data;
    const name = m?.path_in_schema?.[0];
    if (!m || name === undefined || !columns.includes(name)) continue;
    const flat = m.path_in_schema.length === 1;
    const size = Number(m.total_uncompressed_size);
    const values = Number(m.num_values);
    const bound = flat
      ? rows * PARQUET_LIMITS.flatBytesPerRow + (1 << 20)
      : rows * PARQUET_LIMITS.listValuesPerRow * 8 + (1 << 20);
    if (!(size <= bound) || (!flat && !(values <= rows * PARQUET_LIMITS.listValuesPerRow))) {
      throw new UserError(
        `${pq.path}: row group ${g}: column ${m.path_in_schema.join(".")} claims ${size} bytes ` +
          `and ${values} values for ${rows} rows, more than such a column can hold ` +
          `(${
            flat
              ? `${PARQUET_LIMITS.flatBytesPerRow} bytes`
              : `${PARQUET_LIMITS.listValuesPerRow} list values`
          } per row)`,
      );
    }
    pageBound = Math.max(pageBound, size);
  }
  pageBound = Math.min(pageBound, PARQUET_LIMITS.pageBytes);
  const snappy = (input: Uint8Array, outputLength: number): Uint8Array => {
    if (!(outputLength >= 0 && outputLength <= pageBound)) {
      throw new UserError(
        `${pq.path}: row group ${g}: a page claims ${outputLength} bytes decompressed, more than ` +
          `its column chunk's ${pageBound}; the file is damaged`,
      );
    }
    const out = new Uint8Array(outputLength);
    snappyUncompress(input, out);
    return out;
  };
  try {
    await parquetRead({
      file: pq.file,
      metadata: { ...pq.metadata, row_groups: [group], num_rows: BigInt(rows) },
      columns,
      rowStart: 0,
      rowEnd: rows,
      compressors: { SNAPPY: snappy },
      onChunk: ({ columnName, columnData, rowStart }) => onChunk(columnName, rowStart, columnData),
    });
  } catch (e) {
    throw damagedParquet(pq.path, `row group ${g}`, e);
  }
}

/** Options of {@link forEachRowGroup}. */
export interface RowGroupOptions {
  /** Most rows the file may have (the footer is checked before reading). */
  maxRows?: number;
  /** Stops the read between row groups (a stop signal). */
  signal?: AbortSignal;
}

/**
 * Calls `visit(columns, firstRecord)` for each row group of a Parquet file
 * with the named columns only. Memory: one row group of those columns. A
 * damaged file is a UserError naming it and the row group.
 */
export async function forEachRowGroup(
  path: string,
  columns: string[],
  visit: (values: ColumnChunkValues, first: number, count: number) => void | Promise<void>,
  opts: RowGroupOptions = {},
): Promise<number> {
  const pq = await openParquet(path, opts.maxRows);
  for (let g = 0; g < pq.metadata.row_groups.length; g++) {
    opts.signal?.throwIfAborted();
    const start = pq.starts[g], count = pq.starts[g + 1] - start;
    if (count === 0) continue;
    const values: ColumnChunkValues = {};
    for (const name of columns) values[name] = new Array<unknown>(count);
    await readRowGroup(pq, g, columns, (name, at, data) => {
      const out = values[name] as unknown[];
      for (let i = 0; i < data.length; i++) {
        const r = at + i;
        if (r >= 0 && r < count) out[r] = data[i];
      }
    });
    await visit(values, start, count);
  }
  return pq.starts[pq.starts.length - 1];
}

/**
 * The values of `columns` at the given records of a Parquet file (records
 * ascending), reading each row group that holds some once.
 */
export async function parquetRecords(
  path: string,
  columns: string[],
  records: readonly number[],
): Promise<unknown[][]> {
  const pq = await openParquet(path);
  const out: unknown[][] = [];
  let k = 0;
  for (let g = 0; g < pq.metadata.row_groups.length && k < records.length; g++) {
    const start = pq.starts[g], end = pq.starts[g + 1];
    const wanted: number[] = [];
    while (k < records.length && records[k] < end) {
      if (records[k] >= start) wanted.push(records[k] - start);
      k++;
    }
    if (wanted.length === 0) continue;
    const cells = new Map<string, unknown[]>(columns.map((c) => [c, []]));
    const need = new Set(wanted);
    await readRowGroup(pq, g, columns, (name, at, data) => {
      for (let i = 0; i < data.length; i++) {
        if (need.has(at + i)) cells.get(name)![at + i] = data[i];
      }
    });
    for (const r of wanted) out.push(columns.map((c) => cells.get(c)![r]));
  }
  return out;
}

/**
 * A number from a Parquet cell (bigint or number), or an error naming the
 * file, the record and the column: an empty cell (null) is never read as 0.
 */
export function cellNumber(v: unknown, path: string, record: number, column: string): number {
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "number" && !Number.isNaN(v)) return v;
  throw new UserError(
    `${path}: row ${record}: ${column} is ${
      v === null || v === undefined ? "empty" : excerpt(String(v))
    }; expected a number`,
  );
}

/** A row index from a Parquet cell (bigint or number), or an error naming the file and record. */
export function indexValue(v: unknown, path: string, record: number, limit: number): number {
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new UserError(`${path}: row ${record}: index ${String(v)} is not an integer`);
  }
  if (n < 0 || n >= limit) {
    throw new UserError(
      `${path}: row ${record}: index ${n} is outside the scored rows [0, ${limit})`,
    );
  }
  return n;
}

const INDEX_TEXT = /^\d{1,16}$/;
const NUMBER_TEXT = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * Streams `index,accuracy` lines (a header line `index,accuracy` is allowed
 * first): `visit(index, accuracy, line)`. Lines are checked: two fields, an
 * index of digits only, an accuracy written as a number in [0, 1]. An empty
 * field (`,1`, or `6,` of a file cut mid-write) is an error, never 0; a line
 * longer than 4 KiB (a binary file, a 50 MB line) is refused after reading
 * that much of it; messages quote at most a short escaped excerpt.
 */
export async function forEachCsvRow(
  path: string,
  visit: (index: number, accuracy: number, line: number) => void,
): Promise<number> {
  let rows = 0;
  const expected = "lines index,accuracy (e.g. 17,0.96875)";
  try {
    for await (const { line, text: raw } of boundedLines(path, { expected })) {
      const text = raw.trim();
      if (text === "") continue;
      const comma = text.indexOf(",");
      if (line === 1 && /^[A-Za-z_]/.test(text)) {
        if (text.replace(/\s/g, "") !== "index,accuracy") {
          throw new UserError(`${path}:1: header ${excerpt(text)}: expected index,accuracy`);
        }
        continue;
      }
      if (comma < 0 || text.indexOf(",", comma + 1) >= 0) {
        throw new UserError(
          `${path}:${line}: ${excerpt(text)}: expected two fields index,accuracy`,
        );
      }
      const indexText = text.slice(0, comma).trim(), accuracyText = text.slice(comma + 1).trim();
      if (!INDEX_TEXT.test(indexText)) {
        throw new UserError(
          `${path}:${line}: index ${excerpt(indexText)} is not an integer ≥ 0 ` +
            `(line ${excerpt(text)}; expected index,accuracy)`,
        );
      }
      const accuracy = Number(accuracyText);
      if (!NUMBER_TEXT.test(accuracyText) || !(accuracy >= 0 && accuracy <= 1)) {
        throw new UserError(
          `${path}:${line}: accuracy ${excerpt(accuracyText)} is not a number in [0, 1] ` +
            `(line ${excerpt(text)}; expected index,accuracy)`,
        );
      }
      visit(Number(indexText), accuracy, line);
      rows++;
    }
  } catch (e) {
    throw fsProblem(path, e, "CSV file");
  }
  return rows;
}

/**
 * The match count an accuracy stands for at continuation length `l`: the
 * integer `accuracy × l`, or null when the accuracy is not on the grid of
 * 1/l (scores of another continuation length: 63/64 is no number of 32nds).
 */
export function gridMatches(accuracy: number, l: number): number | null {
  const m = accuracy * l, r = Math.round(m);
  return Math.abs(m - r) <= 1e-6 ? r : null;
}

/** The message of an accuracy off the grid of 1/l, naming what would be valid. */
export function offGridMessage(accuracy: number, l: number): string {
  const nearest = Math.round(accuracy * l);
  return `accuracy ${accuracy} is not a multiple of 1/${l} (the experiment's continuation ` +
    `length l = ${l}; the nearest, ${nearest}/${l}, would be ${nearest / l}): these scores were ` +
    "made with another continuation length; give --experiment with that memorization.continuation";
}
