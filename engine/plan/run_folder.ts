/**
 * THE way to look at a run folder: its experiment, its manifest, the data's
 * row count, the plan and the shards still missing. `--dry-run`, the scoring
 * run, Slurm submission and the report all start here, so they agree on what a
 * run holds. Errors met on the way (a damaged manifest, unreadable data) are
 * thrown, never swallowed; the only tolerated absence is a data file under
 * `missingData: "assume"` (a dry run before the data is downloaded), and it is
 * reported in {@link RunFolder.notes}.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { dataFacts, megatronPaths, openTokenReader } from "../data/datasets.ts";
import { seenLimit } from "../data/rows.ts";
import { UserError } from "../errors.ts";
import { experimentSnapshotSchema } from "../config/snapshot.ts";
import { readJsonFile } from "../os/json_file.ts";
import { modelFingerprints } from "../model/fingerprint.ts";
import type { ScoredCheckpoint } from "../store/scored_checkpoint.ts";
import { countInRanges } from "../rowset.ts";
import { makeManifest, type Manifest, missingShards, readManifest } from "../store/store.ts";
import { checkpointKey, type DataSpec, type Experiment, type Job } from "../types.ts";
import { makePlan, markFinished, type Plan } from "./plan.ts";

/** An experiment's plan over its data, before any look at the run folder's store. */
export interface PlannedRun {
  /** The experiment. */
  experiment: Experiment;
  /** Rows of the data file (or, when {@link rowsAssumed}, the rows the checkpoints have seen). */
  totalRows: number;
  /** True when the data file was absent and `missingData: "assume"` was given. */
  rowsAssumed: boolean;
  /** The data's fingerprint, when `fingerprint: true` was given (what the manifest records). */
  dataFingerprint: string | null;
  /** The plan (with the stored jobs marked finished, in a {@link RunFolder}). */
  plan: Plan;
  /** What the caller should tell the user (assumed rows, a folder that does not exist yet). */
  notes: string[];
}

/** What a run folder holds for an experiment. */
export interface RunFolder extends PlannedRun {
  /** The run folder. */
  dir: string;
  /** The folder's manifest, or null when nothing was scored yet. */
  manifest: Manifest | null;
  /** Jobs of the plan whose shards are not stored (judged read-only, by the manifest on disk). */
  missing: Job[];
}

/**
 * A run folder as a task already holds it, handed on so the next task need
 * not read or plan it again (the scoring task to the report task). Only the
 * experiment is required; what is absent is read from the folder.
 */
export interface OpenedRun {
  /** The experiment, as the folder's `experiment.json` holds it. */
  experiment: Experiment;
  /** The plan over the data's rows (without it, a reader plans again, opening the data). */
  plan?: Plan;
  /** The folder's manifest (without it, `manifest.json` is read). */
  manifest?: Manifest | null;
  /** Jobs whose shards are not stored (without it, judged by the plan and the stored runs). */
  missing?: Job[];
}

/** Options of {@link planRun}. */
export interface PlanRunOptions {
  /**
   * When the data file does not exist: `fail` (default, a UserError naming
   * the file) or `assume` the rows the checkpoints have seen (dry run).
   */
  missingData?: "fail" | "assume";
  /** Also fingerprint the data (a scoring run needs it for the manifest). */
  fingerprint?: boolean;
}

/** Options of {@link openRun}. */
export interface OpenRunOptions extends PlanRunOptions {
  /** The experiment (default: the folder's `experiment.json` snapshot). */
  experiment?: Experiment;
  /** Where notices about corrupt shards go (default: stderr). */
  onNotice?: (message: string) => void;
}

/** Reads the data's row count (and fingerprint) and plans the experiment. */
export async function planRun(
  experiment: Experiment,
  opts: PlanRunOptions = {},
): Promise<PlannedRun> {
  const notes: string[] = [];
  let totalRows: number;
  let dataFingerprint: string | null = null;
  const file = dataFile(experiment.data);
  const rowsAssumed = opts.missingData === "assume" && !existsSync(file);
  if (rowsAssumed) {
    totalRows = seenLimit(experiment, Number.MAX_SAFE_INTEGER);
    notes.push(
      `data file ${file} is missing: assuming ${totalRows} rows (the rows the ` +
        `checkpoints have seen, max step × sequences_per_step); scoring needs the file`,
    );
  } else if (opts.fingerprint) {
    ({ rows: totalRows, fingerprint: dataFingerprint } = await dataFacts(experiment.data));
  } else {
    const reader = await openTokenReader(experiment.data);
    totalRows = reader.rows;
    await reader.close();
  }
  const seen = seenLimit(experiment, Number.MAX_SAFE_INTEGER);
  if (!rowsAssumed && experiment.rows.kind === "seen" && totalRows < seen) {
    notes.push(
      `${experiment.locations?.["rows"] ?? experiment.file}: rows: seen: the checkpoints have ` +
        `seen ${seen} rows (max step × sequences_per_step) but ${file} has ${totalRows}; ` +
        `scoring those ${totalRows}, so the later checkpoints score fewer rows than they were ` +
        `trained on (give the whole training data, or rows.range to say so)`,
    );
  }
  const plan = makePlan(experiment, totalRows);
  return { experiment, totalRows, rowsAssumed, dataFingerprint, plan, notes };
}

