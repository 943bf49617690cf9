/**
 * The plan of an experiment: jobs = model × checkpoint × shard with the rows
 * each scores, estimated FLOPs for scoring and for training each predictor,
 * and what is already finished (resume state). Pure: `--dry-run` prints it
 * without touching a model file.
 *
 * Shard k of the experiment holds selection rows [k · shard_size,
 * (k+1) · shard_size); a checkpoint's job for shard k holds the rows of that
 * shard it has seen (jobs without rows are omitted).
 *
 * @module
 */
import { LIMITS } from "../config/schema.ts";
import { checkpointRows, selectRows } from "../data/rows.ts";
import { UserError } from "../errors.ts";
import type { Experiment, Job, ModelSpec } from "../types.ts";

/** Rows scored by one checkpoint. */
export interface CheckpointRows {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** Rows it scores. */
  rows: number;
}

/** Training compute of one checkpoint (a predictor): C = 6 · N · D. */
export interface TrainingFlops {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** Training FLOPs 6 · N · D. */
  flops: number;
}

/** Everything `--dry-run` shows and the pool runs. */
export interface Plan {
  /** Jobs: models largest first, each model's checkpoints contiguous (last step first), shards ascending. */
  jobs: Job[];
  /** Shards of the row selection. */
  shards: number;
  /** Rows per checkpoint, in suite order. */
  rowsPerCheckpoint: CheckpointRows[];
  /** Estimated scoring FLOPs of all jobs. */
  scoringFlops: number;
  /** Training compute per checkpoint, in suite order. */
  trainingFlops: TrainingFlops[];
  /** Rows of the data file (or the assumed count). */
  totalRows: number;
  /** Rows selected for scoring. */
  selectedRows: number;
  /** Ids of jobs already finished (from `done`). */
  finished: string[];
  /** Estimated scoring FLOPs of the jobs not finished. */
  pendingFlops: number;
  /** The experiment's name, mode and settings shown by {@link formatPlan}. */
  experiment: Pick<Experiment, "name" | "shardSize" | "batchSize" | "target"> & {
    mode: "extractable" | "full";
    tokensPerRow: number;
    devices: number;
    /** `devices: auto`: the slots are chosen by a trial when scoring starts. */
    devicesAuto?: boolean;
  };
}

/** Options of {@link makePlan}. */
export interface PlanOptions {
  /** Ids of finished jobs (from the store). */
  done?: ReadonlySet<string>;
  /** A precomputed selection (default: {@link selectRows}). */
  selection?: Uint32Array;
}

/** Job id: `${model}/step${step}/shard${k padded to 5}`. */
export function jobId(model: string, step: number, shard: number): string {
  return `${model}/step${step}/shard${String(shard).padStart(5, "0")}`;
}

/** Scoring FLOPs per row: 2·N·(k+l) for extractable; full adds up to l generated tokens. */
export function scoringFlopsPerRow(exp: Experiment, parameters: number): number {
  const { context, continuation, mode } = exp.memorization;
  const tokens = context + continuation + (mode === "full" ? continuation : 0);
  return 2 * parameters * tokens;
}

/** Training compute 6·N·D of a checkpoint, N per `analysis.parameter_count`. */
export function trainingFlops(exp: Experiment, model: ModelSpec, step: number): number {
  const n = exp.analysis.parameterCount === "non-embedding"
    ? model.nonEmbeddingParameters ?? model.parameters
    : model.parameters;
  return 6 * n * step * exp.suite.sequencesPerStep * exp.suite.tokensPerSequence;
}

