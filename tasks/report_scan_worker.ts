/**
 * A reader thread of the report's pass over the store (tasks/report_scan.ts):
 * told the target's code table first, then given checkpoints one at a time,
 * it reads each one's shards (engine/store/stored_checkpoints.ts
 * `readCheckpointSets`), counts its histograms against the target on the way
 * and posts back the row sets, the histograms and the shards' verified
 * identities. Jobs are done in the order given, one after the other (they
 * share one shard buffer). It says it is ready (`{ ready: true }`) once it
 * listens: the pool sends nothing before.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type CheckpointJob, readCheckpointSets } from "../engine/store/stored_checkpoints.ts";
import { FileBuffer } from "../engine/store/shard_file.ts";
import { isUserError } from "../engine/errors.ts";
import { HistogramCounter } from "../reports/analysis/histograms.ts";
import type { ReaderInit, ReaderReply } from "./report_scan.ts";

let init: ReaderInit | null = null;
const buffer = new FileBuffer();
let queue: Promise<void> = Promise.resolve();

async function read(id: number, job: CheckpointJob): Promise<ReaderReply> {
  const { table, continuation, folds, seed, signals } = init!;
  const counter = new HistogramCounter(signals, continuation, { table }, { folds, seed });
  const verified = new Map<string, string>();
  try {
    const sets = await readCheckpointSets(job, buffer, verified, (chunk) => counter.add(chunk));
    return { id, result: { sets, verified: [...verified], extra: counter.histograms() } };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { id, error: { message, user: isUserError(e) } };
  }
}

self.onmessage = (e: MessageEvent<{ init: ReaderInit } | { id: number; job: CheckpointJob }>) => {
  const m = e.data;
  if ("init" in m) {
    init = m.init;
    return;
  }
  queue = queue.then(async () => {
    const reply = await read(m.id, m.job);
    const transfer = "result" in reply && reply.result.sets
      ? [reply.result.sets.scored.bounds.buffer, reply.result.sets.memorized.buffer]
      : [];
    self.postMessage(reply, { transfer: transfer as ArrayBuffer[] });
  });
};
// Ready only now: messages sent while the modules above were still evaluating (one has a
// top-level await) would have found no handler.
self.postMessage({ ready: true });
