/**
 * The report's pass over the store (engine/store/stored_checkpoints.ts
 * `readStoredCheckpoints`), with each run's signal histograms against the
 * target counted on the way (reports/analysis/histograms.ts
 * `HistogramCounter`), so the analysis needs no pass of its own for them, on
 * every core: the target is read first on this thread (its row sets make
 * the code table, in shared memory), then the other checkpoints, the larger
 * first, by reader threads (tasks/report_scan_worker.ts) fed from one queue,
 * each reading whole checkpoints: their shards, row sets, matches counts and
 * histograms; this thread only hands them out (it would answer the threads
 * late while reading a checkpoint of its own). Each thread holds one shard
 * buffer and its own histograms; the row sets come back to this thread.
 *
 * @module
 */
import {
  type CheckpointJob,
  type OffloadedCheckpoint,
  readStoredCheckpoints,
  type StoreScan,
} from "../engine/store/stored_checkpoints.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import type { Manifest } from "../engine/store/store.ts";
import { UserError } from "../engine/errors.ts";
import { checkpointKey, type Experiment, type ProgressSink } from "../engine/types.ts";
import { analysisSettings } from "../reports/analysis/analysis.ts";
import {
  codeTable,
  type CountedHistograms,
  HistogramCounter,
  type LabelHistogram,
  type Signal,
  signalsOf,
} from "../reports/analysis/histograms.ts";

/** The signals of a store's shards (each holds matches, matched prefix and NLL). */
export const STORED_SIGNALS: readonly Signal[] = ["score", "prefix", "nll"];

/** Reader threads at most (the disk, not the cores, is the limit beyond). */
export const MAX_READER_THREADS = 4;

/**
 * The default reader threads: one per core, at most {@link MAX_READER_THREADS};
 * none on one core (the main thread reads alone).
 */
export function defaultReaderThreads(): number {
  const cores = navigator.hardwareConcurrency ?? 1;
  return cores < 2 ? 0 : Math.min(MAX_READER_THREADS, cores);
}

/** What a reader thread is told first ({@link ReaderPool}). */
export interface ReaderInit {
  /** The target's code table (shared memory). */
  table: Int8Array;
  continuation: number;
  folds: number;
  seed: number;
  signals: readonly Signal[];
}

/** A reader thread's answer to a job. */
export type ReaderReply =
  | { ready: true }
  | { id: number; result: OffloadedCheckpoint & { extra: LabelHistogram[] } }
  | { id: number; error: { message: string; user: boolean } };

/**
 * Checkpoints a reader thread holds at most: the one it reads and the next,
 * so it never waits for this thread's answer to start another.
 */
const HELD = 2;

/** A reader thread and the jobs it holds. */
interface Slot {
  worker: Worker;
  jobs: number;
  /** Whether it has said it listens (nothing is sent to it before). */
  ready: boolean;
}

/** A checkpoint to read and who waits for it. */
interface Queued {
  id: number;
  job: CheckpointJob;
  waiting: PromiseWithResolvers<OffloadedCheckpoint>;
}

/**
 * Reader threads fed from one queue, each holding at most {@link HELD}
 * checkpoints: a thread that answers is given the next at once, so the
 * threads run out of work together.
 */
class ReaderPool {
  readonly #slots: Slot[] = [];
  readonly #queue: Queued[] = [];
  readonly #waiting = new Map<number, PromiseWithResolvers<OffloadedCheckpoint>>();
  #next = 0;

