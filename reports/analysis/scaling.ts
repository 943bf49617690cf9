/**
 * Scaling laws of a metric (recall or precision) against compute: candidate
 * functional forms, a Levenberg–Marquardt least-squares solver with analytic
 * Jacobians (mathjs solves the damped normal equations), leave-one-out
 * selection between forms, and bootstrap refits for confidence bands.
 *
 * Compute enters as x = log10(C / C0) with C0 a reference compute (the
 * target's), so parameters stay O(1). Fits are unweighted least squares in
 * y (every point counts equally); the row-level uncertainty enters through
 * the bootstrap refits, not through weights.
 *
 * @module
 */
import { lusolve } from "mathjs";

/** A candidate functional form y = f(p, x), x = log10(C / C0). */
export interface Form {
  name: string;
  params: string[];
  /** The model's value at x. */
  predict(p: readonly number[], x: number): number;
  /** ∂f/∂p at x (analytic). */
  jacobian(p: readonly number[], x: number): number[];
  /** Starting points for the solver, from the data. */
  starts(xs: readonly number[], ys: readonly number[]): number[][];
  /** Human-readable formula with the fitted values (C in FLOPs). */
  formula(p: readonly number[], c0: number): string;
}

const LN10 = Math.LN10;
const sig = (z: number) => 1 / (1 + Math.exp(-z));
const fmt = (v: number) => Number(v.toPrecision(4)).toString();
const c0s = (c0: number) => c0.toExponential(2);
/** `+ v` or `− |v|`: a fitted term added to what precedes it. */
const plus = (v: number) => (v < 0 ? `− ${fmt(-v)}` : `+ ${fmt(v)}`);
/** The exponent `−α` written with one sign (a negative α reads as a positive exponent). */
const negPow = (a: number) => (a < 0 ? fmt(-a) : `−${fmt(a)}`);

/** Ordinary least squares of y on x: [intercept, slope] (slope 0 when x is constant). */
export function linearFit(xs: readonly number[], ys: readonly number[]): [number, number] {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const b = sxx > 0 ? sxy / sxx : 0;
  return [my - b * mx, b];
}

/** y = a + b·log10(C/C0). */
export const linearLog: Form = {
  name: "linear-log",
  params: ["a", "b"],
  predict: (p, x) => p[0] + p[1] * x,
  jacobian: (_p, x) => [1, x],
  starts: (xs, ys) => [linearFit(xs, ys)],
  formula: (p, c0) => `y = ${fmt(p[0])} ${plus(p[1])}·log10(C/${c0s(c0)})`,
};

/** logit(y) = a + b·log10(C/C0), fitted in y (not in logit space). */
export const logitLinearLog: Form = {
  name: "logit-linear-log",
  params: ["a", "b"],
  predict: (p, x) => sig(p[0] + p[1] * x),
  jacobian: (p, x) => {
    const y = sig(p[0] + p[1] * x);
    const d = y * (1 - y);
    return [d, d * x];
  },
  starts: (xs, ys) => {
    const z = ys.map((y) => {
      const c = Math.min(1 - 1e-4, Math.max(1e-4, y));
      return Math.log(c / (1 - c));
    });
    return [linearFit(xs, z), [0, 1]];
  },
  formula: (p, c0) => `logit(y) = ${fmt(p[0])} ${plus(p[1])}·log10(C/${c0s(c0)})`,
};

const ALPHAS = Array.from({ length: 40 }, (_, i) => 0.02 * Math.pow(1.16, i));

/** 1 − y = A·(C/C0)^(−α): recall saturating at 1 as compute grows. */
export const saturatingPower: Form = {
  name: "saturating-power",
  params: ["A", "alpha"],
  predict: (p, x) => 1 - p[0] * Math.exp(-p[1] * x * LN10),
  jacobian: (p, x) => {
    const u = Math.exp(-p[1] * x * LN10);
    return [-u, p[0] * u * x * LN10];
  },
  // Variable projection over a grid of α: A is linear given α.
  starts: (xs, ys) => {
    const scored = ALPHAS.map((alpha) => {
      let szu = 0, suu = 0;
      const u = xs.map((x) => Math.exp(-alpha * x * LN10));
      for (let i = 0; i < xs.length; i++) {
        szu += (1 - ys[i]) * u[i];
        suu += u[i] * u[i];
      }
      const a = suu > 0 ? szu / suu : 0;
      let rss = 0;
      for (let i = 0; i < xs.length; i++) rss += (1 - ys[i] - a * u[i]) ** 2;
      return { p: [a, alpha], rss };
    }).sort((s, t) => s.rss - t.rss);
    return scored.slice(0, 2).map((s) => s.p);
  },
  formula: (p, c0) => `1 − y = ${fmt(p[0])}·(C/${c0s(c0)})^(${negPow(p[1])})`,
};

