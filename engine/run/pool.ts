/**
 * The worker pool: one worker thread per device slot (one piscina instance per
 * slot, so a slot's worker keeps its device, its ONNX session and its last
 * loaded model), and a scheduler that hands jobs to slots. Jobs are ordered
 * largest checkpoint first; a free slot prefers a job of the model it has
 * loaded, then a model no other slot holds. A job that throws, or whose worker
 * dies, is retried on another slot up to `maxAttempts` times; then the run
 * stops with that job's error after the jobs in flight are finished.
 *
 * @module
 */
import { Piscina } from "piscina";
import { UserError } from "../errors.ts";
import type { SlotStatus } from "./progress.ts";
import type { DataSpec, DeviceSlot, Job, MemorizationSettings, RowScores } from "../types.ts";

/** Prefix of the message of a user error thrown in a worker (not retried; rethrown as a UserError). */
export const USER_ERROR_TAG = "[user error] ";

/** The message a worker receives for one job (see engine/run/worker.ts). */
export interface WorkerTask {
  id: string;
  /** ONNX path of the checkpoint. */
  path: string;
  data: DataSpec;
  rows: Uint32Array;
  memorization: MemorizationSettings;
  batchSize: number;
  /** Declared vocabulary size, checked against the model and the tokens. */
  vocabSize?: number;
  /** 1 for the first try of the job. */
  attempt: number;
}

/** What the worker thread is started with. */
export interface WorkerSetup {
  device: string;
  threads: number;
  /**
   * Int32Array view: [rows of the current job scored so far, stop flag]. A
   * worker that sees the stop flag set between batches abandons its job.
   */
  progress: SharedArrayBuffer;
  /** {@link PoolOptions.workerOptions}, for a worker module other than engine/run/worker.ts. */
  options?: unknown;
}

/** Options of {@link runPool}. */
export interface PoolOptions {
  slots: DeviceSlot[];
  jobs: Job[];
  /** Builds the worker message of a job (everything but `attempt`). */
  task: (job: Job) => Omit<WorkerTask, "attempt">;
  /** Called with each finished job's scores (e.g. writes the shard); awaited. */
  onResult: (job: Job, scores: RowScores) => Promise<void>;
  /**
   * Worker module (default: engine/run/worker.ts). The seam for tests: a
   * module that wraps or replaces the real worker (e.g. injects faults).
   */
  workerUrl?: string | URL;
  /** Handed to every worker as `workerData.options` (for a custom {@link workerUrl}). */
  workerOptions?: unknown;
  /** Tries per job before the run stops (default 3). */
  maxAttempts?: number;
  /**
   * Stops handing out jobs; jobs in flight finish, or after `graceMs` are
   * dropped at their next batch boundary.
   */
  signal?: AbortSignal;
  /** How long in-flight jobs may take after `signal` aborts (default 10000 ms). */
  graceMs?: number;
  /** Informational messages (retries). */
  onNotice?: (message: string) => void;
}

/** What a pool run did. */
export interface PoolOutcome {
  /** Ids of the jobs finished (their results were handed to onResult). */
  done: string[];
  /** True when the signal stopped the run before every job was done. */
  interrupted: boolean;
  /** Ids of jobs in flight that were dropped after the grace period. */
  dropped: string[];
}

/** A pool run in progress. */
export interface PoolRun {
  /** Settles when every job is done, the run is interrupted, or a job failed for good. */
  done: Promise<PoolOutcome>;
  /** What each slot is doing now. */
  status(): SlotStatus[];
  /** Rows scored so far, including partial jobs in flight. */
  rowsDone(): number;
}

/** Labels of slots: the device, with `#i` when a device has several slots. */
export function slotLabels(slots: DeviceSlot[]): string[] {
  const count = new Map<string, number>();
  for (const s of slots) count.set(s.device, (count.get(s.device) ?? 0) + 1);
  const seen = new Map<string, number>();
  return slots.map((s) => {
    const i = seen.get(s.device) ?? 0;
    seen.set(s.device, i + 1);
    return (count.get(s.device) ?? 0) > 1 ? `${s.device}#${i}` : s.device;
  });
}

/** Orders jobs: checkpoints with the most total work first, then each checkpoint's largest jobs. */
export function orderJobs(jobs: Job[]): Job[] {
  const total = new Map<string, number>();
  for (const j of jobs) total.set(j.path, (total.get(j.path) ?? 0) + j.flops);
  return [...jobs].sort((a, b) =>
    (total.get(b.path)! - total.get(a.path)!) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) ||
    (b.flops - a.flops) || (a.shard - b.shard)
  );
}

