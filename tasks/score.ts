/**
 * Scores an experiment: plan → pool → store. Finished shards are
 * skipped, so running it again resumes an interrupted or crashed run. The run
 * holds the run folder's lock throughout (engine/os/lock.ts: exclusive, or
 * shared among the shard groups of one split). When `signal` aborts (main.ts
 * aborts it on SIGINT, SIGTERM, SIGHUP or the end of the `deno task` parent),
 * no more jobs are handed out, the jobs in flight are written (or dropped after
 * a grace period), the stop is recorded in `runs.jsonl` and the outcome says
 * `interrupted`. A library function: it neither exits the process nor renders
 * the report (main.ts composes score → analyse → render).
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { jobsForGroup } from "../engine/cluster/cluster.ts";
import { type PoolOutcome, runPool, type WorkerTask } from "../engine/run/pool.ts";
import { autoDevices } from "../engine/run/devices.ts";
import {
  type ProgressDisplay,
  type ProgressOptions,
  startProgress,
} from "../engine/run/progress.ts";
import { currentManifest, type OpenedRun, planRun } from "../engine/plan/run_folder.ts";
import { appendJsonLine, openStore, writeAtomic, writeJson } from "../engine/store/store.ts";
import { duplicateWeights } from "../engine/model/fingerprint.ts";
import { claimRunFolder, type RunLock, withFolderLock } from "../engine/os/lock.ts";
import { describeStop, type StopRequest } from "../engine/os/stop_signals.ts";
import type { Experiment, Job } from "../engine/types.ts";
import { ifNotFound } from "../engine/os/fs_errors.ts";

/** Options of one scoring run. */
export interface RunOptions {
  /** Restrict to shard group I of N (0-based I), e.g. for Slurm array tasks. */
  shardGroup?: { index: number; count: number };
  /**
   * Stops the run: no new jobs, jobs in flight are finished or dropped; the
   * outcome is `interrupted`. A {@link StopRequest} as the reason is named in
   * the notices and recorded in `runs.jsonl` (`stopped`); a string reason is
   * shown in the stop notice.
   */
  signal?: AbortSignal;
  /** Wait for another writer of the run folder to finish instead of refusing (`--wait`). */
  wait?: boolean;
  /** The caller holds the run folder's lock ({@link lockForScoring}), e.g. to render under it too. */
  holdsLock?: boolean;
  /** Progress display options, or false for none. */
  progress?: ProgressOptions | false;
  /** Where messages go (default: stderr). */
  log?: (line: string) => void;
  /** Worker module (default engine/run/worker.ts): the seam where tests wrap the real worker. */
  workerUrl?: string | URL;
  /** Options for that worker module (`workerData.options`). */
  workerOptions?: unknown;
}

/** What a scoring run did. */
export interface RunOutcome {
  /** Jobs scored in this invocation. */
  scored: number;
  /** Jobs already in the store. */
  skipped: number;
  /** True when the run stopped before every job was scored. */
  interrupted: boolean;
  /** Rows scored in this invocation. */
  rows: number;
  /** Seconds the scoring took. */
  seconds: number;
  /** The run folder. */
  runDir: string;
  /**
   * The run folder as this run left it, for the report task (absent when the
   * run stopped before scoring). A shard group leaves the manifest out: other
   * groups may update it meanwhile.
   */
  run?: OpenedRun;
}

/** The worker's task for one job of the experiment (what the pool ships to a worker thread). */
export function workerTask(
  exp: Experiment,
  job: Job,
): Omit<WorkerTask, "attempt"> {
  return {
    id: job.id,
    path: job.path,
    data: exp.data,
    rows: job.rows,
    memorization: exp.memorization,
    batchSize: exp.batchSize,
    vocabSize: exp.suite.models.find((m) => m.name === job.model)?.vocabSize,
  };
}

