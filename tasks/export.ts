/**
 * Exports a run folder's per-row scores (its store, or an import with
 * per-row scores), streamed one store shard at a time, never one string or
 * one array per run:
 *
 * - `csv`: `exports/<model>/step<step>.csv` in the reference format
 *   `index,accuracy` (accuracy = matches / l, as in the memorization CSVs
 *   published with the paper), written in chunks;
 * - `parquet`: `exports/<model>/step<step>.parquet` with index, accuracy,
 *   matches, prefix, nll, memorized, in row groups of {@link ROW_GROUP} rows
 *   (tasks/export_parquet.ts);
 * - `dataset`: a Hive-partitioned Parquet dataset
 *   `exports/dataset/model=<model>/step=<step>/part-<n>.parquet` (columns
 *   index, matches, prefix, nll, memorized; {@link PART_ROWS} rows per part)
 *   that pandas, Polars and DuckDB read as one table with `model` and `step`
 *   columns from the folder names.
 *
 * When the run folder has row features (the experiment's `features` step),
 * every format adds their columns after the scores' (`window_count`,
 * `context_count`, `seen_step`, `next_seen_step`, `row_copies`,
 * `compression`, `distinct_share`, `personal_kinds`:
 * engine/data/features/rows_file.ts `featureColumns`).
 *
 * Model names become one path segment (percent-encoded where they hold
 * `/`, `%` or `=`), so a name with `-` can never be confused with the step.
 * Every file is written under a temporary name and renamed when complete.
 *
 * @module
 */
