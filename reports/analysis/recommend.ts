/**
 * Equi-compute recommendations: for each budget (a fraction of the target's
 * compute) the measured predictor with the highest recall at the minimum
 * precision, the fitted family's expectation at exactly that budget, and how
 * often the measured choice still wins under bootstrap resampling.
 *
 * @module
 */
import type { Interval, PredictorId, Recommendation } from "./summary.ts";
import { bootPrecision, bootRecall, label, type Resamples } from "./runs.ts";
import { evaluateLaw, type FittedLaw } from "./families.ts";
import { percent } from "./stats.ts";

/** A measured candidate: a binary predictor or a thresholded signal of a run. */
export interface Candidate {
  id: PredictorId;
  signal: "binary" | "score" | "prefix" | "nll";
  threshold: number | null;
  precision: number;
  precisionCI: Interval | null;
  recall: number;
  recallCI: Interval | null;
  compute: number;
  /** Index among the bootstrap classifiers. */
  index: number;
}

/** The settings of the recommendation step. */
export interface RecommendOptions {
  budgets: number[];
  minPrecision: number;
  /** The target's compute (budgets are fractions of it). */
  targetCompute: number;
}

const keyOf = (c: Candidate) =>
  `${c.id.model}\u0000${c.id.step}\u0000${c.signal}\u0000${c.threshold}`;

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

/** One recommendation per budget, from measured candidates, fitted recall/precision laws and resamples. */
export function recommend(
  candidates: readonly Candidate[],
  laws: readonly FittedLaw[],
  resamples: Resamples | null,
  opts: RecommendOptions,
): Recommendation[] {
  const { minPrecision, targetCompute: c0 } = opts;
  return opts.budgets.map((fraction) => {
    const budget = fraction * c0;
    const m = bestWithin(candidates, budget, minPrecision);
    let stability: number | null = null;
    if (m && resamples && resamples.resamples > 0) {
      let wins = 0;
      for (let b = 0; b < resamples.resamples; b++) {
        const w = bestWithin(
          candidates,
          budget,
          minPrecision,
          (c) => bootPrecision(resamples, b, c.index),
          (c) => bootRecall(resamples, b, c.index),
        );
        if (w && keyOf(w) === keyOf(m)) wins++;
      }
      stability = wins / resamples.resamples;
    }
    const fitted = bestLaw(laws, budget, c0, minPrecision);
    const reliable = m !== null && (m.precisionCI?.lo ?? 0) >= minPrecision &&
      (m.recallCI?.lo ?? 0) > 0;
    const parts: string[] = [];
    const at = `Within ${percent(fraction)} of the target's compute`;
    if (!m) {
      parts.push(
        `${at}, no measured predictor reaches precision ${minPrecision}: none is reliable.`,
      );
    } else {
      const ci = m.recallCI ? ` (95% CI ${percent(m.recallCI.lo)}–${percent(m.recallCI.hi)})` : "";
      const how = m.signal === "binary"
        ? "memorized by"
        : `${m.signal} ${m.signal === "nll" ? "≤" : "≥"} ${m.threshold} under`;
      parts.push(
        `${at}, rows ${how} ${label(m.id)} catch ${
          percent(m.recall)
        }${ci} of the target's memorized rows at precision ${m.precision.toFixed(3)}` +
          (stability !== null ? `, the best choice in ${percent(stability)} of resamples.` : "."),
      );
      if (!reliable) {
        parts.push(
          `Not reliable: the precision interval's lower end (${
            (m.precisionCI?.lo ?? 0).toFixed(3)
          }) is below ${minPrecision} or recall could be zero.`,
        );
      }
    }
    if (fitted) {
      parts.push(
        `The fitted law of ${fitted.family} (${fitted.form}) expects recall ${
          percent(fitted.expectedRecall)
        } (${percent(fitted.interval.lo)}–${percent(fitted.interval.hi)}) at exactly this budget.`,
      );
    }
    return {
      budgetFraction: fraction,
      budget,
      measured: m
        ? {
          ...m.id,
          signal: m.signal,
          threshold: m.threshold,
          precision: m.precision,
          recall: m.recall,
          recallCI: m.recallCI,
          compute: m.compute,
        }
        : null,
      fitted,
      stability,
      reliable,
      note: parts.join(" "),
    };
  });
}

/**
 * The recommendable family whose recall law is highest at the budget, among
 * those whose precision law (when fitted) stays ≥ minPrecision there. Laws
 * are evaluated only within their limits: a decade below their smallest
 * point up to what the family can spend (the target's compute for sizes and
 * the target model's checkpoints, a smaller model's last checkpoint for its
 * own checkpoints).
 */
function bestLaw(
  laws: readonly FittedLaw[],
  budget: number,
  c0: number,
  minPrecision: number,
): Recommendation["fitted"] {
  let best: Recommendation["fitted"] = null;
  for (const law of laws) {
    if (law.metric !== "recall") continue;
    if (budget < law.limits[0] || budget > law.limits[1] * (1 + 1e-12)) continue;
    const prec = laws.find((l) => l.metric === "precision" && l.family === law.family);
    if (prec && evaluateLaw(prec, budget, c0).value < minPrecision) continue;
    const e = evaluateLaw(law, budget, c0);
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    if (best === null || clamp(e.value) > best.expectedRecall) {
      best = {
        family: law.family,
        form: law.form.name,
        expectedRecall: clamp(e.value),
        interval: { lo: clamp(e.lo), hi: clamp(e.hi) },
      };
    }
  }
  return best;
}
