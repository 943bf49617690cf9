/**
 * When a row is seen in training: its step (row / sequences_per_step: the
 * optimizer step that trains on it; the first checkpoint that has seen it is
 * step + 1), and, for data that passes more than one epoch (the deduplicated
 * Pythia data passes ~1.5), whether the identical scored window comes back as
 * another row and when. Rows with the same window are grouped by the exact
 * window table of window_counts.ts (hash, then tokens compared), in one pass
 * backwards over the rows ({@link sameWindowLinks}, which needs only the
 * table's slot of each row): time and memory linear in the rows.
 *
 * @module
 */
import { UserError } from "../../errors.ts";
import { buildWindowTable, type Tokens } from "./window_counts.ts";

/** When each row (and its window's other copies as rows) is seen. */
export interface SeenFeatures {
  /** Step that trains on the row: floor(row / sequences_per_step). */
  step: Uint32Array;
  /** First later row with the identical window (−1: none). */
  nextRow: Float64Array;
  /** Step of `nextRow` (−1: none). */
  nextStep: Float64Array;
  /** First row with the identical window (the row itself when it is the first). */
  firstRow: Uint32Array;
  /** Rows with the identical window (1: the row only). */
  rowCopies: Uint32Array;
}

/**
 * The seen-when features of rows `first, first + 1, …` whose scored windows
 * (`width` tokens each) are `windows`, row-major.
 */
export function seenFeatures(
  windows: Tokens,
  width: number,
  sequencesPerStep: number,
  first = 0,
): SeenFeatures {
  if (!Number.isInteger(sequencesPerStep) || sequencesPerStep < 1) {
    throw new UserError(`sequences_per_step must be a positive integer, got ${sequencesPerStep}`);
  }
  const table = buildWindowTable(windows, width, width);
  const n = table.queries;
  const links = sameWindowLinks(table.slot, table.mask + 1);
  const step = new Uint32Array(n);
  const nextRow = new Float64Array(n).fill(-1);
  const nextStep = new Float64Array(n).fill(-1);
  const firstRow = new Uint32Array(n);
  const rowCopies = new Uint32Array(n);
  for (let q = 0; q < n; q++) {
    const s = table.slot[q];
    step[q] = Math.floor((first + q) / sequencesPerStep);
    if (links.next[q] >= 0) {
      nextRow[q] = first + links.next[q];
      nextStep[q] = Math.floor(nextRow[q] / sequencesPerStep);
    }
    firstRow[q] = first + links.first[s];
    rowCopies[q] = links.copies[s];
  }
  return { step, nextRow, nextStep, firstRow, rowCopies };
}

/** Rows grouped by their window: each row's next row with it, and per window its first row and rows. */
export interface WindowLinks {
  /** Per row: the next row with the identical window (−1: none). */
  next: Int32Array;
  /** Per slot: the first row with its window (−1: an empty slot). */
  first: Int32Array;
  /** Per slot: the rows with its window. */
  copies: Uint32Array;
}

/**
 * The links between rows of the same window from a window table's `slot`
 * (rows 0 … n − 1 in order; `slots`: the table's capacity), in one pass
 * backwards: 4 bytes per row (`next`) and 8 per slot. The features step
 * computes the seen-when columns from it, so only the table's slots, never
 * the rows' tokens, span all rows.
 */
export function sameWindowLinks(slot: Int32Array, slots: number): WindowLinks {
  const next = new Int32Array(slot.length);
  const first = new Int32Array(slots).fill(-1);
  const copies = new Uint32Array(slots);
  for (let q = slot.length - 1; q >= 0; q--) {
    const s = slot[q];
    if (s < 0) throw new RangeError(`sameWindowLinks: row ${q} is in no slot`);
    next[q] = first[s];
    first[s] = q;
    copies[s]++;
  }
  return { next, first, copies };
}
