/**
 * The summary's one-paragraph verdict in plain language, written from the
 * numbers alone.
 *
 * @module
 */
import type { Summary } from "./summary.ts";
import { percent } from "./stats.ts";
import { ruleText } from "./recommend.ts";
import { checkpointLabel } from "../../engine/types.ts";

/**
 * The answer first: "to catch R of the target's memorization at precision P
 * you need C", per recall asked for, from the measured frontier (held out),
 * else from the fitted law needing the least compute; null without recalls.
 */
export function answer(s: Summary): string | null {
  const list = s.computeForRecall ?? [];
  if (list.length === 0 || s.target.memorized === 0) return null;
  const over = s.experiment.recallOver === "covered"
    ? "of the memorized rows each predictor scored"
    : "of the target's memorized rows";
  const items = list.map((c, i) => {
    const m = c.measured;
    const head = i === 0 ? "" : `${percent(c.recall)}: `;
    if (m.fraction !== null) {
      return `${head}${percent(m.fraction)}${i === 0 ? " of its compute" : ""}` +
        (m.pick ? ` (${ruleText(m.pick)})` : "");
    }
    const laws = c.laws.filter((l) => l.fraction !== null)
      .sort((a, b) => a.fraction! - b.fraction!);
    if (laws.length > 0) {
      const l = laws[0];
      const hi = l.hi === null ? "beyond what it can spend" : percent(l.hi);
      return `${head}no measured predictor; the ${l.kind} law of ${l.family} expects ${
        percent(l.fraction!)
      }${i === 0 ? " of its compute" : ""} (95% ${l.lo === null ? "?" : percent(l.lo)} to ${hi})`;
    }
    return `${head}out of reach of every measured predictor and fitted law`;
  });
  return `To catch ${percent(list[0].recall)} ${over} at precision ${s.experiment.minPrecision} ` +
    `you need ${items.join("; ")} (held-out numbers).`;
}

const f3 = (v: number | null) => (v === null ? "n/a" : v.toFixed(3));

/** The verdict paragraph of a summary (everything but `verdict` filled in). */
export function verdict(s: Summary): string {
  const t = s.target;
  const lead = answer(s);
  const parts = [
    ...(lead ? [lead] : []),
    `The target ${checkpointLabel(t)} memorizes ${t.memorized} of ${t.rowsScored} rows scored (${
      percent(t.rate)
    }).`,
  ];
  if (t.memorized === 0) return [...parts, nothingMemorized(s)].join(" ");
  return [...parts, ...finalModels(s), ...thresholding(s), ...floor(s), ...lawCheck(s)].join(" ");
}

/** Why nothing can be said when the target memorizes no row. */
function nothingMemorized(s: Summary): string {
  const t = s.target;
  const dist = s.distributions.find((d) => d.model === t.model && d.step === t.step);
  const best = dist ? dist.counts.findLastIndex((c) => c > 0) : -1;
  const l = dist ? dist.counts.length - 1 : s.experiment.memorization.continuation;
  return `No row is memorized${
    best >= 0 ? ` (its best row matches ${best} of ${l} continuation tokens)` : ""
  }, so precision and recall are undefined and no predictor can be recommended; a longer-trained or larger target, or a shorter continuation, would make the comparison informative.`;
}

/** The range of precision and recall of the fully trained smaller models. */
function finalModels(s: Summary): string[] {
  const t = s.target;
  const finals = s.predictors.filter((p) =>
    p.final && !(p.model === t.model && p.step === t.step) && p.recall !== null
  ).sort((a, b) => a.compute - b.compute);
  if (finals.length === 0) return [];
  const lo = finals[0];
  const hi = finals[finals.length - 1];
  return [
    `Fully trained smaller models predict it with precision ${f3(lo.precision)}–${
      f3(hi.precision)
    } and recall ${f3(lo.recall)} (${lo.model}, ${percent(lo.computeFraction)} of its compute) to ${
      f3(hi.recall)
    } (${hi.model}, ${percent(hi.computeFraction)}).`,
  ];
}

/** Where thresholding a continuous signal raises recall most (or that it does not). */
function thresholding(s: Summary): string[] {
  const improved = s.curves.filter((c) =>
    c.best && c.signal !== "score" && c.recallAtBinaryPrecision !== null
  );
  const gains = improved.map((c) => {
    const bin = s.predictors.find((p) => p.model === c.model && p.step === c.step);
    return { c, gain: (c.recallAtBinaryPrecision ?? 0) - (bin?.recall ?? 0) };
  }).sort((a, b) => b.gain - a.gain);
  if (gains.length > 0 && gains[0].gain > 0.005) {
    const g = gains[0];
    return [
      `Thresholding a continuous signal helps most for ${
        checkpointLabel(g.c)
      } (${g.c.signal}): recall rises by ${
        (100 * g.gain).toFixed(1)
      } points at the same precision.`,
    ];
  }
  if (s.curves.length === 0) return [];
  return [
    "Thresholding continuous signals does not raise recall at the binary predictor's precision.",
  ];
}

/** From which budget the precision floor holds on held-out rows (or that it never does). */
function floor(s: Summary): string[] {
  if (s.recommendations.length === 0) return [];
  const held = s.recommendations.filter((r) => r.floorHolds);
  if (held.length === 0) {
    return [
      `At no budget up to ${
        percent(Math.max(...s.recommendations.map((r) => r.budgetFraction)))
      } of the target's compute does the precision floor ${s.experiment.minPrecision} hold with 95% confidence on held-out rows.`,
    ];
  }
  const r = held[0];
  const m = r.measured!;
  return [
    `The floor ${s.experiment.minPrecision} holds with 95% confidence from ${
      percent(r.budgetFraction)
    } of the target's compute on: ${ruleText(m)}, recall ${percent(m.recall)} at precision ${
      m.precision.toFixed(3)
    } (held out).`,
  ];
}

