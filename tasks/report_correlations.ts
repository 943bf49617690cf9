/**
 * The report's score correlations (reports/analysis/figures.ts
 * `correlationMatrix` over reports/analysis/analysis.ts `correlationGroups`)
 * computed on another thread (tasks/report_correlations_worker.ts) while
 * this one analyses the rest: they depend on the scores alone, and their
 * pass over the store is a third of the analysis's time on a paper-shape
 * store. The thread opens each store run's shards itself (`shards` of a
 * {@link ScoredCheckpoint}); a run without them goes with its memorized rows.
 *
 * @module
 */
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import type { RowList, RowRanges } from "../engine/rowset.ts";
import { UserError } from "../engine/errors.ts";
import type { Experiment, ProgressSink } from "../engine/types.ts";
import { correlationGroups } from "../reports/analysis/analysis.ts";
import type { Summary } from "../reports/analysis/summary.ts";

/** A run as sent to the thread: its row sets, and its shards when it has them. */
export interface RunRef {
  model: string;
  step: number;
  continuation: number;
  scored: RowRanges;
  /** Only for a run without shards (the thread reads the others' scores). */
  memorized: RowList;
  shards: { paths: readonly string[]; key: string; verified: [string, string][] } | null;
}

/** The matrices' runs as sent to the thread. */
export interface CorrelationJob {
  models: RunRef[];
  checkpoints: { model: string; runs: RunRef[] }[];
}

/** The thread's messages: a matrix done, the result, or an error. */
export type CorrelationReply =
  | { ready: true }
  | { matrix: number }
  | { result: Summary["correlations"] }
  | { error: { message: string; user: boolean } };

function refOf(r: ScoredCheckpoint): RunRef {
  const s = r.shards;
  return {
    model: r.model,
    step: r.step,
    continuation: r.continuation,
    scored: r.scored,
    memorized: s ? new Uint32Array(0) : r.memorized,
    shards: s
      ? {
        paths: s.paths,
        key: s.key,
        verified: s.paths.flatMap((p) => {
          const id = s.verified.get(p);
          return id ? [[p, id] as [string, string]] : [];
        }),
      }
      : null,
  };
}

/** Correlations being computed on another thread ({@link CorrelationThread}). */
export interface CorrelationsApart {
  /** The matrices, once computed; counted in `progress` from the call on. */
  result(progress?: ProgressSink): Promise<Summary["correlations"]>;
}

/**
 * The thread of the score correlations. Started before the store is read,
 * so that it listens by the time the runs are known: it says so with a
 * message this thread only sees when it waits, and an analysis that ran
 * meanwhile would leave it idle until the end.
 */
export class CorrelationThread {
  readonly #worker: Worker;
  readonly #ready: Promise<void>;
  #done = 0;
  #sink: ProgressSink | undefined;
  #settle: { resolve(c: Summary["correlations"]): void; reject(e: Error): void } | null = null;

  constructor() {
    this.#worker = new Worker(new URL("./report_correlations_worker.ts", import.meta.url), {
      type: "module",
    });
    const ready = Promise.withResolvers<void>();
    this.#ready = ready.promise;
    this.#worker.onmessage = (e: MessageEvent<CorrelationReply>) => {
      const m = e.data;
      if ("ready" in m) ready.resolve();
      else if ("matrix" in m) {
        this.#done++;
        this.#sink?.add(1);
      } else if ("result" in m) this.#settle?.resolve(m.result);
      else {
        const { message, user } = m.error;
        this.#settle?.reject(user ? new UserError(message) : new Error(message));
      }
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const failed = new Error(`the report's correlation thread failed: ${e.message}`);
      ready.reject(failed);
      this.#settle?.reject(failed);
    };
    this.#ready.catch(() => {}); // awaited by `start`; not an unhandled rejection meanwhile
  }

  /**
   * Gives the thread the correlations of the runs, once it listens; null when
   * there are none to compute (no run has per-row scores, or one lacks its
   * shards: then the analysis computes them itself).
   */
  async start(
    exp: Experiment,
    runs: readonly ScoredCheckpoint[],
  ): Promise<CorrelationsApart | null> {
    const groups = correlationGroups(exp, runs);
    if (!groups || runs.some((r) => r.source && !r.shards)) return null;
    const job: CorrelationJob = {
      models: groups.models.map(refOf),
      checkpoints: groups.checkpoints.map((g) => ({ model: g.model, runs: g.runs.map(refOf) })),
    };
    const total = job.checkpoints.length + 1;
    const result = new Promise<Summary["correlations"]>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    result.catch(() => {}); // awaited by `result()`; not an unhandled rejection meanwhile
    await this.#ready;
    this.#worker.postMessage(job);
    return {
      result: (progress) => {
        this.#sink = progress;
        progress?.phase("score correlations", total, "matrices");
        progress?.add(this.#done);
        return result;
      },
    };
  }

  /** Ends the thread (done, or no longer needed). */
  close(): void {
    this.#worker.terminate();
  }
}
