/**
 * Forecasts: what a calibration run (one with a trained target) learned,
 * applied to the cheap runs of another run that has no target yet. The
 * calibration's candidates (binary predictors and thresholded signals, each
 * cross-fitted over folds of rows, and the combined and data-only models
 * over the row features) are restricted to what the other run has (its
 * scored runs; its row features for the models) and to `--predictor`,
 * `--signal`, `--budget`; the held-out selection among them gives the rule
 * and its expected precision and recall with 95% intervals; the rule is then
 * applied row by row to the other run's scores (and row features), each row
 * by the rule of its fold.
 *
 * Pure: the command (tasks/forecast.ts) does the reading and writing.
 *
 * @module
 */
import type { CalibrationFigures, FlaggedExample, SignalHistogram } from "./forecast_figures.ts";
import { type Estimate, isFeatureSignal, type PredictorId, type RecallOver } from "./summary.ts";
import type { ScoredCheckpoint } from "../../engine/store/scored_checkpoint.ts";
import { UserError } from "../../engine/errors.ts";
import { type Candidate, ruleText } from "./recommend.ts";
import { selectHeldOut, type Selection } from "./crossfit.ts";
import { rates } from "./metrics.ts";
import { wilson } from "./stats.ts";
import type { Counts } from "./crossfit.ts";
import { binOf, foldOf, type Signal } from "./histograms.ts";
import type { RowFeatures } from "../../engine/data/features/row_features.ts";
import { type Columns, type LogisticModel, predictor, probabilityBin } from "./combined.ts";
import { modelBlocks, type SignalRun } from "./feature_rows.ts";
import { checkpointLabel } from "../../engine/types.ts";

/** What to forecast with (all optional: the best held-out choice the other run allows). */
export interface ForecastOptions {
  /** Use this run's signals (it must exist in both runs). */
  predictor?: PredictorId;
  /**
   * Use this signal (`binary` = the run's own memorization; `combined`,
   * `data-only` = the models over the row features).
   */
  signal?: Candidate["signal"];
  /** Only candidates whose compute is at most this fraction of the calibration target's. */
  budget?: number;
}

/** Every value `--signal` takes. */
export const FORECAST_SIGNALS = [
  "binary",
  "score",
  "prefix",
  "nll",
  "combined",
  "data-only",
] as const;

/** Parses `--predictor MODEL@STEP`, `--signal S` and `--budget F` (UserError naming what is valid). */
export function parseForecastOptions(
  v: { predictor?: string; signal?: string; budget?: string },
): ForecastOptions {
  const out: ForecastOptions = {};
  if (v.predictor !== undefined) {
    const m = /^(.+)@(\d+)$/.exec(v.predictor);
    if (!m) {
      throw new UserError(`--predictor ${v.predictor}: expected MODEL@STEP, e.g. nano-s3@143`);
    }
    out.predictor = { model: m[1], step: Number(m[2]) };
  }
  if (v.signal !== undefined) {
    const s = FORECAST_SIGNALS.find((x) => x === v.signal);
    if (!s) {
      throw new UserError(`--signal ${v.signal}: expected one of ${FORECAST_SIGNALS.join(", ")}`);
    }
    out.signal = s;
  }
  if (v.budget !== undefined) {
    const b = Number(v.budget);
    if (!(b > 0 && b <= 1)) {
      throw new UserError(
        `--budget ${v.budget}: expected a fraction of the target's compute in (0, 1]`,
      );
    }
    out.budget = b;
  }
  return out;
}

/** The calibration facts a forecast needs (from the calibration's analysis). */
export interface Calibration {
  candidates: readonly Candidate[];
  /** Recall's denominator per fold. */
  positives: number[];
  targetCompute: number;
  target: PredictorId;
  minPrecision: number;
  recallOver: RecallOver;
  folds: number;
  /** Seed of the fold hash. */
  seed: number;
}

/** One fold's rule: a predictor, a signal and the bin up to which rows are flagged. */
export interface FoldRule {
  predictor: PredictorId;
  signal: Candidate["signal"];
  threshold: number | null;
  bin: number;
  /** `combined`: the cheap runs whose signals the model reads (`data-only`: none). */
  runs?: PredictorId[];
  /**
   * `combined` and `data-only`: the fold's logistic model (fitted on the
   * calibration's other folds); a row is flagged when its probability's bin
   * is ≤ `bin` (probability > `threshold`).
   */
  model?: LogisticModel;
}

