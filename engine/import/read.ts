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
import { createInterface } from "node:readline";
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from "hyparquet";
import { UserError } from "../errors.ts";

/** Size and SHA-256 (hex) of a file. */
export async function fileDigest(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) {
    hash.update(chunk as Uint8Array);
    bytes += (chunk as Uint8Array).length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** Columns of one row group: name → values (INT64 as bigint, others as numbers). */
export type ColumnChunkValues = Record<string, ArrayLike<unknown>>;

/** The leaf columns of a Parquet file (top-level names) with their physical type. */
export async function parquetColumns(path: string): Promise<Map<string, string | undefined>> {
  const file = await asyncBufferFromFile(path);
  let meta;
  try {
    meta = await parquetMetadataAsync(file);
  } catch (e) {
    throw new UserError(`${path}: not a Parquet file (${(e as Error).message})`);
  }
  const out = new Map<string, string | undefined>();
  // Top-level children of the root, with the type of a flat column.
  let i = 1;
  const root = meta.schema[0].num_children ?? 0;
  const skip = (j: number): number => {
    let next = j + 1;
    for (let c = 0; c < (meta.schema[j].num_children ?? 0); c++) next = skip(next);
    return next;
  };
  for (let c = 0; c < root; c++) {
    const el = meta.schema[i];
    out.set(el.name, el.num_children ? "GROUP" : el.type);
    i = skip(i);
  }
  return out;
}

/**
 * Calls `visit(columns, firstRecord)` for each row group of a Parquet file
 * with the named columns only. Memory: one row group of those columns.
 */
export async function forEachRowGroup(
  path: string,
  columns: string[],
  visit: (values: ColumnChunkValues, first: number, count: number) => void | Promise<void>,
): Promise<number> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  let start = 0;
  for (const g of metadata.row_groups) {
    const count = Number(g.num_rows);
    const parts = new Map<string, { at: number; data: ArrayLike<unknown> }[]>();
    await parquetRead({
      file,
      metadata,
      columns,
      rowStart: start,
      rowEnd: start + count,
      onChunk: ({ columnName, columnData, rowStart }) => {
        const list = parts.get(columnName) ?? [];
        list.push({ at: rowStart, data: columnData });
        parts.set(columnName, list);
      },
    });
    const values: ColumnChunkValues = {};
    for (const name of columns) {
      const out = new Array<unknown>(count);
      for (const { at, data } of parts.get(name) ?? []) {
        for (let i = 0; i < data.length; i++) {
          const r = at + i - start;
          if (r >= 0 && r < count) out[r] = data[i];
        }
      }
      values[name] = out;
    }
    await visit(values, start, count);
    start += count;
  }
  return start;
}

/** The values of `columns` at the given records of a Parquet file (records ascending). */
export async function parquetRecords(
  path: string,
  columns: string[],
  records: readonly number[],
): Promise<unknown[][]> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const out: unknown[][] = [];
  for (const r of records) {
    await parquetRead({
      file,
      metadata,
      columns,
      rowStart: r,
      rowEnd: r + 1,
      onComplete: (rows: unknown[][]) => out.push(rows[0]),
    });
  }
  return out;
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

/**
 * Streams `index,accuracy` lines (a header line `index,accuracy` is allowed
 * first): `visit(index, accuracy, line)`. Lines are checked: two fields, an
 * integer index, an accuracy in [0, 1].
 */
export async function forEachCsvRow(
  path: string,
  visit: (index: number, accuracy: number, line: number) => void,
): Promise<number> {
  let line = 0, rows = 0;
  const lines = createInterface({
    input: createReadStream(path, { highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
  for await (const raw of lines) {
    line++;
    const text = raw.trim();
    if (text === "") continue;
    const comma = text.indexOf(",");
    if (line === 1 && /^[A-Za-z_]/.test(text)) {
      if (text.replace(/\s/g, "") !== "index,accuracy") {
        throw new UserError(`${path}:1: header "${text}": expected index,accuracy`);
      }
      continue;
    }
    if (comma < 0 || text.indexOf(",", comma + 1) >= 0) {
      throw new UserError(`${path}:${line}: "${text}": expected two fields index,accuracy`);
    }
    const index = Number(text.slice(0, comma));
    const accuracy = Number(text.slice(comma + 1));
    if (!Number.isInteger(index) || index < 0) {
      throw new UserError(`${path}:${line}: index "${text.slice(0, comma)}" is not an integer ≥ 0`);
    }
    if (!(accuracy >= 0 && accuracy <= 1)) {
      throw new UserError(
        `${path}:${line}: accuracy "${text.slice(comma + 1)}" is not a number in [0, 1]`,
      );
    }
    visit(index, accuracy, line);
    rows++;
  }
  return rows;
}
