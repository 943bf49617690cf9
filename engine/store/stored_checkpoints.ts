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
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { decodeShard, FileBuffer, isShardProblem } from "./shard_file.ts";
import {
  continuationOf,
  corruptShardError,
  type Manifest,
  readManifest,
  shardKey,
} from "./store.ts";
import { UserError } from "../errors.ts";
import type { ScoreChunk, ScoredCheckpoint, ScoreSource } from "./scored_checkpoint.ts";
import { listBuilder, rangesBuilder } from "../rowset.ts";
import { isNotFound } from "../os/fs_errors.ts";
import type { ProgressSink } from "../types.ts";

/**
 * A source over shard files (chunk k = the k-th file, shard order). Chunks
 * view one buffer the source reuses (see {@link ScoreSource.chunk}); it lets
 * go of it after the last chunk and on {@link ScoreSource.close}.
 */
export function shardSource(paths: readonly string[], key: string): ScoreSource {
  let buffer: FileBuffer | null = null;
  return {
    prefix: true,
    nll: true,
    chunks: paths.length,
    chunk(k: number): ScoreChunk {
      buffer ??= new FileBuffer();
      const shard = decodeShard(buffer.read(paths[k]));
      if (k === paths.length - 1) buffer = null;
      if (isShardProblem(shard)) throw corruptShardError(paths[k], shard.problem);
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

/**
 * Every checkpoint of the run folder's store with finished shards, as
 * {@link ScoredCheckpoint} in the manifest's order. Shards whose key does not match the
 * manifest are ignored. `known`: the
 * folder's manifest as the caller holds it (default: read from the folder);
 * `progress` counts the manifest's checkpoints as they are read.
 */
export async function readStoredCheckpoints(
  runDir: string,
  known?: Manifest | null,
  progress?: ProgressSink,
): Promise<ScoredCheckpoint[]> {
  const manifest = known ?? await readManifest(runDir);
  if (!manifest) {
    throw new UserError(
      `${join(runDir, "manifest.json")} not found: ${runDir} holds no scores; ` +
        "run the experiment first (deno task experiment <file>)",
    );
  }
  const l = continuationOf(manifest);
  const out: ScoredCheckpoint[] = [];
  const buffer = new FileBuffer();
  progress?.phase("reading the store", manifest.checkpoints.length, "checkpoints");
  for (const c of manifest.checkpoints) {
    if (c !== manifest.checkpoints[0]) progress?.add(1);
    const dir = join(runDir, "scores", c.model, `step${c.step}`);
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /^shard\d+\.bin$/.test(n));
    } catch (e) {
      if (isNotFound(e)) continue; // nothing scored yet
      throw e;
    }
    names.sort((a, b) => Number(a.slice(5, -4)) - Number(b.slice(5, -4)));
    const key = shardKey(manifest.settingsHash, c.fingerprint);
    const paths: string[] = [];
    const scored = rangesBuilder(), memorized = listBuilder();
    const counts = new Float64Array(256);
    let last = -1;
    for (const name of names) {
      const path = join(dir, name);
      const shard = decodeShard(buffer.read(path));
      if (isShardProblem(shard)) throw corruptShardError(path, shard.problem);
      if (shard.key !== key) continue;
      paths.push(path);
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
    if (paths.length === 0) continue;
    const matchCounts = new Array<number>(l + 1).fill(0);
    counts.forEach((x, m) => (matchCounts[Math.min(m, l)] += x));
    out.push({
      model: c.model,
      step: c.step,
      continuation: l,
      scored: scored.done(),
      memorized: memorized.done(),
      matchCounts,
      source: shardSource(paths, key),
    });
  }
  if (manifest.checkpoints.length > 0) progress?.add(1);
  return out;
}