/** The chosen rule and what the calibration expects of it. */
export interface ForecastChoice {
  predictor: PredictorId;
  signal: Candidate["signal"];
  /** Threshold value (null for binary). */
  threshold: number | null;
  /** Bin of the rule (rows in bins 0 … bin are flagged; binary: memorized rows). */
  bin: number;
  /** `combined`: the cheap runs the model reads (absent for single runs' signals). */
  runs?: PredictorId[];
  /** The rule in words. */
  rule: string;
  /** Candidate compute as a fraction of the calibration target's. */
  computeFraction: number;
  /** Held-out precision and recall at that choice, 95% Wilson intervals of the held-out counts. */
  expected: { precision: Estimate; recall: Estimate };
  /** The held-out counts behind `expected`. */
  counts: Counts;
  /**
   * The rule chosen per fold on the calibration's other folds (null: none
   * qualified there); a row of the forecast run in fold k gets rule k.
   */
  foldRules: (FoldRule | null)[];
  /** Fraction of folds whose rule is the all-rows one. */
  foldAgreement: number;
  /** Folds and seed of the row hash (the calibration's analysis settings). */
  folds: number;
  seed: number;
  /** The same rule on the rows that chose it (optimistic). */
  inSample: { precision: number; recall: number };
  /**
   * `combined` and `data-only`: the calibration's rows per bin of out-of-fold
   * probability (for the page's figures; a run's signal is read from its scores).
   */
  histogram?: SignalHistogram;
}

const est = (value: number | null, ci: { lo: number; hi: number } | null): Estimate => ({
  value: value ?? 0,
  lo: ci?.lo ?? 0,
  hi: ci?.hi ?? 0,
});

const same = (a: PredictorId, b: PredictorId) => a.model === b.model && a.step === b.step;

/** Whether the forecast run can apply a candidate: it has its runs (and, for models, its features). */
function applicable(
  c: Candidate,
  available: (id: PredictorId) => boolean,
  runFeatures: boolean,
): boolean {
  if (!isFeatureSignal(c.signal)) return available(c.id);
  return runFeatures && (c.runs ?? []).every(available);
}

/**
 * The calibration's candidates the forecast run can apply and the options
 * allow (`--predictor` keeps one run's own signals); throws a UserError naming
 * what exists when nothing is left.
 */
function candidatePool(
  cal: Calibration,
  available: (id: PredictorId) => boolean,
  opts: ForecastOptions,
  runFeatures: boolean,
): Candidate[] {
  let pool = cal.candidates.filter((c) => applicable(c, available, runFeatures));
  const runLabels = (cs: readonly Candidate[]) =>
    [...new Set(cs.filter((c) => !isFeatureSignal(c.signal)).map((c) => checkpointLabel(c.id)))]
      .join(", ");
  if (pool.length === 0) {
    throw new UserError(
      `no run of the forecast run is among the calibration's predictors (${
        runLabels(cal.candidates)
      }): score one of them first`,
    );
  }
  if (opts.predictor) {
    const p = opts.predictor;
    const before = pool;
    pool = pool.filter((c) => !isFeatureSignal(c.signal) && same(c.id, p));
    if (pool.length === 0) {
      throw new UserError(
        `--predictor ${checkpointLabel(p)}: not a predictor of the calibration that the ` +
          `forecast run has scored; available: ${runLabels(before)}`,
      );
    }
  }
  if (opts.signal) {
    const before = pool;
    pool = pool.filter((c) => c.signal === opts.signal);
    if (pool.length === 0) {
      throw new UserError(
        `--signal ${opts.signal}: no such candidate reaches precision ${cal.minPrecision} on the ` +
          `calibration; available: ${
            [...new Set(before.map((c) => c.signal))].join(", ") || "none"
          }`,
      );
    }
  }
  return pool;
}

