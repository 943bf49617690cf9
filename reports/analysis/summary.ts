/**
 * The schema of `summary.json`: every number the report shows, machine
 * readable. The analysis (reports/analysis/analysis.ts) produces a {@link Summary};
 * the HTML report and `predictors.csv` are rendered from it alone.
 *
 * Conventions: rates and fractions are in [0, 1]; `null` means "undefined"
 * (for example precision with no positive prediction); compute is in FLOPs;
 * intervals are 95% unless stated.
 *
 * @module
 */

/** Bump when a field changes meaning or is removed. */
export const SUMMARY_SCHEMA_VERSION = 3;

/** `Summary.features`: the row features, their cost, and what they predict. */
export interface FeatureSummary {
  /** Measured wall time of the features step (all data shards and the assembly), seconds. */
  seconds: number;
  /** Rows with features. */
  rows: number;
  /** Data shards scanned. */
  shards: number;
  /** Tokens scanned (every position of every row of the data). */
  tokens: number;
  /** Source of `rateByDuplicates`: the user's `data.duplicates` file, or the computed window counts. */
  duplicates: "data.duplicates" | "computed";
  /**
   * The features' measured cost beside the scoring's, both wall time on the
   * machine that ran them (no FLOPs are estimated for the features).
   */
  cost: FeatureCost;
  /** The combined and data-only predictors and personal data (null without per-row target scores). */
  predictors: FeaturePredictors | null;
}

/** Measured seconds of the row features beside the measured seconds of the scoring. */
export interface FeatureCost {
  /** Wall time of the features step (every data shard and the assembly), seconds. */
  featureSeconds: number;
  /** Wall time of scoring every checkpoint of the run (`runs.jsonl`), seconds; null when unknown. */
  scoringSeconds: number | null;
  /** featureSeconds / scoringSeconds (null when the scoring time is unknown or 0). */
  shareOfScoring: number | null;
}

/** A predictor measured held out at the precision floor (reports/analysis/feature_predictors.ts). */
export interface FeaturePredictor {
  /** Held-out recall (over the target's memorized rows with features). */
  recall: number;
  /** Wilson score interval (95%) of the recall. */
  recallCI: Interval | null;
  /** Held-out precision (null when nothing is predicted). */
  precision: number | null;
  /** Held-out true and false positives. */
  tp: number;
  /** Held-out false positives. */
  fp: number;
}

/** The combined and data-only predictors per budget, and personal data per kind. */
export interface FeaturePredictors {
  /** Model rows: rows with features the target scored (each model is applied to all of them). */
  rows: number;
  /** Of them, rows the target memorized. */
  memorized: number;
  /**
   * The rows the models are fitted on: every model row up to the cap
   * (reports/analysis/combined.ts `FEATURE_SAMPLE_ROWS`), otherwise a
   * deterministic sample by row hash, each row weighted by 1 / its class's
   * rate (`memorized`, `other`: inclusion probabilities, 1 = every row).
   */
  sample: { rows: number; memorized: number; other: number };
  /** One per recommendation (budget). */
  budgets: {
    /** Budget as a fraction of the target's compute. */
    budgetFraction: number;
    /** Budget in FLOPs. */
    budget: number;
    /** Cheap runs whose signals the combined predictor uses (most expensive first). */
    runs: PredictorId[];
    /** Their summed training compute (FLOPs; the features' cost is in `cost`, seconds). */
    compute: number;
    /**
     * The cheap runs' share of the measured scoring seconds (the run's scoring
     * time apportioned by each checkpoint's estimated scoring FLOPs, 2·N per
     * token of the rows it scored), and the features' seconds as a share of
     * features + that scoring time: what the features add to the cheap runs'
     * evaluation cost. Null when the scoring time is unknown.
     */
    cost: { scoringSeconds: number; featureShare: number } | null;
    /** Cheap runs' signals and the row features, cross-fitted logistic regression. */
    combined: FeaturePredictor;
    /** The row features alone (no model run): the floor every cheap run must beat. */
    dataOnly: FeaturePredictor;
    /**
     * What the recommendation picks at this budget (among every candidate:
     * single runs' signals, the combined and the data-only predictors), held out.
     */
    recommended: {
      signal: string;
      label: string;
      recall: number;
      recallCI: Interval | null;
      precision: number;
    } | null;
    /**
     * The best single run's signal within the budget (the held-out selection
     * among binary and thresholded candidates only).
     */
    bestSingle:
      | (PredictorId & {
        signal: string;
        recall: number;
        recallCI: Interval | null;
        precision: number;
      })
      | null;
    /** The paper's binary predictor: the best run's memorization within the budget, held out. */
    paperBinary: (PredictorId & FeaturePredictor) | null;
  }[];
  /** Per kind of personal data found in the rows' windows (kinds without rows omitted). */
  personal: PersonalKindRow[];
}

