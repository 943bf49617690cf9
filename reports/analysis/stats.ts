/**
 * Small statistics used by the analysis: Poisson sampling for the Poisson
 * bootstrap (from a seeded engine/random.ts stream), Wilson score intervals
 * and quantiles.
 *
 * @module
 */
import type { Random } from "../../engine/random.ts";
import type { Interval } from "./summary.ts";

/** log(k!) by summation for small k and Stirling's series beyond. */
function logFactorial(k: number): number {
  if (k < 16) {
    let s = 0;
    for (let i = 2; i <= k; i++) s += Math.log(i);
    return s;
  }
  const x = k + 1;
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x) -
    1 / (360 * x * x * x);
}

/**
 * Draws from Poisson(mean): inversion for mean < 10, otherwise Hörmann's
 * transformed rejection (PTRS), exact for every mean.
 */
export function poisson(mean: number, random: Random): number {
  if (mean <= 0) return 0;
  if (mean < 10) {
    let k = 0;
    let p = Math.exp(-mean);
    let cdf = p;
    const u = random();
    while (u > cdf && k < 1000) {
      k++;
      p *= mean / k;
      cdf += p;
    }
    return k;
  }
  const slam = Math.sqrt(mean);
  const logLam = Math.log(mean);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invAlpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = random() - 0.5;
    const v = random();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor((2 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (
      Math.log(v) + Math.log(invAlpha) - Math.log(a / (us * us) + b) <=
        -mean + k * logLam - logFactorial(k)
    ) return k;
  }
}

/** Two-sided standard normal quantile for 95% intervals. */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval of a binomial proportion `successes / trials`
 * (95% by default); null when there are no trials.
 */
export function wilson(successes: number, trials: number, z: number = Z95): Interval | null {
  if (trials <= 0) return null;
  const p = successes / trials;
  const z2 = z * z;
  const denom = 1 + z2 / trials;
  const center = (p + z2 / (2 * trials)) / denom;
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  return { lo: Math.max(0, center - half), hi: Math.min(1, center + half) };
}

/** Linear-interpolated quantile (type 7) of unsorted finite values; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  const v = values.filter(Number.isFinite).sort((x, y) => x - y);
  if (v.length === 0) return NaN;
  const h = (v.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return v[lo] + (h - lo) * (v[hi] - v[lo]);
}

/** Pearson correlation from running sums; null when a variance is zero or n < 2. */
export function pearsonFromSums(
  n: number,
  sx: number,
  sy: number,
  sxx: number,
  syy: number,
  sxy: number,
): number | null {
  if (n < 2) return null;
  const cov = sxy - (sx * sy) / n;
  const vx = sxx - (sx * sx) / n;
  const vy = syy - (sy * sy) / n;
  if (vx <= 0 || vy <= 0) return null;
  return Math.max(-1, Math.min(1, cov / Math.sqrt(vx * vy)));
}

/** A fraction as a percentage with two to three significant digits. */
export function percent(v: number): string {
  const x = 100 * v;
  if (x >= 10 || x === 0) return `${x.toFixed(0)}%`;
  if (x >= 1) return `${x.toFixed(1)}%`;
  return `${x.toPrecision(2)}%`;
}
