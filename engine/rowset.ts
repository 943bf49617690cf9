/**
 * Sets of dataset rows whose memory grows with what they hold, not with the
 * data: the scored rows of a run as sorted disjoint ranges ({@link RowRanges},
 * one range for `[0, step · 1024)`), and its memorized (or predicted) rows as
 * a sorted list of distinct indices ({@link RowList}, 4 bytes per row). Shared
 * by the import, the store reader and the analysis. Every operation walks the
 * inputs once (merge order); {@link ListCursor} and {@link RangesCursor}
 * answer membership for rows queried in ascending order in O(1) amortized.
 *
 * Invariant used throughout: a run's memorized rows are a subset of its
 * scored rows.
 *
 * @module
 */

/** Sorted distinct row indices (ascending). */
export type RowList = Uint32Array;

/** Sorted disjoint half-open ranges `[bounds[2i], bounds[2i+1])`, non-adjacent, with their total size. */
export interface RowRanges {
  /** Range bounds: start and end of range i at 2i and 2i + 1. */
  readonly bounds: Float64Array;
  /** Rows in all ranges together. */
  readonly size: number;
}

/** Ranges from `[start, end)` pairs (sorted, merged, empty ones dropped). */
export function rangesOf(pairs: ReadonlyArray<readonly [number, number]>): RowRanges {
  const b = rangesBuilder();
  for (const [s, e] of [...pairs].sort((x, y) => x[0] - y[0])) b.addRange(s, e);
  return b.done();
}

/** Builds ranges from rows or ranges added in ascending order (overlaps are merged). */
export function rangesBuilder(): {
  add(row: number): void;
  addRange(start: number, end: number): void;
  done(): RowRanges;
} {
  let out = new Float64Array(16);
  let n = 0; // numbers used (2 per range)
  let size = 0;
  const addRange = (s: number, e: number) => {
    if (e <= s) return;
    if (n > 0 && s <= out[n - 1]) {
      if (s < out[n - 2]) throw new Error(`rangesBuilder: ${s} added after ${out[n - 2]}`);
      if (e > out[n - 1]) {
        size += e - out[n - 1];
        out[n - 1] = e;
      }
      return;
    }
    if (n === out.length) {
      const bigger = new Float64Array(out.length * 2);
      bigger.set(out);
      out = bigger;
    }
    out[n++] = s;
    out[n++] = e;
    size += e - s;
  };
  return {
    add: (row) => addRange(row, row + 1),
    addRange,
    done: () => ({ bounds: out.slice(0, n), size }),
  };
}

/** Builds a row list from rows added in strictly ascending order (throws otherwise). */
export function listBuilder(initial = 1024): { add(row: number): void; done(): RowList } {
  let out = new Uint32Array(initial);
  let n = 0;
  return {
    add(row) {
      if (n > 0 && row <= out[n - 1]) {
        throw new Error(`listBuilder: row ${row} added after ${out[n - 1]}`);
      }
      if (n === out.length) {
        const bigger = new Uint32Array(out.length * 2 + 1024);
        bigger.set(out);
        out = bigger;
      }
      out[n++] = row;
    },
    done: () => out.slice(0, n),
  };
}

/** Sorts rows in place and checks they are distinct; returns the first duplicate or -1. */
export function sortDistinct(rows: Uint32Array): number {
  rows.sort();
  for (let i = 1; i < rows.length; i++) if (rows[i] === rows[i - 1]) return rows[i];
  return -1;
}

/** The rows both range sets hold. */
export function intersectRanges(a: RowRanges, b: RowRanges): RowRanges {
  const out = rangesBuilder();
  const x = a.bounds, y = b.bounds;
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    const s = Math.max(x[i], y[j]), e = Math.min(x[i + 1], y[j + 1]);
    if (s < e) out.addRange(s, e);
    if (x[i + 1] < y[j + 1]) i += 2;
    else j += 2;
  }
  return out.done();
}

/** Number of listed rows inside the ranges. */
export function countInRanges(list: RowList, ranges: RowRanges): number {
  const b = ranges.bounds;
  let n = 0, j = 0;
  for (let i = 0; i < list.length && j < b.length; i++) {
    const r = list[i];
    while (j < b.length && r >= b[j + 1]) j += 2;
    if (j < b.length && r >= b[j]) n++;
  }
  return n;
}

