/**
 * A reader thread of the report's pass over the store (tasks/report_scan.ts,
 * served by engine/os/threads.ts `serveThread`): told the target's code table
 * first, then given checkpoints one at a time, it reads each one's shards
 * (engine/store/stored_checkpoints.ts `readCheckpointSets`), counts its
 * histograms against the target on the way and gives back the row sets (moved,
 * not copied), the histograms and the shards' verified identities. Its jobs
 * share one shard buffer.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type CheckpointJob, readCheckpointSets } from "../engine/store/stored_checkpoints.ts";
import { FileBuffer } from "../engine/store/shard_file.ts";
import { serveThread } from "../engine/os/threads.ts";
import { HistogramCounter } from "../reports/analysis/histograms.ts";
import type { ReaderInit, ReaderResult } from "./report_scan.ts";

serveThread<ReaderInit, CheckpointJob, ReaderResult>(
  ({ table, continuation, folds, seed, signals }) => {
    const buffer = new FileBuffer();
    return async (job) => {
      const counter = new HistogramCounter(signals, continuation, { table }, { folds, seed });
      const verified = new Map<string, string>();
      const sets = await readCheckpointSets(job, buffer, verified, (chunk) => counter.add(chunk));
      return { sets, verified: [...verified], extra: counter.histograms() };
    };
  },
  (r) => r.sets ? [r.sets.scored.bounds.buffer, r.sets.memorized.buffer] as ArrayBuffer[] : [],
);
