/**
 * Runs an experiment: plan → pool → store, then the report step.
 * (Placeholder signature; the pool issue fills it in.)
 *
 * @module
 */
import type { Experiment } from "./types.ts";

/** Options of one `experiment` invocation. */
export interface RunOptions {
  /** Only print the plan. */
  dryRun: boolean;
  /** Restrict to shard group I of N (0-based I), e.g. for Slurm array tasks. */
  shardGroup?: { index: number; count: number };
  /** Skip the report step after scoring. */
  noReport?: boolean;
}

/** What a run did. */
export interface RunOutcome {
  /** Jobs scored in this invocation. */
  scored: number;
  /** Jobs already in the store. */
  skipped: number;
  /** Path of the rendered report, when the report step ran. */
  report?: string;
}

/** Scores every pending job of the experiment and renders the report. */
export function runExperiment(_exp: Experiment, _opts: RunOptions): Promise<RunOutcome> {
  return Promise.reject(new Error("runExperiment: not implemented yet"));
}
