/**
 * Device slots chosen by measurement (`devices: auto`, and `deno task bench
 * devices`): every split of the machine's CPU cores into workers × intra-op
 * threads (1 × C, 2 × C/2, …, C × 1) scores the same rows through the real
 * pool, in A B … B A order (so a change in the machine's load hurts all
 * alike); the fastest wins unless a split with fewer workers is within
 * {@link TOLERANCE} of it (each worker holds its own copy of the model: fewer
 * workers, less memory). For a run the trial is of the slowest checkpoint to
 * score (the largest model's last), on rows of its first pending shard (4 ×
 * batch × cores of them, in jobs of one batch), and its rates are whole runs,
 * loading included (the workers of a split load in parallel, so loading costs
 * every split about the same; a rate "after the first batch" favours more
 * workers when each has only a few batches); the scores of the trial are
 * discarded. The choice is kept in
 * `<run>/devices/<host>.json` and reused while the host, its cores, the
 * checkpoint, the mode and the batch size are the same.
 *
 * @module
 */
import { availableParallelism, hostname } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { writeJson } from "../store/store.ts";
import { runPool, type WorkerTask } from "./pool.ts";
import type { DeviceSlot, Experiment, Job } from "../types.ts";

/** A configuration with fewer workers within this fraction of the fastest is preferred. */
export const TOLERANCE = 0.05;

/** A candidate: workers on one device, threads each, and its measured rows/s. */
export interface Candidate {
  device: string;
  workers: number;
  threads: number;
  rowsPerS?: number;
}

/** The splits of `cores` CPU cores into workers × threads (workers dividing the cores). */
export function cpuCandidates(cores: number): Candidate[] {
  const out: Candidate[] = [];
  for (let w = 1; w <= cores; w++) {
    if (cores % w === 0) out.push({ device: "cpu", workers: w, threads: cores / w });
  }
  return out;
}

/** Picks the fastest candidate, or one with fewer workers within {@link TOLERANCE}; says why. */
export function choose(measured: Candidate[]): { best: Candidate; why: string } {
  const fastest = measured.reduce((a, b) => (b.rowsPerS! > a.rowsPerS! ? b : a));
  const close = measured.filter((c) => c.rowsPerS! >= fastest.rowsPerS! * (1 - TOLERANCE));
  const best = close.reduce((a, b) => (b.workers < a.workers ? b : a));
  const show = (c: Candidate) => `${c.workers} × ${c.threads} (${c.rowsPerS!.toFixed(1)} rows/s)`;
  const why = best === fastest
    ? `${show(best)} is the fastest${
      measured.length > 1
        ? `; the others: ${measured.filter((c) => c !== best).map(show).join(", ")}`
        : ""
    }`
    : `${show(best)} is within ${TOLERANCE * 100}% of the fastest, ${show(fastest)}, ` +
      `with fewer workers (each holds a copy of the model)`;
  return { best, why };
}

/** One timed pool run: seconds in all and from the first finished batch on, and its rows. */
export interface TrialTiming {
  total: number;
  steady: number;
  /** Rows done when the first batch finished (not counted in the steady rate). */
  firstRows: number;
}

/** Runs `jobs` on `slots` through the pool, discarding the scores. */
export async function timeSlots(
  jobs: Job[],
  slots: DeviceSlot[],
  task: (job: Job) => Omit<WorkerTask, "attempt">,
): Promise<TrialTiming> {
  const t0 = performance.now();
  let first = 0, firstRows = 0;
  const run = runPool({ slots, jobs, task, onResult: () => Promise.resolve() });
  const poll = setInterval(() => {
    const rows = run.rowsDone();
    if (first === 0 && rows > 0) [first, firstRows] = [performance.now(), rows];
  }, 5);
  try {
    await run.done;
  } finally {
    clearInterval(poll);
  }
  const end = performance.now();
  return { total: (end - t0) / 1000, steady: (end - (first || t0)) / 1000, firstRows };
}

/**
 * Measures each candidate on `jobs` (A B … B A) and returns them with
 * `rowsPerS` set: whole runs, or with `steady` the rows after the first
 * finished batch over the time after it (fair only with many batches per worker).
 */
