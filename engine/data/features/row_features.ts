/**
 * The row features of the experiment's `features` step as values (pure: no
 * I/O): the record's metadata, its typed columns read chunk by chunk, the
 * compact index of the rows with personal data (kept masked only), the export
 * columns and per-row lookups. The files are written and read by
 * rows_file.ts; {@link featuresInMemory} makes the same record from arrays
 * held in memory (the assembly, tests, halves of a run).
 *
 * Nothing here holds a JavaScript value per row: a record is read one
 * {@link FeatureChunk} of typed arrays at a time ({@link FeatureCursor} walks
 * rows asked in ascending order), so the report, the export and the forecast
 * go through the Pile's 146M rows in bounded memory.
 *
 * @module
 */
import { PERSONAL_KINDS, type PersonalKind } from "./personal.ts";
import { ChunkWalk, lowerBound } from "../../rowset.ts";

/**
 * Version of the record (bumped when its meaning changes). 2: typed binary
 * columns and `personal.jsonl` beside `rows.json` (1: per-row JSON arrays in
 * `rows.json`, never read: recomputed).
 */
export const FEATURES_VERSION = 2;

/** A masked personal-data hit of a row's decoded window (never the raw value). */
export interface MaskedHit {
  /** Kind of personal data. */
  kind: PersonalKind;
  /** Span [start, end) in the decoded window (UTF-16 code units). */
  start: number;
  /** End of the span. */
  end: number;
  /** The value masked by `redact` (never the raw value). */
  masked: string;
}

/** The per-row values of consecutive elements of the record (rows ascending). */
export interface FeatureChunk {
  /** The rows (the experiment's selection, ascending). */
  rows: Uint32Array;
  /** Occurrences of the scored window (context + continuation) at any position of the data. */
  window: Uint32Array;
  /** Occurrences of the context alone. */
  context: Uint32Array;
  /** Training step of the row (row / sequences_per_step). */
  step: Int32Array;
  /** Step of the next selected row with the identical window (−1: none). */
  nextStep: Int32Array;
  /** Selected rows with the identical window (1: the row only). */
  rowCopies: Uint32Array;
  /** Compressed / raw size of the window (text when decoded, else token bytes). */
  compression: Float64Array;
  /** Distinct tokens / tokens of the window. */
  distinct: Float64Array;
}

/** A column's element type in its binary file (little-endian). */
export type ColumnType = "uint32" | "int32" | "float64";

/** The binary columns of the record, in file order: name, element type, bytes per element. */
export const FEATURE_COLUMNS: readonly { name: keyof FeatureChunk; type: ColumnType }[] = [
  { name: "rows", type: "uint32" },
  { name: "window", type: "uint32" },
  { name: "context", type: "uint32" },
  { name: "step", type: "int32" },
  { name: "nextStep", type: "int32" },
  { name: "rowCopies", type: "uint32" },
  { name: "compression", type: "float64" },
  { name: "distinct", type: "float64" },
];

/** Bytes per element of a column type. */
export function columnWidth(type: ColumnType): number {
  return type === "float64" ? 8 : 4;
}

/** A typed array of `n` elements of a column type. */
export function columnArray(type: ColumnType, n: number): Uint32Array | Int32Array | Float64Array {
  return type === "uint32"
    ? new Uint32Array(n)
    : type === "int32"
    ? new Int32Array(n)
    : new Float64Array(n);
}

/** The rows with personal data, kept compact: row, kinds, and the masked hits read on demand. */
export interface PersonalIndex {
  /** Rows with at least one hit, ascending. */
  rows: Uint32Array;
  /** Per row of `rows`: bit k set when it holds kind `PERSONAL_KINDS[k]`. */
  kinds: Uint8Array;
  /** The masked hits of a row ([] for a row without any). */
  hits(row: number): MaskedHit[];
}

/** What the record says of itself (`rows.json` of version 2, less its column list). */
export interface FeatureMeta {
  /** {@link FEATURES_VERSION} of the writer. */
  version: number;
  /** The settings key (the folder name under `features/`). */
  key: string;
  /** What was compressed and searched for personal data. */
  of: "text" | "tokens";
  /** Measured cost of the step, all shards and the assembly (seconds of wall time). */
  seconds: number;
  /** Data shards scanned. */
  shards: number;
  /** Tokens scanned over all shards. */
  tokens: number;
  /** Rows with features (elements of every column). */
  count: number;
}

/** The row features of the selected rows, read chunk by chunk (rows ascending across chunks). */
export interface RowFeatures extends FeatureMeta {
  /** Elements per chunk (the last chunk may hold fewer). */
  chunkSize: number;
  /** Number of chunks. */
  chunks: number;
  /** Chunk k's values (a fresh chunk per call; validated when read from files). */
  chunk(k: number): FeatureChunk;
  /** The rows with personal data. */
  personal: PersonalIndex;
}

/** Elements per chunk of a record read from files (40 bytes per row: 40 MB a chunk). */
export const FEATURE_CHUNK_ROWS = 1 << 20;

/** Elements `[start, end)` of a chunk (views, no copy). */
export function sliceChunk(c: FeatureChunk, start: number, end: number): FeatureChunk {
  const out = {} as Record<keyof FeatureChunk, unknown>;
  for (const { name } of FEATURE_COLUMNS) out[name] = c[name].subarray(start, end);
  return out as FeatureChunk;
}

