/**
 * The `features` step of an experiment: row features of every selected
 * (scored) row, computed from the token data the experiment names, kept in the
 * run folder under `features/<key>/` (key: a hash of the rows, the window
 * settings, the data's row count and fingerprint (the one the store's manifest
 * records), so changed settings or changed data start afresh).
 *
 * Streamed, in bounded memory, spread over shard groups and cores, every
 * piece of work an atomic file skipped on rerun:
 *
 * - **Pieces** (tasks/features_pieces.ts): the selected rows in chunks of
 *   `chunkRows` ({@link FEATURE_READ_ROWS}); chunk c's windows are read once
 *   to write `rows-<R>/hashes-NNNNN.bin` (their 64-bit window and context
 *   hashes, 16 B per row) and `rows-<R>/part-NNNNN.bin` (compression and
 *   distinct share of the decoded text, personal data kept **masked only**:
 *   the work that depends on the row's own window). With a shard group
 *   `I/N`, the group computes the parts of chunks c ≡ I (mod N).
 * - **Tables**: built from every chunk's hashes (`addHashes`; a chunk whose
 *   hashes are missing has them computed first, hashes only), never from
 *   the windows again: 64-bit hashes, no query tokens, so no verification
 *   (expected wrong counts N · n / 2^64: 2.4 over the whole deduplicated
 *   Pile). What spans all rows is the tables (per width: 16-byte slots at
 *   load ≤ 0.7, a bit filter of 16 bits per row, the slot of each row) and
 *   the selection.
 * - **Counts**: the data is scanned in data shards of `shard_size` rows
 *   (every token position of every row; a row is a segment); each shard
 *   writes one atomic file `counts-NNNNN.bin` (float64 seconds, then uint32
 *   window counts and uint32 context counts per selected row, streamed).
 *   With a shard group `I/N` the group scans data shards d ≡ I (mod N).
 * - **Threads** (tasks/features_threads.ts): the pieces and the blocks of
 *   each shard run on worker threads (`threads`, default the cores a Slurm
 *   task or the machine has, at most 16, or one for small work), the tables
 *   and a shard's counts in shared memory (added with `Atomics.add`).
 * - **Record**: once every shard and every part is in (the last call to
 *   finish computes any part still missing), the window table's slots give
 *   each row its next row with the same window and the rows holding it
 *   (seen.ts `sameWindowLinks`; the tables are let go first), and the record
 *   is written chunk by chunk from the parts and the counts summed over the
 *   shard files: rows_file.ts `writeRowFeatures` streams one little-endian
 *   binary file per column, `personal.jsonl`, then `rows.json` (the
 *   metadata, last). `seconds` is the measured work of the step: every
 *   shard's scan and every part (a thread's part counts its own time), plus
 *   the last call's tables and assembly.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { openTokenReader, type TokenReader } from "../engine/data/datasets.ts";
import { readAt } from "../engine/data/token_file.ts";
import { selectRows } from "../engine/data/rows.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import {
  addCounts,
  addHashes,
  emptyWindowTable,
  sharedArray,
  tableView,
  type WindowTable,
} from "../engine/data/features/window_counts.ts";
import { sameWindowLinks, type WindowLinks } from "../engine/data/features/seen.ts";
import { stableJson, writeAtomic } from "../engine/store/store.ts";
import {
  FEATURES_VERSION,
  type RecordPart,
  writeRowFeatures,
} from "../engine/data/features/rows_file.ts";
import type { Experiment } from "../engine/types.ts";
import {
  hashesFile,
  partFile,
  readHashes,
  readPart,
  round,
  secondsSince,
  withCheckedFile,
} from "./features_pieces.ts";
import {
  type FeatureInit,
  featureThreads,
  localRunner,
  runLimited,
  type Runner,
  threadRunner,
} from "./features_threads.ts";

/**
 * Selected rows read, hashed and computed at a time (a piece): 16 MiB of
 * tokens for 64-token windows, and the chunk's decoded texts (2^18 rows
 * peaked 300 MB higher at 2M rows, bench/features_step.ts, for the same speed).
 */
