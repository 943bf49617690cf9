/**
 * Shard groups: the split of an experiment's jobs that lets any scheduler run
 * it in pieces. `--shard-group I/N` runs group I of N (tasks/score.ts uses
 * {@link jobsForGroup}, THE definition of a group), every piece writes into the
 * same result store, and the report is rendered once every shard is in
 * ({@link assertComplete}). Slurm submission is in engine/cluster/slurm.ts; Kubernetes
 * and plain ssh loops are in docs/cluster.md.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { isUserError, UserError } from "../errors.ts";
import { openRun, readExperimentSnapshot, type RunFolder } from "../plan/run_folder.ts";
import type { Job } from "../types.ts";

/**
 * Splits jobs into `count` groups of similar estimated cost (`job.flops`).
 * Groups are contiguous runs of the given order (the plan's: largest model
 * first, latest step first, then shard), so a task loads few checkpoints. The
 * cut points fall where the running cost crosses k/count of the total, so
 * every group's cost is within one job's cost of the mean, and no group is
 * empty while count ≤ jobs.
 * Pure and deterministic: the submitting side and every task agree on it.
 */
export function shardGroups(jobs: readonly Job[], count: number): Job[][] {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`shard group count must be a positive integer, got ${count}`);
  }
  const groups: Job[][] = Array.from({ length: count }, () => []);
  const n = jobs.length;
  if (n === 0) return groups;
  // Zero or non-finite costs count as 1 so the split still spreads them.
  const cost = jobs.map((j) => (Number.isFinite(j.flops) && j.flops > 0 ? j.flops : 1));
  const total = cost.reduce((a, b) => a + b, 0);
  let before = 0;
  let prev = -1;
  for (let j = 0; j < n; j++) {
    const mid = Math.floor((count * (before + cost[j] / 2)) / total);
    // Never skip a group (at most one step up) and leave enough jobs for the rest.
    const lo = Math.max(prev, count - (n - j));
    const hi = Math.min(prev + 1, count - 1);
    const g = Math.min(Math.max(mid, lo), hi);
    groups[g].push(jobs[j]);
    before += cost[j];
    prev = g;
  }
  return groups;
}

/** The jobs of shard group `index` (0-based) of `count`: what `--shard-group index/count` runs. */
export function jobsForGroup(plan: { jobs: readonly Job[] }, index: number, count: number): Job[] {
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`shard group index must be in 0..${count - 1}, got ${index}`);
  }
  return shardGroups(plan.jobs, count)[index];
}

/**
 * Parses `I/N` (0-based I < N) as given to `--shard-group`; throws a
 * UserError naming the flag otherwise.
 */
export function parseShardGroup(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UserError(
      `--shard-group ${text}: expected I/N with 0 ≤ I < N, e.g. --shard-group 3/8 ` +
        `(the 4th of 8 groups; Slurm: $SLURM_ARRAY_TASK_ID/N, Kubernetes: $JOB_COMPLETION_INDEX/N)`,
    );
  }
  return { index, count };
}

/** `0-3,5,7-9` from ascending indices (the syntax of sbatch `--array`). */
export function arraySpec(indices: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < indices.length;) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}-${indices[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * Lists the missing shards compactly, one line per checkpoint:
 * `nano-s1 step143: shards 3, 5-7 (4 of 8 missing)`.
 */
export function formatMissing(missing: readonly Job[], plan: { jobs: readonly Job[] }): string {
  const key = (j: Job) => `${j.model} step${j.step}`;
  const totals = new Map<string, number>();
  for (const j of plan.jobs) totals.set(key(j), (totals.get(key(j)) ?? 0) + 1);
  const byCheckpoint = new Map<string, number[]>();
  for (const j of missing) {
    const list = byCheckpoint.get(key(j)) ?? [];
    list.push(j.shard);
    byCheckpoint.set(key(j), list);
  }
  return [...byCheckpoint].map(([k, shards]) => {
    const spec = arraySpec([...shards].sort((a, b) => a - b)).replaceAll(",", ", ");
    return `${k}: shard${shards.length > 1 ? "s" : ""} ${spec} (${shards.length} of ${
      totals.get(k) ?? shards.length
    } missing)`;
  }).join("\n");
}

/**
 * Checks that every shard of the run folder's experiment (its
 * `experiment.json` snapshot) is stored and returns the opened folder; throws
 * a UserError listing the missing shards and how to finish them otherwise, or
 * saying why completeness cannot be checked (no snapshot, unreadable data).
 * An imported run folder (`import.json`) has no shards to expect: null.
 * `deno task report` calls this before rendering, so a cluster run is
 * reported only once complete.
 */
export async function assertComplete(runDir: string): Promise<RunFolder | null> {
  if (existsSync(join(runDir, "import.json"))) return null; // imported scores: no shards to expect
  const experiment = await readExperimentSnapshot(runDir);
  let folder: RunFolder;
  try {
    folder = await openRun(runDir, { experiment });
  } catch (e) {
    if (!isUserError(e)) throw e;
    throw new UserError(
      `${runDir}: cannot check that every shard is stored: ${e.message} ` +
        "Make the data readable here, or render what is stored with --partial.",
    );
  }
  const { missing, plan } = folder;
  if (missing.length === 0) return folder;
  throw new UserError(
    `${runDir}: ${missing.length} of ${plan.jobs.length} shards are missing, so the report ` +
      `would be partial:\n${formatMissing(missing, plan)}\n` +
      `Score them with \`deno task experiment ${experiment.file} --output ${runDir}\` ` +
      `(or the same --slurm command again: only missing shards run), then rerun ` +
      `\`deno task report ${runDir}\`. Use --partial to render what is there.`,
  );
}
