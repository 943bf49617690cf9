/**
 * What the forecast page shows besides its numbers, as pure functions: the
 * flagged rows the rule is most confident about, and the calibration's view
 * of the rule (how the chosen signal is distributed over rows the target
 * memorized and rows it did not, and the precision–recall curve of the
 * signal with the chosen threshold on it).
 *
 * @module
 */
import type { Candidate } from "./recommend.ts";
import { NLL_BIN } from "./histograms.ts";
import { type Estimate, isFeatureSignal } from "./summary.ts";

/** The signal of a forecast rule (a run's signal, binary, or a model over row features). */
export type ForecastSignal = Candidate["signal"];

/** What the figures need of the chosen rule (a forecast's choice has these fields). */
export interface ChosenRule {
  signal: ForecastSignal;
  /** Threshold value (null for binary). */
  threshold: number | null;
  /** Bin of the rule (rows in bins 0 … bin are flagged). */
  bin: number;
  /** Held-out precision and recall expected of the rule. */
  expected: { precision: Estimate; recall: Estimate };
}

/** A flagged row on the forecast page: its signal value and its text (or token ids). */
export interface FlaggedExample {
  /** Dataset row. */
  row: number;
  /** The signal's value (1 for a binary rule). */
  value: number;
  /** Decoded context (null without a tokenizer or tokens). Untrusted text. */
  context: string | null;
  /** Decoded continuation (null without a tokenizer or tokens). Untrusted text. */
  continuation: string | null;
  /** The context and continuation tokens (empty when the data was not readable). */
  tokens: number[];
  /** Kinds of personal data in the row's window (from the row features; absent without them). */
  personal?: string[];
}

/**
 * The `n` flagged rows with the strongest evidence of memorization: lowest
 * NLL, highest score, matched prefix or model probability (ties and binary
 * rules: lowest row first).
 */
export function mostConfident(
  rows: readonly number[],
  values: readonly number[],
  signal: ForecastSignal,
  n: number,
): { row: number; value: number }[] {
  const order = rows.map((row, i) => ({ row, value: values[i] }));
  const sign = signal === "nll" ? 1 : -1;
  order.sort((a, b) => sign * (a.value - b.value) || a.row - b.row);
  return order.slice(0, n);
}

/** The calibration's rows in bins of the chosen signal, strongest evidence first. */
export interface SignalHistogram {
  /** Rows per bin that the target memorized. */
  pos: ArrayLike<number>;
  /** Rows per bin that the target scored and did not memorize. */
  neg: ArrayLike<number>;
  /** The rule "bins 0 … b" predicts memorized; `thresholds[b]` is its threshold. */
  thresholds: readonly number[];
}

/** The calibration's view of the forecast rule, for the page's two charts. */
export interface CalibrationFigures {
  /** The chosen signal. */
  signal: ForecastSignal;
  /** The rule's threshold (null for binary: memorized or not). */
  threshold: number | null;
  /**
   * The signal's distribution over the calibration rows both runs scored:
   * rows per value the target memorized and did not (NLL in bins of 0.1, a
   * model's out-of-fold probability in bins of 0.01).
   */
  distribution: { value: number; memorized: number; notMemorized: number }[];
  /** Precision and recall (in-sample, calibration rows) of every threshold, strictest first. */
  curve: { threshold: number; precision: number; recall: number }[];
  /** The chosen threshold on that curve, with the held-out values it is expected to keep. */
  chosen: {
    threshold: number | null;
    precision: number;
    recall: number;
    heldOutPrecision: number;
    heldOutRecall: number;
  };
}

/** Width of the NLL bins of the page's distribution (the analysis bins by 0.01). */
export const NLL_DISPLAY_BIN = 0.1;

/**
 * The page's figures from the calibration's histogram of the chosen signal;
 * `positives` is recall's denominator (the target's memorized rows, all or
 * only those the predictor scored, as the calibration counts recall); `l`
 * the continuation length.
 */
export function calibrationFigures(
  h: SignalHistogram,
  positives: number,
  l: number,
  choice: ChosenRule,
): CalibrationFigures {
  const s = choice.signal;
  const bins = h.thresholds.length;
  // A bin's value: the signal at that bin (score as a fraction, prefix in tokens, NLL's lower edge).
  const valueOf = (b: number) =>
    isFeatureSignal(s)
      ? Math.floor(h.thresholds[b] * 100 + 1e-9) / 100 // probability, in bins of 0.01
      : s === "binary"
      ? 1 - b
      : s === "score"
      ? (l - b) / l
      : s === "prefix"
      ? l - b
      : Number((Math.floor((b * NLL_BIN) / NLL_DISPLAY_BIN + 1e-9) * NLL_DISPLAY_BIN).toFixed(1));
  const merged = new Map<number, { value: number; memorized: number; notMemorized: number }>();
  for (let b = 0; b < bins; b++) {
    if (h.pos[b] === 0 && h.neg[b] === 0) continue;
    const v = valueOf(b);
    const d = merged.get(v) ?? { value: v, memorized: 0, notMemorized: 0 };
    d.memorized += h.pos[b];
    d.notMemorized += h.neg[b];
    merged.set(v, d);
  }
  const distribution = [...merged.values()].sort((a, b) => a.value - b.value);
  const curve: CalibrationFigures["curve"] = [];
  let tp = 0;
  let fp = 0;
  let chosen: { precision: number; recall: number } | null = null;
  for (let b = 0; b < bins; b++) {
    tp += h.pos[b];
    fp += h.neg[b];
    const point = {
      threshold: h.thresholds[b],
      precision: tp + fp > 0 ? tp / (tp + fp) : 1,
      recall: positives > 0 ? tp / positives : 0,
    };
    if (b === choice.bin) chosen = point;
    // Keep the bins where the curve moves (and the chosen one).
    if (h.pos[b] > 0 || h.neg[b] > 0 || b === choice.bin) {
      if (tp + fp > 0) curve.push(point);
    }
  }
  return {
    signal: s,
    threshold: choice.threshold,
    distribution,
    curve,
    chosen: {
      threshold: choice.threshold,
      precision: chosen?.precision ?? 0,
      recall: chosen?.recall ?? 0,
      heldOutPrecision: choice.expected.precision.value,
      heldOutRecall: choice.expected.recall.value,
    },
  };
}