export const FEATURE_READ_ROWS = 1 << 16;
/** Bytes of a data shard's tokens (as Int32) read at a time while it is scanned. */
const SCAN_BLOCK_BYTES = 32 << 20;
/** Selected rows per part of a data shard's counts file. */
const COUNT_PART_ROWS = 1 << 20;
/** Below this many tokens to scan (and one piece to compute), the step runs on one thread. */
const SMALL_SCAN_TOKENS = 1 << 24;

/** Options of {@link computeFeatures}. */
export interface FeatureOptions {
  /** Only the data shards of group I of N (d mod N = I) and the parts of its chunks (c mod N = I). */
  shardGroup?: { index: number; count: number };
  log?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * Selected rows per chunk (default {@link FEATURE_READ_ROWS}); also the
   * most rows of a data shard read at a time. The record does not depend on
   * it (tests force several chunks).
   */
  chunkRows?: number;
  /**
   * Threads computing the pieces and scanning (default: tasks/
   * features_threads.ts `featureThreads`, or 1 when the work is small); the
   * record does not depend on it.
   */
  threads?: number;
}

/** What {@link computeFeatures} did. */
export interface FeatureOutcome {
  /** Data shards scanned in this call, and already done. */
  scanned: number;
  skipped: number;
  /** Parts (chunks of selected rows) computed in this call. */
  parts: number;
  /** The rows file, when every shard and part is in. */
  rows: string | null;
  /** Seconds this call took. */
  seconds: number;
  /** Wall seconds of this call's phases, and the thread-seconds of the parts it computed. */
  timing: StepTiming;
}

/** Where a call's time went (wall seconds; `partSeconds`: summed over threads). */
export interface StepTiming {
  /** Computing parts (and their chunks' hashes), and hashes alone for the tables. */
  parts: number;
  hashes: number;
  /** Building the tables from the hashes files. */
  tables: number;
  /** Scanning data shards (their counts files written). */
  scan: number;
  /** The links and the record written, and of it the counts summed over the shard files. */
  record: number;
  sums: number;
  /** Seconds of the parts computed, each as measured on its thread. */
  partSeconds: number;
}

const noTiming = (): StepTiming => ({
  parts: 0,
  hashes: 0,
  tables: 0,
  scan: 0,
  record: 0,
  sums: 0,
  partSeconds: 0,
});

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
  /** Chunks of selected rows (pieces). */
  chunks: number;
  /** This call's shard group (0 of 1 without one). */
  group: { index: number; count: number };
}

/** Selected rows `[a, b)` of chunk c. */
function chunkRange(job: FeatureJob, c: number): [number, number] {
  const a = c * job.chunkRows;
  return [a, Math.min(job.selection.length, a + job.chunkRows)];
}

/**
 * Computes (or resumes) the row features of the experiment's selected rows
 * into its run folder. Returns what it did; `rows` is null while a shard
 * group's sibling groups have shards left (or the call was stopped).
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
    const chunkRows = checkPositive("chunkRows", opts.chunkRows ?? FEATURE_READ_ROWS);
    const job: FeatureJob = {
      exp,
      reader,
      selection,
      dir,
      shards: Math.ceil(reader.rows / exp.shardSize),
      width: exp.memorization.context + exp.memorization.continuation,
      chunkRows,
      chunks: Math.ceil(selection.length / chunkRows),
      group: opts.shardGroup ?? { index: 0, count: 1 },
    };
    const rowsPath = join(dir, "rows.json");
    if (existsSync(rowsPath)) {
      return {
        scanned: 0,
        skipped: job.shards,
        parts: 0,
        rows: rowsPath,
        seconds: secondsSince(t0),
        timing: noTiming(),
      };
    }
    const plan = planWork(job);
    // nothing to do here and shards of other groups missing: no table to build
    if (plan.todo.length === 0 && plan.elsewhere > 0 && plan.parts.length === 0) {
      const seconds = secondsSince(t0);
      return {
        scanned: 0,
        skipped: plan.skipped,
        parts: 0,
        rows: null,
        seconds,
        timing: noTiming(),
      };
    }
    const runner = await openRunner(job, opts.threads ?? autoThreads(job, plan), log);
    try {
      return await runGroup(job, plan, runner, { t0, log, signal: opts.signal });
    } finally {
      runner.close();
    }
  } finally {
    await reader.close();
  }
}

function checkPositive(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} ${n} is not a positive integer`);
  return n;
}

/** This call's work: its group's data shards and parts not yet on disk. */
interface WorkPlan {
  /** Data shards to scan, those of the group already done, other groups' missing. */
  todo: number[];
  skipped: number;
  elsewhere: number;
  /** The group's chunks whose part is missing. */
  parts: number[];
}

