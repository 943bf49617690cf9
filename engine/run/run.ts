/**
 * Runs an experiment: plan → pool → store, then the report step. Finished
 * shards are skipped, so rerunning the same command resumes an interrupted or
 * crashed run. Ctrl-C stops handing out jobs, writes what is in flight (or drops
 * it after a grace period), says how to resume and exits with status 130; a
 * second Ctrl-C exits at once.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { jobsForGroup } from "../cluster/cluster.ts";
import { dataFacts } from "../data/datasets.ts";
import { formatPlan, makePlan } from "./plan.ts";
import { runPool, type WorkerTask } from "./pool.ts";
import { type ProgressOptions, startProgress } from "./progress.ts";
import {
  appendJsonLine,
  makeManifest,
  missingShards,
  openStore,
  writeAtomic,
  writeJson,
} from "../store/store.ts";
import { duplicateWeights, modelFingerprints } from "../store/fingerprint.ts";
import type { Experiment, Job } from "../types.ts";

/** Options of one `experiment` invocation. */
export interface RunOptions {
  /** Only print the plan. */
  dryRun: boolean;
  /** Restrict to shard group I of N (0-based I), e.g. for Slurm array tasks. */
  shardGroup?: { index: number; count: number };
  /** Skip the report step after scoring. */
  noReport?: boolean;
  /** Stops the run like Ctrl-C does, but returns `interrupted` instead of exiting (tests, embedding). */
  signal?: AbortSignal;
  /** Install the Ctrl-C handler (default true). */
  handleSignals?: boolean;
  /** Progress display options, or false for none. */
  progress?: ProgressOptions | false;
  /** Where messages go (default: stderr). */
  log?: (line: string) => void;
  /** Fault-injection testing hook (default: the `MEMO_FAULT` environment variable). */
  fault?: string;
  /** Worker module (tests only; default engine/run/worker.ts). */
  workerUrl?: string | URL;
}

/** What a run did. */
export interface RunOutcome {
  /** Jobs scored in this invocation. */
  scored: number;
  /** Jobs already in the store. */
  skipped: number;
  /** Path of the rendered report, when the report step ran. */
  report?: string;
  /** True when the run stopped before every job was scored. */
  interrupted?: boolean;
  /** Rows scored in this invocation and the seconds it took. */
  rows?: number;
  seconds?: number;
}

/** The worker's task for one job of the experiment (what the pool ships to a worker thread). */
export function workerTask(
  exp: Experiment,
  job: Job,
): Omit<WorkerTask, "attempt" | "fault" | "faultTimes"> {
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

/** Scores every pending job of the experiment and renders the report. */
export async function runExperiment(exp: Experiment, opts: RunOptions): Promise<RunOutcome> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const { rows: totalRows, fingerprint: dataFingerprint } = await dataFacts(exp.data);
  const plan = makePlan(exp, totalRows);
  if (opts.dryRun) {
    const missing = new Set((await missingShards(exp.output, plan)).map((j) => j.id));
    const done = new Set(plan.jobs.filter((j) => !missing.has(j.id)).map((j) => j.id));
    console.log(formatPlan(makePlan(exp, totalRows, { done })));
    return { scored: 0, skipped: done.size };
  }
  const group = opts.shardGroup;
  const jobs = group ? jobsForGroup(plan, group.index, group.count) : plan.jobs;

  // Every checkpoint of the plan, not only this group's: concurrent shard groups
  // then write identical manifests (no lost records when they race).
  const runDir = exp.output;
  const fingerprints = await modelFingerprints(plan.jobs.map((j) => j.path), {
    cache: join(runDir, "fingerprints.json"),
    log,
  });
  const store = openStore(runDir, { onNotice: log });
  const manifest = makeManifest(exp, dataFingerprint, fingerprints);
  for (const notice of await store.prepare(manifest)) log(notice);
  for (const warning of duplicateWeights(manifest.checkpoints)) log(`warning: ${warning}`);
  await writeJson(join(runDir, "experiment.json"), exp);
  await writeAtomic(join(runDir, "experiment.yaml"), await readFile(exp.file).catch(() => ""));

  const pending: Job[] = [];
  for (const job of jobs) if (!(await store.isDone(job))) pending.push(job);
  const skipped = jobs.length - pending.length;
  const pendingRows = pending.reduce((a, j) => a + j.rows.length, 0);
  log(
    `${exp.name}: ${jobs.length} shards (${skipped} already done), ` +
      `scoring ${pending.length} (${pendingRows} rows) on ${exp.devices.length} worker(s) → ${runDir}`,
  );

  const outcome = await scorePending(exp, pending, store, opts, log);
  const result: RunOutcome = { skipped, ...outcome };
  if (outcome.interrupted || opts.noReport) return result;
  return { ...result, report: await reportStep(runDir, log) };
}

