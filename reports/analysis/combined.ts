/**
 * Combined predictors: a logistic regression on standardized per-row
 * features, cross-fitted. The features are the signals of one or more cheap
 * runs within a budget (matched prefix, matches, NLL) and the row features
 * computed from the training data (engine/data/features: window and context
 * counts, step, compressibility, distinct-token share, personal data); the
 * **data-only** predictor uses the row features alone (no model: the floor
 * every cheap run must beat).
 *
 * Cross-fitting uses the analysis's folds (histograms.ts `foldOf`, the same
 * seed and K): for each fold f, the standardization and the coefficients are
 * fitted on the rows of the other folds and the fold's rows get their
 * out-of-fold probability. Those probabilities are binned into a
 * {@link FoldedSignal} (bin 0 = highest probability), so the threshold is
 * chosen and measured by crossfit.ts exactly as for any other signal
 * (`crossFit`, `selectHeldOut`); the rule one deploys is the fit on all rows
 * ({@link fitCombined}).
 *
 * The fit is ridge-penalized IRLS (Newton's method on the penalized
 * log-likelihood; the intercept is not penalized), solved with mathjs
 * `lusolve` as the scaling-law fits are.
 *
 * @module
 */
import { lusolve } from "mathjs";
import { foldOf } from "./histograms.ts";
import type { FoldedSignal } from "./crossfit.ts";

/** Named per-row feature columns (all the same length, one value per row). */
export type Columns = Record<string, ArrayLike<number>>;

/** A fitted logistic model over standardized columns. */
export interface LogisticModel {
  /** Column names, in coefficient order. */
  names: string[];
  /** Training mean and standard deviation of each column (sd 1 for a constant column). */
  mean: number[];
  sd: number[];
  /** Intercept, then one coefficient per standardized column. */
  beta: number[];
  /** Newton iterations used. */
  iterations: number;
}

