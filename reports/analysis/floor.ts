/**
 * Why a recommendation's precision floor does not hold, from the numbers the
 * summary keeps: the held-out precision and its 95% Wilson interval. The
 * interval fixes how many rows the predictor flagged (held out), so the
 * sentence can say whether more rows would help and about how many.
 *
 * @module
 */
import type { Interval } from "./summary.ts";
import { wilson } from "./stats.ts";

/** Why the floor does not hold. */
export interface FloorGap {
  /** Rows the pick flagged over all folds (held out), recovered from the interval; null when unknown. */
  flagged: number | null;
  /**
   * Flagged rows at which the same precision would clear the floor with 95%
   * confidence; null when no count would (precision at or below the floor).
   */
  needed: number | null;
  /** The reason in one sentence. */
  sentence: string;
}

/** The Wilson lower end at precision `p` over `n` flagged rows (continuous in n). */
function lowerEnd(p: number, n: number): number {
  return wilson(p * n, n)?.lo ?? 0;
}

/** The smallest n ≥ 1 with `lowerEnd(p, n) ≥ target` (the lower end grows with n for p > 0). */
function smallestCount(p: number, target: number): number {
  let lo = 1;
  let hi = 2;
  while (lowerEnd(p, hi) < target) {
    hi *= 2;
    if (hi > 1e15) return Infinity;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (lowerEnd(p, mid) >= target) hi = mid;
    else lo = mid;
  }
  return lowerEnd(p, lo) >= target ? lo : hi;
}

/**
 * The number of trials whose Wilson interval at proportion `p` has lower end
 * `lo` (the counts behind a summary's interval; null when `p` is 0 or the
 * interval does not determine it).
 */
export function trialsOf(p: number, lo: number): number | null {
  if (!(p > 0) || !(lo < p) || lo < 0) return null;
  if (lo === 0) return null;
  // lowerEnd(p, n) increases with n from below `lo` towards p: bisect on a continuous n.
  let a = 1e-9;
  let b = 1;
  while (lowerEnd(p, b) < lo) {
    b *= 2;
    if (b > 1e15) return null;
  }
  for (let i = 0; i < 200 && b - a > 1e-9 * b; i++) {
    const mid = (a + b) / 2;
    if (lowerEnd(p, mid) < lo) a = mid;
    else b = mid;
  }
  return Math.max(1, Math.round(b));
}

const count = (n: number) => Math.round(n).toLocaleString("en-US");
/** Two significant digits, for an estimate ("about 2,200"). */
const about = (n: number) => count(Number(n.toPrecision(2)));
const f3 = (x: number) => x.toFixed(3);

/**
 * Why the floor `minPrecision` does not hold with 95% confidence for a pick
 * with this held-out precision and interval (`inSample`: its precision on the
 * rows that chose it, when known); null when it holds.
 */
export function floorGap(
  pick: { precision: number; precisionCI: Interval | null; inSample?: { precision: number } },
  minPrecision: number,
): FloorGap | null {
  const p = pick.precision;
  const lo = pick.precisionCI?.lo ?? 0;
  if (lo >= minPrecision) return null;
  const flagged = pick.precisionCI ? trialsOf(p, lo) : null;
  const rows = flagged === null ? "" : ` over its ${count(flagged)} flagged rows`;
  if (p < minPrecision) {
    const chosen = pick.inSample && pick.inSample.precision >= minPrecision
      ? ` (${f3(pick.inSample.precision)} on the rows that chose it)`
      : "";
    return {
      flagged,
      needed: null,
      sentence:
        `Its held-out precision ${f3(p)}${chosen} is itself below ${minPrecision}, so more ` +
        `rows would not make the floor hold; a lower floor or a better predictor would.`,
    };
  }
  if (p === minPrecision) {
    return {
      flagged,
      needed: null,
      sentence: `Its held-out precision equals the floor ${minPrecision}, so no number of rows ` +
        "puts the interval's lower end above it.",
    };
  }
  const needed = smallestCount(p, minPrecision);
  const more = flagged !== null && Number.isFinite(needed)
    ? `; about ${about(needed)} flagged rows (${
      Number((needed / flagged).toPrecision(2))
    }× the rows scored) at this precision would make it hold`
    : "";
  return {
    flagged,
    needed: Number.isFinite(needed) ? needed : null,
    sentence: `The 95% interval${rows} reaches down to ${f3(lo)}, further than the margin of ${
      f3(p - minPrecision)
    } above ${minPrecision}${more}.`,
  };
}
