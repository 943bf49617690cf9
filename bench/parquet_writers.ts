/**
 * One Parquet writer of `deno task bench store` (BENCH_WRITERS=1) on the
 * export's real shapes, in its own process (so `/usr/bin/time` gives its own
 * peak RSS), beside the export itself (tasks/export_parquet.ts, which
 * encodes the columns' known shapes with hyparquet-writer's page headers,
 * delta encoder and footer): `duckdb` is the writer the export used before
 * (DuckDB, `@duckdb/node-api`: a table function streams the chunks into
 * DuckDB, whose `COPY … TO` encodes them, Snappy), `hyparquet` the one
 * before that (hyparquet-writer's general `ParquetWriter`, pure JavaScript):
 * row groups of ROW_GROUP rows built as typed columns (index as
 * BigInt64Array) and written file by file. Both are kept here as they were
 * for the comparison. Shapes: `parquet` (one file per checkpoint, with
 * accuracy) and `dataset` (Hive parts of PART_ROWS rows, without accuracy),
 * written under `<run>/exports-bench/<writer>/`.
 *
 * parquet-wasm was measured with a script outside the project (it needs its
 * input as Arrow IPC, so apache-arrow as well): on one checkpoint of 4.58M
 * rows it took 3.2 s against hyparquet-writer's 3.6 s and DuckDB's 1.6 s
 * (docs/analysis.md).
 *
 * Usage: deno run -P=bench bench/parquet_writers.ts hyparquet|duckdb parquet|dataset RUN_DIR
 *
 * @module
 */
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileWriter, ParquetWriter } from "hyparquet-writer";
import { readStoredSources, type StoredSource } from "../engine/store/stored_checkpoints.ts";
import { chunkMemorized, type ScoreChunk } from "../engine/store/scored_checkpoint.ts";
import { modelSegment, PART_ROWS, ROW_GROUP } from "../tasks/export.ts";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { ProgressSink } from "../engine/types.ts";
import {
  type FeatureChunk,
  type FeatureColumn,
  FeatureCursor,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";
import { ChunkCursor, type ParquetFileOptions } from "../tasks/export_parquet.ts";

/** One file to write: up to `rows` rows from the cursor. */
interface Stream {
  cursor: ChunkCursor;
  rows: number;
  prefix: boolean;
  nll: boolean;
  rowGroup: number;
  written: number;
  error: unknown;
  features: { features: RowFeatures; columns: FeatureColumn[]; at: FeatureCursor } | null;
  progress: ProgressSink | null;
}

type DuckApi = typeof import("@duckdb/node-api");
type DuckBindings = typeof import("@duckdb/node-bindings");
type BindInfo = import("@duckdb/node-api").DuckDBTableFunctionBindInfo;
type DataChunk = import("@duckdb/node-api").DuckDBDataChunk;

/** Rows per chunk of the table function (DuckDB's vector size). */
const CHUNK_ROWS = 2048;

/** Reused buffers of the feature columns (one chunk's rows). */
interface Scratch {
  /** Per row: its features' chunk and element (−1: none). */
  chunk: (FeatureChunk | null)[];
  index: Int32Array<ArrayBuffer>;
  int: Int32Array<ArrayBuffer>;
  double: Float64Array<ArrayBuffer>;
}

/** The table function's columns for a stream: row, matches, prefix, nll, then its feature columns. */
function bindColumns(api: DuckApi, bind: BindInfo, s: Stream): void {
  bind.addResultColumn("row", api.UINTEGER);
  bind.addResultColumn("matches", api.UTINYINT);
  if (s.prefix) bind.addResultColumn("prefix", api.UTINYINT);
  if (s.nll) bind.addResultColumn("nll", api.FLOAT);
  for (const c of s.features?.columns ?? []) {
    bind.addResultColumn(
      c.name,
      c.type === "INT32" ? api.INTEGER : c.type === "DOUBLE" ? api.DOUBLE : api.VARCHAR,
    );
  }
}

/**
 * Fills DuckDB's output chunk with the stream's next rows (row count 0 at
 * its end): the score columns copied as blocks of bytes, then the feature
 * columns. Chunks end at row-group boundaries, so that groups hold exactly
 * rowGroup rows.
 */
function fillChunk(duck: DuckBindings, s: Stream, output: DataChunk, scratch: Scratch): void {
  const next = s.written < s.rows ? s.cursor.peek() : null;
  if (!next) {
    output.rowCount = 0;
    return;
  }
  const { chunk, at } = next;
  const n = Math.min(
    CHUNK_ROWS,
    chunk.rows.length - at,
    s.rows - s.written,
    s.rowGroup - s.written % s.rowGroup,
  );
  duck.data_chunk_set_size(output.chunk, n);
  const columns: (Uint32Array | Uint8Array | Float32Array)[] = [chunk.rows, chunk.matches];
  if (s.prefix) columns.push(chunk.prefix!);
  if (s.nll) columns.push(chunk.nll!);
  columns.forEach((a, i) => {
    const size = a.BYTES_PER_ELEMENT;
    duck.copy_data_to_vector(
      duck.data_chunk_get_vector(output.chunk, i),
      0,
      a.buffer as ArrayBuffer,
      a.byteOffset + at * size,
      n * size,
    );
  });
  if (s.features) {
    fillFeatures(
      duck,
      s.features,
      chunk.rows.subarray(at, at + n),
      output,
      columns.length,
      scratch,
    );
  }
  s.cursor.advance(n);
  s.written += n;
  s.progress?.add(n);
}

/** The feature columns of a chunk's rows, from vector `first` of the output chunk on. */
function fillFeatures(
  duck: DuckBindings,
  { columns, at }: NonNullable<Stream["features"]>,
  rows: Uint32Array,
  output: DataChunk,
  first: number,
  scratch: Scratch,
): void {
  const n = rows.length;
  for (let i = 0; i < n; i++) {
    at.seek(rows[i]);
    scratch.chunk[i] = at.chunk;
    scratch.index[i] = at.i;
  }
  columns.forEach((c, j) => {
    const vector = duck.data_chunk_get_vector(output.chunk, first + j);
    if (c.type === "BYTE_ARRAY") {
      for (let i = 0; i < n; i++) {
        duck.vector_assign_string_element(
          vector,
          i,
          String(c.value(scratch.chunk[i], scratch.index[i])),
        );
      }
      return;
    }
    const a = c.type === "INT32" ? scratch.int : scratch.double;
    for (let i = 0; i < n; i++) a[i] = c.value(scratch.chunk[i], scratch.index[i]) as number;
    duck.copy_data_to_vector(vector, 0, a.buffer, 0, n * a.BYTES_PER_ELEMENT);
  });
}

/**
 * Writes Parquet files from score sources with one in-memory DuckDB; files
 * written at the same time (one connection each) are encoded in parallel.
 */
class ParquetWriterDuckDB {
  readonly #streams = new Map<number, Stream>();
  #next = 0;
  readonly #idle: DuckDBConnection[] = [];
  readonly #connections: DuckDBConnection[] = [];
  private constructor(
    readonly instance: DuckDBInstance,
    readonly register: (connection: DuckDBConnection) => void,
  ) {}

  /** Starts an in-memory DuckDB; each connection gets the table function `memo_scores(id)`. */
  static async open(): Promise<ParquetWriterDuckDB> {
    const api = await import("@duckdb/node-api");
    const duck = (await import("@duckdb/node-bindings")).default;
    const instance = await api.DuckDBInstance.create(":memory:");
    const streamOf = (id: unknown) => writer.#streams.get(Number(id))!;
    const scratch: Scratch = {
      chunk: new Array<FeatureChunk | null>(CHUNK_ROWS).fill(null),
      index: new Int32Array(CHUNK_ROWS),
      int: new Int32Array(CHUNK_ROWS),
      double: new Float64Array(CHUNK_ROWS),
    };
    const fn = api.DuckDBTableFunction.create({
      name: "memo_scores",
      parameterTypes: [api.INTEGER],
      bindFunction: (bind) => {
        const id = Number(bind.getParameter(0));
        bind.setBindData({ id });
        bindColumns(api, bind, streamOf(id));
      },
      // One scanning thread: the rows stay in order.
      initFunction: (init) => init.setMaxThreads(1),
      mainFunction: (info, output) => {
        const s = streamOf((info.bindData as { id: number }).id);
        try {
          fillChunk(duck, s, output, scratch);
        } catch (e) {
          s.error = e;
          info.setError((e as Error).message ?? String(e));
        }
      },
    });
    const writer = new ParquetWriterDuckDB(instance, (c) => c.registerTableFunction(fn));
    return writer;
  }

  /**
   * Writes up to `rows` rows of the cursor (l: the continuation) to `path`;
   * returns the rows written. `accuracy`: with the column accuracy =
   * matches / l.
   */
  async write(
    cursor: ChunkCursor,
    opts: ParquetFileOptions,
  ): Promise<number> {
    const src = cursor.source;
    const s: Stream = {
      cursor,
      rows: opts.rows,
      prefix: src.prefix,
      nll: src.nll,
      rowGroup: opts.rowGroup,
      written: 0,
      error: null,
      features: opts.features
        ? { ...opts.features, at: new FeatureCursor(opts.features.features) }
        : null,
      progress: opts.progress ?? null,
    };
    const id = this.#next++;
    this.#streams.set(id, s);
    const connection = this.#idle.pop() ?? await this.#connect();
    const l = opts.l;
    const columns = [
      `"row"::BIGINT AS "index"`,
      ...(opts.accuracy ? [`matches / ${l} AS accuracy`] : []),
      `matches::INTEGER AS matches`,
      ...(s.prefix ? [`prefix::INTEGER AS prefix`] : []),
      ...(s.nll ? [`nll`] : []),
      `${s.prefix ? "prefix" : "matches"} >= ${l} AS memorized`,
      ...(s.features?.columns ?? []).map((c) => `"${c.name}"`),
    ];
    try {
      await connection.run(
        `COPY (SELECT ${columns.join(", ")} FROM memo_scores(${id})) TO ${sqlString(opts.path)} ` +
          `(FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${opts.rowGroup})`,
      );
    } catch (e) {
      throw s.error ?? systemError(e);
    } finally {
      this.#streams.delete(id);
      this.#idle.push(connection);
    }
    return s.written;
  }

  async #connect(): Promise<DuckDBConnection> {
    const connection = await this.instance.connect();
    this.register(connection);
    this.#connections.push(connection);
    return connection;
  }

  /** Closes the connections and the database. */
  close(): void {
    for (const c of this.#connections) c.closeSync();
    this.instance.closeSync();
  }
}

/**
 * DuckDB's message of a failed write as an error with the system's code
 * (ENOSPC, …), which the export turns into its message naming the file.
 */
function systemError(e: unknown): unknown {
  const message = (e as Error)?.message ?? "";
  const codes: [RegExp, string][] = [
    [/no space left on device/i, "ENOSPC"],
    [/disk quota exceeded/i, "EDQUOT"],
    [/read-only file system/i, "EROFS"],
    [/permission denied/i, "EACCES"],
  ];
  const code = codes.find(([re]) => re.test(message))?.[1];
  return code ? Object.assign(new Error(message, { cause: e }), { code }) : e;
}

/** A SQL string literal. */
function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

interface Column {
  name: string;
  type: "INT64" | "DOUBLE" | "INT32" | "FLOAT" | "BOOLEAN";
}

/** hyparquet-writer, as tasks/export.ts used it: row groups of typed columns, a file per part. */
async function writeHyparquet(
  run: StoredSource,
  pathOf: (part: number) => string,
  partRows: number,
  accuracy: boolean,
): Promise<number> {
  const l = run.continuation;
  const columns: Column[] = [
    { name: "index", type: "INT64" },
    ...(accuracy ? [{ name: "accuracy", type: "DOUBLE" as const }] : []),
    { name: "matches", type: "INT32" },
    { name: "prefix", type: "INT32" },
    { name: "nll", type: "FLOAT" },
    { name: "memorized", type: "BOOLEAN" },
  ];
  let writer: ParquetWriter | null = null, path = "", part = 0, inPart = 0, total = 0;
  let buffer: ScoreChunk[] = [], buffered = 0;
  const close = async () => {
    if (!writer) return;
    await writer.finish();
    await rename(`${path}.tmp`, path);
    writer = null;
  };
  const flush = async (n: number) => {
    const rows = new BigInt64Array(n), matches = new Int32Array(n), memorized = new Array(n);
    const prefix = new Int32Array(n), nll = new Float32Array(n);
    let at = 0;
    while (at < n) {
      const c = buffer[0];
      const take = Math.min(n - at, c.rows.length);
      for (let i = 0; i < take; i++) {
        rows[at + i] = BigInt(c.rows[i]);
        matches[at + i] = c.matches[i];
        prefix[at + i] = c.prefix![i];
        nll[at + i] = c.nll![i];
        memorized[at + i] = chunkMemorized(c, i, l);
      }
      at += take;
      if (take === c.rows.length) buffer.shift();
      else {
        buffer[0] = {
          rows: c.rows.subarray(take),
          matches: c.matches.subarray(take),
          prefix: c.prefix!.subarray(take),
          nll: c.nll!.subarray(take),
        };
      }
    }
    buffered -= n;
    const data: Record<string, ArrayLike<unknown>> = {
      index: rows,
      matches,
      prefix,
      nll,
      memorized,
    };
    if (accuracy) data.accuracy = Float64Array.from(matches, (m) => m / l);
    if (writer && inPart + n > partRows) await close();
    if (!writer) {
      path = pathOf(part++);
      await mkdir(dirname(path), { recursive: true });
      writer = new ParquetWriter({
        writer: fileWriter(`${path}.tmp`),
        schema: [
          { name: "schema", num_children: columns.length },
          ...columns.map((c) => ({
            name: c.name,
            type: c.type,
            repetition_type: "REQUIRED" as const,
          })),
        ],
      });
      inPart = 0;
    }
    await writer.write({
      columnData: columns.map((c) => ({ name: c.name, data: data[c.name] as never })),
      rowGroupSize: n,
    });
    inPart += n;
    total += n;
  };
  for (let k = 0; k < run.source.chunks; k++) {
    const c = run.source.chunk(k);
    buffer.push(c);
    buffered += c.rows.length;
    while (buffered >= ROW_GROUP) await flush(ROW_GROUP);
    // The source's next chunk reuses this one's memory.
    buffer = buffer.map((b) =>
      b.rows.buffer !== c.rows.buffer ? b : {
        rows: b.rows.slice(),
        matches: b.matches.slice(),
        prefix: b.prefix!.slice(),
        nll: b.nll!.slice(),
      }
    );
  }
  if (buffered > 0) await flush(buffered);
  await close();
  return total;
}

async function writeDuckdb(
  writer: ParquetWriterDuckDB,
  run: StoredSource,
  pathOf: (part: number) => string,
  partRows: number,
  accuracy: boolean,
): Promise<number> {
  const cursor = new ChunkCursor(run.source);
  let total = 0;
  for (let part = 0; cursor.peek(); part++) {
    const path = pathOf(part);
    await mkdir(dirname(path), { recursive: true });
    total += await writer.write(cursor, {
      path: `${path}.tmp`,
      rows: partRows,
      l: run.continuation,
      accuracy,
      rowGroup: ROW_GROUP,
    });
    await rename(`${path}.tmp`, path);
  }
  return total;
}

if (import.meta.main) {
  const [which, shape, runDir] = Deno.args;
  const out = join(runDir, "exports-bench", which);
  await rm(out, { recursive: true, force: true });
  const duck = which === "duckdb" ? await ParquetWriterDuckDB.open() : null;
  let rows = 0;
  for (const run of await readStoredSources(runDir)) {
    const dataset = shape === "dataset";
    const pathOf = (part: number) =>
      dataset
        ? join(
          out,
          "dataset",
          `model=${modelSegment(run.model)}`,
          `step=${run.step}`,
          `part-${part}.parquet`,
        )
        : join(out, modelSegment(run.model), `step${run.step}.parquet`);
    const partRows = dataset ? PART_ROWS : Infinity;
    rows += duck
      ? await writeDuckdb(duck, run, pathOf, partRows, !dataset)
      : await writeHyparquet(run, pathOf, partRows, !dataset);
  }
  duck?.close();
  console.log(rows);
}
