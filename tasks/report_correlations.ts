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
import { ThreadPool } from "../engine/os/threads.ts";
import type { Experiment, ProgressSink } from "../engine/types.ts";
import { correlationGroups } from "../reports/analysis/analysis.ts";
import type { Matrix, Summary } from "../reports/analysis/summary.ts";

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
 * The thread of the score correlations (an engine/os/threads.ts `ThreadPool`
 * of one, given every matrix at once: this thread analyses meanwhile and
 * answers nothing). Started before the store is read, so that it listens by
 * the time the runs are known.
 */
export class CorrelationThread {
  readonly #pool = new ThreadPool<RunRef[], Matrix>(
    new URL("./report_correlations_worker.ts", import.meta.url),
    1,
    null,
    { held: Infinity },
  );

  /**
   * Gives the thread the matrices of the runs, once it listens; null when
   * there are none to compute (no run has per-row scores, or one lacks its
   * shards: then the analysis computes them itself).
   */
  async start(
    exp: Experiment,
    runs: readonly ScoredCheckpoint[],
  ): Promise<CorrelationsApart | null> {
    const groups = correlationGroups(exp, runs);
    if (!groups || runs.some((r) => r.source && !r.shards)) return null;
    await this.#pool.ready();
    let done = 0, sink: ProgressSink | undefined;
    const matrix = (group: ScoredCheckpoint[]) =>
      this.#pool.submit(group.map(refOf)).then((m) => (done++, sink?.add(1), m));
    const models = matrix(groups.models);
    const checkpoints = groups.checkpoints.map((g) => matrix(g.runs));
    const result = Promise.all([models, ...checkpoints]).then(([between, ...each]) => ({
      models: between,
      checkpoints: each.map((m, i) => ({ model: groups.checkpoints[i].model, ...m })),
    }));
    result.catch(() => {}); // awaited by `result()`; not an unhandled rejection meanwhile
    return {
      result(progress) {
        sink = progress;
        progress?.phase("score correlations", checkpoints.length + 1, "matrices");
        progress?.add(done);
        return result;
      },
    };
  }

  /** Ends the thread (done, or no longer needed). */
  close(): void {
    this.#pool.close();
  }
}
