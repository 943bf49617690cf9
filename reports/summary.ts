/**
 * The schema of `summary.json`: every number the report shows, machine
 * readable. The analysis (reports/analysis.ts) produces a {@link Summary};
 * the HTML report and `predictors.csv` are rendered from it alone.
 *
 * Conventions: rates and fractions are in [0, 1]; `null` means "undefined"
 * (for example precision with no positive prediction); compute is in FLOPs;
 * intervals are 95% unless stated.
 *
 * @module
 */

/** Bump when a field changes meaning or is removed. */
export const SUMMARY_SCHEMA_VERSION = 1;

/** A two-sided interval. */
export interface Interval {
  lo: number;
  hi: number;
}

/** A (model, step) run of the suite. */
export interface PredictorId {
  model: string;
  step: number;
}

/** One row of the predictor table: a cheap run's binary memorization as a prediction of the target's. */
export interface PredictorRow extends PredictorId {
  /** Whether `step` is the model's last checkpoint. */
  final: boolean;
  /** Parameter count used for compute. */
  parameters: number;
  /** Rows scored by both predictor and target. */
  rowsCompared: number;
  /** rowsCompared / rows scored by the target. */
  coverage: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  precision: number | null;
  /** Wilson score interval. */
  precisionCI: Interval | null;
  recall: number | null;
  recallCI: Interval | null;
  f1: number | null;
  /** Fraction of compared rows memorized by the predictor. */
  predictorRate: number;
  /** Fraction of compared rows memorized by the target. */
  targetRate: number;
  /** C = 6 · N · D, D = step · sequencesPerStep · tokensPerSequence. */
  compute: number;
  /** compute / target's compute. */
  computeFraction: number;
}

/** A point of a precision–recall curve of a thresholded continuous signal. */
export interface CurvePoint {
  /** Predict "memorized" when the signal is ≥ threshold (for `nll`: ≤ threshold). */
  threshold: number;
  precision: number | null;
  recall: number;
}

/** A cheap run's continuous signal as a thresholded predictor. */
export interface ThresholdCurve extends PredictorId {
  signal: "score" | "prefix" | "nll";
  points: CurvePoint[];
  /** Area under the precision–recall curve (average precision). */
  averagePrecision: number | null;
  /** Best recall at precision ≥ the binary predictor's precision (null when unreachable). */
  recallAtBinaryPrecision: number | null;
  /** Threshold maximizing recall at precision ≥ the experiment's minimum precision. */
  best: CurvePoint | null;
}

/** A candidate functional form fitted to one family's points. */
export interface FormFit {
  /** e.g. `linear-log`, `logit-linear-log`, `saturating-power`. */
  form: string;
  /** Human-readable formula with fitted values. */
  formula: string;
  params: Record<string, number>;
  /** Root mean squared error on the fitted points. */
  rmse: number;
  /** Leave-one-out root mean squared prediction error (null with too few points). */
  looRmse: number | null;
  converged: boolean;
}

/** A scaling law of one metric over compute for one family of predictors. */
export interface ScalingFit {
  /** e.g. `sizes (final step)`, `checkpoints of <target model>`, `checkpoints of <model>`, `all`. */
  family: string;
  metric: "recall" | "precision";
  points: (PredictorId & { compute: number; value: number })[];
  /** All candidate forms, best (lowest LOO error) first. */
  fits: FormFit[];
  /** The chosen form (fits[0].form), or null when nothing could be fitted. */
  chosen: string | null;
  /** The chosen form on a log-spaced compute grid with a bootstrap band (over rows). */
  curve: { compute: number; value: number; lo: number; hi: number }[];
  /** The largest-compute point predicted from a fit to the others (is the law predictive?). */
  looLargest: { compute: number; predicted: number; actual: number } | null;
}

/** The equi-compute answer for one budget. */
export interface Recommendation {
  /** Budget as a fraction of the target's compute. */
  budgetFraction: number;
  /** Budget in FLOPs. */
  budget: number;
  /** Best measured predictor within budget meeting the minimum precision (null when none). */
  measured:
    | (PredictorId & {
      signal: "binary" | "score" | "prefix" | "nll";
      threshold: number | null;
      precision: number;
      recall: number;
      recallCI: Interval | null;
      compute: number;
    })
    | null;
  /** Best family by its fitted law at exactly this budget (null when no law applies). */
  fitted: { family: string; form: string; expectedRecall: number; interval: Interval } | null;
  /** Fraction of bootstrap resamples in which the measured choice is still the best. */
  stability: number | null;
  /** False when nothing within budget reaches the minimum precision with usable recall. */
  reliable: boolean;
  /** One plain-language sentence. */
  note: string;
}

/** A labelled square matrix (correlations). */
export interface Matrix {
  labels: string[];
  values: (number | null)[][];
  /** Rows the statistic was computed on. */
  rows: number;
}

/** Everything the report shows. */
export interface Summary {
  schemaVersion: number;
  experiment: {
    name: string;
    file: string;
    target: PredictorId;
    memorization: {
      offset: number;
      context: number;
      continuation: number;
      mode: string;
      suppressedTokens: number[];
    };
    minPrecision: number;
    sequencesPerStep: number;
    tokensPerSequence: number;
    parameterCount: "total" | "non-embedding";
  };
  /** Target facts. */
  target: PredictorId & { rowsScored: number; memorized: number; rate: number; compute: number };
  /** Every (model, step) against the target. */
  predictors: PredictorRow[];
  /** Final-step models against each other: precision[i][j] of model i predicting model j (and recall). */
  pairMatrix: { labels: string[]; precision: (number | null)[][]; recall: (number | null)[][] };
  curves: ThresholdCurve[];
  scaling: ScalingFit[];
  recommendations: Recommendation[];
  /** One paragraph in plain language. */
  verdict: string;
  correlations: {
    /** Pearson correlation of scores between final-step models. */
    models: Matrix;
    /** Per model: between its checkpoints on the rows all of them have seen. */
    checkpoints: (Matrix & { model: string })[];
  };
  /** Histogram of matches (0..l) per run. */
  distributions: (PredictorId & { counts: number[] })[];
  /** Memorization rate against row index, in buckets, per final-step model and per target checkpoint. */
  rateByRow: (PredictorId & { buckets: { start: number; end: number; rows: number; rate: number }[] })[];
  /** Memorization rate against the row's duplicate count (when the data carries it). */
  rateByDuplicates:
    | (PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] })[]
    | null;
  /** Examples of rows the target memorized, with the predictors that caught them. */
  examples: {
    row: number;
    /** Decoded context and continuation (null when no tokenizer). Untrusted text. */
    context: string | null;
    continuation: string | null;
    tokens: number[];
    caughtBy: PredictorId[];
  }[];
  /** How the scores were produced. */
  run: {
    command: string;
    startedAt: string | null;
    seconds: number | null;
    rowsPerSecond: number | null;
    devices: string[];
    models: { name: string; step: number; path: string; fingerprint: string | null }[];
    data: { path: string; fingerprint: string | null };
    /** Shards expected but not in the store (empty when complete). */
    missingShards: string[];
  };
}