/** One kind of personal data: rows with it, memorized by the target, caught by each predictor. */
export interface PersonalKindRow {
  /** Kind (engine/data/features/personal.ts). */
  kind: string;
  /** Rows whose window holds it. */
  rows: number;
  /** Of them, rows the target memorized. */
  memorized: number;
  /** Per predictor (`data-only`, `combined@<budget fraction>`): memorized rows it catches held out. */
  caught: {
    predictor: string;
    caught: number;
    recall: number | null;
    recallCI: Interval | null;
  }[];
  /** A few rows with their masked value (never the raw one). */
  examples: { row: number; masked: string }[];
}

/** A two-sided interval. */
export interface Interval {
  /** Lower end. */
  lo: number;
  /** Upper end. */
  hi: number;
}

/** A value with its 95% interval. */
export interface Estimate extends Interval {
  /** Point value. */
  value: number;
}

/**
 * What recall is measured over: `all` the target's memorized rows (rows a
 * predictor never scored count as missed) or only those it `covered`.
 */
export type RecallOver = "all" | "covered";

/** Kind of predictor a law is fitted to: binary memorization, or the best held-out thresholded signal. */
export type PredictorKind = "binary" | "thresholded";

/**
 * Held-out numbers of a thresholded rule: thresholds chosen on K − 1 folds of
 * rows and measured on the remaining fold, summed over folds (cross-fitting).
 */
export interface HeldOut {
  /** The rule chosen on all rows (the one to deploy), null when none reaches the floor. */
  threshold: number | null;
  /** Threshold chosen per fold on the other folds (null: none reached the floor there). */
  foldThresholds: (number | null)[];
  /** Held-out precision (null when nothing is predicted). */
  precision: number | null;
  /** Wilson score interval (95%) of the held-out counts. */
  precisionCI: Interval | null;
  /** Held-out recall over {@link RecallOver} rows. */
  recall: number | null;
  /** Wilson score interval (95%). */
  recallCI: Interval | null;
  /** The same rule's precision and recall on the rows that chose it (optimistic). */
  inSample: { precision: number | null; recall: number | null };
}

/** A (model, step) run of the suite. */
export interface PredictorId {
  /** Model name as in the experiment's suite. */
  model: string;
  /** Training step of the checkpoint. */
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
  /** Compared rows memorized by both. */
  tp: number;
  /** Compared rows memorized by the predictor only. */
  fp: number;
  /** Compared rows memorized by the target only. */
  fn: number;
  /** Compared rows memorized by neither. */
  tn: number;
  /** TP / (TP + FP); null when the predictor memorizes no compared row. */
  precision: number | null;
  /** Wilson score interval (95%). */
  precisionCI: Interval | null;
  /** TP / (TP + FN); null when the target memorizes no compared row. */
  recall: number | null;
  /** Wilson score interval (95%). */
  recallCI: Interval | null;
  /**
   * Fraction of the target's memorized rows this predictor scored (its
   * coverage of them; 1 for runs that scored every row the target scored).
   */
  memorizedCoverage: number;
  /**
   * TP / (target's memorized rows, scored by the predictor or not): recall
   * over all of them, rows it never scored counting as missed
   * (= recall × memorizedCoverage).
   */
  recallAll: number | null;
  /** Wilson score interval (95%). */
  recallAllCI: Interval | null;
  /** 2·TP / (2·TP + FP + FN). */
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
  /**
   * Predict "memorized" when the signal is ≥ threshold: `score` as a
   * fraction in [0, 1], `prefix` in tokens; for `nll` (nats/token, binned by
   * 0.01) when the NLL is < threshold.
   */
  threshold: number;
  /** Precision of the thresholded predictor (null when it predicts nothing). */
  precision: number | null;
  /** Recall of the thresholded predictor. */
  recall: number;
}

