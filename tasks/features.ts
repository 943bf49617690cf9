/**
 * The `features` step of an experiment: row features of every selected
 * (scored) row, computed from the token data the experiment names, kept in the
 * run folder under `features/<key>/` (key: a hash of the rows, the window
 * settings, the data's row count and fingerprint (the one the store's manifest
 * records), so changed settings or changed data start afresh).
 *
 * Streamed, in bounded memory: the selected rows' windows are read
 * `chunkRows` rows at a time ({@link FEATURE_READ_ROWS}), never all at once.
 *
 * - **Tables**: each chunk's windows and contexts are hashed into the window
 *   and the context table (engine/data/features/window_counts.ts
 *   `emptyWindowTable`, `addWindows`): 64-bit hashes, no query tokens kept, so
 *   no verification (expected wrong counts N · n / 2^64: 2.4 over the whole
 *   deduplicated Pile). What spans all rows is the tables (per width: 16-byte
 *   slots at load ≤ 0.7, a bit filter of 16 bits per row, the slot of each
 *   row) and the selection.
 * - **Counts**: the data is scanned in data shards of `shard_size` rows
 *   (every token position of every row; a row is a segment; read a block of
 *   rows at a time); each shard writes one atomic file `counts-NNNNN.bin`
 *   (float64 seconds, then uint32 window counts and uint32 context counts per
 *   selected row, streamed). Finished shards are skipped on rerun; with a
 *   shard group `I/N` the group scans data shards d ≡ I (mod N).
 * - **Rows**: once every shard is in, the window table's slots give each row
 *   its next row with the same window and the rows holding it (seen.ts
 *   `sameWindowLinks`; the tables are let go first), and the record is
 *   written chunk by chunk as each chunk is computed: its windows read again,
 *   its counts summed over the shard files, its compression and distinct
 *   share (compress.ts, of the decoded text when the tokenizer loads, each
 *   window decoded once) and the personal data found in the decoded window
 *   (personal.ts), kept **masked only** (kind, span, `redact`ed value).
 *   rows_file.ts `writeRowFeatures` streams them: one little-endian binary
 *   file per column, `personal.jsonl`, then `rows.json` (the metadata, last).
 *   `seconds` is the measured cost of the whole step (all shards and the
 *   assembly).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { openTokenReader, type TokenReader } from "../engine/data/datasets.ts";
import { readAt } from "../engine/data/token_file.ts";
import { selectRows } from "../engine/data/rows.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import {
  addCounts,
  addWindows,
  emptyWindowTable,
  scanAll,
  type WindowTable,
} from "../engine/data/features/window_counts.ts";
import { sameWindowLinks, type WindowLinks } from "../engine/data/features/seen.ts";
import { compressFeatures } from "../engine/data/features/compress.ts";
import { detectPersonal, redactedHits } from "../engine/data/features/personal.ts";
import { stableJson, writeAtomic } from "../engine/store/store.ts";
import {
  FEATURES_VERSION,
  type MaskedHit,
  type RecordPart,
  writeRowFeatures,
} from "../engine/data/features/rows_file.ts";
import { UserError } from "../engine/errors.ts";
import type { Experiment } from "../engine/types.ts";

/**
 * Selected rows read, hashed and assembled at a time: 16 MiB of tokens for
 * 64-token windows, and the chunk's decoded texts (2^18 rows peaked 300 MB
 * higher at 2M rows, bench/features_step.ts, for the same speed).
 */
export const FEATURE_READ_ROWS = 1 << 16;
/** Bytes of a data shard's tokens (as Int32) read at a time while it is scanned. */
const SCAN_BLOCK_BYTES = 32 << 20;
/** Selected rows per part of a data shard's counts file. */
const COUNT_PART_ROWS = 1 << 20;

/** Options of {@link computeFeatures}. */
export interface FeatureOptions {
  /** Only the data shards of group I of N (d mod N = I); the rows file is written when all are in. */
  shardGroup?: { index: number; count: number };
  log?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Selected rows read at a time (default {@link FEATURE_READ_ROWS}); also
   * the most rows of a data shard read at a time. The record does not
   * depend on it (tests force several chunks).
   */
  chunkRows?: number;
}

