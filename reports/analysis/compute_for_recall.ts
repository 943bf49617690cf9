/**
 * The inverse question: how much compute is needed to reach recall R at the
 * precision floor. From a fitted recall law (and the family's precision law,
 * when fitted) it is the smallest compute within the law's limits where the
 * recall law reaches R while the precision law stays ≥ the floor; each
 * bootstrap refit is inverted the same way, and the 95% interval is taken
 * over those inversions (a refit that never reaches R within the limits
 * counts as "more than the family can spend"). From the measured frontier it
 * is the smallest budget whose held-out recommendation reaches R.
 *
 * @module
 */
import type { Form } from "./scaling.ts";
import type { FittedLaw } from "./families.ts";

/** A recall law and, optionally, the same family's precision law, as forms with parameters. */
export interface LawPair {
  recall: { form: Form; params: readonly number[] };
  precision?: { form: Form; params: readonly number[] } | null;
}

const GRID = 400;

/**
 * The smallest x = log10(C / C0) in [x0, x1] with recall(x) ≥ R and
 * precision(x) ≥ floor, or null when no x in the range qualifies. Scans a
 * grid of {@link GRID} steps, then bisects the first crossing to 1e-10.
 */
export function invertLaw(
  law: LawPair,
  recall: number,
  floor: number,
  x0: number,
  x1: number,
): number | null {
  const ok = (x: number) =>
    law.recall.form.predict(law.recall.params, x) >= recall &&
    (!law.precision || law.precision.form.predict(law.precision.params, x) >= floor);
  if (ok(x0)) return x0;
  let prev = x0;
  for (let g = 1; g <= GRID; g++) {
    const x = x0 + ((x1 - x0) * g) / GRID;
    if (ok(x)) {
      let lo = prev, hi = x;
      while (hi - lo > 1e-10) {
        const mid = (lo + hi) / 2;
        if (ok(mid)) hi = mid;
        else lo = mid;
      }
      return hi;
    }
    prev = x;
  }
  return null;
}

/** Compute needed for a recall, with a 95% interval; null ends mean "beyond the range". */
export interface ComputeNeeded {
  /** FLOPs at the point estimate (null: not reached within the range). */
  compute: number | null;
  /** 2.5% quantile of the bootstrap inversions (null: beyond the range). */
  lo: number | null;
  /** 97.5% quantile (null: beyond the range). */
  hi: number | null;
  /** Fraction of bootstrap refits that reach R within the range (null without resamples). */
  reached: number | null;
}

/** Type-7 quantile of values that may be +Infinity (returned as is). */
function quantileInf(values: number[], q: number): number {
  const v = [...values].sort((a, b) => a - b);
  const h = (v.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  if (!Number.isFinite(v[hi])) return v[hi] === v[lo] || h === lo ? v[lo] : Infinity;
  return v[lo] + (h - lo) * (v[hi] - v[lo]);
}

/**
 * The compute a family needs to reach `recall` at precision ≥ floor by its
 * fitted laws, within the recall law's limits (a decade below its smallest
 * point up to what the family can spend), with the 95% interval of the
 * bootstrap refits (a recall refit pairs with the precision refit of the
 * same resample when there is one, else with the precision law itself).
 */
export function computeForRecall(
  recallLaw: FittedLaw,
  precisionLaw: FittedLaw | null,
  recall: number,
  floor: number,
  c0: number,
): ComputeNeeded {
  const x0 = Math.log10(recallLaw.limits[0] / c0);
  const x1 = Math.log10(recallLaw.limits[1] / c0);
  const toC = (x: number | null) => (x === null ? null : c0 * Math.pow(10, x));
  const point = invertLaw(
    {
      recall: recallLaw,
      precision: precisionLaw,
    },
    recall,
    floor,
    x0,
    x1,
  );
  if (recallLaw.boot.length === 0) {
    const c = toC(point);
    return { compute: c, lo: c, hi: c, reached: null };
  }
  const precByResample = new Map<number, readonly number[]>();
  if (precisionLaw) {
    precisionLaw.boot.forEach((p, i) => precByResample.set(precisionLaw.resampleOf?.[i] ?? i, p));
  }
  const xs = recallLaw.boot.map((params, i) => {
    const b = recallLaw.resampleOf?.[i] ?? i;
    const prec = precisionLaw
      ? { form: precisionLaw.form, params: precByResample.get(b) ?? precisionLaw.params }
      : null;
    return invertLaw(
      { recall: { form: recallLaw.form, params }, precision: prec },
      recall,
      floor,
      x0,
      x1,
    ) ??
      Infinity;
  });
  const lo = quantileInf(xs, 0.025), hi = quantileInf(xs, 0.975);
  return {
    compute: toC(point),
    lo: Number.isFinite(lo) ? toC(lo) : null,
    hi: Number.isFinite(hi) ? toC(hi) : null,
    reached: xs.filter(Number.isFinite).length / xs.length,
  };
}

/** A point of the measured frontier: a budget and the held-out recall reached there. */
export interface FrontierStep {
  budget: number;
  recall: number;
  recallLo: number;
  recallHi: number;
}

/**
 * The smallest measured budget whose held-out recall reaches R (point), and
 * the interval from the recall interval: the first budget whose upper end
 * reaches R (lo) and the first whose lower end does (hi). Steps must be in
 * ascending budget order; null: not reached by any measured budget.
 */
export function measuredComputeForRecall(
  steps: readonly FrontierStep[],
  recall: number,
): { compute: number | null; lo: number | null; hi: number | null } {
  const first = (ok: (s: FrontierStep) => boolean) => steps.find(ok)?.budget ?? null;
  return {
    compute: first((s) => s.recall >= recall),
    lo: first((s) => s.recallHi >= recall),
    hi: first((s) => s.recallLo >= recall),
  };
}