function planWork(job: FeatureJob): WorkPlan {
  const g = job.group;
  const todo: number[] = [];
  let skipped = 0, elsewhere = 0;
  for (let d = 0; d < job.shards; d++) {
    const done = existsSync(shardFile(job.dir, d));
    if (d % g.count !== g.index) elsewhere += done ? 0 : 1;
    else if (done) skipped++;
    else todo.push(d);
  }
  const parts = Array.from({ length: job.chunks }, (_, c) => c)
    .filter((c) => c % g.count === g.index && !existsSync(partFile(job.dir, job.chunkRows, c)));
  return { todo, skipped, elsewhere, parts };
}

/** One thread for small work (a piece and a few seconds of scan), else the cores. */
function autoThreads(job: FeatureJob, plan: WorkPlan): number {
  const tokens = plan.todo.length * job.exp.shardSize * job.reader.rowLength;
  return plan.parts.length <= 1 && tokens < SMALL_SCAN_TOKENS ? 1 : featureThreads();
}

/** Worker threads, or this thread with the call's reader and the suite's tokenizer. */
async function openRunner(
  job: FeatureJob,
  threads: number,
  log: (line: string) => void,
): Promise<Runner> {
  const m = job.exp.memorization;
  const init: FeatureInit = {
    data: job.exp.data,
    offset: m.offset,
    width: job.width,
    context: m.context,
    tokenizer: job.exp.suite.tokenizer,
  };
  if (checkPositive("threads", threads) > 1) return threadRunner(threads, init);
  const decode = await loadDecoder(init.tokenizer, log);
  return localRunner({
    reader: job.reader,
    offset: m.offset,
    width: job.width,
    context: m.context,
    decode,
  });
}

/** The steps of a call after its plan: parts, tables, scan, the record. */
async function runGroup(
  job: FeatureJob,
  plan: WorkPlan,
  runner: Runner,
  time: { t0: number; log: (line: string) => void; signal?: AbortSignal },
): Promise<FeatureOutcome> {
  const stopped = () => time.signal?.aborted ?? false;
  const timing = noTiming(), done = { parts: 0, scanned: 0 };
  const outcome = (rows: string | null) => ({
    scanned: done.scanned,
    skipped: plan.skipped,
    parts: done.parts,
    rows,
    seconds: secondsSince(time.t0),
    timing,
  });
  const timed = async <T>(phase: Exclude<keyof StepTiming, "partSeconds" | "sums">, f: () => T) => {
    const p0 = performance.now();
    const out = await f();
    timing[phase] += secondsSince(p0);
    return out;
  };
  const parts = (chunks: number[]) =>
    timed("parts", async () => {
      const computed = await computePieces(job, runner, chunks, true, stopped);
      done.parts += computed.parts;
      timing.partSeconds += computed.seconds;
    });
  await parts(plan.parts);
  if (stopped() || (plan.todo.length === 0 && plan.elsewhere > 0)) return outcome(null);
  const missingHashes = rotated(job).filter((c) =>
    !existsSync(hashesFile(job.dir, job.chunkRows, c))
  );
  await timed("hashes", () => computePieces(job, runner, missingHashes, false, stopped));
  if (stopped()) return outcome(null);
  const tables = await timed(
    "tables",
    () => buildTables(job, plan.todo.length > 0, runner.threads > 1),
  );
  done.scanned = await timed("scan", () => scanShards(job, tables, plan.todo, runner, stopped));
  const missing = Array.from({ length: job.shards }, (_, d) => d)
    .filter((d) => !existsSync(shardFile(job.dir, d))).length;
  if (missing > 0) {
    time.log(`features: ${job.shards - missing} of ${job.shards} data shards scanned`);
    return outcome(null);
  }
  // parts of other groups still missing (a group stopped, or none scans): computed here
  await parts(rotated(job).filter((c) => !existsSync(partFile(job.dir, job.chunkRows, c))));
  if (stopped()) return outcome(null);
  const excluded = () => timing.parts + timing.scan;
  const seconds = await timed(
    "record",
    () => writeRecord(job, tables, { t0: time.t0, excluded, log: time.log, timing }),
  );
  time.log(
    `features: ${job.selection.length} rows, ${job.shards} data shards (${done.scanned} ` +
      `scanned now, ${done.parts} parts computed now, ${runner.threads} thread(s)) in ` +
      `${seconds.toFixed(2)} s → ${join(job.dir, "rows.json")}`,
  );
  return outcome(join(job.dir, "rows.json"));
}