/** What {@link computeFeatures} did. */
export interface FeatureOutcome {
  /** Data shards scanned in this call, and already done. */
  scanned: number;
  skipped: number;
  /** The rows file, when every shard is in. */
  rows: string | null;
  /** Seconds this call took. */
  seconds: number;
}

/** The folder of the features of an experiment's current settings. */
async function featureFolder(
  exp: Experiment,
  totalRows: number,
  dataFingerprint: string,
  selection: Uint32Array,
): Promise<string> {
  const m = exp.memorization;
  const h = createHash("sha256");
  h.update(stableJson({
    v: FEATURES_VERSION,
    rows: totalRows,
    data: dataFingerprint,
    offset: m.offset,
    context: m.context,
    continuation: m.continuation,
    shardSize: exp.shardSize,
    perStep: exp.suite.sequencesPerStep,
  }));
  h.update(new Uint8Array(selection.buffer, selection.byteOffset, selection.byteLength));
  const dir = join(exp.output, "features", h.digest("hex").slice(0, 16));
  await mkdir(dir, { recursive: true });
  return dir;
}

const shardFile = (dir: string, d: number) => join(dir, `counts-${String(d).padStart(5, "0")}.bin`);

/** One call of the step: the experiment, its data, selection, folder and chunking. */
interface FeatureJob {
  exp: Experiment;
  reader: TokenReader;
  selection: Uint32Array;
  dir: string;
  /** Data shards. */
  shards: number;
  /** Scored window width (context + continuation). */
  width: number;
  chunkRows: number;
}

/**
 * Computes (or resumes) the row features of the experiment's selected rows
 * into its run folder. Returns what it did; `rows` is null while a shard
 * group's sibling groups have shards left.
 */
export async function computeFeatures(
  exp: Experiment,
  opts: FeatureOptions = {},
): Promise<FeatureOutcome> {
  const t0 = performance.now();
  const log = opts.log ?? ((line: string) => console.error(line));
  const reader = await openTokenReader(exp.data);
  try {
    const selection = selectRows(exp, reader.rows);
    const dir = await featureFolder(exp, reader.rows, await reader.fingerprint(), selection);
    const rowsPath = join(dir, "rows.json");
    const m = exp.memorization;
    const job: FeatureJob = {
      exp,
      reader,
      selection,
      dir,
      shards: Math.ceil(reader.rows / exp.shardSize),
      width: m.context + m.continuation,
      chunkRows: checkChunkRows(opts.chunkRows ?? FEATURE_READ_ROWS),
    };
    if (existsSync(rowsPath)) {
      return { scanned: 0, skipped: job.shards, rows: rowsPath, seconds: secondsSince(t0) };
    }
    const plan = shardsToScan(job, opts.shardGroup);
    const outcome = (rows: string | null, scanned = 0) => ({
      scanned,
      skipped: plan.skipped,
      rows,
      seconds: secondsSince(t0),
    });
    // nothing to scan here and shards of other groups missing: no table to build
    if (plan.todo.length === 0 && plan.elsewhere > 0) return outcome(null);
    const tables = await buildTables(job, plan.todo.length > 0);
    const scan = await scanShards(job, tables, plan.todo, opts.signal);
    const missing = Array.from({ length: job.shards }, (_, d) => d)
      .filter((d) => !existsSync(shardFile(dir, d))).length;
    if (missing > 0) {
      log(`features: ${job.shards - missing} of ${job.shards} data shards scanned`);
      return outcome(null, scan.scanned);
    }
    const seconds = await writeRecord(job, tables, { t0, scanSeconds: scan.seconds, log });
    log(
      `features: ${selection.length} rows, ${job.shards} data shards ` +
        `(${scan.scanned} scanned now) in ${seconds.toFixed(2)} s → ${rowsPath}`,
    );
    return outcome(rowsPath, scan.scanned);
  } finally {
    await reader.close();
  }
}

function checkChunkRows(n: number): number {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`chunkRows ${n} is not a positive integer`);
  }
  return n;
}

/**
 * The data shards this call scans (those of the shard group not yet on disk),
 * how many of the group's are done, and how many of other groups are missing.
 */
function shardsToScan(
  job: FeatureJob,
  g: FeatureOptions["shardGroup"],
): { todo: number[]; skipped: number; elsewhere: number } {
  const todo: number[] = [];
  let skipped = 0, elsewhere = 0;
  for (let d = 0; d < job.shards; d++) {
    const done = existsSync(shardFile(job.dir, d));
    if (g && d % g.count !== g.index) elsewhere += done ? 0 : 1;
    else if (done) skipped++;
    else todo.push(d);
  }
  return { todo, skipped, elsewhere };
}