/** The listed rows inside the ranges. */
export function restrictList(list: RowList, ranges: RowRanges): RowList {
  const out = listBuilder(Math.min(list.length, 1024));
  const b = ranges.bounds;
  let j = 0;
  for (let i = 0; i < list.length && j < b.length; i++) {
    const r = list[i];
    while (j < b.length && r >= b[j + 1]) j += 2;
    if (j < b.length && r >= b[j]) out.add(r);
  }
  return out.done();
}

/** Number of rows in both lists. */
export function intersectCount(a: RowList, b: RowList): number {
  let i = 0, j = 0, n = 0;
  while (i < a.length && j < b.length) {
    if (a[i] < b[j]) i++;
    else if (a[i] > b[j]) j++;
    else n++, i++, j++;
  }
  return n;
}

/** Whether the list holds `row` (binary search). */
export function listHas(list: RowList, row: number): boolean {
  const i = lowerBound(list, row);
  return i < list.length && list[i] === row;
}

/** First index i with `a[i] >= x`. */
export function lowerBound(a: ArrayLike<number>, x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Membership in a list for rows asked in ascending order. */
export class ListCursor {
  #i = 0;
  constructor(readonly list: RowList) {}
  /** Whether `row` is listed; rows must not decrease between calls. */
  has(row: number): boolean {
    const l = this.list;
    while (this.#i < l.length && l[this.#i] < row) this.#i++;
    return this.#i < l.length && l[this.#i] === row;
  }
}

/** Membership in ranges for rows asked in ascending order. */
export class RangesCursor {
  #j = 0;
  constructor(readonly ranges: RowRanges) {}
  /** Whether `row` is in the ranges; rows must not decrease between calls. */
  has(row: number): boolean {
    const b = this.ranges.bounds;
    while (this.#j < b.length && row >= b[this.#j + 1]) this.#j += 2;
    return this.#j < b.length && row >= b[this.#j];
  }
}

/** Calls `visit` for every row of the ranges, ascending. */
export function forEachRow(ranges: RowRanges, visit: (row: number) => void): void {
  const b = ranges.bounds;
  for (let j = 0; j < b.length; j += 2) for (let r = b[j]; r < b[j + 1]; r++) visit(r);
}

/** Number of rows of the ranges in `[start, end)`. */
export function rangesCountIn(ranges: RowRanges, start: number, end: number): number {
  const b = ranges.bounds;
  let n = 0;
  for (let j = 0; j < b.length; j += 2) {
    const s = Math.max(b[j], start), e = Math.min(b[j + 1], end);
    if (s < e) n += e - s;
  }
  return n;
}

/** The last row of the ranges plus one (0 when empty). */
export function rangesEnd(ranges: RowRanges): number {
  return ranges.bounds.length > 0 ? ranges.bounds[ranges.bounds.length - 1] : 0;
}

/**
 * A walk over chunks of ascending rows (a score source's, a row-feature
 * record's) for rows asked in ascending order: `seek(row)` positions `chunk`
 * and `i` on the row (`i` = −1 when no chunk holds it), reading each chunk
 * once; a row below the last one asked restarts from the first chunk.
 * Memory: one chunk.
 */
export class ChunkWalk<C extends { rows: Uint32Array }> {
  /** The current chunk (null before the first seek or past the end). */
  chunk: C | null = null;
  /** Index of the sought row in `chunk` (−1: absent). */
  i = -1;
  #k = -1;
  #j = 0;
  #last = -1;
  constructor(readonly chunks: number, readonly read: (k: number) => C) {}

  /** Positions on `row`; returns whether a chunk holds it. */
  seek(row: number): boolean {
    if (row < this.#last) this.release();
    this.#last = row;
    for (;;) {
      const c = this.chunk;
      if (c && c.rows.length > 0 && row <= c.rows[c.rows.length - 1]) {
        while (c.rows[this.#j] < row) this.#j++;
        this.i = c.rows[this.#j] === row ? this.#j : -1;
        return this.i >= 0;
      }
      if (this.#k + 1 >= this.chunks) {
        this.i = -1;
        return false;
      }
      this.chunk = this.read(++this.#k);
      this.#j = 0;
    }
  }

  /** Lets go of the current chunk; the next seek starts from the first chunk. */
  release(): void {
    this.chunk = null;
    this.i = -1;
    this.#k = -1;
    this.#j = 0;
    this.#last = -1;
  }
}
