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
 * `lusolve` as the scaling-law fits are. Rows may carry weights (a sample's
 * inverse inclusion probabilities, {@link sampleRates}): the weighted
 * log-likelihood, means, deviations and penalty (1e-3 × the summed weight)
 * are unbiased estimates of the full rows' ones, so a model fitted on a
 * bounded sample of the Pile's rows stays calibrated; with unit weights every
 * sum is the unweighted one, bit for bit.
 *
 * @module
 */
import { lusolve } from "mathjs";
import { hash32 } from "../../engine/random.ts";
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
  /** Weight of each element of the columns (default 1 each). */
  weights?: ArrayLike<number>;
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
  const wt = options.weights;
  const w = wt ? Float64Array.from({ length: n }, (_, i) => wt[rows[i]]) : null;
  let total = n;
  if (w) total = w.reduce((a, v) => a + v, 0);
  const { mean, sd } = standardization(names.map((name) => columns[name]), rows, w, total);
  const z = names.map((name, j) => {
    const c = columns[name];
    return Float64Array.from(
      { length: n },
      (_, i) => (value(c[rows[i]], mean[j]) - mean[j]) / sd[j],
    );
  });
  const label = Float64Array.from({ length: n }, (_, i) => Number(y[rows[i]]));
  const l2 = options.l2 ?? 1e-3 * total;
  const beta = new Array<number>(d + 1).fill(0);
  const maxIter = options.maxIterations ?? 50;
  let it = 0;
  for (; it < maxIter; it++) {
    const step = newtonStep(z, label, w, beta, l2, total);
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

/** Weighted mean and standard deviation of each column over `rows` (sd 1 for a constant column). */
function standardization(
  cols: ArrayLike<number>[],
  rows: ArrayLike<number>,
  w: Float64Array | null,
  total: number,
): { mean: number[]; sd: number[] } {
  const n = rows.length;
  const mean = new Array<number>(cols.length).fill(0), sd = new Array<number>(cols.length).fill(1);
  cols.forEach((c, j) => {
    let s = 0, m = 0;
    for (let i = 0; i < n; i++) {
      const v = c[rows[i]];
      if (Number.isFinite(v)) {
        s += w ? w[i] * v : v;
        m += w ? w[i] : 1;
      }
    }
    mean[j] = m > 0 ? s / m : 0;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const dv = (value(c[rows[i]], mean[j]) - mean[j]) ** 2;
      ss += w ? w[i] * dv : dv;
    }
    const v = Math.sqrt(ss / Math.max(1, total - 1));
    sd[j] = v > 0 ? v : 1;
  });
  return { mean, sd };
}

/** One Newton step of the penalized, weighted log-likelihood at `beta`. */
function newtonStep(
  z: Float64Array[],
  label: Float64Array,
  w: Float64Array | null,
  beta: number[],
  l2: number,
  total: number,
): number[] {
  const d = z.length, n = label.length;
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
    let h = Math.max(p * (1 - p), 1e-12);
    let r = label[i] - p;
    if (w) {
      h *= w[i];
      r *= w[i];
    }
    for (let a = 0; a <= d; a++) {
      grad[a] += r * x[a];
      for (let b = 0; b <= a; b++) hess[a][b] += h * x[a] * x[b];
    }
  }
  for (let a = 0; a <= d; a++) {
    for (let b = 0; b < a; b++) hess[b][a] = hess[a][b];
    if (a > 0) {
      grad[a] -= l2 * beta[a];
      hess[a][a] += l2;
    }
  }
  hess[0][0] += 1e-9 * total; // an all-one or all-zero label keeps the intercept finite
  return (lusolve(hess, grad.map((g) => [g])) as number[][]).map((r) => r[0]);
}

/**
 * The model's probability as a function of an element index of `columns`
 * (the columns looked up once: the application to every row of a chunk).
 * Equal to {@link predictRow}, operation for operation.
 */
export function predictor(model: LogisticModel, columns: Columns): (i: number) => number {
  const cols = model.names.map((name) => columns[name]);
  const { beta, mean, sd } = model;
  return (i) => {
    let eta = beta[0];
    for (let j = 0; j < cols.length; j++) {
      eta += beta[j + 1] * (value(cols[j][i], mean[j]) - mean[j]) / sd[j];
    }
    return sigmoid(eta);
  };
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
  const fold = foldsOf(s);
  const probability = new Float64Array(n);
  const models = crossFitModels(columns, y, s, options);
  for (let i = 0; i < n; i++) probability[i] = predictRow(models[fold[i]], columns, i);
  return { probability, models, fold };
}