/** Builds the plan of an experiment over a data file of `totalRows` rows. */
export function makePlan(exp: Experiment, totalRows: number, opts: PlanOptions = {}): Plan {
  const selection = opts.selection ?? selectRows(exp, totalRows);
  const size = exp.shardSize;
  const shards = Math.ceil(selection.length / size);
  const sps = exp.suite.sequencesPerStep;
  const rowsPerCheckpoint: CheckpointRows[] = [];
  const training: TrainingFlops[] = [];
  for (const m of exp.suite.models) {
    for (const c of m.checkpoints) {
      rowsPerCheckpoint.push({
        model: m.name,
        step: c.step,
        rows: checkpointRows(selection, m, c.step, sps).length,
      });
      training.push({ model: m.name, step: c.step, flops: trainingFlops(exp, m, c.step) });
    }
  }
  checkJobCount(exp, rowsPerCheckpoint);
  const order = exp.suite.models.map((m, i) => ({ m, i }))
    .sort((a, b) => b.m.parameters - a.m.parameters || a.i - b.i);
  const jobs: Job[] = [];
  for (const { m } of order) {
    const perRow = scoringFlopsPerRow(exp, m.parameters);
    for (const c of [...m.checkpoints].reverse()) {
      const seen = checkpointRows(selection, m, c.step, sps).length;
      for (let k = 0; k * size < seen; k++) {
        const rows = selection.subarray(k * size, Math.min((k + 1) * size, seen));
        jobs.push({
          id: jobId(m.name, c.step, k),
          model: m.name,
          step: c.step,
          path: c.path,
          shard: k,
          rows,
          flops: perRow * rows.length,
        });
      }
    }
  }
  return markFinished({
    jobs,
    shards,
    rowsPerCheckpoint,
    scoringFlops: jobs.reduce((a, j) => a + j.flops, 0),
    trainingFlops: training,
    totalRows,
    selectedRows: selection.length,
    finished: [],
    pendingFlops: 0,
    experiment: {
      name: exp.name,
      shardSize: exp.shardSize,
      batchSize: exp.batchSize,
      target: exp.target,
      mode: exp.memorization.mode,
      tokensPerRow: exp.memorization.context + exp.memorization.continuation,
      devices: exp.devices.length,
      ...(exp.devicesAuto ? { devicesAuto: true } : {}),
    },
  }, opts.done ?? new Set());
}

/** The plan with the jobs in `done` finished (resume state): `finished` and `pendingFlops`. */
export function markFinished(plan: Plan, done: ReadonlySet<string>): Plan {
  return {
    ...plan,
    finished: plan.jobs.filter((j) => done.has(j.id)).map((j) => j.id),
    pendingFlops: plan.jobs.reduce((a, j) => a + (done.has(j.id) ? 0 : j.flops), 0),
  };
}

/** Refuses a plan of more than {@link LIMITS.jobs} jobs before any job is made. */
function checkJobCount(exp: Experiment, perCheckpoint: readonly CheckpointRows[]): void {
  const jobs = perCheckpoint.reduce((a, c) => a + Math.ceil(c.rows / exp.shardSize), 0);
  if (jobs <= LIMITS.jobs) return;
  const rows = perCheckpoint.reduce((a, c) => a + c.rows, 0);
  throw new UserError(
    `${exp.locations?.["shard_size"] ?? exp.file}: shard_size ${exp.shardSize} makes ` +
      `${jobs} jobs (checkpoints × shards), more than the ${LIMITS.jobs} allowed: choose ` +
      `shard_size ≥ ${Math.ceil(rows / (LIMITS.jobs - perCheckpoint.length))} (the default is ` +
      `65536).`,
  );
}

/** FLOPs in human units: `1.23 PFLOP`. */
export function formatFlops(flops: number): string {
  const units = ["FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP", "ZFLOP", "YFLOP"];
  let u = 0;
  let v = flops;
  while (Math.abs(v) >= 1000 && u < units.length - 1) [v, u] = [v / 1000, u + 1];
  return `${v >= 100 || u === 0 ? v.toFixed(0) : v.toPrecision(3)} ${units[u]}`;
}