import { mkdir, open, rename, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ChunkCursor, writeParquetFile } from "./export_parquet.ts";
import { writeError } from "../engine/os/atomic.ts";
import { readStoredSources, type StoredSource } from "../engine/store/stored_checkpoints.ts";
import { readImportedCheckpoints, readImportRecord } from "../engine/import/imported.ts";
import type { ScoreChunk } from "../engine/store/scored_checkpoint.ts";
import { checkpointLabel, type ProgressSink } from "../engine/types.ts";
import {
  type FeatureColumn,
  featureColumns,
  FeatureCursor,
  readRowFeatures,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";
import { startWork, type WorkDisplay, type WorkOptions } from "../engine/run/progress.ts";

/** Export formats. */
export type ExportFormat = "csv" | "parquet" | "dataset";
/** Rows per Parquet row group. */
export const ROW_GROUP = 1 << 20;
/** Lines per write of a CSV export. */
const CSV_LINES = 1 << 16;
/** Rows per part file of the Hive dataset. */
export const PART_ROWS = 1 << 23;

/** One path segment for a model name (percent-encoding only `/`, `\`, `%`, `=`). */
export function modelSegment(model: string): string {
  return model.replace(/[/\\%=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Lines `index,accuracy` of a chunk (no header), each ending in a newline;
 * `extra(row)` appends cells (the feature columns, each with its comma).
 */
export function chunkCsv(c: ScoreChunk, l: number, extra?: (row: number) => string): string {
  if (!extra) {
    const lines = new CsvLines(l);
    const out = new Uint8Array(c.rows.length * lines.maxLine);
    return new TextDecoder().decode(out.subarray(0, lines.write(c, 0, c.rows.length, out)));
  }
  const lines = new Array<string>(c.rows.length);
  for (let i = 0; i < c.rows.length; i++) {
    lines[i] = `${c.rows[i]},${c.matches[i] / l}${extra(c.rows[i])}\n`;
  }
  return lines.join("");
}

/**
 * Encodes `index,accuracy` lines straight into bytes: the accuracy text
 * (`${matches / l}`, as JavaScript prints it) of each of the 256 possible
 * matches is encoded once, the index's digits are written in place; no
 * string per row.
 */
export class CsvLines {
  /** The longest line in bytes. */
  readonly maxLine: number;
  /** `,accuracy\n` of matches m at bytes [at[m], at[m + 1]). */
  readonly #text: Uint8Array;
  readonly #at: Int32Array;
  constructor(l: number) {
    const parts = Array.from({ length: 256 }, (_, m) => new TextEncoder().encode(`,${m / l}\n`));
    this.#at = new Int32Array(257);
    parts.forEach((p, m) => (this.#at[m + 1] = this.#at[m] + p.length));
    this.#text = new Uint8Array(this.#at[256]);
    parts.forEach((p, m) => this.#text.set(p, this.#at[m]));
    this.maxLine = 10 + Math.max(...parts.map((p) => p.length));
  }
  /** The last index written (its digits in #digits[10 - #len, 10)). */
  #row = -2;
  readonly #digits = new Uint8Array(10);
  #len = 0;
  /** Writes the lines of rows [from, to) of a chunk at the start of `out`; returns the bytes written. */
  write(c: ScoreChunk, from: number, to: number, out: Uint8Array): number {
    const rows = c.rows, matches = c.matches, text = this.#text, at = this.#at;
    const d = this.#digits;
    let o = 0, prev = this.#row, len = this.#len;
    for (let i = from; i < to; i++) {
      const r = rows[i];
      if (r === prev + 1) {
        // The next index: add one to the decimal digits in place (rows mostly run consecutively).
        let p = 9;
        while (p >= 10 - len && d[p] === 57) d[p--] = 48;
        if (p >= 10 - len) d[p]++;
        else d[9 - len++] = 49;
      } else {
        let x = r;
        len = 0;
        do {
          const q = Math.floor(x / 10);
          d[9 - len++] = 48 + x - q * 10;
          x = q;
        } while (x > 0);
      }
      prev = r;
      for (let j = 10 - len; j < 10; j++) out[o++] = d[j];
      const m = matches[i];
      for (let j = at[m], end = at[m + 1]; j < end; j++) out[o++] = text[j];
    }
    this.#row = prev;
    this.#len = len;
    return o;
  }
}

/** The export's feature columns of a run folder's row features, with each row's lookup. */
export interface ExportFeatures {
  features: RowFeatures;
  columns: FeatureColumn[];
}

/** `,v1,v2,…` of the feature columns of `row` (a CSV cell each; rows asked ascending). */
function featureCells(x: ExportFeatures, at: FeatureCursor, row: number): string {
  at.seek(row);
  return x.columns.map((c) => `,${c.value(at.chunk, at.i)}`).join("");
}

const tmpName = (path: string) => `${path}.${Deno.pid}.tmp`;

/**
 * What a failed export write becomes: its temporary file removed, and a file
 * system error (disk full above all) one that names the file being written.
 */
async function failedWrite(path: string, tmp: string, e: unknown): Promise<unknown> {
  await unlink(tmp).catch(() => {});
  return typeof (e as { code?: unknown })?.code === "string" || e instanceof Deno.errors.NotCapable
    ? writeError(path, e)
    : e;
}

async function writeCsv(
  run: ExportRun,
  path: string,
  progress: ProgressSink | null,
  x: ExportFeatures | null,
): Promise<{ path: string; rows: number }> {
  const tmp = tmpName(path);
  try {
    return { path, rows: await writeCsvTo(run, path, tmp, progress, x) };
  } catch (e) {
    throw await failedWrite(path, tmp, e);
  }
}

async function writeCsvTo(
  run: ExportRun,
  path: string,
  tmp: string,
  progress: ProgressSink | null,
  x: ExportFeatures | null,
): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const file = await open(tmp, "w");
  let rows = 0;
  try {
    await file.write(`index,accuracy${x ? x.columns.map((c) => `,${c.name}`).join("") : ""}\n`);
    const lines = x ? null : new CsvLines(run.continuation);
    const cursor = x ? new FeatureCursor(x.features) : null;
    const out = lines ? new Uint8Array(CSV_LINES * lines.maxLine) : null;
    for (let k = 0; k < run.source.chunks; k++) {
      const c = run.source.chunk(k);
      // Lines in slices of CSV_LINES: a few MB of text at a time (without features: encoded
      // into one reused buffer).
      for (let at = 0; at < c.rows.length; at += CSV_LINES) {
        const end = Math.min(c.rows.length, at + CSV_LINES);
        if (lines && out) {
          const n = lines.write(c, at, end, out);
          for (let done = 0; done < n;) {
            done += (await file.write(out, done, n - done)).bytesWritten;
          }
          continue;
        }
        await file.write(
          chunkCsv(
            { rows: c.rows.subarray(at, end), matches: c.matches.subarray(at, end) },
            run.continuation,
            (row) => featureCells(x!, cursor!, row),
          ),
        );
      }
      rows += c.rows.length;
      progress?.add(c.rows.length);
    }
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  return rows;
}

/** A run with per-row scores, as the export streams it. */
export type ExportRun = StoredSource;

/**
 * The runs of a run folder with per-row scores: the store's (its shards not
 * read yet: the export reads each once), or an import's.
 */
export async function exportableRuns(
  runDir: string,
  progress?: ProgressSink,
): Promise<ExportRun[]> {
  const record = await readImportRecord(runDir);
  if (!record) return await readStoredSources(runDir, progress);
  return (await readImportedCheckpoints(runDir, record)).flatMap((r) =>
    r.source
      ? [{
        model: r.model,
        step: r.step,
        continuation: r.continuation,
        rows: r.scored.size,
        source: r.source,
      }]
      : []
  );
}

/** Options of {@link exportScores}. */
export interface ExportOptions {
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Rows per Parquet row group (default {@link ROW_GROUP}). */
  rowGroup?: number;
  /** Rows per dataset part (default {@link PART_ROWS}). */
  partRows?: number;
  /** The progress line (reading the store, rows exported; rate and ETA); `false`: none (default). */
  progress?: WorkOptions | false;
}

/** Writes the export of every run with per-row scores; returns the files written. */
export async function exportScores(
  runDir: string,
  format: ExportFormat,
  opts: ExportOptions = {},
): Promise<string[]> {
  const display = opts.progress ? startWork("export", opts.progress) : null;
  try {
    return await exportRuns(runDir, format, opts, display);
  } finally {
    display?.stop();
  }
}

async function exportRuns(
  runDir: string,
  format: ExportFormat,
  opts: ExportOptions,
  display: WorkDisplay | null,
): Promise<string[]> {
  const written: string[] = [];
  const runs = await exportableRuns(runDir, display ?? undefined);
  const features = await readRowFeatures(runDir);
  const x = features ? { features, columns: featureColumns(features) } : null;
  // With a progress line, the caller's lines go above it (on its stream, stderr).
  const log = opts.log && display ? (line: string) => display.note(line) : opts.log;
  display?.phase("exporting", runs.reduce((a, r) => a + r.rows, 0), "rows");
  if (format === "dataset") {
    await rm(join(runDir, "exports", "dataset"), { recursive: true, force: true });
  }
  const exportRun = async (run: ExportRun) => {
    const t = performance.now();
    const files = format === "csv"
      ? [
        await writeCsv(
          run,
          join(runDir, "exports", modelSegment(run.model), `step${run.step}.csv`),
          display,
          x,
        ),
      ]
      : await writeParquet(run, runDir, format === "dataset", opts, display, x);
    const rows = files.reduce((a, f) => a + f.rows, 0);
    const s = (performance.now() - t) / 1000;
    log?.(
      `exported ${checkpointLabel(run)}: ${rows} rows in ${s.toFixed(1)} s ` +
        `(${Math.round(rows / Math.max(s, 1e-9))} rows/s)`,
    );
    return files.map((f) => f.path);
  };
  const files: string[][] = [];
  for (const run of runs) files.push(await exportRun(run));
  written.push(...files.flat());
  return written;
}

/** A run's Parquet export: one file, or the dataset's parts of `partRows` rows. */
async function writeParquet(
  run: ExportRun,
  runDir: string,
  dataset: boolean,
  opts: ExportOptions,
  progress: ProgressSink | null,
  x: ExportFeatures | null,
): Promise<{ path: string; rows: number }[]> {
  const file = join(runDir, "exports", modelSegment(run.model), `step${run.step}.parquet`);
  const dir = join(
    runDir,
    "exports",
    "dataset",
    `model=${modelSegment(run.model)}`,
    `step=${run.step}`,
  );
  const out: { path: string; rows: number }[] = [];
  const cursor = new ChunkCursor(run.source);
  for (let part = 0; cursor.peek(); part++) {
    const path = dataset ? join(dir, `part-${part}.parquet`) : file;
    const tmp = tmpName(path);
    try {
      await mkdir(dirname(path), { recursive: true });
      const rows = writeParquetFile(cursor, {
        path: tmp,
        rows: dataset ? opts.partRows ?? PART_ROWS : Infinity,
        l: run.continuation,
        accuracy: !dataset,
        rowGroup: opts.rowGroup ?? ROW_GROUP,
        features: x,
        progress,
      });
      await rename(tmp, path);
      out.push({ path, rows });
    } catch (e) {
      throw await failedWrite(path, tmp, e);
    }
  }
  return out;
}
