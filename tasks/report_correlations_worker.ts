/**
 * The thread of tasks/report_correlations.ts: opens each run's shards
 * (engine/store/stored_checkpoints.ts `shardSource`), computes the score
 * correlation matrices (reports/analysis/figures.ts `correlationMatrix`),
 * posts one message per matrix done, then the matrices. It says it is ready
 * (`{ ready: true }`) once it listens: the job is sent after.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { shardSource } from "../engine/store/stored_checkpoints.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import { isUserError } from "../engine/errors.ts";
import { correlationMatrix } from "../reports/analysis/figures.ts";
import type { CorrelationJob, CorrelationReply, RunRef } from "./report_correlations.ts";

function runOf(r: RunRef): ScoredCheckpoint {
  const { shards, ...sets } = r;
  return shards
    ? { ...sets, source: shardSource(shards.paths, shards.key, new Map(shards.verified)) }
    : sets;
}

function post(reply: CorrelationReply): void {
  self.postMessage(reply);
}

self.onmessage = (e: MessageEvent<CorrelationJob>) => {
  try {
    const job = e.data;
    const models = correlationMatrix(job.models.map(runOf));
    post({ matrix: 1 });
    const checkpoints = job.checkpoints.map((g) => {
      const m = { model: g.model, ...correlationMatrix(g.runs.map(runOf)) };
      post({ matrix: 1 });
      return m;
    });
    post({ result: { models, checkpoints } });
  } catch (err) {
    post({
      error: { message: err instanceof Error ? err.message : String(err), user: isUserError(err) },
    });
  }
};
// Ready only now: a message sent while the modules above were still evaluating (one has a
// top-level await) would have found no handler.
post({ ready: true });