/** A cheap run's continuous signal as a thresholded predictor. */
export interface ThresholdCurve extends PredictorId {
  /** `score` = matches / l, `prefix` = exact matched prefix length, `nll` = continuation NLL. */
  signal: "score" | "prefix" | "nll";
  /** The curve, strictest threshold first (thinned to at most 120 points; the optimum uses all). */
  points: CurvePoint[];
  /** Area under the precision–recall curve (average precision). */
  averagePrecision: number | null;
  /** Best recall at precision ≥ the binary predictor's precision (null when unreachable). */
  recallAtBinaryPrecision: number | null;
  /**
   * Threshold maximizing recall at precision ≥ the experiment's minimum
   * precision on the same rows that measure it (in-sample, optimistic).
   */
  best: CurvePoint | null;
  /** The same choice cross-fitted over folds of rows: the honest numbers (null without target positives). */
  heldOut: HeldOut | null;
}

/** A candidate functional form fitted to one family's points. */
export interface FormFit {
  /**
   * `linear-log` (y = a + b·x), `logit-linear-log` (logit y = a + b·x),
   * `saturating-power` (1 − y = A·10^(−α·x)), `saturating-power-floor`
   * (1 − y = E + A·10^(−α·x)), with x = log10(C / target's C). Precision is
   * fitted with the first two only.
   */
  form: string;
  /** Human-readable formula with fitted values. */
  formula: string;
  /** Fitted parameters by name (compute normalized by the target's). */
  params: Record<string, number>;
  /** Root mean squared error on the fitted points. */
  rmse: number;
  /** Leave-one-out root mean squared prediction error (null with too few points). */
  looRmse: number | null;
  /** Whether Levenberg–Marquardt met a stopping rule (step, gradient or reduction) before its iteration cap. */
  converged: boolean;
}

/** A scaling law of one metric over compute for one family of predictors. */
export interface ScalingFit {
  /** e.g. `sizes (final step)`, `checkpoints of <target model>`, `checkpoints of <model>`, `all`. */
  family: string;
  /** The metric fitted against compute. */
  metric: "recall" | "precision";
  /**
   * `binary`: each run's binary memorization; `thresholded`: each run's best
   * thresholded signal, chosen and measured out of sample (cross-fitted).
   */
  kind: PredictorKind;
  /** The measured points (compute in FLOPs, value of the metric), ascending compute. Fewer than 3: no fit. */
  points: (PredictorId & { compute: number; value: number })[];
  /** All candidate forms, best (lowest LOO error) first. */
  fits: FormFit[];
  /** The chosen form (fits[0].form), or null when nothing could be fitted. */
  chosen: string | null;
  /**
   * The chosen form on a log-spaced compute grid (from half a decade below
   * the smallest point to the target's compute) with a 95% band from refits
   * on Poisson-bootstrap resamples of rows.
   */
  curve: { compute: number; value: number; lo: number; hi: number }[];
  /** The largest-compute point predicted from a fit to the others (is the law predictive?). */
  looLargest: { compute: number; predicted: number; actual: number } | null;
}

/**
 * A measured predictor: a binary predictor or a signal at a threshold, its
 * precision and recall with 95% Wilson intervals (held out or in-sample, as
 * the field holding it says), and its compute.
 */