/** The window table and the context table of the selected rows (null once let go, or not built). */
interface CountTables {
  window: WindowTable | null;
  context: WindowTable | null;
}

/**
 * The tables of the selected rows (the context table only when shards are to
 * be scanned), their windows read and hashed `chunkRows` rows at a time: the
 * tables keep 64-bit hashes, never tokens.
 */
async function buildTables(job: FeatureJob, withContext: boolean): Promise<CountTables> {
  const m = job.exp.memorization, n = job.selection.length;
  const window = emptyWindowTable(job.width, n);
  const context = withContext ? emptyWindowTable(m.context, n) : null;
  for (let a = 0; a < n; a += job.chunkRows) {
    const rows = job.selection.subarray(a, Math.min(n, a + job.chunkRows));
    const windows = await job.reader.readWindow(rows, m.offset, job.width);
    addWindows(window, windows, job.width, a);
    if (context) addWindows(context, windows, job.width, a);
  }
  return { window, context };
}

/**
 * Scans the data shards `todo` until done or aborted; returns how many were
 * scanned and the seconds the scans took.
 */
async function scanShards(
  job: FeatureJob,
  tables: CountTables,
  todo: readonly number[],
  signal?: AbortSignal,
): Promise<{ scanned: number; seconds: number }> {
  let scanned = 0, seconds = 0;
  for (const d of todo) {
    if (signal?.aborted) break;
    seconds += await scanShard(job, [tables.window!, tables.context!], d);
    scanned++;
  }
  return { scanned, seconds };
}

/**
 * Counts the windows of data shard `d` (rows `[d · size, (d + 1) · size)`,
 * each row a segment, read a block of rows at a time) and writes its file:
 * the seconds taken, then the window and the context count of every
 * selected row (streamed). Returns the seconds.
 */
async function scanShard(
  job: FeatureJob,
  tables: [WindowTable, WindowTable],
  d: number,
): Promise<number> {
  const s0 = performance.now();
  const { reader } = job, len = reader.rowLength, size = job.exp.shardSize;
  const first = d * size, n = Math.min(size, reader.rows - first);
  const block = Math.max(1, Math.min(job.chunkRows, Math.floor(SCAN_BLOCK_BYTES / (4 * len))));
  const counts: [Uint32Array, Uint32Array] = [tables[0].newCounts(), tables[1].newCounts()];
  for (let b = 0; b < n; b += block) {
    const rows = Uint32Array.from({ length: Math.min(block, n - b) }, (_, i) => first + b + i);
    const tokens = await reader.readWindow(rows, 0, len);
    for (let r = 0; r < rows.length; r++) scanAll(tables, tokens, r * len, (r + 1) * len, counts);
  }
  const took = secondsSince(s0);
  await writeAtomic(shardFile(job.dir, d), countParts(took, tables, counts));
  return took;
}

/** A counts file's parts: the seconds (float64), then each table's count per query (uint32). */
function* countParts(
  seconds: number,
  tables: readonly WindowTable[],
  counts: readonly Uint32Array[],
): Generator<Uint8Array> {
  yield new Uint8Array(Float64Array.of(seconds).buffer);
  for (const [j, t] of tables.entries()) {
    for (let a = 0; a < t.queries; a += COUNT_PART_ROWS) {
      const out = new Uint32Array(Math.min(COUNT_PART_ROWS, t.queries - a));
      for (let i = 0; i < out.length; i++) {
        const s = t.slot[a + i];
        if (s >= 0) out[i] = counts[j][s];
      }
      yield new Uint8Array(out.buffer);
    }
  }
}

/**
 * Each data shard's counts file checked (8 + 8 bytes per selected row) and
 * the seconds its scan took, summed.
 */
function shardSeconds(job: FeatureJob): number {
  const want = 8 + 8 * job.selection.length;
  let seconds = 0;
  for (let d = 0; d < job.shards; d++) {
    const path = shardFile(job.dir, d);
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size !== want) {
        throw new UserError(
          `${path}: ${size} bytes, expected ${want} (the scan's seconds and a window and a ` +
            `context count per selected row): the counts file is damaged; delete it and rerun ` +
            "deno task experiment to scan its data shard again",
        );
      }
      seconds += new Float64Array(readAt({ fd, size }, 0, 8).slice().buffer)[0];
    } finally {
      closeSync(fd);
    }
  }
  return seconds;
}

