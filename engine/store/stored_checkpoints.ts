/**
 * The store's runs for the analysis, streamed shard by shard: for every
 * checkpoint of the manifest, its scored rows (ranges) and memorized rows
 * (sorted list) from one pass over its shard files, and a
 * {@link ScoreSource} that re-reads one shard file per chunk. Memory is the
 * row sets plus one shard, never a value per row per run, so `deno task
 * report` works on a paper-size store (146M rows per checkpoint).
 *
 * @module
 */
import { closeSync, openSync, readSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  CHECKSUM_AT,
  type DecodedShard,
  decodeShard,
  FileBuffer,
  isShardProblem,
  SHARD_HEADER_BYTES,
  shardHeaderKey,
} from "./shard_file.ts";
import {
  continuationOf,
  corruptShardError,
  type Manifest,
  readManifest,
  shardKey,
} from "./store.ts";
import { UserError } from "../errors.ts";
import type { ScoreChunk, ScoredCheckpoint, ScoreSource } from "./scored_checkpoint.ts";
import { listBuilder, rangesBuilder, type RowList, type RowRanges } from "../rowset.ts";
import { isNotFound } from "../os/fs_errors.ts";
import type { ProgressSink } from "../types.ts";

/**
 * A source over shard files (chunk k = the k-th file, shard order). Chunks
 * view one buffer the source reuses (see {@link ScoreSource.chunk}); it lets
 * go of it after the last chunk and on {@link ScoreSource.close}.
 *
 * `verified` (shared by the sources of one reader): per path, the identity
 * (file system identity and stored checksum) of the bytes whose checksum
 * passed in this process. A pass that meets the same file again (the report
 * reads a run up to four times, within seconds, mostly from the page cache)
 * does not hash it again: hashing bytes served from memory would check the
 * memory, not the disk. A file replaced or rewritten since has another
 * identity and is verified again.
 */
export function shardSource(
  paths: readonly string[],
  key: string,
  verified: Map<string, string> = new Map(),
): ScoreSource {
  let buffer: FileBuffer | null = null;
  return {
    prefix: true,
    nll: true,
    chunks: paths.length,
    chunk(k: number): ScoreChunk {
      buffer ??= new FileBuffer();
      const shard = readShard(buffer, paths[k], verified);
      if (k === paths.length - 1) buffer = null;
      if (shard.key !== key) {
        throw new Error(`${paths[k]} changed while the report was read; render it again`);
      }
      return shard;
    },
    close() {
      buffer = null;
    },
  };
}

/** Reads and decodes a shard, its checksum verified unless `verified` holds its identity; throws when corrupt. */
function readShard(buffer: FileBuffer, path: string, verified: Map<string, string>): DecodedShard {
  const bytes = buffer.read(path);
  const id = `${buffer.identity}:${bytes.subarray(CHECKSUM_AT, SHARD_HEADER_BYTES).join(",")}`;
  const shard = decodeShard(bytes, { verified: verified.get(path) === id });
  if (isShardProblem(shard)) throw corruptShardError(path, shard.problem);
  verified.set(path, id);
  return shard;
}

/** A stored checkpoint's per-row scores, not yet read (see {@link readStoredSources}). */
export interface StoredSource {
  model: string;
  step: number;
  continuation: number;
  /** Rows of its shards (from their headers). */
  rows: number;
  source: ScoreSource;
}

/**
 * Every checkpoint of the run folder's store with finished shards, as a
 * {@link ScoreSource} over its shards, without the pass that
 * {@link readStoredCheckpoints} makes for the row sets: only each shard's
 * header is read here (its key and row count), so a reader that needs the
 * scores alone (the export) reads the store once. A shard whose header is not
 * the manifest's key is decoded whole: a corrupt one is an error (as in the
 * report), one of another key is ignored. `progress` counts the checkpoints.
 */
