/**
 * Equi-compute recommendations: for each budget (a fraction of the target's
 * compute) the measured predictor with the highest recall at the minimum
 * precision, with the recall it reaches held out (the choice of candidate and
 * threshold cross-fitted over folds of rows), whether the precision floor
 * holds with 95% confidence, the fitted family's expectation at exactly that
 * budget for the same kind of predictor, and how often the choice still wins
 * under bootstrap resampling.
 *
 * @module
 */
import type {
  Interval,
  MeasuredPoint,
  PredictorId,
  PredictorKind,
  RecallOver,
  Recommendation,
} from "./summary.ts";
import { bootPrecision, bootRecall, type Resamples } from "./checkpoints.ts";
import { evaluateLaw, type FittedLaw } from "./families.ts";
import { percent } from "./stats.ts";
import { type CrossFit, selectHeldOut, type Selection } from "./crossfit.ts";
import { rates } from "./metrics.ts";
import { checkpointLabel } from "../../engine/types.ts";
import type { LogisticModel } from "./combined.ts";
import { isFeatureSignal } from "./summary.ts";

/**
 * A measured candidate: a binary predictor or a thresholded signal of a run,
 * with its threshold chosen on all rows and its in-sample precision and
 * recall (over the analysis's `recallOver` rows).
 */
export interface Candidate extends MeasuredPoint {
  id: PredictorId;
  /** Index among the bootstrap classifiers. */
  index: number;
  /** The candidate's cross-fit over folds of rows. */
  fit: CrossFit;
  /**
   * A `combined` or `data-only` candidate's models: per fold the logistic
   * model fitted on the other folds (a row of fold f is scored by model f,
   * as its held-out numbers were measured), and its calibration rows per
   * probability bin (all folds summed) for the forecast page.
   */
  feature?: FeatureModels;
}

/** The fold models of a model over the row features, and its rows per probability bin. */
export interface FeatureModels {
  /** The model of each fold (fitted without that fold's rows). */
  models: LogisticModel[];
  /** Rows per bin of out-of-fold probability (bin 0 the most probable) the target memorized. */
  pos: Float64Array;
  /** The same for rows it did not memorize. */
  neg: Float64Array;
}

/** The settings of the recommendation step. */
export interface RecommendOptions {
  budgets: number[];
  minPrecision: number;
  /** The target's compute (budgets are fractions of it). */
  targetCompute: number;
  /** Recall's denominator per fold (the target's memorized rows of each fold). */
  positives: number[];
  /** What recall is measured over. */
  recallOver: RecallOver;
}

const keyOf = (c: Candidate) =>
  `${c.id.model}\u0000${c.id.step}\u0000${c.signal}\u0000${c.threshold}\u0000${
    (c.runs ?? []).map(checkpointLabel).join(",")
  }`;

/**
 * The kind of law that matches a candidate; null for the models over the row
 * features (no law is fitted to them: see docs/analysis.md).
 */
export function kindOf(signal: Candidate["signal"]): PredictorKind | null {
  if (isFeatureSignal(signal)) return null;
  return signal === "binary" ? "binary" : "thresholded";
}

/** The candidate with the highest recall at precision ≥ minPrecision within the budget (ties: less compute). */
export function bestWithin(
  candidates: readonly Candidate[],
  budget: number,
  minPrecision: number,
  precisionOf: (c: Candidate) => number = (c) => c.precision,
  recallOf: (c: Candidate) => number = (c) => c.recall,
): Candidate | null {
  let best: Candidate | null = null;
  let bestRecall = 0;
  for (const c of candidates) {
    if (c.compute > budget * (1 + 1e-12)) continue;
    const p = precisionOf(c);
    const r = recallOf(c);
    if (!(p >= minPrecision - 1e-12) || !(r > 0)) continue;
    if (best === null || r > bestRecall || (r === bestRecall && c.compute < best.compute)) {
      best = c;
      bestRecall = r;
    }
  }
  return best;
}

/** The held-out selection within a budget, as the summary's `measured` (null when nothing qualifies). */
export function measuredOf(
  candidates: readonly Candidate[],
  sel: Selection,
): Recommendation["measured"] {
  if (sel.pick === null) return null;
  const m = candidates[sel.pick];
  const h = rates(sel.heldOut.tp, sel.heldOut.fp, sel.heldOut.fn);
  return {
    ...m.id,
    signal: m.signal,
    threshold: m.threshold,
    ...(m.runs ? { runs: m.runs.map((r) => ({ ...r })) } : {}),
    precision: h.precision ?? 0,
    precisionCI: h.precisionCI,
    recall: h.recall ?? 0,
    recallCI: h.recallCI,
    compute: m.compute,
    inSample: { precision: m.precision, recall: m.recall },
    foldAgreement: sel.agreement,
  };
}

