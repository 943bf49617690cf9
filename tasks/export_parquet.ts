/**
 * The Parquet files of the export, written by DuckDB (`@duckdb/node-api`, a
 * native engine in an npm package): a table function streams a run's
 * chunks into DuckDB 2,048 rows at a time (each column copied as one block
 * of bytes, no value per row in JavaScript), and `COPY (SELECT …) TO` writes
 * them, converting and encoding in native code. Chosen over hyparquet-writer
 * (pure JavaScript) and parquet-wasm by `deno task bench store` and the
 * side-by-side measurement in docs/analysis.md.
 *
 * DuckDB is loaded only when a Parquet export runs (a dynamic import), so no
 * other command pays for it. The files: Parquet format 1 pages, Snappy, row
 * groups of about `rowGroup` rows, columns as before (index INT64, accuracy
 * DOUBLE, matches INT32, prefix INT32, nll FLOAT, memorized BOOLEAN, then the
 * feature columns when the run folder has row features: INT32, DOUBLE or
 * UTF-8 text); DuckDB marks them OPTIONAL (none is ever null) where
 * hyparquet-writer wrote REQUIRED.
 *
 * @module
 */
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { ScoreChunk, ScoreSource } from "../engine/store/scored_checkpoint.ts";
import type { ProgressSink } from "../engine/types.ts";
import {
  type FeatureChunk,
  type FeatureColumn,
  FeatureCursor,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";

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
export class ParquetWriterDuckDB {
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
    opts: {
      path: string;
      rows: number;
      l: number;
      accuracy: boolean;
      rowGroup: number;
      features?: { features: RowFeatures; columns: FeatureColumn[] } | null;
      progress?: ProgressSink | null;
    },
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