export async function readStoredSources(
  runDir: string,
  progress?: ProgressSink,
): Promise<StoredSource[]> {
  const manifest = requireManifest(runDir, await readManifest(runDir));
  const l = continuationOf(manifest);
  const out: StoredSource[] = [];
  const head = new Uint8Array(SHARD_HEADER_BYTES);
  const buffer = new FileBuffer();
  progress?.phase("reading the store", manifest.checkpoints.length, "checkpoints");
  for (const c of manifest.checkpoints) {
    const dir = join(runDir, "scores", c.model, `step${c.step}`);
    const key = shardKey(manifest.settingsHash, c.fingerprint);
    const paths: string[] = [];
    let rows = 0;
    for (const path of await shardFiles(dir)) {
      const fd = openSync(path, "r");
      let n: number;
      try {
        n = readSync(fd, head, 0, head.length, 0);
      } finally {
        closeSync(fd);
      }
      if (shardHeaderKey(head.subarray(0, n)) !== key) {
        const shard = decodeShard(buffer.read(path));
        if (isShardProblem(shard)) throw corruptShardError(path, shard.problem);
        if (shard.key !== key) continue;
      }
      paths.push(path);
      rows += new DataView(head.buffer).getUint32(12, true);
    }
    if (paths.length > 0) {
      out.push({
        model: c.model,
        step: c.step,
        continuation: l,
        rows,
        source: shardSource(paths, key),
      });
    }
    progress?.add(1);
  }
  return out;
}

/** The run folder's manifest, or exit 2 saying the folder holds no scores yet. */
function requireManifest(runDir: string, manifest: Manifest | null): Manifest {
  if (manifest) return manifest;
  throw new UserError(
    `${join(runDir, "manifest.json")} not found: ${runDir} holds no scores; ` +
      "run the experiment first (deno task experiment <file>)",
  );
}

/** The shard files of a checkpoint's folder in shard order (none when there is no folder). */
async function shardFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^shard\d+\.bin$/.test(n));
  } catch (e) {
    if (isNotFound(e)) return []; // nothing scored yet
    throw e;
  }
  names.sort((a, b) => Number(a.slice(5, -4)) - Number(b.slice(5, -4)));
  return names.map((n) => join(dir, n));
}

/** One checkpoint of the store to read: where its shards are and the key they must carry. */
export interface CheckpointJob {
  model: string;
  step: number;
  /** Its folder (`scores/<model>/step<step>` of the run folder). */
  dir: string;
  /** The manifest's shard key for it (shards of another key are ignored). */
  key: string;
  /** Continuation length l of the store. */
  continuation: number;
}

/** A checkpoint's row sets from one pass over its shards ({@link readCheckpointSets}). */
export interface CheckpointSets {
  /** Its shard files of the job's key, in shard order. */
  paths: string[];
  /** Rows scored. */
  scored: RowRanges;
  /** Rows memorized (prefix = l). */
  memorized: RowList;
  /** Rows per matches value 0..l. */
  matchCounts: number[];
}

/** A checkpoint read on another thread ({@link StoreScan.offload}). */
export interface OffloadedCheckpoint {
  /** Its row sets; null when it has no finished shard. */
  sets: CheckpointSets | null;
  /** The shards' verified identities (see {@link shardSource}), so later passes do not hash them again. */
  verified: [string, string][];
  /** What the caller counted there (given to {@link StoreScan.done}). */
  extra?: unknown;
}

/**
 * What a caller does with the chunks {@link readStoredCheckpoints} reads
 * anyway, so that it needs no pass of its own (the report counts each run's
 * histograms against the target here: one pass over the store fewer).
 */
export interface StoreScan {
  /** The checkpoint to read before the others (the report's target), when the store has it. */
  first?: { model: string; step: number };
  /**
   * Called as a checkpoint's pass starts: a function given each of its
   * chunks in row order (valid only during the call), or null for none.
   */
  visit?(id: { model: string; step: number }): ((chunk: ScoreChunk) => void) | null;
  /**
   * Reads a checkpoint other than the first on another thread (with
   * {@link readCheckpointSets} and what `visit` would do): its result, or
   * null to read it here. Lets the report's pass use every core.
   */
  offload?(job: CheckpointJob): Promise<OffloadedCheckpoint> | null;
  /** Called with each checkpoint once read (`first` first; the others as they finish), and an offloaded one's `extra`. */
  done?(checkpoint: ScoredCheckpoint, extra?: unknown): void;
}

/**
 * One pass over a checkpoint's shard files of its key: its scored rows
 * (ranges; shards that overlap are an error), memorized rows and matches
 * counts; `visit` gets each shard's chunk on the way. Null when it has no
 * finished shard of the key. `verified`: see {@link shardSource}.
 */