/** One recommendation per budget, from measured candidates, fitted laws and resamples. */
export function recommend(
  candidates: readonly Candidate[],
  laws: readonly FittedLaw[],
  resamples: Resamples | null,
  opts: RecommendOptions,
): Recommendation[] {
  const { minPrecision, targetCompute: c0 } = opts;
  const selectable = candidates.map((c) => ({ compute: c.compute, fit: c.fit }));
  return opts.budgets.map((fraction) => {
    const budget = fraction * c0;
    const sel = selectHeldOut(selectable, budget, minPrecision, opts.positives);
    const measured = measuredOf(candidates, sel);
    const pick = sel.pick === null ? null : candidates[sel.pick];
    let stability: number | null = null;
    if (pick && resamples && resamples.resamples > 0) {
      let wins = 0;
      for (let b = 0; b < resamples.resamples; b++) {
        const w = bestWithin(
          candidates,
          budget,
          minPrecision,
          (c) => bootPrecision(resamples, b, c.index),
          (c) => bootRecall(resamples, b, c.index),
        );
        if (w && keyOf(w) === keyOf(pick)) wins++;
      }
      stability = wins / resamples.resamples;
    }
    const kind = pick ? kindOf(pick.signal) : "binary";
    const fitted = kind === null ? null : bestLaw(laws, kind, budget, c0, minPrecision);
    const floorHolds = measured !== null && (measured.precisionCI?.lo ?? 0) >= minPrecision;
    return {
      budgetFraction: fraction,
      budget,
      recallOver: opts.recallOver,
      measured,
      floorHolds,
      fitted,
      stability,
      note: noteOf(fraction, measured, floorHolds, stability, fitted, opts),
    };
  });
}

/** A pick as the summary holds it: a run (or a feature model) and its rule. */
export type PickId = PredictorId & {
  signal: string;
  threshold: number | null;
  runs?: readonly PredictorId[];
};

/**
 * A predictor's name: `M@S` for a run's signal, `row features` for the
 * data-only model, `row features + M@S + …` for a combined one.
 */
export function predictorLabel(m: PickId): string {
  if (!isFeatureSignal(m.signal)) return checkpointLabel(m);
  return ["row features", ...(m.runs ?? []).map(checkpointLabel)].join(" + ");
}

/**
 * How a pick is applied, in words: "memorized by M@S", "nll < T under M@S",
 * or "P(memorized) > T under the logistic model of row features + M@S".
 */
export function ruleText(m: PickId): string {
  if (isFeatureSignal(m.signal)) {
    return `P(memorized) > ${m.threshold} under the ${m.signal} logistic model of ${
      predictorLabel(m)
    }`;
  }
  return m.signal === "binary"
    ? `memorized by ${checkpointLabel(m)}`
    : `${m.signal} ${m.signal === "nll" ? "<" : "≥"} ${m.threshold} under ${checkpointLabel(m)}`;
}

function noteOf(
  fraction: number,
  m: Recommendation["measured"],
  floorHolds: boolean,
  stability: number | null,
  fitted: Recommendation["fitted"],
  opts: RecommendOptions,
): string {
  const floor = opts.minPrecision;
  const at = `Within ${percent(fraction)} of the target's compute`;
  const over = opts.recallOver === "all"
    ? "of all the target's memorized rows"
    : "of the target's memorized rows it scored";
  const parts: string[] = [];
  if (!m) {
    parts.push(`${at}, no measured predictor reaches precision ${floor}.`);
  } else {
    const ci = (i: Interval | null) => (i ? ` (95% CI ${percent(i.lo)}–${percent(i.hi)})` : "");
    parts.push(
      `${at}, rows ${ruleText(m)} catch ${percent(m.recall)}${ci(m.recallCI)} ${over} ` +
        `at precision ${m.precision.toFixed(3)}, held out (${percent(m.inSample.recall)} at ` +
        `${m.inSample.precision.toFixed(3)} on the rows that chose it)` +
        (stability !== null ? `; the best choice in ${percent(stability)} of resamples.` : "."),
    );
    parts.push(
      floorHolds
        ? `The precision floor ${floor} holds with 95% confidence.`
        : `The precision floor ${floor} does not hold with 95% confidence (held-out lower end ${
          (m.precisionCI?.lo ?? 0).toFixed(3)
        }).`,
    );
  }
  if (fitted) {
    parts.push(
      `The fitted ${fitted.kind} law of ${fitted.family} (${fitted.form}) expects recall ${
        percent(fitted.expectedRecall)
      } (${percent(fitted.interval.lo)}–${percent(fitted.interval.hi)}) at exactly this budget.`,
    );
  }
  return parts.join(" ");
}

/**
 * The recommendable family whose recall law of the given kind is highest at
 * the budget, among those whose precision law (when fitted) stays ≥
 * minPrecision there. Laws are evaluated only within their limits: a decade
 * below their smallest point up to what the family can spend (the target's
 * compute for sizes and the target model's checkpoints, a smaller model's
 * last checkpoint for its own checkpoints).
 */
function bestLaw(
  laws: readonly FittedLaw[],
  kind: PredictorKind,
  budget: number,
  c0: number,
  minPrecision: number,
): Recommendation["fitted"] {
  let best: Recommendation["fitted"] = null;
  const kindOfLaw = (l: FittedLaw) => l.kind ?? "binary";
  for (const law of laws) {
    if (law.metric !== "recall" || kindOfLaw(law) !== kind) continue;
    if (budget < law.limits[0] || budget > law.limits[1] * (1 + 1e-12)) continue;
    const prec = laws.find((l) =>
      l.metric === "precision" && l.family === law.family && kindOfLaw(l) === kind
    );
    if (prec && evaluateLaw(prec, budget, c0).value < minPrecision) continue;
    const e = evaluateLaw(law, budget, c0);
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    if (best === null || clamp(e.value) > best.expectedRecall) {
      best = {
        family: law.family,
        kind,
        form: law.form.name,
        expectedRecall: clamp(e.value),
        interval: { lo: clamp(e.lo), hi: clamp(e.hi) },
      };
    }
  }
  return best;
}
