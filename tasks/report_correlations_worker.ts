/**
 * The thread of tasks/report_correlations.ts (served by engine/os/threads.ts
 * `serveThread`): for each group of runs it is given, opens their shards
 * (engine/store/stored_checkpoints.ts `shardSource`) and answers with their
 * score correlation matrix (reports/analysis/figures.ts `correlationMatrix`).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { shardSource } from "../engine/store/stored_checkpoints.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import { serveThread } from "../engine/os/threads.ts";
import { correlationMatrix } from "../reports/analysis/figures.ts";
import type { Matrix } from "../reports/analysis/summary.ts";
import type { RunRef } from "./report_correlations.ts";

function runOf(r: RunRef): ScoredCheckpoint {
  const { shards, ...sets } = r;
  return shards
    ? { ...sets, source: shardSource(shards.paths, shards.key, new Map(shards.verified)) }
    : sets;
}

serveThread<null, RunRef[], Matrix>(() => (runs) =>
  Promise.resolve(correlationMatrix(runs.map(runOf)))
);