/** How well the sizes' recall law predicts the largest predictor from the others. */
function lawCheck(s: Summary): string[] {
  const law = s.scaling.find((f) => f.family === "sizes (final step)" && f.metric === "recall");
  if (!law?.looLargest) return [];
  const e = law.looLargest;
  return [
    `The recall law of the sizes (${law.chosen}) predicts the largest predictor at ${
      f3(e.predicted)
    } from the others (measured ${f3(e.actual)}).`,
  ];
}

/** The report's answer in three lines, each one sentence (see {@link headline}). */
export interface Headline {
  /** What the target memorized. */
  memorized: string;
  /** The best predictor at two or three headline budgets, held-out recall and precision. */
  predictors: string;
  /** The compute needed for recall 0.8 (or the experiment's recall nearest to it); null without one. */
  computeForRecall: string | null;
}

/**
 * The budgets the headline names: the smallest and the largest budget with a
 * pick, and between them the one nearest their geometric mean (fewer when
 * fewer budgets have a pick).
 */
export function headlineBudgets(s: Summary): Summary["recommendations"] {
  const withPick = s.recommendations.filter((r) => r.measured !== null);
  if (withPick.length <= 3) return withPick;
  const first = withPick[0];
  const last = withPick[withPick.length - 1];
  const mid = Math.sqrt(first.budgetFraction * last.budgetFraction);
  const inner =
    withPick.slice(1, -1).sort((a, b) =>
      Math.abs(Math.log(a.budgetFraction / mid)) - Math.abs(Math.log(b.budgetFraction / mid))
    )[0];
  return [first, inner, last];
}

/** The experiment's recall nearest to 0.8 with its compute, or null without any. */
function recallNear80(s: Summary): Summary["computeForRecall"][number] | null {
  const list = s.computeForRecall ?? [];
  if (list.length === 0) return null;
  return [...list].sort((a, b) => Math.abs(a.recall - 0.8) - Math.abs(b.recall - 0.8))[0];
}

/**
 * The answer first, in three sentences: what the target memorized; the best
 * predictor within two or three headline budgets with its held-out recall and
 * precision (and whether the precision floor holds); the compute needed for
 * recall 0.8 at the floor, measured and from the best fitted law.
 */
export function headline(s: Summary): Headline {
  const t = s.target;
  const floor = s.experiment.minPrecision;
  const n = (x: number) => x.toLocaleString("en-US");
  const memorized = t.memorized === 0
    ? `The target ${checkpointLabel(t)} memorized none of the ${
      n(t.rowsScored)
    } rows it scored, so no ` +
      "predictor can be measured against it."
    : `The target ${checkpointLabel(t)} memorized ${n(t.memorized)} of the ${
      n(t.rowsScored)
    } rows it ` +
      `scored (${percent(t.rate)}), with ${t.compute.toExponential(2)} FLOPs of training compute.`;
  const picks = headlineBudgets(s);
  let predictors: string;
  if (t.memorized === 0) {
    predictors = "No predictor is recommended: precision and recall are undefined.";
  } else if (picks.length === 0) {
    const most = Math.max(0, ...s.recommendations.map((r) => r.budgetFraction));
    predictors = `No predictor within ${
      percent(most)
    } of its compute reaches precision ${floor} on held-out rows.`;
  } else {
    const held = picks.filter((r) => r.floorHolds).length;
    const items = picks.map((r, i) => {
      const m = r.measured!;
      const mark = held > 0 && !r.floorHolds ? " (floor not assured)" : "";
      return `within ${percent(r.budgetFraction)}${i === 0 ? " of its compute" : ""}, ${
        ruleText(m)
      }: recall ${f3(m.recall)} at precision ${f3(m.precision)}${mark}`;
    });
    const none = held === 0
      ? ` None clears the floor ${floor} with 95% confidence at these rows (the budget table ` +
        "says why)."
      : "";
    predictors = `Best predictor, held out: ${items.join("; ")}.${none}`;
  }
  const c = t.memorized === 0 ? null : recallNear80(s);
  let computeForRecall: string | null = null;
  if (c) {
    const m = c.measured;
    const how = [
      ...(m.pick ? [ruleText(m.pick)] : []),
      ...(m.precision !== null ? [`held-out precision ${f3(m.precision)}`] : []),
    ];
    const measured = m.fraction !== null
      ? `Recall ${c.recall} at precision ≥ ${floor} needs ${percent(m.fraction)} of its compute ` +
        `measured` + (how.length > 0 ? ` (${how.join(", ")})` : "")
      : `No measured predictor reaches recall ${c.recall} at precision ≥ ${floor}`;
    const law = c.laws.filter((l) => l.fraction !== null)
      .sort((a, b) => a.fraction! - b.fraction!)[0];
    const fitted = law
      ? `the ${law.kind} law of ${law.family} expects ${percent(law.fraction!)} (95% ${
        law.lo === null ? "?" : percent(law.lo)
      } to ${law.hi === null ? "beyond what it can spend" : percent(law.hi)})`
      : "no fitted law reaches it within what its family can spend";
    computeForRecall = `${measured}; ${fitted}.`;
  }
  return { memorized, predictors, computeForRecall };
}