/** The rule of each fold: its pick's signal, threshold and bin (and, for models, the fold's model). */
function foldRulesOf(pool: readonly Candidate[], sel: Selection): (FoldRule | null)[] {
  return sel.foldPicks.map((p, f): FoldRule | null => {
    if (p === null) return null;
    const fc = pool[p];
    const bin = fc.fit.folds[f].bin ?? 0;
    return {
      predictor: { ...fc.id },
      signal: fc.signal,
      threshold: fc.signal === "binary" ? null : fc.fit.thresholds[bin],
      bin,
      ...(fc.runs ? { runs: fc.runs.map((r) => ({ ...r })) } : {}),
      ...(fc.feature ? { model: fc.feature.models[f] } : {}),
    };
  });
}

/**
 * Chooses the forecast rule: among the calibration's candidates that
 * `available` accepts and the options allow, the held-out selection at the
 * budget (the largest candidate compute when none is given). The combined
 * and data-only models are candidates only when `runFeatures` (the forecast
 * run has row features) and, for combined, every run they read is
 * available. Throws a UserError naming what exists when nothing qualifies.
 */
export function chooseForecast(
  cal: Calibration,
  available: (id: PredictorId) => boolean,
  opts: ForecastOptions = {},
  runFeatures = false,
): ForecastChoice {
  const pool = candidatePool(cal, available, opts, runFeatures);
  const budget = opts.budget === undefined
    ? Math.max(...pool.map((c) => c.compute))
    : opts.budget * cal.targetCompute;
  const sel = selectHeldOut(pool, budget, cal.minPrecision, cal.positives);
  if (sel.pick === null) {
    throw new UserError(
      `no candidate${opts.budget !== undefined ? ` within --budget ${opts.budget}` : ""} reaches ` +
        `precision ${cal.minPrecision} on the calibration's rows; raise the budget or choose ` +
        `another --predictor/--signal`,
    );
  }
  const c = pool[sel.pick];
  const h = rates(sel.heldOut.tp, sel.heldOut.fp, sel.heldOut.fn);
  return {
    predictor: { ...c.id },
    signal: c.signal,
    threshold: c.threshold,
    bin: c.fit.inSample.bin ?? 0,
    ...(c.runs ? { runs: c.runs.map((r) => ({ ...r })) } : {}),
    rule: ruleText({ ...c.id, signal: c.signal, threshold: c.threshold, runs: c.runs }),
    computeFraction: c.compute / cal.targetCompute,
    expected: { precision: est(h.precision, h.precisionCI), recall: est(h.recall, h.recallCI) },
    inSample: { precision: c.precision, recall: c.recall },
    counts: sel.heldOut,
    foldRules: foldRulesOf(pool, sel),
    foldAgreement: sel.agreement,
    folds: cal.folds,
    seed: cal.seed,
    ...(c.feature
      ? {
        histogram: { pos: c.feature.pos, neg: c.feature.neg, thresholds: c.fit.thresholds },
      }
      : {}),
  };
}

/** A flagged row and its signal value. */
interface Flag {
  row: number;
  value: number;
}

/**
 * The rows a forecast flags, cross-fitted: a row in fold k (the calibration's
 * fold hash) is flagged by rule k, the rule chosen on the calibration's other
 * folds, so the flagged set is exactly what the held-out numbers measured
 * (one rule when every fold chose the same). A binary rule flags the run's
 * memorized rows; a signal rule the rows whose bin is ≤ the rule's bin, read
 * chunk by chunk; a model rule (combined, data-only) the rows of `features`
 * (the forecast run's row features) whose probability under the fold's model
 * falls in a bin ≤ the rule's. Rows ascending, with the signal value of each
 * (a model's: the probability).
 */
export function flagRows(
  runOf: (id: PredictorId) => ScoredCheckpoint,
  choice: Pick<ForecastChoice, "foldRules" | "folds" | "seed">,
  features?: RowFeatures | null,
): { rows: number[]; values: number[] } {
  const k = choice.folds;
  const fold = (r: number) => (k > 1 ? foldOf(r, choice.seed, k) : 0);
  const out: Flag[] = [];
  if (choice.foldRules.some((rule) => rule?.model)) {
    out.push(...flagByModels(runOf, choice.foldRules, fold, features ?? null));
  }
  choice.foldRules.forEach((rule, f) => {
    if (rule === null || rule.model) return;
    out.push(...flagBySignal(runOf(rule.predictor), rule, (r) => fold(r) === f));
  });
  out.sort((a, b) => a.row - b.row);
  return { rows: out.map((o) => o.row), values: out.map((o) => o.value) };
}