/** Opens a run folder (which need not exist yet): experiment, manifest, rows, plan, missing shards. */
export async function openRun(dir: string, opts: OpenRunOptions = {}): Promise<RunFolder> {
  const experiment = opts.experiment ?? await readExperimentSnapshot(dir);
  const planned = await planRun(experiment, opts);
  const all = planned.plan;
  let manifest: Manifest | null = null;
  let missing: Job[] = all.jobs;
  const notes = [...planned.notes];
  if (existsSync(dir) && statSync(dir).isDirectory()) {
    manifest = await readManifest(dir);
    if (manifest) {
      missing = await missingShards(dir, all, opts.onNotice ? { onNotice: opts.onNotice } : {});
    }
  } else notes.push(`run folder ${dir} does not exist yet`);
  const pending = new Set(missing.map((j) => j.id));
  const done = new Set(all.jobs.filter((j) => !pending.has(j.id)).map((j) => j.id));
  const plan = markFinished(all, done);
  return { ...planned, dir, manifest, plan, missing, notes };
}

/**
 * The manifest of the experiment as it is now: the data's fingerprint (plan
 * with `fingerprint: true`) and the fingerprints of the checkpoints of `jobs`
 * (default: the whole plan; a shard group passes its own, and the other
 * checkpoints are listed as unknown, keeping their stored records when
 * `Store.prepare` merges, which shard groups do one at a time). Model
 * fingerprints are cached in `<run>/fingerprints.json`, so array tasks need
 * not hash the models again.
 */
export async function currentManifest(
  run: PlannedRun,
  log: (line: string) => void = (line) => console.error(line),
  jobs: readonly Job[] = run.plan.jobs,
): Promise<Manifest> {
  if (run.dataFingerprint === null) {
    throw new Error("currentManifest: plan the run with fingerprint: true");
  }
  const fingerprints = await modelFingerprints(jobs.map((j) => j.path), {
    cache: join(run.experiment.output, "fingerprints.json"),
    log,
  });
  return makeManifest(run.experiment, run.dataFingerprint, fingerprints);
}

/**
 * Jobs whose rows are not all among the scored rows of the runs already read
 * from the store (the report's view: no second pass over the shards).
 */
export function missingInRuns(jobs: readonly Job[], runs: readonly ScoredCheckpoint[]): Job[] {
  const byRun = new Map(runs.map((s) => [checkpointKey(s.model, s.step), s.scored]));
  return jobs.filter((job) => {
    const scored = byRun.get(checkpointKey(job.model, job.step));
    if (!scored) return job.rows.length > 0;
    return countInRanges(job.rows, scored) !== job.rows.length;
  });
}

/**
 * Reads the experiment snapshot (`experiment.json`) a scoring run or an
 * import writes into its folder, bounded and validated against its schema
 * (engine/config/snapshot.ts): a damaged or edited snapshot is a UserError
 * naming the file and the field.
 */
export async function readExperimentSnapshot(dir: string): Promise<Experiment> {
  const path = join(dir, "experiment.json");
  const exp = await readJsonFile(path, {
    schema: experimentSnapshotSchema,
    maxBytes: SNAPSHOT_MAX_BYTES,
    damaged: (why) =>
      new UserError(
        `${path}: ${why}; the snapshot is damaged: rerun \`deno task experiment <file>\` ` +
          "(or the import) to rewrite it (stored scores are kept).",
      ),
  });
  if (exp === null) {
    throw new UserError(
      `${path}: not found. Give the run folder of a scored experiment ` +
        "(runs/<name>, made by `deno task experiment <file>`) or of an import " +
        "(made by `deno task import`).",
    );
  }
  return exp;
}

/** Largest `experiment.json` read (a suite of 100,000 checkpoints is ~20 MB). */
export const SNAPSHOT_MAX_BYTES = 64 << 20;

/** The file whose presence tells whether the data is there (a megatron dataset's `.idx`). */
function dataFile(spec: DataSpec): string {
  return spec.format === "megatron" ? megatronPaths(spec.path).idx : spec.path;
}