/** Scores every pending job of the experiment (of its shard group) into its run folder. */
export async function runExperiment(exp: Experiment, opts: RunOptions = {}): Promise<RunOutcome> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const runDir = exp.output;
  const planned = await planRun(exp, { fingerprint: true });
  const plan = planned.plan;
  const group = opts.shardGroup;
  const jobs = group ? jobsForGroup(plan, group.index, group.count) : plan.jobs;
  if (opts.holdsLock) return await scoreJobs(exp, planned, jobs, opts, log);
  const lock = await lockForScoring(exp, opts);
  if (!lock) return { scored: 0, skipped: 0, interrupted: true, rows: 0, seconds: 0, runDir };
  try {
    return await scoreJobs(exp, planned, jobs, opts, log);
  } finally {
    await lock.release();
  }
}

/**
 * Takes the run folder for scoring: its exclusive lock, or with `shardGroup`
 * the lock shared by the groups of that split (refusing, or with `wait`
 * waiting, while another process holds it), and removes what killed runs left.
 * Returns null when `signal` stopped the wait.
 */
export async function lockForScoring(exp: Experiment, opts: RunOptions): Promise<RunLock | null> {
  const log = opts.log ?? ((line: string) => console.error(line));
  try {
    return await claimRunFolder(exp.output, {
      purpose: "scoring",
      ...(opts.shardGroup ? { group: opts.shardGroup } : {}),
      wait: opts.wait === true,
      log,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if (!opts.signal?.aborted) throw e;
    log("Stopped while waiting for the run folder; nothing was scored.");
    return null;
  }
}

async function scoreJobs(
  exp: Experiment,
  planned: Awaited<ReturnType<typeof planRun>>,
  jobs: Job[],
  opts: RunOptions,
  log: (line: string) => void,
): Promise<RunOutcome> {
  const runDir = exp.output;
  const store = openStore(runDir, { onNotice: log });
  // A group hashes only its own checkpoints; groups update the manifest one at a time.
  const manifest = await currentManifest(planned, log, opts.shardGroup ? jobs : undefined);
  const moved = await withFolderLock(runDir, "manifest", () => store.prepare(manifest), log);
  for (const notice of moved) log(notice);
  for (const warning of duplicateWeights(manifest.checkpoints)) log(`warning: ${warning}`);
  for (const note of planned.notes) log(`note: ${note}`);

  // Judged by the prepared (writable) store: a corrupt shard is moved aside and rescored.
  const pending: Job[] = [];
  for (const job of jobs) if (!(await store.isDone(job))) pending.push(job);
  if (exp.devicesAuto && pending.length > 0) {
    exp = { ...exp, devices: await autoDevices(exp, pending, (job) => workerTask(exp, job), log) };
  }
  await writeJson(join(runDir, "experiment.json"), exp);
  await writeAtomic(
    join(runDir, "experiment.yaml"),
    await readFile(exp.file).catch(ifNotFound(new Uint8Array())),
  );
  const skipped = jobs.length - pending.length;
  const pendingRows = pending.reduce((a, j) => a + j.rows.length, 0);
  log(
    `${exp.name}: ${jobs.length} shards (${skipped} already done), ` +
      `scoring ${pending.length} (${pendingRows} rows) on ${exp.devices.length} worker(s) → ${runDir}`,
  );
  const scored = await scorePending(exp, pending, store, opts, log);
  const run: OpenedRun = {
    experiment: exp,
    plan: planned.plan,
    ...(opts.shardGroup ? {} : { manifest: store.manifest }),
  };
  return { skipped, runDir, run, ...scored };
}

/** What {@link scorePending} did. */
interface Scored {
  scored: number;
  interrupted: boolean;
  rows: number;
  seconds: number;
}

async function scorePending(
  exp: Experiment,
  pending: Job[],
  store: ReturnType<typeof openStore>,
  opts: RunOptions,
  log: (line: string) => void,
): Promise<Scored> {
  const started = new Date();
  const t0 = performance.now();
  const controller = new AbortController();
  let display: ProgressDisplay | null = null;
  const say = (m: string) => display ? display.note(m) : log(m);
  const stopWatch = watchStop(opts.signal, controller, say);
  const totalRows = pending.reduce((a, j) => a + j.rows.length, 0);
  let jobsDone = 0;
  let rowsDone = 0;
  const run = runPool({
    slots: exp.devices,
    jobs: pending,
    workerUrl: opts.workerUrl,
    workerOptions: opts.workerOptions,
    signal: controller.signal,
    task: (job) => workerTask(exp, job),
    onResult: async (job, scores) => {
      await store.writeShard(job, scores);
      jobsDone++;
      rowsDone += job.rows.length;
    },
    onNotice: say,
  });
  display = opts.progress === false || pending.length === 0 ? null : startProgress(() => ({
    totalRows,
    doneRows: run.rowsDone(),
    jobsTotal: pending.length,
    jobsDone,
    elapsed: (performance.now() - t0) / 1000,
    slots: run.status(),
  }), opts.progress);

  let outcome: PoolOutcome;
  try {
    outcome = await run.done;
  } catch (e) {
    display?.stop();
    log(
      `Stopped: ${jobsDone} shards finished in this run are kept; rerun the same command to resume.`,
    );
    throw e;
  } finally {
    display?.stop();
    stopWatch.release();
  }
  const scored: Scored = {
    scored: jobsDone,
    interrupted: outcome.interrupted,
    rows: rowsDone,
    seconds: (performance.now() - t0) / 1000,
  };
  if (pending.length > 0) await recordRun(exp, started, scored, stopOf(opts.signal?.reason));
  logEnd(scored, pending.length, outcome.dropped.length, stopOf(opts.signal?.reason), log);
  return scored;
}

/**
 * Aborts `controller` (the pool's signal) when `signal` aborts, saying why
 * and that the shards in flight are being finished.
 */
function watchStop(
  signal: AbortSignal | undefined,
  controller: AbortController,
  say: (line: string) => void,
): { release(): void } {
  const onAbort = () => {
    const reason = signal?.reason;
    const why = stopOf(reason);
    say(
      `Stopping${why ? ` (${describeStop(why)})` : ""}: finishing the shards in flight` +
        (why ? " (stop again to quit at once)" : typeof reason === "string" ? ` (${reason})` : "") +
        "…",
    );
    controller.abort();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  return { release: () => signal?.removeEventListener("abort", onAbort) };
}

/** Appends the invocation's statistics to `runs.jsonl` (read by the report). */
async function recordRun(
  exp: Experiment,
  started: Date,
  { scored, interrupted, rows, seconds }: Scored,
  stop: StopRequest["reason"] | null,
): Promise<void> {
  await appendJsonLine(join(exp.output, "runs.jsonl"), {
    started: started.toISOString(),
    seconds: round(seconds),
    rows,
    rowsPerSecond: round(rows / Math.max(seconds, 1e-9)),
    shards: scored,
    devices: exp.devices,
    ...(interrupted ? { interrupted } : {}),
    ...(interrupted && stop ? { stopped: stop } : {}),
  });
}

/** The closing line: how far an interrupted run got, or what a finished one scored. */
function logEnd(
  { scored, interrupted, rows, seconds }: Scored,
  pending: number,
  dropped: number,
  stop: StopRequest["reason"] | null,
  log: (line: string) => void,
): void {
  if (interrupted) {
    log(
      `Interrupted${
        stop ? ` by ${stop === "parent" ? "the end of the parent process" : stop}` : ""
      }: ` +
        `${scored} of ${pending} remaining shards done` +
        (dropped > 0 ? ` (${dropped} in flight dropped)` : "") +
        "; rerun the same command to resume.",
    );
  } else if (pending > 0) {
    log(
      `Scored ${scored} shards (${rows} rows) in ${seconds.toFixed(1)}s ` +
        `(${(rows / seconds).toFixed(0)} rows/s).`,
    );
  }
}

/** The stop reason carried by an abort signal's reason (a {@link StopRequest} from main.ts), if any. */
function stopOf(reason: unknown): StopRequest["reason"] | null {
  const r = (reason as Partial<StopRequest> | undefined)?.reason;
  return r === "SIGINT" || r === "SIGTERM" || r === "SIGHUP" || r === "parent" ? r : null;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