/** Every chunk, starting at the group's share (groups filling in others' pieces start apart). */
function rotated(job: FeatureJob): number[] {
  const start = Math.floor((job.group.index * job.chunks) / job.group.count);
  return Array.from({ length: job.chunks }, (_, i) => (start + i) % job.chunks);
}

/**
 * Computes the pieces of `chunks` (`part`: the part, and the hashes when
 * missing; else the hashes only), `2 · threads` in flight, until done or
 * stopped; returns the parts computed and their seconds (each on its thread).
 */
async function computePieces(
  job: FeatureJob,
  runner: Runner,
  chunks: readonly number[],
  part: boolean,
  stopped: () => boolean,
): Promise<{ parts: number; seconds: number }> {
  let parts = 0, seconds = 0;
  await runLimited(chunks, 2 * runner.threads, async (c) => {
    const [a, b] = chunkRange(job, c);
    const hashes = !existsSync(hashesFile(job.dir, job.chunkRows, c));
    if (!hashes && !part) return;
    // a copy: a view of the selection would post the whole selection to a thread
    const rows = job.selection.slice(a, b);
    const piece = { dir: job.dir, chunkRows: job.chunkRows, c, first: a, rows, hashes, part };
    const took = await runner.run({ piece });
    if (part) {
      parts++;
      seconds += took;
    }
  }, stopped);
  return { parts, seconds };
}

/** The window table and the context table of the selected rows (null once let go, or not built). */
interface CountTables {
  window: WindowTable | null;
  context: WindowTable | null;
}

/**
 * The tables of the selected rows (the context table only when shards are
 * to be scanned; in shared memory for threads) from every chunk's hashes
 * file, in row order: 64-bit hashes, never tokens.
 */
function buildTables(job: FeatureJob, withContext: boolean, shared: boolean): CountTables {
  const m = job.exp.memorization, n = job.selection.length;
  const window = emptyWindowTable(job.width, n, { shared });
  const context = withContext ? emptyWindowTable(m.context, n, { shared }) : null;
  for (let c = 0; c < job.chunks; c++) {
    const [a, b] = chunkRange(job, c);
    const h = readHashes(hashesFile(job.dir, job.chunkRows, c), b - a);
    addHashes(window, h.window[0], h.window[1], a);
    if (context) addHashes(context, h.context[0], h.context[1], a);
  }
  return { window, context };
}

/**
 * Scans the data shards `todo` until done or stopped, each in blocks of rows
 * spread over the runner's threads into one counts array per table (shared
 * by the threads, zeroed per shard), each shard's file written once its
 * blocks are in; returns the shards scanned.
 */
