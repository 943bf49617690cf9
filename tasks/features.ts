/**
 * The `features` step of an experiment: row features of every selected
 * (scored) row, computed from the token data the experiment names, kept in the
 * run folder under `features/<key>/` (key: a hash of the rows, the window
 * settings, the data's row count and fingerprint (the one the store's manifest
 * records), so changed settings or changed data start afresh).
 *
 * - **Counts** (engine/data/features/window_counts.ts): the data is scanned
 *   in data shards of `shard_size` rows (every token position of every row; a
 *   row is a segment); each shard writes one atomic file `counts-NNNNN.bin`
 *   (float64 seconds, then uint32 window counts and uint32 context counts per
 *   selected row). Finished shards are skipped on rerun; with a shard group
 *   `I/N` the group scans data shards d ≡ I (mod N).
 * - **Rows**: once every shard is in, the counts are summed and the per-row
 *   features added: step and the next row with the same window (seen.ts),
 *   compression and distinct share (compress.ts, of the decoded text when the
 *   tokenizer loads), and the personal data found in the decoded window
 *   (personal.ts), kept **masked only** (kind, span, `redact`ed value). They
 *   are written by rows_file.ts `writeRowFeatures`: one little-endian binary
 *   file per column, `personal.jsonl`, then `rows.json` (the metadata, last).
 *   `seconds` is the measured cost of the whole step (all shards and the
 *   assembly).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { openTokenReader, type TokenReader } from "../engine/data/datasets.ts";
import { selectRows } from "../engine/data/rows.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import {
  addCounts,
  buildWindowTable,
  queryCounts,
  scanAll,
  type WindowTable,
} from "../engine/data/features/window_counts.ts";
import { seenFeatures } from "../engine/data/features/seen.ts";
import { compressFeatures } from "../engine/data/features/compress.ts";
import { detectPersonal, redactedHits } from "../engine/data/features/personal.ts";
import { stableJson, writeAtomic } from "../engine/store/store.ts";
import {
  type FeatureChunk,
  FEATURES_VERSION,
  type MaskedHit,
  writeRowFeatures,
} from "../engine/data/features/rows_file.ts";
import type { Experiment } from "../engine/types.ts";

/** Options of {@link computeFeatures}. */
export interface FeatureOptions {
  /** Only the data shards of group I of N (d mod N = I); the rows file is written when all are in. */
  shardGroup?: { index: number; count: number };
  log?: (line: string) => void;
  signal?: AbortSignal;
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
    const totalRows = reader.rows;
    const selection = selectRows(exp, totalRows);
    const dir = await featureFolder(exp, totalRows, await reader.fingerprint(), selection);
    const rowsPath = join(dir, "rows.json");
    const m = exp.memorization;
    const width = m.context + m.continuation;
    const shards = Math.ceil(totalRows / exp.shardSize);
    if (existsSync(rowsPath)) {
      return { scanned: 0, skipped: shards, rows: rowsPath, seconds: secondsSince(t0) };
    }
    const windows = await reader.readWindow(selection, m.offset, width);
    const tables = {
      window: buildWindowTable(windows, width, width),
      context: buildWindowTable(windows, width, m.context, {}),
    };
    const scan = await scanShards(reader, tables, dir, shards, exp.shardSize, opts);
    const done = Array.from({ length: shards }, (_, d) => existsSync(shardFile(dir, d)));
    if (!done.every(Boolean)) {
      log(`features: ${done.filter(Boolean).length} of ${shards} data shards scanned`);
      return {
        scanned: scan.scanned,
        skipped: scan.skipped,
        rows: null,
        seconds: secondsSince(t0),
      };
    }
    const sums = await sumShardCounts(dir, shards, selection.length);
    const decode = await loadDecoder(exp.suite.tokenizer, log);
    const rows = assembleRows(exp, selection, windows, width, sums, decode);
    // every shard's scan (in whichever call) plus this call's tables and assembly
    const seconds = round(sums.scanSeconds + secondsSince(t0) - scan.seconds);
    const meta = {
      key: dir.split("/").pop()!,
      of: rows.of,
      seconds,
      shards,
      tokens: totalRows * reader.rowLength,
    };
    await writeRowFeatures(dir, meta, [rows.columns], rows.personal);
    log(
      `features: ${selection.length} rows, ${shards} data shards ` +
        `(${scan.scanned} scanned now) in ${seconds.toFixed(2)} s → ${rowsPath}`,
    );
    return {
      scanned: scan.scanned,
      skipped: scan.skipped,
      rows: rowsPath,
      seconds: secondsSince(t0),
    };
  } finally {
    await reader.close();
  }
}

/** The window table and the context table of the selected rows. */
interface CountTables {
  window: WindowTable;
  context: WindowTable;
}