/** Options of the fit. */
export interface LogisticOptions {
  /** Ridge penalty on the standardized coefficients (default 1e-3 × rows). */
  l2?: number;
  /** Newton iterations at most (default 50). */
  maxIterations?: number;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Non-finite values (NaN NLL of an unscored row) are replaced by the column's training mean. */
function value(v: number, mean: number): number {
  return Number.isFinite(v) ? v : mean;
}

/**
 * Fits P(y = 1 | x) = σ(β₀ + Σ βⱼ zⱼ), z the standardized columns, on the
 * rows `use` (indices into the columns; default all).
 */
export function fitLogistic(
  columns: Columns,
  y: ArrayLike<boolean | number>,
  use?: ArrayLike<number>,
  options: LogisticOptions = {},
): LogisticModel {
  const names = Object.keys(columns);
  const d = names.length;
  const rows = use ?? Array.from({ length: y.length }, (_, i) => i);
  const n = rows.length;
  const mean = new Array<number>(d).fill(0), sd = new Array<number>(d).fill(1);
  names.forEach((name, j) => {
    const c = columns[name];
    let s = 0, m = 0;
    for (let i = 0; i < n; i++) {
      const v = c[rows[i]];
      if (Number.isFinite(v)) {
        s += v;
        m++;
      }
    }
    mean[j] = m > 0 ? s / m : 0;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (value(c[rows[i]], mean[j]) - mean[j]) ** 2;
    const v = Math.sqrt(ss / Math.max(1, n - 1));
    sd[j] = v > 0 ? v : 1;
  });
  const z = names.map((name, j) => {
    const c = columns[name];
    return Float64Array.from(
      { length: n },
      (_, i) => (value(c[rows[i]], mean[j]) - mean[j]) / sd[j],
    );
  });
  const l2 = options.l2 ?? 1e-3 * n;
  const beta = new Array<number>(d + 1).fill(0);
  const maxIter = options.maxIterations ?? 50;
  let it = 0;
  for (; it < maxIter; it++) {
    const grad = new Array<number>(d + 1).fill(0);
    const hess = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
    const x = new Float64Array(d + 1);
    x[0] = 1;
    for (let i = 0; i < n; i++) {
      let eta = beta[0];
      for (let j = 0; j < d; j++) {
        x[j + 1] = z[j][i];
        eta += beta[j + 1] * x[j + 1];
      }
      const p = sigmoid(eta);
      const w = Math.max(p * (1 - p), 1e-12);
      const r = Number(y[rows[i]]) - p;
      for (let a = 0; a <= d; a++) {
        grad[a] += r * x[a];
        for (let b = 0; b <= a; b++) hess[a][b] += w * x[a] * x[b];
      }
    }
    for (let a = 0; a <= d; a++) {
      for (let b = 0; b < a; b++) hess[b][a] = hess[a][b];
      if (a > 0) {
        grad[a] -= l2 * beta[a];
        hess[a][a] += l2;
      }
    }
    hess[0][0] += 1e-9 * n; // an all-one or all-zero label keeps the intercept finite
    const step = (lusolve(hess, grad.map((g) => [g])) as number[][]).map((r) => r[0]);
    let change = 0;
    for (let a = 0; a <= d; a++) {
      beta[a] += step[a];
      change = Math.max(change, Math.abs(step[a]));
    }
    if (change < 1e-8) {
      it++;
      break;
    }
  }
  return { names, mean, sd, beta, iterations: it };
}

/** The model's probability for row `i` of the columns. */
export function predictRow(model: LogisticModel, columns: Columns, i: number): number {
  let eta = model.beta[0];
  model.names.forEach((name, j) => {
    eta += model.beta[j + 1] * (value(columns[name][i], model.mean[j]) - model.mean[j]) /
      model.sd[j];
  });
  return sigmoid(eta);
}

/** Cross-fitting settings: the analysis's folds (`analysis.folds`, `analysis.seed`). */
export interface CombinedSettings {
  folds: number;
  seed: number;
  /** Row index of each element of the columns (the fold is `foldOf(rows[i], seed, folds)`). */
  rows: ArrayLike<number>;
}

/** Out-of-fold probabilities and the per-fold models. */
export interface CrossFitted {
  /** Per element: the probability from the model fitted without its fold. */
  probability: Float64Array;
  /** The model of each fold (fitted on the other folds). */
  models: LogisticModel[];
  /** Fold of each element. */
  fold: Uint8Array;
}

/**
 * Out-of-fold probabilities: each row's probability comes from the model
 * fitted (standardization included) on the rows of the other folds only.
 * With one fold the model is fitted and applied on all rows (in sample).
 */
export function crossFitLogistic(
  columns: Columns,
  y: ArrayLike<boolean | number>,
  s: CombinedSettings,
  options: LogisticOptions = {},
): CrossFitted {
  const n = y.length;
  const fold = Uint8Array.from(
    { length: n },
    (_, i) => (s.folds > 1 ? foldOf(s.rows[i], s.seed, s.folds) : 0),
  );
  const probability = new Float64Array(n);
  const models: LogisticModel[] = [];
  for (let f = 0; f < s.folds; f++) {
    const train: number[] = [];
    for (let i = 0; i < n; i++) if (s.folds === 1 || fold[i] !== f) train.push(i);
    const model = fitLogistic(columns, y, train, options);
    models.push(model);
    for (let i = 0; i < n; i++) if (fold[i] === f) probability[i] = predictRow(model, columns, i);
  }
  return { probability, models, fold };
}

/** Bins of a probability signal (bin b holds probabilities in ((B − b − 1)/B, (B − b)/B]). */
export const PROBABILITY_BINS = 1000;

/**
 * Out-of-fold probabilities as a {@link FoldedSignal} for crossfit.ts: bin 0
 * the most probable, thresholds the probability at each bin's lower edge
 * ("predict memorized when p > threshold"). `positives` is recall's
 * denominator per fold (hist `foldPositives`); by default the memorized rows
 * of each fold among these rows.
 */
export function probabilityFolded(
  cf: CrossFitted,
  y: ArrayLike<boolean | number>,
  folds: number,
  positives?: readonly number[],
): FoldedSignal {
  const B = PROBABILITY_BINS;
  const pos = Array.from({ length: folds }, () => new Float64Array(B));
  const neg = Array.from({ length: folds }, () => new Float64Array(B));
  for (let i = 0; i < y.length; i++) {
    const b = Math.min(B - 1, Math.max(0, Math.floor((1 - cf.probability[i]) * B)));
    (Number(y[i]) ? pos : neg)[cf.fold[i]][b]++;
  }
  return {
    pos,
    neg,
    positives: positives ? [...positives] : pos.map((p) => p.reduce((a, v) => a + v, 0)),
    thresholds: Array.from({ length: B }, (_, b) => (B - b - 1) / B),
    fixed: false,
  };
}

/** The deployed rule: the model fitted on all rows. */
export function fitCombined(
  columns: Columns,
  y: ArrayLike<boolean | number>,
  options: LogisticOptions = {},
): LogisticModel {
  return fitLogistic(columns, y, undefined, options);
}

/** Per-row data features (engine/data/features) as model columns. */
export interface RowFeatureValues {
  /** Occurrences of the scored window anywhere in the data (≥ 1). */
  windowCount?: ArrayLike<number>;
  /** Occurrences of the context alone. */
  contextCount?: ArrayLike<number>;
  /** Step that trains on the row. */
  step?: ArrayLike<number>;
  /** Compressed / raw size of the window. */
  compression?: ArrayLike<number>;
  /** Distinct tokens / window tokens. */
  distinct?: ArrayLike<number>;
}

/**
 * The data-only columns: log counts (memorization grows log-linearly with
 * duplication: Carlini et al. 2022), the step (recency), compressibility
 * and the distinct-token share.
 */
export function dataColumns(f: RowFeatureValues): Columns {
  const out: Columns = {};
  const log = (c: ArrayLike<number>) => Float64Array.from(c, (v) => Math.log(Math.max(1, v)));
  if (f.windowCount) out.logWindowCount = log(f.windowCount);
  if (f.contextCount) out.logContextCount = log(f.contextCount);
  if (f.step) out.step = Float64Array.from(f.step);
  if (f.compression) out.compression = Float64Array.from(f.compression);
  if (f.distinct) out.distinct = Float64Array.from(f.distinct);
  return out;
}

/** A cheap run's per-row signals (aligned with the rows of the columns). */
export interface RunSignals {
  /** `model@step`, used in the column names. */
  name: string;
  /** Compute of the run (FLOPs). */
  compute: number;
  prefix?: ArrayLike<number>;
  matches?: ArrayLike<number>;
  nll?: ArrayLike<number>;
}

/** The columns of cheap runs' signals (`<name>.prefix`, `.matches`, `.nll`). */
export function runColumns(runs: readonly RunSignals[]): Columns {
  const out: Columns = {};
  for (const r of runs) {
    if (r.prefix) out[`${r.name}.prefix`] = r.prefix;
    if (r.matches) out[`${r.name}.matches`] = r.matches;
    if (r.nll) out[`${r.name}.nll`] = r.nll;
  }
  return out;
}

/**
 * The cheap runs a combined predictor uses within a budget: the most
 * expensive run that fits, then the next most expensive ones while the sum
 * of their compute (plus `featureCompute`, the measured cost of the row
 * features) stays within the budget. Returns indices into `runs`.
 */
export function runsWithinBudget(
  runs: readonly { compute: number }[],
  budget: number,
  featureCompute = 0,
): number[] {
  const order = runs.map((_, i) => i).sort((a, b) => runs[b].compute - runs[a].compute);
  const out: number[] = [];
  let spent = featureCompute;
  for (const i of order) {
    if (spent + runs[i].compute <= budget * (1 + 1e-12)) {
      out.push(i);
      spent += runs[i].compute;
    }
  }
  return out;
}