/** The window and context counts of selected rows `[a, b)`, summed over every shard's file. */
function summedCounts(
  job: FeatureJob,
  a: number,
  b: number,
): { window: Uint32Array; context: Uint32Array } {
  const window = new Uint32Array(b - a), context = new Uint32Array(b - a);
  const part = new Uint32Array(b - a), bytes = new Uint8Array(part.buffer);
  const selected = job.selection.length;
  for (let d = 0; d < job.shards; d++) {
    const fd = openSync(shardFile(job.dir, d), "r");
    try {
      for (const [at, into] of [[a, window], [selected + a, context]] as const) {
        readAt({ fd, size: 0 }, 8 + 4 * at, bytes.length, bytes);
        addCounts(into, part);
      }
    } finally {
      closeSync(fd);
    }
  }
  return { window, context };
}

/**
 * Writes the record: the seen-when links from the window table's slots (the
 * tables are let go first), then chunk by chunk the summed counts and the
 * per-row features of the chunk's windows, streamed to the column files.
 * Returns the measured seconds of the step (every shard's scan, this call's
 * tables and assembly).
 */
async function writeRecord(
  job: FeatureJob,
  tables: CountTables,
  time: { t0: number; scanSeconds: number; log: (line: string) => void },
): Promise<number> {
  const table = tables.window!;
  const slot = table.slot, links = sameWindowLinks(slot, table.mask + 1);
  tables.window = tables.context = null;
  const scanned = shardSeconds(job);
  const decode = await loadDecoder(job.exp.suite.tokenizer, time.log);
  let seconds = 0;
  const meta = () => {
    // every shard's scan (in whichever call) plus this call's tables and assembly
    seconds = round(scanned + secondsSince(time.t0) - time.scanSeconds);
    return {
      key: job.dir.split("/").pop()!,
      of: decode ? "text" as const : "tokens" as const,
      seconds,
      shards: job.shards,
      tokens: job.reader.rows * job.reader.rowLength,
    };
  };
  await writeRowFeatures(job.dir, meta, recordParts(job, slot, links, decode));
  return seconds;
}

/** The record's parts, `chunkRows` selected rows at a time (their windows read again). */
async function* recordParts(
  job: FeatureJob,
  slot: Int32Array,
  links: WindowLinks,
  decode?: (ids: number[]) => string,
): AsyncGenerator<RecordPart> {
  const { selection, width } = job, n = selection.length;
  const sps = job.exp.suite.sequencesPerStep;
  for (let a = 0; a < n; a += job.chunkRows) {
    const b = Math.min(n, a + job.chunkRows);
    const rows = selection.subarray(a, b);
    const windows = await job.reader.readWindow(rows, job.exp.memorization.offset, width);
    const texts = decode
      ? Array.from(rows, (_, i) => decode(Array.from(windows.subarray(i * width, (i + 1) * width))))
      : undefined;
    const compress = compressFeatures(windows, width, decode, texts);
    const next = (i: number) => links.next[a + i];
    yield {
      rows,
      ...summedCounts(job, a, b),
      step: Int32Array.from(rows, (r) => Math.floor(r / sps)),
      nextStep: Int32Array.from(
        rows,
        (_, i) => next(i) < 0 ? -1 : Math.floor(selection[next(i)] / sps),
      ),
      rowCopies: Uint32Array.from(rows, (_, i) => links.copies[slot[a + i]]),
      compression: Float64Array.from(compress.compression, round),
      distinct: Float64Array.from(compress.distinct, round),
      personal: texts ? personalRows(rows, texts) : [],
    };
  }
}

/** The rows of a chunk whose decoded window holds personal data, with their masked hits. */
function personalRows(rows: Uint32Array, texts: readonly string[]): [number, MaskedHit[]][] {
  const out: [number, MaskedHit[]][] = [];
  for (const [i, text] of texts.entries()) {
    const hits = detectPersonal(text);
    if (hits.length > 0) out.push([rows[i], redactedHits(text, hits)]);
  }
  return out;
}

function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