async function scorePending(
  exp: Experiment,
  pending: Job[],
  store: ReturnType<typeof openStore>,
  opts: RunOptions,
  log: (line: string) => void,
): Promise<{ scored: number; interrupted: boolean; rows: number; seconds: number }> {
  const started = new Date();
  const t0 = performance.now();
  const controller = new AbortController();
  opts.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  let bySignal = false;
  const say = (m: string) => display ? display.note(m) : log(m);
  const onSigint = () => {
    if (controller.signal.aborted) {
      display?.stop();
      log("Interrupted twice: exiting now; shards in flight are lost, finished ones are kept.");
      Deno.exit(130);
    }
    bySignal = true;
    say("Stopping: finishing the shards in flight (Ctrl-C again to quit at once)…");
    controller.abort();
  };
  const handle = opts.handleSignals !== false && pending.length > 0;
  if (handle) Deno.addSignalListener("SIGINT", onSigint);

  const totalRows = pending.reduce((a, j) => a + j.rows.length, 0);
  let jobsDone = 0;
  let rowsDone = 0;
  const run = runPool({
    slots: exp.devices,
    jobs: pending,
    workerUrl: opts.workerUrl,
    fault: opts.fault ?? Deno.env.get("MEMO_FAULT"),
    signal: controller.signal,
    task: (job) => workerTask(exp, job),
    onResult: async (job, scores) => {
      await store.writeShard(job, scores);
      jobsDone++;
      rowsDone += job.rows.length;
    },
    onNotice: say,
  });
  const display = opts.progress === false || pending.length === 0 ? null : startProgress(() => ({
    totalRows,
    doneRows: run.rowsDone(),
    jobsTotal: pending.length,
    jobsDone,
    elapsed: (performance.now() - t0) / 1000,
    slots: run.status(),
  }), opts.progress);

  let interrupted = false;
  let dropped = 0;
  try {
    const outcome = await run.done;
    interrupted = outcome.interrupted;
    dropped = outcome.dropped.length;
  } catch (e) {
    display?.stop();
    log(
      `Stopped: ${jobsDone} shards finished in this run are kept; rerun the same command to resume.`,
    );
    throw e;
  } finally {
    display?.stop();
    if (handle) Deno.removeSignalListener("SIGINT", onSigint);
  }
  const seconds = (performance.now() - t0) / 1000;
  if (pending.length > 0) {
    await appendJsonLine(join(exp.output, "runs.jsonl"), {
      started: started.toISOString(),
      seconds: round(seconds),
      rows: rowsDone,
      rowsPerSecond: round(rowsDone / Math.max(seconds, 1e-9)),
      shards: jobsDone,
      devices: exp.devices,
      ...(interrupted ? { interrupted } : {}),
    });
  }
  if (interrupted) {
    log(
      `Interrupted: ${jobsDone} of ${pending.length} remaining shards done` +
        (dropped > 0 ? ` (${dropped} in flight dropped)` : "") +
        "; rerun the same command to resume.",
    );
    if (bySignal) Deno.exit(130);
  } else if (pending.length > 0) {
    log(
      `Scored ${jobsDone} shards (${rowsDone} rows) in ${seconds.toFixed(1)}s ` +
        `(${(rowsDone / seconds).toFixed(0)} rows/s).`,
    );
  }
  return { scored: jobsDone, interrupted, rows: rowsDone, seconds };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Renders the report if the report module is implemented; returns its path. */
async function reportStep(
  runDir: string,
  log: (line: string) => void,
): Promise<string | undefined> {
  const { renderReport } = await import("../../reports/page/render.ts");
  try {
    const rendered = await renderReport(runDir);
    log(`Report: ${rendered.html}`);
    return rendered.html;
  } catch (e) {
    if (e instanceof Error && /not implemented/.test(e.message)) {
      log(
        `Report step skipped: the report renderer is not implemented yet (scores are in ${runDir}).`,
      );
      return undefined;
    }
    log(`The report step failed; the scores are kept. Rerun it with: deno task report ${runDir}`);
    throw e;
  }
}
