/**
 * Where the `features` step's pieces and scan blocks run (tasks/features.ts):
 * on this thread ({@link localRunner}) or on worker threads
 * ({@link threadRunner}, tasks/features_worker.ts), each with its own reader
 * of the data and its own tokenizer; the tables and the shard's counts are
 * shared memory, so a thread holds one chunk of windows and their decoded
 * texts, or one block of a shard's tokens, at a time.
 *
 * @module
 */
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import { ThreadPool } from "../engine/os/threads.ts";
import type { Experiment } from "../engine/types.ts";
import {
  computePiece,
  type PieceContext,
  type PieceJob,
  scanBlock,
  type ScanJob,
} from "./features_pieces.ts";

/** Threads at most (beyond, the disk is the limit). */
export const MAX_FEATURE_THREADS = 16;

/**
 * The cores this process may use: a Slurm task's `SLURM_CPUS_PER_TASK`
 * when set, else the machine's, at most {@link MAX_FEATURE_THREADS}.
 */
export function featureThreads(): number {
  const slurm = Number(Deno.env.get("SLURM_CPUS_PER_TASK"));
  const cores = Number.isInteger(slurm) && slurm > 0 ? slurm : navigator.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_FEATURE_THREADS, cores));
}

/** A task of the step: a chunk's pieces or a block of a shard's scan. */
export type FeatureTask = { piece: PieceJob } | { scan: ScanJob };

/** What a thread is told first: the data and the window settings. */
export interface FeatureInit {
  data: Experiment["data"];
  offset: number;
  width: number;
  context: number;
  tokenizer?: string;
}

/** Runs the step's tasks; `threads` of them at a time. */
export interface Runner {
  readonly threads: number;
  /** The task's seconds (pieces) once done. */
  run(task: FeatureTask): Promise<number>;
  close(): void;
}

/** Runs a task in a context (on whichever thread holds it). */
export function runTask(ctx: PieceContext, task: FeatureTask): Promise<number> {
  if ("piece" in task) return computePiece(ctx, task.piece);
  return scanBlock(ctx, task.scan).then(() => 0);
}

/** The context of a thread: its own reader of the data and tokenizer. */
export async function openContext(init: FeatureInit): Promise<PieceContext> {
  const reader = await openTokenReader(init.data);
  const decode = await loadDecoder(init.tokenizer, () => {});
  return { reader, offset: init.offset, width: init.width, context: init.context, decode };
}

/** Tasks run on this thread, one at a time, in the given context. */
export function localRunner(ctx: PieceContext): Runner {
  return { threads: 1, run: (task) => runTask(ctx, task), close: () => {} };
}

/**
 * `threads` worker threads (an engine/os/threads.ts `ThreadPool`, each holding
 * at most two tasks). A failed task rejects with its error (a UserError stays
 * one) and stops the queue; a thread that dies rejects every task.
 */
export function threadRunner(threads: number, init: FeatureInit): Runner {
  const pool = new ThreadPool<FeatureTask, number>(
    new URL("./features_worker.ts", import.meta.url),
    threads,
    init,
  );
  return { threads, run: (task) => pool.submit(task), close: () => pool.close() };
}

/**
 * Runs `task(item)` for every item, at most `limit` at a time, in order of
 * start; waits for those in flight before a failure is thrown (no file is
 * left half written by a thread stopped under it). Stops starting new ones
 * once `stop()` says so. Returns the items' results (undefined: not started).
 */
export async function runLimited<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
  stop: () => boolean = () => false,
): Promise<(R | undefined)[]> {
  const out: (R | undefined)[] = new Array(items.length);
  let at = 0, failure: unknown = null;
  const lane = async () => {
    while (at < items.length && failure === null && !stop()) {
      const i = at++;
      try {
        out[i] = await task(items[i]);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  if (failure !== null) throw failure;
  return out;
}
