/**
 * One (model, step) run as the analysis consumes it, whatever produced it
 * (the store's own shards, an import): its scored rows as ranges, its
 * memorized rows as a sorted list (engine/rowset.ts), and, when the run
 * carries per-row scores, a {@link ScoreSource} that re-reads them chunk by
 * chunk (a store shard at a time), so nothing holds a value per row per run
 * in memory. Runs imported as memorized-row lists have no source: their
 * score is binary (l on listed rows, 0 on the other scored rows).
 *
 * @module
 */
import { checkpointLabel, type CheckpointScores } from "../types.ts";
import { listBuilder, rangesBuilder, type RowList, type RowRanges } from "../rowset.ts";

/** Per-row scores of a contiguous part of a run, rows ascending. */
export interface ScoreChunk {
  /** Rows of the chunk, ascending. */
  rows: Uint32Array;
  /** Matched continuation tokens 0..l. */
  matches: Uint8Array;
  /** Matched prefix 0..l (when the source has it). */
  prefix?: Uint8Array;
  /** Mean continuation NLL, nats/token (when the source has it). */
  nll?: Float32Array;
}

/**
 * A run's per-row scores, re-readable chunk by chunk: chunk k's rows are
 * ascending and all above chunk k−1's. Reading is synchronous (the store's
 * shards are read with one `readSync` each), so the analysis stays a plain
 * function; memory is one chunk at a time: a chunk is valid until the next
 * `chunk` call on the same source (the store's sources read every shard into
 * the same buffer), so a reader that keeps rows across chunks copies them.
 */
export interface ScoreSource {
  /** Whether chunks carry `prefix`. */
  readonly prefix: boolean;
  /** Whether chunks carry `nll`. */
  readonly nll: boolean;
  /** Number of chunks. */
  readonly chunks: number;
  /** Reads chunk k (valid until the next call). */
  chunk(k: number): ScoreChunk;
  /** Lets go of what the source holds between passes (a pass that stops before the last chunk). */
  close?(): void;
}

/** One run for the analysis: scored and memorized rows, and its per-row scores when it has them. */
export interface ScoredCheckpoint {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** Continuation length l that matches and prefixes are out of. */
  continuation: number;
  /** Rows the run scored. */
  scored: RowRanges;
  /** Rows it memorized (prefix = l, or matches = l without a prefix); a subset of `scored`. */
  memorized: RowList;
  /** Per-row scores; absent for runs known only by their memorized rows. */
  source?: ScoreSource;
  /**
   * Rows per matches value 0..l over the scored rows, when the reader counted
   * them in its own pass (saves the analysis a pass over the source).
   */
  matchCounts?: number[];
  /**
   * Where a store run's scores are (its shard files of the manifest's key),
   * so another thread can open the same source (engine/store/stored_checkpoints.ts
   * `shardSource`); absent for other runs.
   */
  shards?: {
    paths: readonly string[];
    key: string;
    /** The identities of shards verified in this process (`shardSource`'s `verified`). */
    verified: ReadonlyMap<string, string>;
  };
}

/** Whether row i of a chunk is memorized: the matched prefix (or, without one, the matches) reaches l. */
export function chunkMemorized(c: ScoreChunk, i: number, l: number): boolean {
  return (c.prefix ? c.prefix[i] : c.matches[i]) >= l;
}

/** A source over scores held in memory (one chunk). */
export function memorySource(s: CheckpointScores): ScoreSource {
  const chunk: ScoreChunk = { rows: s.rows, matches: s.matches };
  if (s.prefix) chunk.prefix = s.prefix;
  if (s.nll) chunk.nll = s.nll;
  return { prefix: !!s.prefix, nll: !!s.nll, chunks: 1, chunk: () => chunk };
}

/**
 * Scans a source once into its scored ranges and memorized list; throws when
 * rows are not strictly ascending across the whole source (naming `where`).
 */
export function scanSource(
  source: ScoreSource,
  l: number,
  where: string,
): { scored: RowRanges; memorized: RowList; matchCounts: number[] } {
  const scored = rangesBuilder();
  const memorized = listBuilder();
  const matchCounts = new Array<number>(l + 1).fill(0);
  let last = -1;
  for (let k = 0; k < source.chunks; k++) {
    const c = source.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      const r = c.rows[i];
      if (r <= last) {
        throw new Error(`${where}: row ${r} comes after row ${last} (rows must ascend)`);
      }
      last = r;
      scored.add(r);
      matchCounts[Math.min(c.matches[i], l)]++;
      if (chunkMemorized(c, i, l)) memorized.add(r);
    }
  }
  return { scored: scored.done(), memorized: memorized.done(), matchCounts };
}

/** A run from scores held in memory (rows ascending). */
export function scoredFromScores(s: CheckpointScores): ScoredCheckpoint {
  const source = memorySource(s);
  return {
    model: s.model,
    step: s.step,
    continuation: s.continuation,
    ...scanSource(source, s.continuation, checkpointLabel(s)),
    source,
  };
}
