/**
 * Forecasts: what a calibration run (one with a trained target) learned,
 * applied to the cheap runs of another run that has no target yet. The
 * calibration's candidates (binary predictors and thresholded signals, each
 * cross-fitted over folds of rows) are restricted to the runs the other run
 * has (and to `--predictor`, `--signal`, `--budget`); the held-out selection
 * among them gives the rule and its expected precision and recall with 95%
 * intervals; the rule is then applied row by row to the other run's scores.
 *
 * Pure: the command (reports/forecast_command.ts) does the reading and writing.
 *
 * @module
 */
import type { CalibrationFigures, FlaggedExample } from "./forecast_figures.ts";
import type { Estimate, PredictorId, RecallOver } from "./summary.ts";
import type { ScoredCheckpoint } from "../../engine/store/scored_checkpoint.ts";
import { UserError } from "../../engine/errors.ts";
import { type Candidate, ruleText } from "./recommend.ts";
import { selectHeldOut } from "./crossfit.ts";
import { rates } from "./metrics.ts";
import { wilson } from "./stats.ts";
import type { Counts } from "./crossfit.ts";
import { binOf, foldOf } from "./histograms.ts";
import { checkpointLabel } from "../../engine/types.ts";

/** What to forecast with (all optional: the best held-out choice the other run allows). */
export interface ForecastOptions {
  /** Use this run (it must exist in both runs). */
  predictor?: PredictorId;
  /** Use this signal (`binary` = the run's own memorization). */
  signal?: Candidate["signal"];
  /** Only candidates whose compute is at most this fraction of the calibration target's. */
  budget?: number;
}

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
    const signals = ["binary", "score", "prefix", "nll"] as const;
    const s = signals.find((x) => x === v.signal);
    if (!s) throw new UserError(`--signal ${v.signal}: expected one of ${signals.join(", ")}`);
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
}

/** The chosen rule and what the calibration expects of it. */
export interface ForecastChoice {
  predictor: PredictorId;
  signal: Candidate["signal"];
  /** Threshold value (null for binary). */
  threshold: number | null;
  /** Bin of the rule (rows in bins 0 … bin are flagged; binary: memorized rows). */
  bin: number;
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
}

const est = (value: number | null, ci: { lo: number; hi: number } | null): Estimate => ({
  value: value ?? 0,
  lo: ci?.lo ?? 0,
  hi: ci?.hi ?? 0,
});

/**
 * Chooses the forecast rule: among the calibration's candidates that
 * `available` accepts and the options allow, the held-out selection at the
 * budget (the largest candidate compute when none is given). Throws a
 * UserError naming what exists when nothing qualifies.
 */
export function chooseForecast(
  cal: Calibration,
  available: (id: PredictorId) => boolean,
  opts: ForecastOptions = {},
): ForecastChoice {
  const same = (a: PredictorId, b: PredictorId) => a.model === b.model && a.step === b.step;
  let pool = cal.candidates.filter((c) => available(c.id));
  if (pool.length === 0) {
    throw new UserError(
      `no run of the forecast run is among the calibration's predictors (${
        [...new Set(cal.candidates.map((c) => checkpointLabel(c.id)))].join(", ")
      }): score one of them first`,
    );
  }
  if (opts.predictor) {
    const p = opts.predictor;
    pool = pool.filter((c) => same(c.id, p));
    if (pool.length === 0) {
      throw new UserError(
        `--predictor ${
          checkpointLabel(p)
        }: not a predictor of the calibration that the forecast run has ` +
          `scored; available: ${
            [
              ...new Set(
                cal.candidates.filter((c) => available(c.id)).map((c) => checkpointLabel(c.id)),
              ),
            ]
              .join(", ")
          }`,
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
  const budget = opts.budget === undefined
    ? Math.max(...pool.map((c) => c.compute))
    : opts.budget * cal.targetCompute;
  const sel = selectHeldOut(
    pool.map((c) => ({ compute: c.compute, fit: c.fit })),
    budget,
    cal.minPrecision,
    cal.positives,
  );
  if (sel.pick === null) {
    throw new UserError(
      `no candidate${opts.budget !== undefined ? ` within --budget ${opts.budget}` : ""} reaches ` +
        `precision ${cal.minPrecision} on the calibration's rows; raise the budget or choose ` +
        `another --predictor/--signal`,
    );
  }
  const c = pool[sel.pick];
  const h = rates(sel.heldOut.tp, sel.heldOut.fp, sel.heldOut.fn);
  const foldRules = sel.foldPicks.map((p, f): FoldRule | null => {
    if (p === null) return null;
    const fc = pool[p];
    const bin = fc.fit.folds[f].bin ?? 0;
    return {
      predictor: { ...fc.id },
      signal: fc.signal,
      threshold: fc.signal === "binary" ? null : fc.fit.thresholds[bin],
      bin,
    };
  });
  return {
    predictor: { ...c.id },
    signal: c.signal,
    threshold: c.threshold,
    bin: c.fit.inSample.bin ?? 0,
    rule: ruleText({ ...c.id, signal: c.signal, threshold: c.threshold }),
    computeFraction: c.compute / cal.targetCompute,
    expected: { precision: est(h.precision, h.precisionCI), recall: est(h.recall, h.recallCI) },
    inSample: { precision: c.precision, recall: c.recall },
    counts: sel.heldOut,
    foldRules,
    foldAgreement: sel.agreement,
    folds: cal.folds,
    seed: cal.seed,
  };
}

/**
 * The rows a forecast flags, cross-fitted: a row in fold k (the calibration's
 * fold hash) is flagged by rule k, the rule chosen on the calibration's other
 * folds, so the flagged set is exactly what the held-out numbers measured
 * (one rule when every fold chose the same). A binary rule flags the run's
 * memorized rows; a signal rule the rows whose bin is ≤ the rule's bin, read
 * chunk by chunk. Rows ascending, with the signal value of each.
 */
export function flagRows(
  runOf: (id: PredictorId) => ScoredCheckpoint,
  choice: Pick<ForecastChoice, "foldRules" | "folds" | "seed">,
): { rows: number[]; values: number[] } {
  const k = choice.folds;
  const fold = (r: number) => (k > 1 ? foldOf(r, choice.seed, k) : 0);
  const out: { row: number; value: number }[] = [];
  choice.foldRules.forEach((rule, f) => {
    if (rule === null) return;
    const run = runOf(rule.predictor);
    const l = run.continuation;
    const s = rule.signal;
    if (s === "binary") {
      for (const r of run.memorized) if (fold(r) === f) out.push({ row: r, value: 1 });
      return;
    }
    const src = run.source;
    if (!src || (s === "prefix" && !src.prefix) || (s === "nll" && !src.nll)) {
      throw new UserError(
        `the forecast run's scores of ${
          checkpointLabel(run)
        } carry no ${s}: score it with this harness ` +
          `(imported memorized-row lists are binary) or use --signal binary`,
      );
    }
    for (let c = 0; c < src.chunks; c++) {
      const ch = src.chunk(c);
      for (let i = 0; i < ch.rows.length; i++) {
        const r = ch.rows[i];
        if (fold(r) !== f || binOf(s, ch, i, l) > rule.bin) continue;
        const value = s === "score"
          ? ch.matches[i] / l
          : s === "prefix"
          ? ch.prefix![i]
          : ch.nll![i];
        out.push({ row: r, value });
      }
    }
  });
  out.sort((a, b) => a.row - b.row);
  return { rows: out.map((o) => o.row), values: out.map((o) => o.value) };
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
