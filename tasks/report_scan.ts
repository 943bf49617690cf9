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
 * The threads are an engine/os/threads.ts `ThreadPool`: the first failed
 * checkpoint stops the queue, so its error is heard without the rest read.
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
import { ThreadPool } from "../engine/os/threads.ts";
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

/** What a reader thread is told first. */
export interface ReaderInit {
  /** The target's code table (shared memory). */
  table: Int8Array;
  continuation: number;
  folds: number;
  seed: number;
  signals: readonly Signal[];
}

/** A reader thread's answer to a job. */
export type ReaderResult = OffloadedCheckpoint & { extra: LabelHistogram[] };

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
  let pool: ThreadPool<CheckpointJob, ReaderResult> | null = null;
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
        const init: ReaderInit = { table, continuation, folds, seed, signals };
        pool = new ThreadPool(new URL("./report_scan_worker.ts", import.meta.url), threads, init);
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
