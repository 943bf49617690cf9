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