export interface MeasuredPoint {
  /**
   * `binary` (memorized or not), a run's thresholded signal, or a model over
   * the row features (`data-only`) and cheap runs' signals (`combined`),
   * thresholded on its out-of-fold probability (reports/analysis/feature_candidates.ts).
   */
  signal: PredictorSignal;
  /** The signal's threshold (null for a binary predictor). */
  threshold: number | null;
  /**
   * `combined` and `data-only` only: the cheap runs whose signals the model
   * uses, most expensive first (empty for `data-only`); their `model` is the
   * signal's name and `step` 0.
   */
  runs?: PredictorId[];
  /** Precision. */
  precision: number;
  /** Wilson score interval (95%) of the precision. */
  precisionCI: Interval | null;
  /** Recall (for a recommendation: the recall reached at the floor within its budget). */
  recall: number;
  /** Wilson score interval (95%) of the recall. */
  recallCI: Interval | null;
  /**
   * Training compute C = 6 · N · D of the predictor; for `combined` the sum
   * over its cheap runs, for `data-only` 0 (the row features' measured cost is
   * reported in seconds beside the scoring's: `Summary.features.cost`).
   */
  compute: number;
}

/** Signals of single runs (a run's memorization, or its score, prefix or NLL at a threshold). */
export type RunSignal = "binary" | "score" | "prefix" | "nll";

/** Signals of models over the row features: alone (`data-only`) or with cheap runs' signals. */
export type FeatureSignal = "combined" | "data-only";

/** Every kind of candidate predictor. */
export type PredictorSignal = RunSignal | FeatureSignal;

/** Whether a signal is a model over the row features (no single run's). */
export function isFeatureSignal(s: string): s is FeatureSignal {
  return s === "combined" || s === "data-only";
}

/** The equi-compute answer for one budget. */
export interface Recommendation {
  /** Budget as a fraction of the target's compute. */
  budgetFraction: number;
  /** Budget in FLOPs. */
  budget: number;
  /** What recall is measured over (the experiment's `analysis.recall_over`). */
  recallOver: RecallOver;
  /**
   * The predictor to use within the budget: among measured candidates
   * (binary predictors, signals at a threshold, and with row features the
   * combined and data-only models at a probability threshold) with compute ≤ budget,
   * the one with the highest recall at precision ≥ the floor, chosen on all
   * rows (null when none qualifies). `precision`, `recall` and their
   * intervals are held out: the whole choice (threshold and candidate) is
   * cross-fitted over folds of rows, so they are what "take the best
   * predictor within this budget" achieves on rows it was not chosen on.
   * `inSample` is the pick's own value on the rows that chose it.
   */
  measured:
    | (PredictorId & MeasuredPoint & {
      /** The pick's precision and recall on the rows that chose it (optimistic). */
      inSample: { precision: number; recall: number };
      /** Fraction of folds whose choice (made on the other folds) is this pick. */
      foldAgreement: number;
    })
    | null;
  /**
   * Whether the floor holds with 95% confidence: the held-out precision's
   * Wilson lower end is ≥ the minimum precision (false when nothing qualifies).
   */
  floorHolds: boolean;
  /**
   * Best family by its fitted recall law at exactly this budget, for the same
   * kind of predictor as the measured pick (`binary` or `thresholded`), among
   * families whose precision law stays ≥ the minimum there, with a 95%
   * bootstrap interval (null when no law applies). A law is evaluated from a
   * decade below its smallest point up to what its family can spend (the
   * target's compute for sizes and the target model's checkpoints, the last
   * checkpoint's compute for a smaller model's checkpoints).
   */
  fitted:
    | {
      family: string;
      kind: PredictorKind;
      form: string;
      expectedRecall: number;
      interval: Interval;
    }
    | null;
  /** Fraction of bootstrap resamples in which the pick is still the best (in-sample choice). */
  stability: number | null;
  /** One plain-language sentence. */
  note: string;
}