/**
 * Picks the index of the next job for a slot: a job of its loaded model, else
 * of a model no other slot holds, else the first; never the slot a job last
 * failed on unless it is the only slot.
 */
export function pickJob(
  pending: Job[],
  slot: number,
  loaded: (string | null)[],
  avoid: ReadonlyMap<string, number>,
): number {
  const allowed = (j: Job) => loaded.length === 1 || avoid.get(j.id) !== slot;
  const mine = loaded[slot];
  if (mine !== null) {
    const i = pending.findIndex((j) => j.path === mine && allowed(j));
    if (i >= 0) return i;
  }
  const held = new Set(loaded.filter((p, i) => i !== slot && p !== null));
  const fresh = pending.findIndex((j) => !held.has(j.path) && allowed(j));
  if (fresh >= 0) return fresh;
  return pending.findIndex(allowed);
}

/** Scores jobs on a pool with one worker per device slot. */
export function runPool(opts: PoolOptions): PoolRun {
  if (opts.slots.length === 0) throw new Error("runPool: no device slots");
  const progress = opts.slots.map(() => new SharedArrayBuffer(8));
  const state: PoolState = {
    opts,
    maxAttempts: opts.maxAttempts ?? 3,
    labels: slotLabels(opts.slots),
    counters: progress.map((b) => new Int32Array(b)),
    pools: startWorkers(opts, progress),
    pending: orderJobs(opts.jobs),
    attempts: new Map(),
    avoid: new Map(),
    loaded: opts.slots.map(() => null),
    current: opts.slots.map(() => null),
    slotRows: opts.slots.map(() => 0),
    done: [],
    dropped: [],
    fatal: null,
    stopping: false,
  };
  return {
    done: schedule(state),
    status: () => slotStatus(state),
    rowsDone: () =>
      state.slotRows.reduce((a, b) => a + b, 0) +
      state.current.reduce((a, c, i) => a + (c ? Atomics.load(state.counters[i], 0) : 0), 0),
  };
}

/** The scheduler's state, shared by its steps. */
interface PoolState {
  opts: PoolOptions;
  maxAttempts: number;
  /** Per slot: its label, progress counters [rows, stop flag] and piscina instance. */
  labels: string[];
  counters: Int32Array[];
  pools: Piscina[];
  /** Jobs not handed out yet, in order (a retried job goes back to the front). */
  pending: Job[];
  /** Tries so far per job id, and the slot a job last failed on. */
  attempts: Map<string, number>;
  avoid: Map<string, number>;
  /** Per slot: the model path its worker holds, its job in flight, rows of its finished jobs. */
  loaded: (string | null)[];
  current: (Job | null)[];
  slotRows: number[];
  done: string[];
  dropped: string[];
  /** The error that stops the run, once a job failed for good. */
  fatal: Error | null;
  /** No more jobs are handed out (stopped, or failed for good). */
  stopping: boolean;
}

/** One piscina instance with one worker thread per slot. */
function startWorkers(opts: PoolOptions, progress: SharedArrayBuffer[]): Piscina[] {
  const filename = String(opts.workerUrl ?? new URL("./worker.ts", import.meta.url));
  return opts.slots.map((s, i) =>
    new Piscina({
      filename,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Infinity,
      workerData: {
        device: s.device,
        threads: s.threads,
        progress: progress[i],
        ...(opts.workerOptions !== undefined ? { options: opts.workerOptions } : {}),
      } as WorkerSetup,
    })
  );
}

/** Hands jobs to every slot until all are done, the run is stopped or a job failed for good. */
function schedule(state: PoolState): Promise<PoolOutcome> {
  return new Promise<PoolOutcome>((resolve, reject) => {
    let finished = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const settle = () => {
      if (finished) return;
      if (!state.current.every((c) => c === null)) return;
      if (!state.stopping && state.pending.length > 0) return;
      finished = true;
      clearTimeout(graceTimer);
      Promise.allSettled(state.pools.map((p) => p.destroy())).then(() => {
        if (state.fatal) reject(state.fatal);
        else {
          const { done, dropped, pending } = state;
          resolve({ done, interrupted: pending.length > 0 || dropped.length > 0, dropped });
        }
      });
    };
    const dispatch = (slot: number) => {
      if (state.stopping || state.current[slot] !== null) return;
      const i = pickJob(state.pending, slot, state.loaded, state.avoid);
      if (i < 0) return settle();
      runJob(state, slot, state.pending.splice(i, 1)[0], dispatch).finally(() => {
        state.current[slot] = null;
        dispatch(slot);
        settle();
      });
    };
    const signal = state.opts.signal;
    signal?.addEventListener("abort", () => {
      state.stopping = true;
      settle();
      graceTimer = setTimeout(() => {
        for (const c of state.counters) Atomics.store(c, 1, 1);
      }, state.opts.graceMs ?? 10_000);
      Deno.unrefTimer(graceTimer);
    }, { once: true });
    if (signal?.aborted) state.stopping = true;
    for (let s = 0; s < state.pools.length; s++) dispatch(s);
    settle();
  });
}

