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
import type { Estimate, PredictorId, RecallOver } from "./summary.ts";
import type { RunData } from "../../engine/store/run_data.ts";
import { UserError } from "../../engine/errors.ts";
import { type Candidate, ruleText } from "./recommend.ts";
import { selectHeldOut } from "./crossfit.ts";
import { rates } from "./metrics.ts";
import { label } from "./runs.ts";
import { binOf } from "./histograms.ts";

/** What to forecast with (all optional: the best held-out choice the other run allows). */
export interface ForecastOptions {
  /** Use this run (it must exist in both runs). */
  predictor?: PredictorId;
  /** Use this signal (`binary` = the run's own memorization). */
  signal?: Candidate["signal"];
  /** Only candidates whose compute is at most this fraction of the calibration target's. */
  budget?: number;
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
  /** Held-out precision and recall at that choice, 95% Wilson intervals. */
  expected: { precision: Estimate; recall: Estimate };
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
        [...new Set(cal.candidates.map((c) => label(c.id)))].join(", ")
      }): score one of them first`,
    );
  }
  if (opts.predictor) {
    const p = opts.predictor;
    pool = pool.filter((c) => same(c.id, p));
    if (pool.length === 0) {
      throw new UserError(
        `--predictor ${label(p)}: not a predictor of the calibration that the forecast run has ` +
          `scored; available: ${
            [...new Set(cal.candidates.filter((c) => available(c.id)).map((c) => label(c.id)))]
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
  return {
    predictor: { ...c.id },
    signal: c.signal,
    threshold: c.threshold,
    bin: c.fit.inSample.bin ?? 0,
    rule: ruleText({ ...c.id, signal: c.signal, threshold: c.threshold }),
    computeFraction: c.compute / cal.targetCompute,
    expected: { precision: est(h.precision, h.precisionCI), recall: est(h.recall, h.recallCI) },
    inSample: { precision: c.precision, recall: c.recall },
  };
}

/**
 * The rows a rule flags in a run, with the signal value of each: its
 * memorized rows (value 1) for a binary rule, else the rows whose signal bin
 * is ≤ the rule's bin, read chunk by chunk from the run's score source.
 */
export function flagRows(
  run: RunData,
  choice: Pick<ForecastChoice, "signal" | "bin">,
): { rows: number[]; values: number[] } {
  const l = run.continuation;
  const rows: number[] = [], values: number[] = [];
  const s = choice.signal;
  if (s === "binary") {
    for (const r of run.memorized) rows.push(r), values.push(1);
    return { rows, values };
  }
  const src = run.source;
  if (!src || (s === "prefix" && !src.prefix) || (s === "nll" && !src.nll)) {
    throw new UserError(
      `the forecast run's scores of ${label(run)} carry no ${s}: score it with this harness ` +
        `(imported memorized-row lists are binary) or use --signal binary`,
    );
  }
  for (let k = 0; k < src.chunks; k++) {
    const c = src.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      if (binOf(s, c, i, l) > choice.bin) continue;
      rows.push(c.rows[i]);
      values.push(s === "score" ? c.matches[i] / l : s === "prefix" ? c.prefix![i] : c.nll![i]);
    }
  }
  return { rows, values };
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