export async function readCheckpointSets(
  job: CheckpointJob,
  buffer: FileBuffer,
  verified: Map<string, string>,
  visit: ((chunk: ScoreChunk) => void) | null,
): Promise<CheckpointSets | null> {
  const l = job.continuation;
  const paths: string[] = [];
  const scored = rangesBuilder(), memorized = listBuilder();
  const counts = new Float64Array(256);
  let last = -1;
  for (const path of await shardFiles(job.dir)) {
    const shard = readShard(buffer, path, verified);
    if (shard.key !== job.key) continue;
    paths.push(path);
    visit?.(shard);
    const { rows, matches, prefix } = shard;
    const n = rows.length;
    // Scored rows: one range per run of consecutive rows (a shard is usually one).
    for (let i = 0; i < n;) {
      const start = rows[i];
      if (start <= last) {
        throw new Error(`${path}: row ${start} comes after row ${last}; the shards overlap`);
      }
      let j = i + 1;
      while (j < n && rows[j] === rows[j - 1] + 1) j++;
      last = rows[j - 1];
      scored.addRange(start, last + 1);
      i = j;
    }
    for (let i = 0; i < n; i++) {
      counts[matches[i]]++;
      if (prefix[i] >= l) memorized.add(rows[i]);
    }
  }
  if (paths.length === 0) return null;
  const matchCounts = new Array<number>(l + 1).fill(0);
  counts.forEach((x, m) => (matchCounts[Math.min(m, l)] += x));
  return { paths, scored: scored.done(), memorized: memorized.done(), matchCounts };
}

/**
 * Every checkpoint of the run folder's store with finished shards, as
 * {@link ScoredCheckpoint} in the manifest's order. Shards whose key does not match the
 * manifest are ignored. `known`: the
 * folder's manifest as the caller holds it (default: read from the folder);
 * `progress` counts the manifest's checkpoints as they are read; `scan`:
 * what the caller does with the chunks on the way ({@link StoreScan}),
 * and which checkpoints it reads on other threads.
 */
export async function readStoredCheckpoints(
  runDir: string,
  known?: Manifest | null,
  progress?: ProgressSink,
  scan?: StoreScan,
): Promise<ScoredCheckpoint[]> {
  const manifest = requireManifest(runDir, known ?? await readManifest(runDir));
  const l = continuationOf(manifest);
  const read = new Map<string, ScoredCheckpoint>();
  const buffer = new FileBuffer();
  const verified = new Map<string, string>();
  const first = scan?.first;
  // `first` first, then the larger checkpoints (rows grow with the step) before the smaller, so
  // threads reading them at once (`offload`) run out of work together.
  const order = [...manifest.checkpoints].sort((a, b) =>
    Number(isFirst(b)) - Number(isFirst(a)) || b.step - a.step
  );
  function isFirst(c: { model: string; step: number }): boolean {
    return !!first && c.model === first.model && c.step === first.step;
  }
  const finish = (job: CheckpointJob, sets: CheckpointSets | null, extra?: unknown) => {
    progress?.add(1);
    if (!sets) return;
    const { paths, scored, memorized, matchCounts } = sets;
    const key = job.key;
    const source = shardSource(paths, key, verified);
    const checkpoint: ScoredCheckpoint = {
      model: job.model,
      step: job.step,
      continuation: l,
      scored,
      memorized,
      matchCounts,
      source,
      shards: { paths, key, verified },
    };
    read.set(job.dir, checkpoint);
    scan?.done?.(checkpoint, extra);
  };
  progress?.phase("reading the store", manifest.checkpoints.length, "checkpoints");
  const away: Promise<void>[] = [];
  try {
    await readInOrder();
  } finally {
    // An error here or there: every offloaded read has settled before the caller hears of it.
    await Promise.allSettled(away);
  }
  await Promise.all(away);
  return manifest.checkpoints.flatMap((c) => read.get(jobOf(c).dir) ?? []);

  function jobOf(c: (typeof order)[number]): CheckpointJob {
    return {
      model: c.model,
      step: c.step,
      dir: join(runDir, "scores", c.model, `step${c.step}`),
      key: shardKey(manifest.settingsHash, c.fingerprint),
      continuation: l,
    };
  }

  async function readInOrder() {
    for (const c of order) {
      const job = jobOf(c);
      const offloaded = c === order[0] ? null : scan?.offload?.(job) ?? null;
      if (offloaded) {
        const done = offloaded.then((r) => {
          for (const [path, id] of r.verified) verified.set(path, id);
          finish(job, r.sets, r.extra);
        });
        done.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
        away.push(done);
        continue;
      }
      const visit = scan?.visit?.({ model: c.model, step: c.step }) ?? null;
      finish(job, await readCheckpointSets(job, buffer, verified, visit));
    }
  }
}
