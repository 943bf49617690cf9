/**
 * When a row is seen in training: its step (row / sequences_per_step: the
 * optimizer step that trains on it; the first checkpoint that has seen it is
 * step + 1), and, for data that passes more than one epoch (the deduplicated
 * Pythia data passes ~1.5), whether the identical scored window comes back as
 * another row and when. Rows with the same window are grouped by the exact
 * window table of window_counts.ts (hash, then tokens compared), in one pass
 * backwards over the rows: time and memory linear in the rows.
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
  const step = new Uint32Array(n);
  const nextRow = new Float64Array(n).fill(-1);
  const nextStep = new Float64Array(n).fill(-1);
  const firstRow = new Uint32Array(n);
  const rowCopies = new Uint32Array(n);
  const seenAt = new Float64Array(table.mask + 1).fill(-1);
  const copies = new Uint32Array(table.mask + 1);
  for (let q = n - 1; q >= 0; q--) {
    const s = table.slot[q];
    step[q] = Math.floor((first + q) / sequencesPerStep);
    if (seenAt[s] >= 0) {
      nextRow[q] = first + seenAt[s];
      nextStep[q] = Math.floor(nextRow[q] / sequencesPerStep);
    }
    seenAt[s] = q;
    copies[s]++;
  }
  for (let q = 0; q < n; q++) {
    const s = table.slot[q];
    firstRow[q] = first + seenAt[s];
    rowCopies[q] = copies[s];
  }
  return { step, nextRow, nextStep, firstRow, rowCopies };
}