/** The compute needed to reach one recall at the precision floor. */
export interface ComputeForRecall {
  /** The recall asked for. */
  recall: number;
  /**
   * From the measured frontier: the smallest budget (a candidate's compute)
   * whose held-out recall at the floor reaches `recall`, with the first
   * budgets whose recall interval's upper (`lo`) and lower end (`hi`) reach
   * it; null: not reached by any measured predictor. Fractions of the
   * target's compute.
   */
  measured: {
    fraction: number | null;
    lo: number | null;
    hi: number | null;
    /** Held-out precision of the pick at `fraction` (it was chosen at the floor on other rows). */
    precision: number | null;
    /** The pick at `fraction` (`runs`: a combined predictor's cheap runs). */
    pick: (PredictorId & { signal: string; threshold: number | null; runs?: PredictorId[] }) | null;
  };
  /**
   * Per recommendable family and kind: the smallest compute (fraction of the
   * target's) where the fitted recall law reaches `recall` with the precision
   * law ≥ the floor, within the law's limits, with the 95% interval of the
   * bootstrap refits inverted the same way (null ends: beyond what the family
   * can spend); `reached` is the fraction of refits reaching it.
   */
  laws: {
    family: string;
    kind: PredictorKind;
    form: string;
    fraction: number | null;
    lo: number | null;
    hi: number | null;
    reached: number | null;
  }[];
}

/** A labelled square matrix (correlations). */
export interface Matrix {
  /** `model@step` of each row/column. */
  labels: string[];
  /** values[i][j] (null when a variance is zero). */
  values: (number | null)[][];
  /** Rows the statistic was computed on. */
  rows: number;
}