/**
 * Runs one job on a slot's worker and hands its scores to `onResult`; a
 * failure is retried on another slot (`dispatch` wakes the idle ones) or
 * stops the run.
 */
async function runJob(
  state: PoolState,
  slot: number,
  job: Job,
  dispatch: (slot: number) => void,
): Promise<void> {
  const attempt = (state.attempts.get(job.id) ?? 0) + 1;
  state.attempts.set(job.id, attempt);
  state.current[slot] = job;
  state.loaded[slot] = job.path;
  Atomics.store(state.counters[slot], 0, 0);
  try {
    const task: WorkerTask = { ...state.opts.task(job), attempt };
    let buffer: ArrayBuffer;
    try {
      buffer = await state.pools[slot].run(task);
    } catch (err) {
      if (jobFailed(state, slot, job, attempt, err)) {
        // Wake idle slots so another one can take the retry.
        for (let s = 0; s < state.pools.length; s++) {
          if (s !== slot) queueMicrotask(() => dispatch(s));
        }
      }
      return;
    }
    await state.opts.onResult(job, unpackScores(job.rows, buffer));
    state.slotRows[slot] += job.rows.length;
    Atomics.store(state.counters[slot], 0, 0);
    state.done.push(job.id);
  } catch (err) {
    state.fatal ??= err instanceof Error ? err : new Error(String(err));
    state.stopping = true;
  }
}

/**
 * What a failed job leads to: dropped (the run is stopping), a stop (a user
 * error, or the last try), or a retry on another slot (returns true).
 */
function jobFailed(
  state: PoolState,
  slot: number,
  job: Job,
  attempt: number,
  err: unknown,
): boolean {
  state.loaded[slot] = null;
  Atomics.store(state.counters[slot], 0, 0);
  if (state.stopping && !state.fatal) {
    state.dropped.push(job.id);
    return false;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith(USER_ERROR_TAG)) {
    state.fatal ??= new UserError(message.slice(USER_ERROR_TAG.length));
    state.stopping = true;
    return false;
  }
  const where = state.labels[slot];
  if (attempt >= state.maxAttempts) {
    state.fatal ??= new Error(
      `job ${job.id} (${job.path}) failed ${attempt} times on ${where}; last error: ${message}`,
      { cause: err },
    );
    state.stopping = true;
    return false;
  }
  state.opts.onNotice?.(`${job.id} failed on ${where} (try ${attempt}): ${message}; retrying`);
  state.avoid.set(job.id, slot);
  state.pending.unshift(job);
  return true;
}

/** What each slot is doing now. */
function slotStatus(state: PoolState): SlotStatus[] {
  return state.opts.slots.map((_, i) => {
    const job = state.current[i];
    const rows = job ? Atomics.load(state.counters[i], 0) : 0;
    return {
      label: state.labels[i],
      job: job?.id ?? null,
      jobRows: job?.rows.length ?? 0,
      jobDone: rows,
      rows: state.slotRows[i] + rows,
    };
  });
}

/** Packs scores for the trip from worker to main thread: nll f32[n], matches u8[n], prefix u8[n]. */
export function packScores(s: Omit<RowScores, "rows">): ArrayBuffer {
  const n = s.nll.length;
  const out = new ArrayBuffer(6 * n);
  new Float32Array(out, 0, n).set(s.nll);
  new Uint8Array(out, 4 * n, n).set(s.matches.subarray(0, n));
  new Uint8Array(out, 5 * n, n).set(s.prefix.subarray(0, n));
  return out;
}

/** Inverse of {@link packScores}, attaching the job's rows. */
export function unpackScores(rows: Uint32Array, buffer: ArrayBuffer): RowScores {
  const n = rows.length;
  if (buffer.byteLength !== 6 * n) {
    throw new Error(`worker returned ${buffer.byteLength} bytes for ${n} rows (expected ${6 * n})`);
  }
  return {
    rows,
    nll: new Float32Array(buffer, 0, n),
    matches: new Uint8Array(buffer, 4 * n, n),
    prefix: new Uint8Array(buffer, 5 * n, n),
  };
}