/** A run's signal rule over its scores: binary memorization, or bins ≤ the rule's. */
function flagBySignal(run: ScoredCheckpoint, rule: FoldRule, inFold: (r: number) => boolean) {
  const out: Flag[] = [];
  const l = run.continuation;
  const s = rule.signal as Signal | "binary";
  if (s === "binary") {
    for (const r of run.memorized) if (inFold(r)) out.push({ row: r, value: 1 });
    return out;
  }
  const src = run.source;
  if (!src || (s === "prefix" && !src.prefix) || (s === "nll" && !src.nll)) {
    throw new UserError(
      `the forecast run's scores of ${checkpointLabel(run)} carry no ${s}: score it with this ` +
        "harness (imported memorized-row lists are binary) or use --signal binary",
    );
  }
  for (let c = 0; c < src.chunks; c++) {
    const ch = src.chunk(c);
    for (let i = 0; i < ch.rows.length; i++) {
      const r = ch.rows[i];
      if (!inFold(r) || binOf(s, ch, i, l) > rule.bin) continue;
      const value = s === "score" ? ch.matches[i] / l : s === "prefix" ? ch.prefix![i] : ch.nll![i];
      out.push({ row: r, value });
    }
  }
  return out;
}

/**
 * The model rules (combined, data-only) over the forecast run's row
 * features, in one pass chunk by chunk: a row of fold f is flagged when its
 * probability under fold f's model falls in a bin ≤ the rule's. The runs
 * every rule reads are walked beside the features (feature_rows.ts).
 */
function flagByModels(
  runOf: (id: PredictorId) => ScoredCheckpoint,
  rules: readonly (FoldRule | null)[],
  fold: (row: number) => number,
  features: RowFeatures | null,
): Flag[] {
  const signal = rules.find((r) => r?.model)!.signal;
  if (!features) {
    throw new UserError(
      `the ${signal} rule needs the forecast run's row features, and it has none`,
    );
  }
  const ids = new Map<string, PredictorId>();
  for (const r of rules) {
    for (const id of r?.model ? r.runs ?? [] : []) ids.set(checkpointLabel(id), id);
  }
  const runs: SignalRun[] = [...ids.values()].map((id) => {
    const run = runOf(id);
    if (!run.source) {
      throw new UserError(
        `the forecast run's scores of ${checkpointLabel(id)} carry no per-row scores ` +
          "(imported memorized-row lists): the combined rule reads its prefix, matches and " +
          "NLL; score it with this harness or give --signal binary",
      );
    }
    return { name: `${run.model}@${run.step}`, source: run.source };
  });
  const out: Flag[] = [];
  for (const b of modelBlocks(features, runs)) {
    const predict = rules.map((
      r,
    ) => (r?.model ? predictor(checkColumns(r, b.columns), b.columns) : null));
    for (let i = 0; i < b.rows.length; i++) {
      const f = fold(b.rows[i]);
      const p = predict[f]?.(i);
      if (p !== undefined && probabilityBin(p) <= rules[f]!.bin) {
        out.push({ row: b.rows[i], value: p });
      }
    }
  }
  return out;
}

/** The rule's model, when the forecast run has every column it reads. */
function checkColumns(rule: FoldRule, columns: Columns): LogisticModel {
  const model = rule.model!;
  const missing = model.names.filter((n) => !(n in columns));
  if (missing.length > 0) {
    throw new UserError(
      `the forecast run lacks the ${rule.signal} model's columns ${missing.join(", ")} ` +
        "(a run scored without that signal); give --signal binary|score|prefix|nll",
    );
  }
  return model;
}

