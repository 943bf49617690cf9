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
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeShard, encodeShard, isShardProblem } from "../store/shard_file.ts";
import { writeAtomic } from "../store/store.ts";
import type { ScoreChunk, ScoredCheckpoint, ScoreSource } from "../store/scored_checkpoint.ts";
import type { RowList } from "../rowset.ts";
import { UserError } from "../errors.ts";
import type { InputFile, InputKind } from "./layout.ts";
import { isNotFound } from "../os/fs_errors.ts";

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

/** The run folder's `import.json`, or null when it is not an import. */
export async function readImportRecord(runDir: string): Promise<ImportRecord | null> {
  let text: string;
  try {
    text = await readFile(join(runDir, "import.json"), "utf8");
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  return JSON.parse(text) as ImportRecord;
}

function chunkSource(dir: string, run: ImportedCheckpoint): ScoreSource {
  const prefix = run.columns.includes("prefix"), nll = run.columns.includes("nll");
  return {
    prefix,
    nll,
    chunks: run.chunks,
    chunk(k) {
      const path = join(dir, `chunk${String(k).padStart(5, "0")}.bin`);
      const shard = decodeShard(readFileSync(path));
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
  };
}

/** The imported runs of a run folder as {@link ScoredCheckpoint}. */
export async function readImportedCheckpoints(
  runDir: string,
  record: ImportRecord,
): Promise<ScoredCheckpoint[]> {
  const out: ScoredCheckpoint[] = [];
  for (const run of record.runs) {
    const dir = importedCheckpointDir(join(runDir, "imported"), run.model, run.step);
    const bytes = await readFile(join(dir, "memorized.bin"));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const memorized = new Uint32Array(bytes.length / 4);
    for (let i = 0; i < memorized.length; i++) memorized[i] = view.getUint32(4 * i, true);
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