/** 1 − y = E + A·(C/C0)^(−α): saturating at 1 − E. */
export const saturatingPowerFloor: Form = {
  name: "saturating-power-floor",
  params: ["A", "alpha", "E"],
  predict: (p, x) => 1 - p[2] - p[0] * Math.exp(-p[1] * x * LN10),
  jacobian: (p, x) => {
    const u = Math.exp(-p[1] * x * LN10);
    return [-u, p[0] * u * x * LN10, -1];
  },
  starts: (xs, ys) => {
    const scored = ALPHAS.map((alpha) => {
      const u = xs.map((x) => Math.exp(-alpha * x * LN10));
      const [e, a] = linearFit(u, ys.map((y) => 1 - y));
      let rss = 0;
      for (let i = 0; i < xs.length; i++) rss += (1 - ys[i] - e - a * u[i]) ** 2;
      return { p: [a, alpha, e], rss };
    }).sort((s, t) => s.rss - t.rss);
    return scored.slice(0, 2).map((s) => s.p);
  },
  formula: (p, c0) => `1 − y = ${fmt(p[2])} ${plus(p[0])}·(C/${c0s(c0)})^(${negPow(p[1])})`,
};

/** Forms tried for recall. */
export const RECALL_FORMS: Form[] = [
  linearLog,
  logitLinearLog,
  saturatingPower,
  saturatingPowerFloor,
];
/** Forms tried for precision (no saturating form: precision need not approach 1). */
export const PRECISION_FORMS: Form[] = [linearLog, logitLinearLog];

/** Stopping rules of the solver. */
export interface SolverOptions {
  /** Stop when ‖δ‖ ≤ xtol·(‖p‖ + xtol). */
  xtol?: number;
  /** Stop when max |Jᵀr| ≤ gtol. */
  gtol?: number;
  /** Stop when an accepted step reduces the RSS by less than ftol relatively. */
  ftol?: number;
  maxIterations?: number;
}

/** A solver result. */
export interface Solution {
  params: number[];
  rss: number;
  converged: boolean;
  iterations: number;
}

function rssOf(form: Form, p: readonly number[], xs: readonly number[], ys: readonly number[]) {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (ys[i] - form.predict(p, xs[i])) ** 2;
  return s;
}

/**
 * Levenberg–Marquardt with Marquardt's diagonal scaling: solves
 * (JᵀJ + λ·diag(JᵀJ))·δ = Jᵀr, accepts δ when the RSS drops (λ /= 3),
 * otherwise raises λ (×4). Converged when a step-size, gradient or
 * relative-reduction rule holds.
 */
export function levenbergMarquardt(
  form: Form,
  xs: readonly number[],
  ys: readonly number[],
  start: readonly number[],
  opts: SolverOptions = {},
): Solution {
  const { xtol = 1e-10, gtol = 1e-12, ftol = 1e-14, maxIterations = 200 } = opts;
  const k = start.length;
  let p = [...start];
  let rss = rssOf(form, p, xs, ys);
  let lambda = 1e-3;
  for (let it = 1; it <= maxIterations; it++) {
    const jtj = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const jtr = new Array<number>(k).fill(0);
    for (let i = 0; i < xs.length; i++) {
      const j = form.jacobian(p, xs[i]);
      const r = ys[i] - form.predict(p, xs[i]);
      for (let a = 0; a < k; a++) {
        jtr[a] += j[a] * r;
        for (let b = 0; b < k; b++) jtj[a][b] += j[a] * j[b];
      }
    }
    if (Math.max(...jtr.map(Math.abs)) <= gtol) {
      return { params: p, rss, converged: true, iterations: it };
    }
    let accepted = false;
    while (lambda < 1e16) {
      const m = jtj.map((row, a) =>
        row.map((v, b) => (a === b ? v + lambda * Math.max(v, 1e-12) : v))
      );
      let delta: number[];
      try {
        delta = (lusolve(m, jtr) as number[][]).map((r) => r[0]);
      } catch (e) {
        // A singular system: damp more and retry.
        if (!(e instanceof Error && /singular/.test(e.message))) throw e;
        lambda *= 4;
        continue;
      }
      const next = p.map((v, a) => v + delta[a]);
      const nextRss = rssOf(form, next, xs, ys);
      if (Number.isFinite(nextRss) && nextRss <= rss) {
        const stepNorm = Math.hypot(...delta);
        const pNorm = Math.hypot(...p);
        const reduction = rss > 0 ? (rss - nextRss) / rss : 0;
        p = next;
        rss = nextRss;
        lambda = Math.max(lambda / 3, 1e-12);
        accepted = true;
        if (stepNorm <= xtol * (pNorm + xtol) || reduction < ftol || rss === 0) {
          return { params: p, rss, converged: true, iterations: it };
        }
        break;
      }
      lambda *= 4;
    }
    if (!accepted) {
      // No descent direction left: at a (local) minimum up to rounding.
      return { params: p, rss, converged: true, iterations: it };
    }
  }
  return { params: p, rss, converged: false, iterations: maxIterations };
}

