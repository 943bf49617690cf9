/**
 * The export's Parquet files, encoded here for the columns' known shapes
 * (the store's typed chunks), with hyparquet-writer's page headers, delta
 * encoder and footer: no value per row goes through a general encoder.
 *
 * Each row group holds one page per column (format 1 data pages,
 * uncompressed: the packed values do not compress):
 *
 * | column | type | encoding |
 * | --- | --- | --- |
 * | index | INT64 | DELTA_BINARY_PACKED (ascending rows: a few bits per row, none when consecutive) |
 * | accuracy | DOUBLE | dictionary of k / l for k = 0..max, the same indices as matches |
 * | matches, prefix | INT32 | dictionary of 0..max, indices bit-packed at ⌈log2(max + 1)⌉ bits |
 * | nll | FLOAT | PLAIN (the float bytes as they are) |
 * | memorized | BOOLEAN | PLAIN (a bit per row) |
 * | feature columns | INT32, DOUBLE, UTF-8 BYTE_ARRAY | PLAIN |
 *
 * Every column is REQUIRED and carries min/max statistics (NaN left out, as
 * the format asks), so readers can skip row groups by index or by score.
 * Any Parquet reader reads them: the tests read them back with DuckDB and
 * hyparquet. Chosen over DuckDB's and hyparquet-writer's general encoders by
 * `deno task bench store` (docs/analysis.md).
 *
 * @module
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { ByteWriter } from "hyparquet-writer";
import { deltaBinaryPack } from "hyparquet-writer/src/delta.js";
import { writePageHeader } from "hyparquet-writer/src/datapage.js";
import { writeMetadata } from "hyparquet-writer/src/metadata.js";
import type { ScoreChunk, ScoreSource } from "../engine/store/scored_checkpoint.ts";
import type { ProgressSink } from "../engine/types.ts";
import {
  type FeatureChunk,
  type FeatureColumn,
  FeatureCursor,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";

// The footer's types as hyparquet-writer takes them (its own hyparquet's).
type FileMetaData = Parameters<typeof writeMetadata>[1];
type RowGroup = FileMetaData["row_groups"][number];
type ColumnChunk = RowGroup["columns"][number];
type ColumnMetaData = NonNullable<ColumnChunk["meta_data"]>;
type SchemaElement = FileMetaData["schema"][number];
type Encoding = ColumnMetaData["encodings"][number];
type MinMaxType = NonNullable<ColumnMetaData["statistics"]>["min_value"];

/** A run's chunks read in order, any number of rows at a time. */
export class ChunkCursor {
  #k = 0;
  #at = 0;
  #chunk: ScoreChunk | null = null;
  constructor(readonly source: ScoreSource) {}
  /** The current chunk and the position in it, reading the next when one is used up; null at the end. */
  peek(): { chunk: ScoreChunk; at: number } | null {
    while (!this.#chunk || this.#at === this.#chunk.rows.length) {
      if (this.#k === this.source.chunks) return null;
      this.#chunk = this.source.chunk(this.#k++);
      this.#at = 0;
    }
    return { chunk: this.#chunk, at: this.#at };
  }
  /** Moves on by n rows of the current chunk. */
  advance(n: number): void {
    this.#at += n;
  }
}

/** What a file holds besides the score columns. */
export interface ParquetFileOptions {
  /** Where to write (the caller renames it into place). */
  path: string;
  /** At most this many rows of the cursor (Infinity: all). */
  rows: number;
  /** Continuation length l: memorized = (prefix, or matches) ≥ l, accuracy = matches / l. */
  l: number;
  /** With the accuracy column. */
  accuracy: boolean;
  /** Rows per row group. */
  rowGroup: number;
  /** The run folder's row features, as columns after the scores. */
  features?: { features: RowFeatures; columns: FeatureColumn[] } | null;
  progress?: ProgressSink | null;
}

/** One row group's values, copied from the chunks (reused from group to group). */
class Group {
  n = 0;
  readonly rows: Uint32Array<ArrayBuffer>;
  readonly matches: Uint8Array<ArrayBuffer>;
  readonly prefix: Uint8Array<ArrayBuffer> | null;
  readonly nll: Float32Array<ArrayBuffer> | null;
  /** Per feature column: its values (numbers, or text). */
  readonly features: (Int32Array<ArrayBuffer> | Float64Array<ArrayBuffer> | string[])[];
  constructor(size: number, source: ScoreSource, columns: readonly FeatureColumn[]) {
    this.rows = new Uint32Array(size);
    this.matches = new Uint8Array(size);
    this.prefix = source.prefix ? new Uint8Array(size) : null;
    this.nll = source.nll ? new Float32Array(size) : null;
    this.features = columns.map((c) =>
      c.type === "INT32"
        ? new Int32Array(size)
        : c.type === "DOUBLE"
        ? new Float64Array(size)
        : new Array<string>(size).fill("")
    );
  }

  /** Appends rows [at, at + m) of a chunk. */
  add(c: ScoreChunk, at: number, m: number): void {
    const end = at + m;
    this.rows.set(c.rows.subarray(at, end), this.n);
    this.matches.set(c.matches.subarray(at, end), this.n);
    if (this.prefix) this.prefix.set(c.prefix!.subarray(at, end), this.n);
    if (this.nll) this.nll.set(c.nll!.subarray(at, end), this.n);
    this.n += m;
  }

  /** The feature columns' values of rows [from, n). */
  fillFeatures(from: number, columns: readonly FeatureColumn[], at: FeatureCursor): void {
    for (let i = from; i < this.n; i++) {
      at.seek(this.rows[i]);
      const chunk: FeatureChunk | null = at.chunk, e = at.i;
      for (let j = 0; j < columns.length; j++) {
        (this.features[j] as { [i: number]: number | string })[i] = columns[j].value(chunk, e);
      }
    }
  }
}

/** A column chunk's pages, ready to write, and its metadata less the offsets. */
interface EncodedColumn {
  name: string;
  type: ColumnMetaData["type"];
  /** Dictionary page, or null. */
  dictionary: Page | null;
  /** Data page. */
  data: Page;
  encodings: Encoding[];
  min: MinMaxType | undefined;
  max: MinMaxType | undefined;
}

/** A page: its header (format 1, uncompressed), then its bytes as they are. */
type Page = [header: Uint8Array, values: Uint8Array];

function page(values: Uint8Array, header: Parameters<typeof writePageHeader>[1]): Page {
  const w = new ByteWriter(64);
  writePageHeader(w, header);
  return [w.getBytes(), values];
}

function dataPage(values: Uint8Array, n: number, encoding: Encoding): Page {
  return page(values, {
    type: "DATA_PAGE",
    uncompressed_page_size: values.length,
    compressed_page_size: values.length,
    data_page_header: {
      num_values: n,
      encoding,
      definition_level_encoding: "RLE",
      repetition_level_encoding: "RLE",
    },
  });
}

function dictionaryPage(values: Uint8Array, count: number): Page {
  return page(values, {
    type: "DICTIONARY_PAGE",
    uncompressed_page_size: values.length,
    compressed_page_size: values.length,
    dictionary_page_header: { num_values: count, encoding: "PLAIN" },
  });
}

/** The bytes of a typed array (little-endian, as Parquet's PLAIN encoding). */
function plainBytes(a: Int32Array | Float32Array | Float64Array, n: number): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, n * a.BYTES_PER_ELEMENT);
  const out = new Uint8Array(n * a.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    if (a instanceof Int32Array) view.setInt32(i * 4, a[i], true);
    else if (a instanceof Float32Array) view.setFloat32(i * 4, a[i], true);
    else view.setFloat64(i * 8, a[i], true);
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Small codes (each < 2^width, width 1..8) as a dictionary page's indices:
 * the width as one byte, then one bit-packed run of the RLE/bit-packing
 * hybrid (values LSB first, padded to a multiple of 8).
 */
export function packIndices(codes: Uint8Array, n: number, width: number): Uint8Array {
  const groups = (n + 7) >>> 3;
  const head: number[] = [width];
  for (let v = groups * 2 + 1;; v = Math.floor(v / 128)) {
    if (v < 128) {
      head.push(v);
      break;
    }
    head.push((v & 127) | 128);
  }
  const out = new Uint8Array(head.length + groups * width);
  out.set(head);
  let o = head.length, acc = 0, bits = 0;
  for (let i = 0; i < n; i++) {
    acc |= codes[i] << bits;
    bits += width;
    if (bits >= 8) {
      out[o++] = acc & 255;
      acc >>>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) out[o] = acc & 255;
  return out;
}

/** The least and greatest of n bytes. */
function byteRange(a: Uint8Array, n: number): [number, number] {
  let lo = 255, hi = 0;
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** The least and greatest of n numbers, NaN left out (undefined: none); ±0 as the format asks. */
function numberRange(a: ArrayLike<number>, n: number): [number, number] | undefined {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return undefined;
  return [lo === 0 ? -0 : lo, hi === 0 ? 0 : hi];
}

/** A small-integer column's values (0..255 per row) as dictionary indices: its range and the packed codes. */
interface Codes {
  n: number;
  lo: number;
  hi: number;
  /** Dictionary entries 0..hi (one when there are no rows). */
  size: number;
  indices: Uint8Array;
}

function codesOf(codes: Uint8Array, n: number): Codes {
  const [lo, hi] = byteRange(codes, n);
  const size = n ? hi + 1 : 1;
  const width = Math.max(1, 32 - Math.clz32(size - 1));
  return { n, lo, hi, size, indices: packIndices(codes, n, width) };
}

/** A dictionary column: entries value(0..max) and the codes as indices. */
function dictionaryColumn(
  name: string,
  c: Codes,
  value: (k: number) => number,
  type: "INT32" | "DOUBLE",
): EncodedColumn {
  const dict = type === "INT32" ? new Int32Array(c.size) : new Float64Array(c.size);
  for (let k = 0; k < c.size; k++) dict[k] = value(k);
  return {
    name,
    type,
    dictionary: dictionaryPage(plainBytes(dict, c.size), c.size),
    data: dataPage(c.indices, c.n, "RLE_DICTIONARY"),
    encodings: ["PLAIN", "RLE", "RLE_DICTIONARY"],
    min: c.n ? value(c.lo) : undefined,
    max: c.n ? value(c.hi) : undefined,
  };
}

/** A PLAIN column of numbers (INT32, FLOAT, DOUBLE). */
function plainColumn(
  name: string,
  a: Int32Array | Float32Array | Float64Array,
  n: number,
  type: "INT32" | "FLOAT" | "DOUBLE",
): EncodedColumn {
  const range = numberRange(a, n);
  return {
    name,
    type,
    dictionary: null,
    data: dataPage(plainBytes(a, n), n, "PLAIN"),
    encodings: ["PLAIN", "RLE"],
    min: range?.[0],
    max: range?.[1],
  };
}

/** The UTF-8 text column (PLAIN: each value's length, then its bytes); no statistics. */
function textColumn(name: string, values: string[], n: number): EncodedColumn {
  const w = new ByteWriter(n * 4 + 64);
  const encoder = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const bytes = encoder.encode(values[i]);
    w.appendUint32(bytes.length);
    w.appendBytes(bytes);
  }
  return {
    name,
    type: "BYTE_ARRAY",
    dictionary: null,
    data: dataPage(w.getBytes(), n, "PLAIN"),
    encodings: ["PLAIN", "RLE"],
    min: undefined,
    max: undefined,
  };
}

/** The row group's columns, encoded, in the file's order. */
function encodeGroup(
  g: Group,
  o: ParquetFileOptions,
  columns: readonly FeatureColumn[],
): EncodedColumn[] {
  const n = g.n, l = o.l;
  const index = new ByteWriter(1024 + (n >>> 2));
  deltaBinaryPack(index, g.rows.subarray(0, n), "INT64");
  let lo = 0xffffffff, hi = 0;
  for (let i = 0; i < n; i++) {
    const r = g.rows[i];
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  const out: EncodedColumn[] = [{
    name: "index",
    type: "INT64",
    dictionary: null,
    data: dataPage(index.getBytes(), n, "DELTA_BINARY_PACKED"),
    encodings: ["DELTA_BINARY_PACKED", "RLE"],
    min: n ? BigInt(lo) : undefined,
    max: n ? BigInt(hi) : undefined,
  }];
  const matches = codesOf(g.matches, n);
  // accuracy: the same indices as matches, into a dictionary of k / l.
  if (o.accuracy) out.push(dictionaryColumn("accuracy", matches, (k) => k / l, "DOUBLE"));
  out.push(dictionaryColumn("matches", matches, (k) => k, "INT32"));
  if (g.prefix) out.push(dictionaryColumn("prefix", codesOf(g.prefix, n), (k) => k, "INT32"));
  if (g.nll) out.push(plainColumn("nll", g.nll, n, "FLOAT"));
  const memorized = new Uint8Array((n + 7) >>> 3);
  const reach = g.prefix ?? g.matches;
  let some = 0, all = 1;
  for (let i = 0; i < n; i++) {
    const m = reach[i] >= l ? 1 : 0;
    memorized[i >>> 3] |= m << (i & 7);
    some |= m;
    all &= m;
  }
  out.push({
    name: "memorized",
    type: "BOOLEAN",
    dictionary: null,
    data: dataPage(memorized, n, "PLAIN"),
    encodings: ["PLAIN", "RLE"],
    min: n ? all === 1 : undefined,
    max: n ? some === 1 : undefined,
  });
  columns.forEach((c, j) => {
    const v = g.features[j];
    out.push(
      c.type === "BYTE_ARRAY"
        ? textColumn(c.name, v as string[], n)
        : plainColumn(c.name, v as Int32Array | Float64Array, n, c.type),
    );
  });
  return out;
}

/** The file's schema: a root with one REQUIRED leaf per column. */
function schemaOf(columns: readonly EncodedColumn[]): SchemaElement[] {
  return [
    { name: "schema", num_children: columns.length },
    ...columns.map((c): SchemaElement => ({
      name: c.name,
      type: c.type,
      repetition_type: "REQUIRED",
      ...(c.type === "BYTE_ARRAY"
        ? { converted_type: "UTF8" as const, logical_type: { type: "STRING" as const } }
        : {}),
    })),
  ];
}

/** Writes all of a buffer at the file's position. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) {
    done += writeSync(fd, bytes, done, bytes.length - done);
  }
}

/** Writes a page; returns its size. */
function writePage(fd: number, [header, values]: Page): number {
  writeAll(fd, header);
  writeAll(fd, values);
  return header.length + values.length;
}

/**
 * Writes up to `o.rows` rows of the cursor to one Parquet file at `o.path`
 * (fsynced before it returns); returns the rows written.
 */
export function writeParquetFile(cursor: ChunkCursor, o: ParquetFileOptions): number {
  const columns = o.features?.columns ?? [];
  const features = o.features ? new FeatureCursor(o.features.features) : null;
  const group = new Group(Math.min(o.rowGroup, Math.max(o.rows, 1)), cursor.source, columns);
  const fd = openSync(o.path, "w");
  try {
    writeAll(fd, MAGIC);
    let offset = MAGIC.length, written = 0, schema: SchemaElement[] | null = null;
    const rowGroups: RowGroup[] = [];
    for (let next = cursor.peek(); next || group.n > 0; next = cursor.peek()) {
      // Fill the group from as many chunks as it takes.
      while (next && written + group.n < o.rows && group.n < group.rows.length) {
        const m = Math.min(
          next.chunk.rows.length - next.at,
          group.rows.length - group.n,
          o.rows - written - group.n,
        );
        const from = group.n;
        group.add(next.chunk, next.at, m);
        if (features) group.fillFeatures(from, columns, features);
        cursor.advance(m);
        next = cursor.peek();
      }
      const encoded = encodeGroup(group, o, columns);
      schema ??= schemaOf(encoded);
      const chunks: ColumnChunk[] = [];
      const start = offset;
      for (const c of encoded) {
        const at = offset;
        const dataAt = c.dictionary ? at + writePage(fd, c.dictionary) : at;
        offset = dataAt + writePage(fd, c.data);
        const size = BigInt(offset - at);
        chunks.push({
          file_offset: BigInt(at),
          meta_data: {
            type: c.type,
            encodings: c.encodings,
            path_in_schema: [c.name],
            codec: "UNCOMPRESSED",
            num_values: BigInt(group.n),
            total_uncompressed_size: size,
            total_compressed_size: size,
            data_page_offset: BigInt(dataAt),
            ...(c.dictionary ? { dictionary_page_offset: BigInt(at) } : {}),
            ...(c.min !== undefined
              ? { statistics: { min_value: c.min, max_value: c.max, null_count: 0n } }
              : {}),
          },
        });
      }
      rowGroups.push({
        columns: chunks,
        total_byte_size: BigInt(offset - start),
        num_rows: BigInt(group.n),
        file_offset: BigInt(start),
        total_compressed_size: BigInt(offset - start),
      });
      written += group.n;
      o.progress?.add(group.n);
      group.n = 0;
      if (written >= o.rows) break;
    }
    const footer = new ByteWriter(4096);
    const metadata: FileMetaData = {
      version: 1,
      schema: schema ?? schemaOf(encodeGroup(group, o, columns)),
      num_rows: BigInt(written),
      row_groups: rowGroups,
      created_by: "memo-forecast harness",
      metadata_length: 0,
    };
    writeMetadata(footer, metadata);
    footer.appendBytes(MAGIC);
    writeAll(fd, footer.getBytes());
    fsyncSync(fd);
    return written;
  } finally {
    closeSync(fd);
  }
}

const MAGIC = new TextEncoder().encode("PAR1");