/**
 * The calibration's expectation as an interval for the value realized on
 * `flagged` rows of another run: a Wilson interval with the effective size
 * 1 / (1/n_calibration + 1/n_run) (the calibration's estimation error plus the
 * run's own sampling noise), n the precision's and recall's denominators (the
 * run's recall denominator estimated as flagged · precision / recall).
 */
export function predictionIntervals(
  choice: Pick<ForecastChoice, "counts">,
  flagged: number,
): { precision: Estimate; recall: Estimate } {
  const { tp, fp, fn } = choice.counts;
  const p = tp + fp > 0 ? tp / (tp + fp) : 0;
  const r = tp + fn > 0 ? tp / (tp + fn) : 0;
  const eff = (a: number, b: number) => (a > 0 && b > 0 ? 1 / (1 / a + 1 / b) : Math.max(a, 0));
  const interval = (value: number, n: number): Estimate => {
    const ci = wilson(value * n, n);
    return { value, lo: ci?.lo ?? 0, hi: ci?.hi ?? 1 };
  };
  const runPositives = r > 0 ? (flagged * p) / r : 0;
  return {
    precision: interval(p, eff(tp + fp, flagged)),
    recall: interval(r, eff(tp + fn, runPositives)),
  };
}

/** Realized precision and recall of flagged rows against a target's memorized rows (for checks). */
export function realized(
  flagged: readonly number[],
  memorized: ReadonlySet<number>,
): { precision: number | null; recall: number | null } {
  let tp = 0;
  for (const r of flagged) if (memorized.has(r)) tp++;
  return {
    precision: flagged.length > 0 ? tp / flagged.length : null,
    recall: memorized.size > 0 ? tp / memorized.size : null,
  };
}

export type { CalibrationFigures, FlaggedExample };

/** What `forecast.json` holds. */
export interface ForecastFile {
  /** The calibration run: folder, experiment, target, rows it scored and memorized. */
  calibration: {
    run: string;
    experiment: string;
    target: PredictorId;
    rowsScored: number;
    memorized: number;
  };
  /** The run the rule was applied to. */
  run: { run: string; experiment: string; rowsScored: number };
  predictor: PredictorId;
  signal: ForecastChoice["signal"];
  /** `combined`: the cheap runs the model reads (absent for single runs' signals). */
  runs?: PredictorId[];
  /** Threshold (null for binary); `rule` says which side is flagged. */
  threshold: number | null;
  rule: string;
  /** The predictor's compute as a fraction of the calibration target's. */
  computeFraction: number;
  /** `--budget`, when given. */
  budget: number | null;
  /** Rows flagged. */
  flagged: number;
  /**
   * Held-out precision and recall of this choice on the calibration, with 95%
   * intervals for the values realized on this run's rows (the calibration's
   * estimation error plus this run's sampling noise; `calibration` holds the
   * estimate's own Wilson intervals).
   */
  expected: {
    precision: Estimate;
    recall: Estimate;
    calibration: { precision: Estimate; recall: Estimate };
    /** Recall over all the target's memorized rows or only those the predictor scored. */
    recallOver: "all" | "covered";
    /** Folds of rows the choice was cross-fitted over. */
    folds: number;
    /** The minimum precision the choice was made at. */
    minPrecision: number;
  };
  /** The same rule on the rows that chose it (optimistic; for comparison). */
  inSample: { precision: number; recall: number };
  /** The rule per fold of rows (chosen on the calibration's other folds). */
  foldRules: ForecastChoice["foldRules"];
  /** Fraction of folds whose rule is `rule`. */
  foldAgreement: number;
  /** What must hold for `expected` to apply. */
  assumptions: string[];
  /** The flagged rows the rule is most confident about, decoded when there is a tokenizer. */
  examples: FlaggedExample[];
  /**
   * Personal data among the flagged rows (from the run folder's row features;
   * null when it has none): flagged rows with any, and per kind.
   */
  personal?: { withPersonal: number; kinds: Record<string, number> } | null;
  /** The calibration's view of the rule: the signal's distribution and precision–recall curve. */
  figures: CalibrationFigures;
  /**
   * Why the numbers may not carry over: calibration and run differ (with
   * `--allow-mismatch`), or the rule's held-out precision misses the floor
   * badly. Absent when there is nothing to say.
   */
  warnings?: string[];
}
