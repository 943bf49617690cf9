/**
 * The run folder of an import (`deno task import`): `import.json` records
 * what was imported from where (every file with its size and SHA-256, the
 * rows taken as scored and why, the example rows' tokens), and
 * `imported/<model>/step<step>/` holds each run: `memorized.bin` (its
 * memorized rows, sorted little-endian u32) and, for runs with per-row scores,
 * `chunk<k>.bin` files of at most {@link CHUNK_ROWS} rows in the store's shard
 * format (engine/store/shard_file.ts; columns a run does not have are written
 * as 0 / NaN and never read). {@link readImportedCheckpoints} gives them to the
 * analysis as {@link ScoredCheckpoint}: memory is the memorized rows, chunks are read
 * one at a time.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { decodeShard, encodeShard, FileBuffer, isShardProblem } from "../store/shard_file.ts";
import { writeAtomic } from "../store/store.ts";
import type { ScoreChunk, ScoredCheckpoint, ScoreSource } from "../store/scored_checkpoint.ts";
import type { RowList } from "../rowset.ts";
import { z } from "zod";
import { UserError } from "../errors.ts";
import { readJsonFile } from "../os/json_file.ts";
import { fsProblem } from "../os/fs_errors.ts";
import type { Experiment } from "../types.ts";
import type { InputFile, InputKind } from "./layout.ts";

/** Rows per chunk file of an imported run with per-row scores. */
export const CHUNK_ROWS = 1 << 20;
/** Version of `import.json`. */
export const IMPORT_VERSION = 1;

/** One imported input file. */
export interface ImportedFile {
  /** The file as given. */
  path: string;
  /** Which layout matched. */
  layout: InputFile["layout"];
  /** Size in bytes. */
  bytes: number;
  /** SHA-256 of its bytes (hex). */
  sha256: string;
  /** Records (Parquet rows, CSV lines with data) read from it. */
  rows: number;
}

/** One imported (model, step) run. */
export interface ImportedCheckpoint {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** What its files held. */
  kind: InputKind;
  /** Per-row columns it carries (none for memorized-row lists). */
  columns: ("matches" | "prefix" | "nll")[];
  /** Continuation length l the scores are out of. */
  continuation: number;
  /** Scored rows as flat `[start, end, …]` ranges. */
  scored: number[];
  /** Number of scored rows. */
  scoredRows: number;
  /** Number of memorized rows. */
  memorized: number;
  /** Why these rows count as scored. */
  rowsReason: string;
  /** The files it was read from. */
  files: ImportedFile[];
  /** Chunk files (0 for memorized-row lists). */
  chunks: number;
  /** Rows per matches value 0..l over the scored rows (per-row runs). */
  matchCounts?: number[];
  /** Key stamped into its chunk files (hex). */
  key: string;
}

/** `import.json`. */
export interface ImportRecord {
  /** Version of the import format. */
  version: number;
  /** The command that made the import. */
  command: string;
  /** When it started (ISO 8601). */
  startedAt: string;
  /** How long it took (seconds). */
  seconds: number;
  /** The experiment's name. */
  experiment: string;
  /** `--rows A:B` when given. */
  rows: { start: number; end: number } | null;
  /** Every imported run. */
  runs: ImportedCheckpoint[];
  /** Files under the inputs that match no layout (not imported). */
  ignored: string[];
  /** Tokens of the example rows (the row's first tokens), when a file carried them. */
  examples: { row: number; tokens: number[] }[];
  /** Which file the example tokens came from. */
  examplesFrom: string | null;
}

/** Folder of one imported run inside the run folder's `imported/` (or a staging folder). */
export function importedCheckpointDir(importedDir: string, model: string, step: number): string {
  return join(importedDir, encodeURIComponent(model), `step${step}`);
}

/** Writes a run's memorized rows. */
export async function writeMemorized(dir: string, rows: RowList): Promise<void> {
  const bytes = new Uint8Array(rows.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < rows.length; i++) view.setUint32(4 * i, rows[i], true);
  await writeAtomic(join(dir, "memorized.bin"), bytes);
}

/** Writes chunk k of a run's per-row scores. */
export async function writeChunk(
  dir: string,
  k: number,
  chunk: ScoreChunk,
  continuation: number,
  key: string,
): Promise<void> {
  const n = chunk.rows.length;
  const bytes = encodeShard(
    {
      rows: chunk.rows,
      matches: chunk.matches,
      prefix: chunk.prefix ?? new Uint8Array(n),
      nll: chunk.nll ?? new Float32Array(n).fill(NaN),
    },
    continuation,
    k,
    key,
  );
  await writeAtomic(join(dir, `chunk${String(k).padStart(5, "0")}.bin`), bytes);
}

