/**
 * The rows of the models over the row features, chunk by chunk: a walk over
 * the record's chunks (engine/data/features/row_features.ts) that keeps the
 * rows asked for and gives, per block of kept rows, the model columns: the
 * data columns (combined.ts `dataColumns`) and the signals of cheap runs
 * (`runColumns`: prefix, matches, NLL; NaN where the run did not score the
 * row), each run read by a forward {@link SignalCursor} over its score
 * source. Memory: one chunk of features, one chunk of each run's scores and
 * the block's typed columns; nothing per row of the whole record.
 *
 * @module
 */
import type { FeatureChunk, RowFeatures } from "../../engine/data/features/row_features.ts";
import { ChunkWalk } from "../../engine/rowset.ts";
import type { ScoreChunk, ScoreSource } from "../../engine/store/scored_checkpoint.ts";
import { type Columns, dataColumns, runColumns, type RunSignals } from "./combined.ts";

/** A cheap run whose signals a model reads: its column name (`model@step`) and its scores. */
export interface SignalRun {
  name: string;
  source: ScoreSource;
}

/**
 * A run's per-row signals for rows asked in ascending order (across calls),
 * reading its source one chunk at a time.
 */
export class SignalCursor {
  readonly #walk: ChunkWalk<ScoreChunk>;
  constructor(readonly run: SignalRun) {
    this.#walk = new ChunkWalk(run.source.chunks, (k) => run.source.chunk(k));
  }

  /** The run's signals of `rows` (ascending, above every row asked before); NaN: not scored. */
  signals(rows: Uint32Array): RunSignals {
    const n = rows.length, src = this.run.source, w = this.#walk;
    const matches = new Float64Array(n).fill(NaN);
    const prefix = src.prefix ? new Float64Array(n).fill(NaN) : undefined;
    const nll = src.nll ? new Float64Array(n).fill(NaN) : undefined;
    for (let j = 0; j < n; j++) {
      if (!w.seek(rows[j])) continue;
      const c = w.chunk!, i = w.i;
      matches[j] = c.matches[i];
      if (prefix) prefix[j] = c.prefix![i];
      if (nll) nll[j] = c.nll![i];
    }
    return {
      name: this.run.name,
      compute: 0,
      matches,
      ...(prefix ? { prefix } : {}),
      ...(nll ? { nll } : {}),
    };
  }

  /** Lets go of the source's buffers (a walk that ends before its last chunk). */
  close(): void {
    this.#walk.release();
    this.run.source.close?.();
  }
}

/** The data-only model's columns of elements `at` of a chunk (all of it without `at`). */
export function featureColumns(c: FeatureChunk, at?: ArrayLike<number>): Columns {
  const pick = <T extends ArrayLike<number>>(a: T) => (at ? Float64Array.from(at, (j) => a[j]) : a);
  return dataColumns({
    windowCount: pick(c.window),
    contextCount: pick(c.context),
    step: pick(c.step),
    compression: pick(c.compression),
    distinct: pick(c.distinct),
  });
}

/** A block of model rows: the rows (ascending) and their model columns. */
export interface ModelBlock {
  rows: Uint32Array;
  columns: Columns;
}

/**
 * The model rows of a record block by block (one block per chunk of the
 * record): the rows `keep` accepts (asked in ascending order), with the
 * cheap runs' signal columns first, then the data columns (the order of the
 * coefficients: combined.ts `runColumns`, `dataColumns`).
 */
export function* modelBlocks(
  f: RowFeatures,
  runs: readonly SignalRun[],
  keep: (row: number) => boolean = () => true,
): Generator<ModelBlock> {
  const cursors = runs.map((r) => new SignalCursor(r));
  try {
    for (let k = 0; k < f.chunks; k++) {
      const c = f.chunk(k);
      const kept = new Uint32Array(c.rows.length);
      let n = 0;
      for (let i = 0; i < c.rows.length; i++) if (keep(c.rows[i])) kept[n++] = i;
      if (n === 0) continue;
      const at = kept.subarray(0, n);
      const all = at.length === c.rows.length;
      const rows = all ? c.rows : Uint32Array.from(at, (i) => c.rows[i]);
      const columns = {
        ...runColumns(cursors.map((x) => x.signals(rows))),
        ...featureColumns(c, all ? undefined : at),
      };
      yield { rows, columns };
    }
  } finally {
    for (const x of cursors) x.close();
  }
}