/** Best solution over the form's starting points (and `extraStarts`), or null when none is finite. */
export function fitForm(
  form: Form,
  xs: readonly number[],
  ys: readonly number[],
  extraStarts: number[][] = [],
): Solution | null {
  if (xs.length < form.params.length) return null;
  let best: Solution | null = null;
  for (const s of [...extraStarts, ...form.starts(xs, ys)]) {
    if (!s.every(Number.isFinite)) continue;
    const sol = levenbergMarquardt(form, xs, ys, s);
    if (!Number.isFinite(sol.rss) || !sol.params.every(Number.isFinite)) continue;
    if (best === null || sol.rss < best.rss - 1e-15) best = sol;
  }
  return best;
}

/**
 * Leave-one-out root mean squared prediction error: each point predicted by
 * a fit to the others (null when the others are fewer than the parameters).
 */
export function looRmse(form: Form, xs: readonly number[], ys: readonly number[]): number | null {
  if (xs.length - 1 < form.params.length || xs.length < 3) return null;
  let s = 0;
  for (let i = 0; i < xs.length; i++) {
    const ox = xs.filter((_, j) => j !== i);
    const oy = ys.filter((_, j) => j !== i);
    const fit = fitForm(form, ox, oy);
    if (fit === null) return null;
    s += (ys[i] - form.predict(fit.params, xs[i])) ** 2;
  }
  return Math.sqrt(s / xs.length);
}

/** One family's points and its fits, with what the bootstrap needs. */
export interface FamilyFitResult {
  fits: {
    form: Form;
    params: number[];
    rmse: number;
    looRmse: number | null;
    converged: boolean;
  }[];
  /** Lowest leave-one-out error first; null when fewer than 3 points or nothing fitted. */
  chosen: { form: Form; params: number[] } | null;
}

/**
 * Fits every form to (x, y) points (x = log10(C/C0)) and orders them by
 * leave-one-out RMSE (forms without a LOO error last, then by RMSE).
 * Fewer than 3 points: no fit.
 */
export function fitFamily(
  xs: readonly number[],
  ys: readonly number[],
  forms: readonly Form[],
): FamilyFitResult {
  if (xs.length < 3) return { fits: [], chosen: null };
  const fits = [];
  for (const form of forms) {
    const sol = fitForm(form, xs, ys);
    if (sol === null) continue;
    fits.push({
      form,
      params: sol.params,
      rmse: Math.sqrt(sol.rss / xs.length),
      looRmse: looRmse(form, xs, ys),
      converged: sol.converged,
    });
  }
  fits.sort((a, b) => (a.looRmse ?? Infinity) - (b.looRmse ?? Infinity) || a.rmse - b.rmse);
  return { fits, chosen: fits.length > 0 ? { form: fits[0].form, params: fits[0].params } : null };
}

/** Refits a form from a known good start (for bootstrap resamples); null when it fails. */
export function refit(
  form: Form,
  xs: readonly number[],
  ys: readonly number[],
  start: readonly number[],
): number[] | null {
  const sol = levenbergMarquardt(form, xs, ys, start, { maxIterations: 60 });
  return Number.isFinite(sol.rss) && sol.params.every(Number.isFinite) ? sol.params : null;
}