export async function measureCandidates(
  candidates: Candidate[],
  jobs: Job[],
  task: (job: Job) => Omit<WorkerTask, "attempt">,
  opts: { steady: boolean; log: (line: string) => void },
): Promise<Candidate[]> {
  const rows = jobs.reduce((a, j) => a + j.rows.length, 0);
  const timings = new Map<Candidate, TrialTiming[]>();
  for (const c of [...candidates, ...[...candidates].reverse()]) {
    const slots: DeviceSlot[] = Array.from(
      { length: c.workers },
      () => ({ device: c.device, threads: c.threads }),
    );
    const t = await timeSlots(jobs, slots, task);
    timings.set(c, [...(timings.get(c) ?? []), t]);
    opts.log(
      `  ${c.device} ${c.workers} × ${c.threads}: ` +
        (opts.steady
          ? `${((rows - t.firstRows) / t.steady).toFixed(1)} rows/s after the first batch`
          : `${(rows / t.total).toFixed(1)} rows/s`) +
        ` (${t.total.toFixed(1)} s in all)`,
    );
  }
  return candidates.map((c) => {
    const ts = timings.get(c)!;
    const rowsPerS = opts.steady
      ? ts.reduce((a, t) => a + rows - t.firstRows, 0) / ts.reduce((a, t) => a + t.steady, 0)
      : (rows * ts.length) / ts.reduce((a, t) => a + t.total, 0);
    return { ...c, rowsPerS };
  });
}

/** Trial jobs: the first `rows` rows of `job`, in jobs of one batch each (so every worker gets work). */
export function trialJobs(job: Job, rows: number, batch: number): Job[] {
  const take = job.rows.subarray(0, rows);
  const out: Job[] = [];
  for (let i = 0; i * batch < take.length; i++) {
    const part = take.subarray(i * batch, (i + 1) * batch);
    out.push({ ...job, id: `${job.id}/trial${i}`, rows: part });
  }
  return out;
}

/** What `<run>/devices/<host>.json` holds. */
interface DevicesChoice {
  host: string;
  cores: number;
  checkpoint: string;
  mode: string;
  batchSize: number;
  workers: number;
  threads: number;
  why: string;
  measured: Candidate[];
  at: string;
}

/**
 * The device slots of `devices: auto` for scoring `pending`: the choice kept
 * for this host, or a new trial (see the module doc), which is then kept.
 */
export async function autoDevices(
  exp: Experiment,
  pending: Job[],
  task: (job: Job) => Omit<WorkerTask, "attempt">,
  log: (line: string) => void,
  cores = availableParallelism(),
): Promise<DeviceSlot[]> {
  const host = hostname();
  const file = join(exp.output, "devices", `${host.replace(/[^A-Za-z0-9._-]/g, "_")}.json`);
  const slowest = pending.reduce((a, b) =>
    b.flops / Math.max(1, b.rows.length) > a.flops / Math.max(1, a.rows.length) ? b : a
  );
  const key = {
    host,
    cores,
    checkpoint: slowest.path,
    mode: exp.memorization.mode,
    batchSize: exp.batchSize,
  };
  const slots = (c: { workers: number; threads: number }) =>
    Array.from({ length: c.workers }, () => ({ device: "cpu", threads: c.threads }));
  const kept = await readFile(file, "utf8").then((t) => JSON.parse(t) as DevicesChoice).catch(
    () => null,
  );
  const same = kept && (Object.keys(key) as (keyof typeof key)[]).every((k) => kept[k] === key[k]);
  if (same) {
    log(
      `devices: auto → ${kept.workers} × ${kept.threads} (chosen ${kept.at}: ${kept.why}; ${file})`,
    );
    return slots(kept);
  }
  const candidates = cpuCandidates(cores);
  if (candidates.length === 1) return slots(candidates[0]);
  const batch = Math.max(1, exp.batchSize);
  const rows = Math.min(slowest.rows.length, 4 * batch * cores);
  const jobs = trialJobs(slowest, rows, batch);
  log(
    `devices: auto: a trial of ${
      candidates.map((c) => `${c.workers} × ${c.threads}`).join(", ")
    } ` +
      `workers × threads on ${rows} rows of ${slowest.id} (A B … B A; its scores are discarded)`,
  );
  const measured = await measureCandidates(candidates, jobs, task, { steady: false, log });
  const { best, why } = choose(measured);
  log(`devices: auto → ${best.workers} × ${best.threads}: ${why}`);
  await writeJson(
    file,
    {
      ...key,
      workers: best.workers,
      threads: best.threads,
      why,
      measured,
      at: new Date().toISOString(),
    } satisfies DevicesChoice,
  );
  return slots(best);
}