/** Scored ranges a run may list (a run of every other row of a Pythia step would be 2^26). */
const MAX_RANGES = 1 << 27;
/** Tokens kept per example row (the window the report shows is context + continuation). */
export const MAX_EXAMPLE_TOKENS = 1 << 21;

/** Rows a run folder addresses (the store's row indices are 32-bit). */
const MAX_ROWS = 2 ** 32;
const count = z.int().min(0).max(MAX_ROWS);
const text = (max: number) => z.string().max(max);

const importedFileSchema = z.strictObject({
  path: text(4096),
  layout: z.enum([
    "hf-split-folder",
    "hf-data",
    "reference-csv",
    "export",
    "export-hive",
    "pattern",
  ]),
  bytes: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  rows: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
});

const importedCheckpointSchema = z.strictObject({
  model: text(255).min(1),
  step: z.int().min(0).max(100_000_000),
  kind: z.enum(["memorized", "accuracy", "export"]),
  columns: z.array(z.enum(["matches", "prefix", "nll"])).max(3),
  continuation: z.int().min(1).max(255),
  scored: z.array(count).max(2 * MAX_RANGES),
  scoredRows: count,
  memorized: count,
  rowsReason: text(2000),
  files: z.array(importedFileSchema).max(100_000),
  chunks: z.int().min(0).max(MAX_ROWS / CHUNK_ROWS),
  matchCounts: z.array(count).max(256).optional(),
  key: z.string().regex(/^[0-9a-f]{64}$/),
}).superRefine((run, ctx) => {
  const bad = (path: PropertyKey[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  let sum = 0;
  for (let i = 0; i < run.scored.length; i += 2) {
    const [a, b] = [run.scored[i], run.scored[i + 1]];
    if (b === undefined || !(a < b) || (i > 0 && a <= run.scored[i - 1])) {
      return bad(["scored"], "is not a list of ascending, disjoint [start, end) row ranges");
    }
    sum += b - a;
  }
  if (sum !== run.scoredRows) {
    bad(["scoredRows"], `is not the ${sum} rows of the scored ranges`);
  }
  if (run.memorized > run.scoredRows) {
    bad(["memorized"], `is more than the ${run.scoredRows} scored rows`);
  }
  if (run.kind === "memorized" && (run.chunks !== 0 || run.columns.length !== 0)) {
    bad(["chunks"], "a memorized-row list has no chunks or columns");
  }
  if (run.kind !== "memorized") {
    if (run.chunks !== Math.ceil(run.scoredRows / CHUNK_ROWS)) {
      bad(["chunks"], `is not the ${Math.ceil(run.scoredRows / CHUNK_ROWS)} chunks of its rows`);
    }
    if (!run.columns.includes("matches")) bad(["columns"], 'lacks "matches"');
    const m = run.matchCounts;
    if (!m || m.length !== run.continuation + 1) {
      bad(["matchCounts"], `needs ${run.continuation + 1} counts (matches 0..${run.continuation})`);
    } else if (m.reduce((a, b) => a + b, 0) !== run.scoredRows) {
      bad(["matchCounts"], `does not add up to the ${run.scoredRows} scored rows`);
    } else if (!run.columns.includes("prefix") && m[run.continuation] !== run.memorized) {
      bad(["memorized"], `is not the ${m[run.continuation]} rows with all tokens matched`);
    }
  }
});

/** `import.json` as it may be read. */
const importRecordSchema: z.ZodType<ImportRecord> = z.strictObject({
  version: z.literal(IMPORT_VERSION),
  command: text(100_000),
  startedAt: text(100),
  seconds: z.number().min(0),
  experiment: text(255),
  rows: z.strictObject({ start: count, end: count }).nullable(),
  runs: z.array(importedCheckpointSchema).max(100_000),
  ignored: z.array(text(4096)).max(1_000_000),
  examples: z.array(z.strictObject({
    row: count,
    tokens: z.array(z.int().min(0).max(2 ** 32 - 1)).max(MAX_EXAMPLE_TOKENS),
  })).max(1000),
  examplesFrom: text(100_000).nullable(),
});

/**
 * The run folder's `import.json`, or null when it is not an import. It is
 * bounded and validated against its schema before use, the runs checked for
 * consistency (scored ranges and their count, memorized rows, match counts,
 * chunks): an edited or damaged record is a UserError naming it and the
 * field, never a number in a report.
 */
export async function readImportRecord(runDir: string): Promise<ImportRecord | null> {
  const path = join(runDir, "import.json");
  return await readJsonFile(path, {
    schema: importRecordSchema,
    damaged: (why) =>
      new UserError(
        `${path}: ${why}: the record of the import is damaged or was edited; import again ` +
          "(`deno task import` with the same inputs) to rewrite it.",
      ),
  });
}

/**
 * Checks an import's runs against the experiment snapshot beside it: each
 * run's scored rows lie within the rows its step has seen (`step ×
 * sequences_per_step`), and its continuation length is the experiment's.
 */
export function checkImportAgainst(runDir: string, record: ImportRecord, exp: Experiment): void {
  const path = join(runDir, "import.json");
  const sps = exp.suite.sequencesPerStep;
  const l = exp.memorization.continuation;
  record.runs.forEach((run, i) => {
    const where = `${path}: field runs[${i}] (${run.model}@${run.step})`;
    const limit = run.step * sps;
    const end = run.scored.length > 0 ? run.scored[run.scored.length - 1] : 0;
    if (end > limit) {
      throw new UserError(
        `${where}: scored rows up to ${end}, beyond the ${limit} rows step ${run.step} × ` +
          `${sps} rows per step (experiment.json) has seen: the record was edited or damaged; ` +
          "import again",
      );
    }
    if (run.continuation !== l) {
      throw new UserError(
        `${where}: continuation ${run.continuation}, but experiment.json says ${l}: the record ` +
          "was edited or damaged; import again",
      );
    }
  });
}

function chunkSource(dir: string, run: ImportedCheckpoint): ScoreSource {
  const prefix = run.columns.includes("prefix"), nll = run.columns.includes("nll");
  let buffer: FileBuffer | null = null;
  return {
    prefix,
    nll,
    chunks: run.chunks,
    chunk(k) {
      const path = join(dir, `chunk${String(k).padStart(5, "0")}.bin`);
      let bytes: Uint8Array;
      buffer ??= new FileBuffer();
      try {
        bytes = buffer.read(path);
      } catch (e) {
        throw fsProblem(path, e, "chunk of an import");
      }
      if (k === run.chunks - 1) buffer = null;
      const shard = decodeShard(bytes);
      if (isShardProblem(shard) || shard.key !== run.key) {
        throw new UserError(
          `${path}: ${
            isShardProblem(shard) ? shard.problem : "not the chunk import.json recorded"
          }; import again`,
        );
      }
      const out: ScoreChunk = { rows: shard.rows, matches: shard.matches };
      if (prefix) out.prefix = shard.prefix;
      if (nll) out.nll = shard.nll;
      return out;
    },
    close() {
      buffer = null;
    },
  };
}

/**
 * A run's `memorized.bin`, checked against its record: the count import.json
 * gives, ascending, every row among the scored ones.
 */
async function readMemorized(path: string, run: ImportedCheckpoint): Promise<Uint32Array> {
  let bytes: Uint8Array;
  try {
    const size = (await stat(path)).size;
    if (size !== run.memorized * 4) {
      throw new UserError(
        `${path}: ${size} bytes, but import.json records ${run.memorized} memorized rows ` +
          `(${run.memorized * 4} bytes) for ${run.model}@${run.step}; import again`,
      );
    }
    bytes = await readFile(path);
  } catch (e) {
    throw fsProblem(path, e, "memorized rows of an import");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memorized = new Uint32Array(bytes.length / 4);
  let range = 0;
  for (let i = 0; i < memorized.length; i++) {
    const r = view.getUint32(4 * i, true);
    while (range < run.scored.length && r >= run.scored[range + 1]) range += 2;
    if ((i > 0 && r <= memorized[i - 1]) || range >= run.scored.length || r < run.scored[range]) {
      throw new UserError(
        `${path}: row ${r} (entry ${i}) is not ascending or not among the scored rows import.json ` +
          `records for ${run.model}@${run.step}; import again`,
      );
    }
    memorized[i] = r;
  }
  return memorized;
}

/** The imported runs of a run folder as {@link ScoredCheckpoint}. */
export async function readImportedCheckpoints(
  runDir: string,
  record: ImportRecord,
): Promise<ScoredCheckpoint[]> {
  const out: ScoredCheckpoint[] = [];
  for (const run of record.runs) {
    const dir = importedCheckpointDir(join(runDir, "imported"), run.model, run.step);
    const memorized = await readMemorized(join(dir, "memorized.bin"), run);
    const data: ScoredCheckpoint = {
      model: run.model,
      step: run.step,
      continuation: run.continuation,
      scored: { bounds: Float64Array.from(run.scored), size: run.scoredRows },
      memorized,
    };
    if (run.chunks > 0) data.source = chunkSource(dir, run);
    if (run.matchCounts) data.matchCounts = run.matchCounts;
    out.push(data);
  }
  return out;
}