/** Integer with thousands separators: `1,234,567`. */
export function formatCount(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** The plan as text for `--dry-run`; `notes` are printed first (e.g. a missing data file). */
export function formatPlan(plan: Plan, notes: readonly string[] = []): string {
  const e = plan.experiment;
  const lines: string[] = [...notes.map((n) => `note: ${n}`)];
  const checkpoints = plan.rowsPerCheckpoint.length;
  const models = new Set(plan.rowsPerCheckpoint.map((c) => c.model)).size;
  const maxRows = plan.jobs.reduce((a, j) => Math.max(a, j.rows.length), 0);
  const minRows = plan.jobs.reduce((a, j) => Math.min(a, j.rows.length), Infinity);
  lines.push(
    `experiment ${e.name}: ${models} models, ${checkpoints} checkpoints; target ` +
      (e.target ? `${e.target.model} step ${e.target.step}` : "none (no trained target)"),
    `rows: ${formatCount(plan.selectedRows)} selected of ${formatCount(plan.totalRows)} in the ` +
      `data; ${plan.shards} shards of ≤ ${formatCount(e.shardSize)} rows; batch ${e.batchSize}; ` +
      (e.devicesAuto
        ? "device slots chosen by a trial when scoring starts (devices: auto)"
        : `${e.devices} device slots`),
    `jobs: ${formatCount(plan.jobs.length)} (model × step × shard), ` +
      (plan.jobs.length > 0
        ? `${formatCount(minRows)}–${formatCount(maxRows)} rows per job`
        : "none: no checkpoint has seen a selected row"),
    `scoring: ${formatFlops(plan.scoringFlops)} in total (mode ${e.mode}: ` +
      (e.mode === "full"
        ? `≈ 2·N·(k+2l) per row, an upper bound: free-running generation after a mismatch)`
        : `2·N·(k+l) per row, ${e.tokensPerRow} tokens)`),
    "",
    `${"model".padEnd(22)} ${"step".padStart(8)} ${"rows scored".padStart(13)} ` +
      `${"jobs".padStart(6)} ${"scoring".padStart(12)} ${"training 6ND".padStart(12)}`,
  );
  for (const c of checkpointLines(plan)) {
    lines.push(
      `${c.model.padEnd(22)} ${String(c.step).padStart(8)} ${formatCount(c.rows).padStart(13)} ` +
        `${formatCount(c.jobs).padStart(6)} ${formatFlops(c.scoringFlops).padStart(12)} ` +
        `${formatFlops(c.trainingFlops).padStart(12)}${c.target ? " (target)" : ""}`,
    );
  }
  const pending = plan.jobs.length - plan.finished.length;
  lines.push(
    "",
    plan.finished.length === 0
      ? `resume: nothing finished yet; ${formatCount(pending)} jobs to run`
      : `resume: ${formatCount(plan.finished.length)} of ${formatCount(plan.jobs.length)} jobs ` +
        `finished; ${formatCount(pending)} to run (${formatFlops(plan.pendingFlops)})`,
  );
  return lines.join("\n");
}

/** One checkpoint's line of the plan: rows, jobs, scoring and training FLOPs. */
export interface CheckpointLine {
  model: string;
  step: number;
  rows: number;
  jobs: number;
  scoringFlops: number;
  trainingFlops: number;
  /** The experiment's target checkpoint. */
  target: boolean;
}

/** The plan per checkpoint, in suite order (the table `--dry-run` prints). */
export function checkpointLines(plan: Plan): CheckpointLine[] {
  const e = plan.experiment;
  const jobsOf = new Map<string, { n: number; flops: number }>();
  for (const j of plan.jobs) {
    const key = `${j.model}/${j.step}`;
    const acc = jobsOf.get(key) ?? { n: 0, flops: 0 };
    jobsOf.set(key, { n: acc.n + 1, flops: acc.flops + j.flops });
  }
  return plan.rowsPerCheckpoint.map((c, i) => {
    const j = jobsOf.get(`${c.model}/${c.step}`) ?? { n: 0, flops: 0 };
    return {
      model: c.model,
      step: c.step,
      rows: c.rows,
      jobs: j.n,
      scoringFlops: j.flops,
      trainingFlops: plan.trainingFlops[i].flops,
      target: c.model === e.target?.model && c.step === e.target?.step,
    };
  });
}

/** The plan as plain JSON data for `--dry-run --json`: everything but the row lists. */
export function planJson(plan: Plan, notes: readonly string[] = []): Record<string, unknown> {
  return {
    notes: [...notes],
    experiment: plan.experiment,
    totalRows: plan.totalRows,
    selectedRows: plan.selectedRows,
    shards: plan.shards,
    jobs: plan.jobs.length,
    finished: plan.finished.length,
    pending: plan.jobs.length - plan.finished.length,
    scoringFlops: plan.scoringFlops,
    pendingFlops: plan.pendingFlops,
    checkpoints: checkpointLines(plan),
  };
}