/** A personal index over hits held in memory (row → its masked hits). */
export function personalIndex(
  byRow: ReadonlyMap<number, readonly MaskedHit[]>,
): PersonalIndex {
  const rows = Uint32Array.from([...byRow.keys()].filter((r) => byRow.get(r)!.length > 0))
    .sort();
  const kinds = Uint8Array.from(rows, (r) => kindMask(byRow.get(r)!));
  return { rows, kinds, hits: (row) => [...(byRow.get(row) ?? [])] };
}

/** The kinds of a row's hits as a bit mask (bit k: `PERSONAL_KINDS[k]`). */
export function kindMask(hits: readonly { kind: PersonalKind }[]): number {
  let m = 0;
  for (const h of hits) m |= 1 << PERSONAL_KINDS.indexOf(h.kind);
  return m;
}

/** A record over columns held in memory (one chunk of `chunkSize` elements at a time). */
export function featuresInMemory(
  meta: Omit<FeatureMeta, "count">,
  columns: FeatureChunk,
  personal: PersonalIndex,
  chunkSize: number = FEATURE_CHUNK_ROWS,
): RowFeatures {
  const count = columns.rows.length;
  return {
    ...meta,
    count,
    chunkSize,
    chunks: Math.ceil(count / chunkSize),
    chunk: (k) => sliceChunk(columns, k * chunkSize, Math.min(count, (k + 1) * chunkSize)),
    personal,
  };
}

/** Every element of the record as one chunk (for records that fit in memory: tests, small runs). */
export function allFeatures(f: RowFeatures): FeatureChunk {
  const out = {} as Record<keyof FeatureChunk, Uint32Array | Int32Array | Float64Array>;
  for (const { name, type } of FEATURE_COLUMNS) out[name] = columnArray(type, f.count);
  for (let k = 0, at = 0; k < f.chunks; k++) {
    const c = f.chunk(k);
    for (const { name } of FEATURE_COLUMNS) out[name].set(c[name], at);
    at += c.rows.length;
  }
  return out as unknown as FeatureChunk;
}

/**
 * A forward walk over a record's rows (engine/rowset.ts `ChunkWalk`):
 * `seek(row)` for rows asked in ascending order positions `chunk` and `i` on
 * the row's element (`i` = −1 when the row has no features); a row below the
 * last one asked restarts the walk. Memory: one chunk.
 */
export class FeatureCursor extends ChunkWalk<FeatureChunk> {
  constructor(readonly features: RowFeatures) {
    super(features.chunks, (k) => features.chunk(k));
  }
}

/**
 * Per row of the data (index = row; 0 for rows not selected): the computed
 * window count. One element per data row (584 MB at the Pile): for small
 * records and tests; the report walks the chunks instead
 * (reports/analysis/figures.ts `rateByComputedDuplicates`).
 */
export function computedDuplicates(f: RowFeatures): Uint32Array {
  const last = f.chunks > 0 ? f.chunk(f.chunks - 1).rows : new Uint32Array(0);
  const out = new Uint32Array(last.length > 0 ? last[last.length - 1] + 1 : 0);
  for (let k = 0; k < f.chunks; k++) {
    const c = f.chunk(k);
    for (let i = 0; i < c.rows.length; i++) out[c.rows[i]] = c.window[i];
  }
  return out;
}

/** A feature column of the export (`deno task export`): its name, Parquet type and value per row. */
export interface FeatureColumn {
  /** Column name. */
  name: string;
  /** Parquet physical type (`BYTE_ARRAY` holds UTF-8 text). */
  type: "INT32" | "DOUBLE" | "BYTE_ARRAY";
  /** The value of element `i` of a chunk (−1, NaN or "" for a row without features: i < 0). */
  value(c: FeatureChunk | null, i: number): number | string;
}

/**
 * The feature columns of the export, in order: window and context counts,
 * the step that trains on the row and the next step with the identical
 * window, the rows with it, compression, distinct-token share and the kinds
 * of personal data in the window (`;`-separated, in report order; never values).
 */
export function featureColumns(f: RowFeatures): FeatureColumn[] {
  type Num = "window" | "context" | "step" | "nextStep" | "rowCopies";
  const int = (n: Num) => (c: FeatureChunk | null, i: number) => (i < 0 ? -1 : c![n][i]);
  const dbl = (n: "compression" | "distinct") => (c: FeatureChunk | null, i: number) =>
    i < 0 ? NaN : c![n][i];
  return [
    { name: "window_count", type: "INT32", value: int("window") },
    { name: "context_count", type: "INT32", value: int("context") },
    { name: "seen_step", type: "INT32", value: int("step") },
    { name: "next_seen_step", type: "INT32", value: int("nextStep") },
    { name: "row_copies", type: "INT32", value: int("rowCopies") },
    { name: "compression", type: "DOUBLE", value: dbl("compression") },
    { name: "distinct_share", type: "DOUBLE", value: dbl("distinct") },
    {
      name: "personal_kinds",
      type: "BYTE_ARRAY",
      value: (c, i) => (i < 0 ? "" : personalKinds(f, c!.rows[i]).join(";")),
    },
  ];
}

/** The kinds of personal data in a row's window (report order, each once; [] for none). */
export function personalKinds(f: RowFeatures, row: number): PersonalKind[] {
  return kindsOfMask(personalMask(f.personal, row));
}

/** The kind mask of a row (0: no personal data). */
export function personalMask(p: PersonalIndex, row: number): number {
  const j = lowerBound(p.rows, row);
  return j < p.rows.length && p.rows[j] === row ? p.kinds[j] : 0;
}

/** The kinds of a mask, in report order. */
export function kindsOfMask(mask: number): PersonalKind[] {
  return PERSONAL_KINDS.filter((_, k) => (mask >> k) & 1);
}