/** Everything the report shows. */
export interface Summary {
  /** {@link SUMMARY_SCHEMA_VERSION} of the writer. */
  schemaVersion: number;
  /** The experiment's settings that the numbers depend on. */
  experiment: {
    /** Experiment name. */
    name: string;
    /** Absolute path of the experiment file. */
    file: string;
    /** The run whose memorization is predicted. */
    target: PredictorId;
    /** Offset, context k, continuation l, mode and suppressed tokens (engine/types.ts MemorizationSettings). */
    memorization: {
      offset: number;
      context: number;
      continuation: number;
      mode: string;
      suppressedTokens: number[];
    };
    /** Minimum precision of a recommended predictor. */
    minPrecision: number;
    /** What recall is measured over in recommendations, laws and forecasts. */
    recallOver: RecallOver;
    /** Rows per optimizer step. */
    sequencesPerStep: number;
    /** Tokens counted per row in D. */
    tokensPerSequence: number;
    /** Which parameter count N enters C = 6·N·D (non-embedding falls back to total when unknown). */
    parameterCount: "total" | "non-embedding";
  };
  /**
   * Target facts: rows it scored, rows it memorized (matched prefix = l, or
   * matches = l for imported accuracy-only scores), their fraction, its compute.
   */
  target: PredictorId & { rowsScored: number; memorized: number; rate: number; compute: number };
  /** Every (model, step) against the target. */
  predictors: PredictorRow[];
  /** Final-step models against each other: precision[i][j] of model i predicting model j (and recall). */
  pairMatrix: { labels: string[]; precision: (number | null)[][]; recall: (number | null)[][] };
  /** Per non-target run with scores: score, prefix and NLL (when stored) as thresholded predictors. */
  curves: ThresholdCurve[];
  /**
   * Per family (`sizes (final step)`, `checkpoints of <target model>`,
   * `checkpoints of <model>` with ≥ 3 checkpoints, `all`) and metric.
   */
  scaling: ScalingFit[];
  /** One per budget of the experiment's analysis settings. */
  recommendations: Recommendation[];
  /** One per recall of the experiment's `analysis.recalls` (default 0.5, 0.8, 0.9, 0.95). */
  computeForRecall: ComputeForRecall[];
  /**
   * The measured frontier, held out: at every distinct candidate compute (a
   * budget of exactly that many FLOPs), the recommendation's pick and its
   * held-out precision and recall (null: nothing reaches the floor yet).
   */
  frontier: { budget: number; measured: Recommendation["measured"] }[];
  /** One paragraph in plain language. */
  verdict: string;
  /** Score correlations. */
  correlations: {
    /** Pearson correlation of scores between final-step models. */
    models: Matrix;
    /** Per model: between its checkpoints on the rows all of them have seen. */
    checkpoints: (Matrix & { model: string })[];
  };
  /** Histogram of matches (0..l) per run: counts[m] rows with m matched tokens. */
  distributions: (PredictorId & { counts: number[] })[];
  /**
   * Memorization rate against row index, in about 20 equal buckets of
   * [start, end) (empty buckets omitted), per final-step model and per
   * checkpoint of the target's model.
   */
  rateByRow:
    (PredictorId & { buckets: { start: number; end: number; rows: number; rate: number }[] })[];
  /**
   * Memorization rate against the row's duplicate count, in bins [min, max]
   * of 0, 1, 2, 3–4, 5–8, … (null when the data carries no counts).
   */
  rateByDuplicates:
    | (PredictorId & { bins: { min: number; max: number; rows: number; rate: number }[] })[]
    | null;
  /**
   * The experiment's row features (the `features` step, tasks/features.ts;
   * absent when it has not run): their measured cost and where the duplicate
   * counts came from (a `data.duplicates` file given by the user wins over the
   * computed window counts).
   */
  features?: FeatureSummary;
  /** Examples of rows the target memorized, with the predictors that caught them. */
  examples: {
    /** Dataset row. */
    row: number;
    /** Decoded context (null when no tokenizer or tokens). Untrusted text. */
    context: string | null;
    /** Decoded continuation (null when no tokenizer or tokens). Untrusted text. */
    continuation: string | null;
    /** The k + l tokens from the memorization offset (empty when the caller supplied none). */
    tokens: number[];
    /** Non-target runs that memorized the row too. */
    caughtBy: PredictorId[];
  }[];
  /** How intervals were computed (added in schema 1; absent in older summaries). */
  statistics?: {
    /** The interval method of the predictor table. */
    intervals: string;
    /** Poisson-bootstrap resamples over rows (bands, law intervals, stability); 0 = none. */
    bootstrap: number;
    /** Seed of the bootstrap. */
    seed: number;
    /** Distinct positive-row patterns the bootstrap pooled (see reports/analysis/metrics.ts). */
    patterns: number;
    /** Folds of rows for cross-fitting (seeded hash of the row index with `seed`); 1 = in-sample. */
    folds: number;
  };
  /** How the scores were produced. */
  run: {
    /** The command line that produced the scores. */
    command: string;
    /** ISO time the scoring started (null when unknown, e.g. imported). */
    startedAt: string | null;
    /** Wall time of the scoring (null when unknown). */
    seconds: number | null;
    /** Rows scored per second over all checkpoints (null when unknown). */
    rowsPerSecond: number | null;
    /** Device slots used, e.g. `cpu`, `cuda:0`. */
    devices: string[];
    /** Every scored run: its ONNX path and fingerprint (when known). */
    models: { name: string; step: number; path: string; fingerprint: string | null }[];
    /** The training data and its fingerprint (when known). */
    data: { path: string; fingerprint: string | null };
    /** Shards expected but not in the store (empty when complete). */
    missingShards: string[];
    /**
     * For a run folder made by `deno task import`: every file imported (size,
     * SHA-256, records read) and, per run, which rows were taken as scored and
     * why. Absent (or null) for scored runs.
     */
    imported?: {
      files: {
        model: string;
        step: number;
        path: string;
        layout: string;
        bytes: number;
        sha256: string;
        rows: number;
      }[];
      runs: {
        model: string;
        step: number;
        kind: string;
        scoredRows: number;
        memorized: number;
        rowsReason: string;
      }[];
      /** `--rows A:B` when given. */
      rows: { start: number; end: number } | null;
      /** Files under the inputs that matched no layout. */
      ignored: string[];
    } | null;
    /** Problems of the inputs worth a banner, e.g. identical weights under two checkpoints (absent: none). */
    warnings?: string[];
  };
}