/**
 * Scans this call's data shards (those of the shard group, not yet on disk)
 * until done or aborted; returns how many were scanned and skipped, and the
 * seconds the scans took.
 */
async function scanShards(
  reader: TokenReader,
  tables: CountTables,
  dir: string,
  shards: number,
  size: number,
  opts: FeatureOptions,
): Promise<{ scanned: number; skipped: number; seconds: number }> {
  const g = opts.shardGroup;
  let scanned = 0, skipped = 0, seconds = 0;
  for (let d = 0; d < shards; d++) {
    if (g && d % g.count !== g.index) continue;
    if (existsSync(shardFile(dir, d))) {
      skipped++;
      continue;
    }
    if (opts.signal?.aborted) break;
    seconds += await scanShard(reader, tables, dir, d, size);
    scanned++;
  }
  return { scanned, skipped, seconds };
}

/**
 * Counts the windows of data shard `d` (rows `[d · size, (d + 1) · size)`,
 * each row a segment) and writes its file: the seconds taken, then the
 * window and the context count of every selected row. Returns the seconds.
 */
async function scanShard(
  reader: TokenReader,
  tables: CountTables,
  dir: string,
  d: number,
  size: number,
): Promise<number> {
  const s0 = performance.now();
  const { window: wTable, context: cTable } = tables;
  const first = d * size, n = Math.min(size, reader.rows - first);
  const rows = Uint32Array.from({ length: n }, (_, i) => first + i);
  const tokens = await reader.readWindow(rows, 0, reader.rowLength);
  const wc = wTable.newCounts(), cc = cTable.newCounts();
  for (let r = 0; r < n; r++) {
    const a = r * reader.rowLength;
    scanAll([wTable, cTable], tokens, a, a + reader.rowLength, [wc, cc]);
  }
  const selected = wTable.queries;
  const out = new Uint8Array(8 + 8 * selected);
  const q = new Uint32Array(out.buffer, 8, 2 * selected);
  queryCounts(wTable, wc, q.subarray(0, selected));
  queryCounts(cTable, cc, q.subarray(selected));
  const took = secondsSince(s0);
  new Float64Array(out.buffer, 0, 1)[0] = took;
  await writeAtomic(shardFile(dir, d), out);
  return took;
}

/** Every shard file's counts summed per selected row, and the seconds their scans took. */
async function sumShardCounts(
  dir: string,
  shards: number,
  selected: number,
): Promise<{ window: Uint32Array; context: Uint32Array; scanSeconds: number }> {
  const window = new Uint32Array(selected), context = new Uint32Array(selected);
  let scanSeconds = 0;
  for (let d = 0; d < shards; d++) {
    const bytes = await readFile(shardFile(dir, d));
    const buf = new Uint8Array(bytes).buffer;
    scanSeconds += new Float64Array(buf, 0, 1)[0];
    const q = new Uint32Array(buf, 8, 2 * selected);
    addCounts(window, q.subarray(0, selected));
    addCounts(context, q.subarray(selected));
  }
  return { window, context, scanSeconds };
}

/** The per-row features from the summed counts and the selected rows' windows. */
function assembleRows(
  exp: Experiment,
  selection: Uint32Array,
  windows: Int32Array,
  width: number,
  counts: { window: Uint32Array; context: Uint32Array },
  decode?: (ids: number[]) => string,
): { columns: FeatureChunk; personal: [number, MaskedHit[]][]; of: "text" | "tokens" } {
  const sps = exp.suite.sequencesPerStep;
  const seen = seenFeatures(windows, width, sps);
  const compress = compressFeatures(windows, width, decode);
  const personal: [number, MaskedHit[]][] = [];
  if (decode) {
    for (let q = 0; q < selection.length; q++) {
      const text = decode(Array.from(windows.subarray(q * width, (q + 1) * width)));
      const hits = detectPersonal(text);
      if (hits.length > 0) personal.push([selection[q], redactedHits(text, hits)]);
    }
  }
  // seenFeatures numbers rows 0..n−1 of the selection: map its next row back to a step of data rows
  const nextStep = Int32Array.from(
    seen.nextRow,
    (r) => r < 0 ? -1 : Math.floor(selection[r] / sps),
  );
  const columns: FeatureChunk = {
    rows: selection,
    window: counts.window,
    context: counts.context,
    step: Int32Array.from(selection, (r) => Math.floor(r / sps)),
    nextStep,
    rowCopies: Uint32Array.from(seen.rowCopies),
    compression: Float64Array.from(compress.compression, round),
    distinct: Float64Array.from(compress.distinct, round),
  };
  return { columns, personal, of: compress.of };
}

function secondsSince(t0: number): number {
  return (performance.now() - t0) / 1000;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