async function scanShards(
  job: FeatureJob,
  tables: CountTables,
  todo: readonly number[],
  runner: Runner,
  stopped: () => boolean,
): Promise<number> {
  if (todo.length === 0) return 0;
  const t = [tables.window!, tables.context!], views = t.map(tableView);
  const counts = t.map((x) => sharedArray(Uint32Array, x.mask + 1, runner.threads > 1));
  const { reader } = job, size = job.exp.shardSize;
  const block = Math.max(
    1,
    Math.min(job.chunkRows, Math.floor(SCAN_BLOCK_BYTES / (4 * reader.rowLength))),
  );
  let scanned = 0;
  for (const d of todo) {
    if (stopped()) break;
    const s0 = performance.now();
    for (const c of counts) c.fill(0);
    const first = d * size, n = Math.min(size, reader.rows - first);
    const blocks = Array.from({ length: Math.ceil(n / block) }, (_, k) => k * block);
    await runLimited(blocks, 2 * runner.threads, async (b) => {
      const scan = { tables: views, counts, first: first + b, count: Math.min(block, n - b) };
      await runner.run({ scan });
    });
    await writeAtomic(shardFile(job.dir, d), countParts(secondsSince(s0), t, counts));
    scanned++;
  }
  return scanned;
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
  const what = "the scan's seconds and a window and a context count per selected row";
  let seconds = 0;
  for (let d = 0; d < job.shards; d++) {
    seconds += withCheckedFile(
      shardFile(job.dir, d),
      want,
      what,
      (f) => new Float64Array(readAt(f, 0, 8).slice().buffer)[0],
    );
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
    withCheckedFile(shardFile(job.dir, d), 8 + 8 * selected, "a counts file", (f) => {
      for (const [at, into] of [[a, window], [selected + a, context]] as const) {
        readAt(f, 8 + 4 * at, bytes.length, bytes);
        addCounts(into, part);
      }
    });
  }
  return { window, context };
}

/**
 * Writes the record: the seen-when links from the window table's slots (the
 * tables are let go first), then chunk by chunk its part and the summed
 * counts, streamed to the column files. Returns the measured seconds of the
 * step: every shard's scan and every part (as recorded in their files), and
 * this call's tables and assembly (its wall time less its scans and parts).
 */
async function writeRecord(
  job: FeatureJob,
  tables: CountTables,
  time: { t0: number; excluded: () => number; log: (line: string) => void; timing: StepTiming },
): Promise<number> {
  const table = tables.window!;
  const slot = table.slot, links = sameWindowLinks(slot, table.mask + 1);
  tables.window = tables.context = null;
  const scanned = shardSeconds(job);
  const pieces = { seconds: 0, text: 0, sums: 0 };
  let seconds = 0;
  const meta = () => {
    seconds = round(scanned + pieces.seconds + secondsSince(time.t0) - time.excluded());
    if (pieces.text > 0 && pieces.text < job.chunks) {
      time.log(
        `note: ${job.chunks - pieces.text} of ${job.chunks} parts were computed where the ` +
          "tokenizer did not load (token bytes compressed, no personal data searched)",
      );
    }
    return {
      key: job.dir.split("/").pop()!,
      of: pieces.text === job.chunks ? "text" as const : "tokens" as const,
      seconds,
      shards: job.shards,
      tokens: job.reader.rows * job.reader.rowLength,
    };
  };
  await writeRowFeatures(job.dir, meta, recordParts(job, slot, links, pieces));
  time.timing.sums = pieces.sums;
  return seconds;
}

/** The record's parts, chunk by chunk: each chunk's part file and its summed counts. */
function* recordParts(
  job: FeatureJob,
  slot: Int32Array,
  links: WindowLinks,
  pieces: { seconds: number; text: number; sums: number },
): Generator<RecordPart> {
  const { selection } = job;
  const sps = job.exp.suite.sequencesPerStep;
  for (let c = 0; c < job.chunks; c++) {
    const [a, b] = chunkRange(job, c);
    const rows = selection.subarray(a, b);
    const part = readPart(partFile(job.dir, job.chunkRows, c), a, rows);
    pieces.seconds += part.seconds;
    if (part.text) pieces.text++;
    const next = (i: number) => links.next[a + i];
    const s0 = performance.now();
    const counts = summedCounts(job, a, b);
    pieces.sums += secondsSince(s0);
    yield {
      rows,
      ...counts,
      step: Int32Array.from(rows, (r) => Math.floor(r / sps)),
      nextStep: Int32Array.from(
        rows,
        (_, i) => next(i) < 0 ? -1 : Math.floor(selection[next(i)] / sps),
      ),
      rowCopies: Uint32Array.from(rows, (_, i) => links.copies[slot[a + i]]),
      compression: part.compression,
      distinct: part.distinct,
      personal: part.personal,
    };
  }
}