  constructor(threads: number, readonly init: ReaderInit) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL("./report_scan_worker.ts", import.meta.url), {
        type: "module",
      });
      const slot: Slot = { worker, jobs: 0, ready: false };
      worker.onmessage = (e: MessageEvent<ReaderReply>) => this.#answer(slot, e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(new Error(`a report reader thread failed: ${e.message}`));
      };
      this.#slots.push(slot);
    }
  }

  /** Reads the checkpoint on a reader thread (queued until one has room). */
  submit(job: CheckpointJob): Promise<OffloadedCheckpoint> {
    const waiting = Promise.withResolvers<OffloadedCheckpoint>();
    this.#queue.push({ id: this.#next++, job, waiting });
    this.#dispatch();
    return waiting.promise;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      while (slot.ready && slot.jobs < HELD && this.#queue.length > 0) {
        const { id, job, waiting } = this.#queue.shift()!;
        this.#waiting.set(id, waiting);
        slot.jobs++;
        slot.worker.postMessage({ id, job });
      }
    }
  }

  #answer(slot: Slot, reply: ReaderReply): void {
    if ("ready" in reply) {
      slot.ready = true;
      slot.worker.postMessage({ init: this.init });
    } else {
      slot.jobs--;
      const w = this.#waiting.get(reply.id)!;
      this.#waiting.delete(reply.id);
      if ("result" in reply) w.resolve(reply.result);
      else {
        const { message, user } = reply.error;
        w.reject(user ? new UserError(message) : new Error(message));
      }
    }
    this.#dispatch();
  }

  #fail(error: Error): void {
    for (const w of this.#waiting.values()) w.reject(error);
    for (const q of this.#queue) q.waiting.reject(error);
    this.#waiting.clear();
    this.#queue.length = 0;
  }

  close(): void {
    for (const { worker } of this.#slots) worker.terminate();
  }
}

/**
 * Reads the run folder's store (`readStoredCheckpoints`) and, with a trained
 * target, counts each run's histograms against it on the way; `threads`:
 * reader threads (default {@link defaultReaderThreads}; 0 reads on this
 * thread alone). The histograms are absent without a target
 * (the no-target report has none); `offloaded`: checkpoints read by reader threads.
 */
export async function scanStore(
  runDir: string,
  experiment: Experiment,
  manifest: Manifest | null | undefined,
  progress?: ProgressSink,
  threads: number = defaultReaderThreads(),
): Promise<{ runs: ScoredCheckpoint[]; histograms?: CountedHistograms; offloaded: number }> {
  const counting = histogramScan(experiment, threads);
  try {
    const runs = await readStoredCheckpoints(runDir, manifest, progress, counting?.scan);
    return { runs, histograms: counting?.histograms, offloaded: counting?.offloaded() ?? 0 };
  } finally {
    counting?.close();
  }
}

/**
 * The {@link StoreScan} that counts every run's histograms against the
 * target (read first), on this thread or, once the target's code table
 * exists, on reader threads. A run whose source carries other signals is
 * left to the analysis.
 */
function histogramScan(
  exp: Experiment,
  threads: number,
): {
  scan: StoreScan;
  histograms: CountedHistograms;
  offloaded(): number;
  close(): void;
} | null {
  const target = exp.target;
  if (!target) return null;
  const { folds, seed } = analysisSettings(exp);
  const histograms: CountedHistograms = { target, folds, seed, bySource: new Map() };
  const isTarget = (c: { model: string; step: number }) =>
    c.model === target.model && c.step === target.step;
  let sets: ScoredCheckpoint | null = null;
  let pool: ReaderPool | null = null;
  let offloaded = 0;
  let counting: { key: string; counter: HistogramCounter } | null = null;
  const scan: StoreScan = {
    first: target,
    visit(id) {
      // Before the target's row sets (the store lacks it): the analysis will say so.
      if (!sets || isTarget(id)) return null;
      const counter = new HistogramCounter(STORED_SIGNALS, sets.continuation, sets, {
        folds,
        seed,
      });
      counting = { key: checkpointKey(id.model, id.step), counter };
      return (chunk) => counter.add(chunk);
    },
    offload(job) {
      if (!sets || threads < 1) return null;
      if (!pool) {
        const table = codeTable(sets, folds, seed);
        if (!table) return null; // beyond the table's rows: counted here, from the row sets
        const signals = STORED_SIGNALS, continuation = sets.continuation;
        pool = new ReaderPool(threads, { table, continuation, folds, seed, signals });
      }
      offloaded++;
      return pool.submit(job);
    },
    done(c, extra) {
      if (isTarget(c)) sets = c;
      else if (c.source && signalsOf(c.source).join() === STORED_SIGNALS.join()) {
        if (extra) histograms.bySource.set(c.source, extra as LabelHistogram[]);
        else if (counting?.key === checkpointKey(c.model, c.step)) {
          histograms.bySource.set(c.source, counting.counter.histograms());
        }
      }
      if (!extra) counting = null;
    },
  };
  return { scan, histograms, offloaded: () => offloaded, close: () => pool?.close() };
}