/** The fold of each element of the columns (0 with one fold). */
function foldsOf(s: CombinedSettings): Uint8Array {
  return Uint8Array.from(
    { length: s.rows.length },
    (_, i) => (s.folds > 1 ? foldOf(s.rows[i], s.seed, s.folds) : 0),
  );
}

/**
 * The model of each fold, fitted (standardization included) on the elements
 * of the other folds (with one fold: on all of them).
 */
export function crossFitModels(
  columns: Columns,
  y: ArrayLike<boolean | number>,
  s: CombinedSettings,
  options: LogisticOptions = {},
): LogisticModel[] {
  const fold = foldsOf(s);
  const models: LogisticModel[] = [];
  for (let f = 0; f < s.folds; f++) {
    const train: number[] = [];
    for (let i = 0; i < fold.length; i++) if (s.folds === 1 || fold[i] !== f) train.push(i);
    models.push(fitLogistic(columns, y, train, options));
  }
  return models;
}

/** Bins of a probability signal (bin b holds probabilities in ((B − b − 1)/B, (B − b)/B]). */
export const PROBABILITY_BINS = 1000;

/** Probability bin of p (bin 0 the most probable). */
export function probabilityBin(p: number): number {
  const B = PROBABILITY_BINS;
  return Math.min(B - 1, Math.max(0, Math.floor((1 - p) * B)));
}

/**
 * Out-of-fold probabilities counted row by row into per-fold histograms of
 * memorized and other rows: what {@link probabilityFolded} returns, without
 * holding a probability per row (the application over all rows, chunk by chunk).
 */
export class FoldedCounter {
  readonly pos: Float64Array[];
  readonly neg: Float64Array[];
  constructor(readonly folds: number) {
    this.pos = Array.from({ length: folds }, () => new Float64Array(PROBABILITY_BINS));
    this.neg = Array.from({ length: folds }, () => new Float64Array(PROBABILITY_BINS));
  }
  /** Counts a row of fold `fold` with probability p and label y. */
  add(fold: number, p: number, y: boolean | number): void {
    (Number(y) ? this.pos : this.neg)[fold][probabilityBin(p)]++;
  }
  /** The histograms as a signal; `positives`: recall's denominator per fold (default: counted). */
  folded(positives?: readonly number[]): FoldedSignal {
    const B = PROBABILITY_BINS;
    return {
      pos: this.pos,
      neg: this.neg,
      positives: positives ? [...positives] : this.pos.map((p) => p.reduce((a, v) => a + v, 0)),
      thresholds: Array.from({ length: B }, (_, b) => (B - b - 1) / B),
      fixed: false,
    };
  }
}

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
  const counter = new FoldedCounter(folds);
  for (let i = 0; i < y.length; i++) counter.add(cf.fold[i], cf.probability[i], y[i]);
  return counter.folded(positives);
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

/** Rows a combined or data-only model is fitted on at most (the Pile has 146M per checkpoint). */
export const FEATURE_SAMPLE_ROWS = 1_000_000;

/** Inclusion probabilities of the fitting sample: of the memorized rows, and of the others. */
export interface SampleRates {
  memorized: number;
  other: number;
}

/**
 * The rates of a sample of at most `cap` of `rows` rows (`memorized` of them
 * memorized by the target): every row when they fit; otherwise the memorized
 * rows (the rare class) kept whole up to half the cap, the others filling
 * the rest. A row in the sample weighs 1 / its class's rate.
 */
export function sampleRates(rows: number, memorized: number, cap: number): SampleRates {
  if (rows <= cap) return { memorized: 1, other: 1 };
  const pos = Math.min(1, cap / 2 / Math.max(1, memorized));
  const other = Math.min(1, (cap - pos * memorized) / Math.max(1, rows - memorized));
  return { memorized: pos, other };
}

/** Seed offset of the sample's row hash (independent of the folds' hash of the same seed). */
const SAMPLE_SALT = 0x5a3d1;

/**
 * Whether a row is in the fitting sample: a seeded hash of its index (the
 * folds' hash under another key) below its class's rate; deterministic.
 */
export function inSample(row: number, memorized: boolean, rates: SampleRates, seed: number) {
  const q = memorized ? rates.memorized : rates.other;
  return q >= 1 || hash32(row, seed + SAMPLE_SALT) < q * 4294967296;
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
