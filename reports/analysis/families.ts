/**
 * Scaling laws per family of predictors: which runs form a family, the fits
 * of recall and precision against compute, and their bootstrap bands
 * (refits on Poisson-resampled rows, not resampled points).
 *
 * @module
 */
import type { FormFit, PredictorId, PredictorKind, ScalingFit } from "./summary.ts";
import { bootPrecision, bootRecall, type Resamples } from "./checkpoints.ts";
import { quantile } from "./stats.ts";
import { fitFamily, fitForm, type Form, PRECISION_FORMS, RECALL_FORMS, refit } from "./scaling.ts";
import { checkpointKey } from "../../engine/types.ts";

/** A measured point: one binary predictor with its classifier index in the resamples. */
export interface FamilyPoint {
  id: PredictorId;
  compute: number;
  recall: number | null;
  precision: number | null;
  /** Index of this predictor among the bootstrap classifiers. */
  index: number;
}

/** A named family of predictors (e.g. the sizes at their last step). */
export interface Family {
  name: string;
  points: FamilyPoint[];
  /** Whether it is a way to spend compute (recommendable); "all" is not. */
  recommendable: boolean;
  /**
   * The most compute the family can spend (the target's for sizes and the
   * target model's checkpoints; a smaller model's last checkpoint for its
   * checkpoints); its largest point when absent.
   */
  maxCompute?: number;
}

/** A fitted law with its bootstrap refits, for evaluation at any compute. */
export interface FittedLaw {
  family: string;
  metric: "recall" | "precision";
  /** Kind of predictor the points are (absent: binary). */
  kind?: PredictorKind;
  form: Form;
  params: number[];
  /** One parameter vector per usable resample. */
  boot: number[][];
  /** The resample each `boot` entry was refitted on (absent: boot[i] is resample i). */
  resampleOf?: number[];
  /** Compute range of the family's points. */
  range: [number, number];
  /** Budgets the law may be evaluated at: a decade below its smallest point up to the family's maximum. */
  limits: [number, number];
}

/** A fitted family: what the summary shows plus the law for recommendations. */
export interface FamilyResult {
  summary: ScalingFit;
  law: FittedLaw | null;
}

const GRID = 30;

/**
 * Fits one metric of one family; `c0` normalizes compute (the target's).
 * `resamples` hold the points' bootstrap counts at their `index`.
 */
export function fitScaling(
  family: Family,
  metric: "recall" | "precision",
  c0: number,
  resamples: Resamples | null,
  kind: PredictorKind = "binary",
): FamilyResult {
  const pts = family.points
    .filter((p) => p[metric] !== null && p.compute > 0)
    .sort((a, b) => a.compute - b.compute);
  const xs = pts.map((p) => Math.log10(p.compute / c0));
  const ys = pts.map((p) => p[metric] as number);
  const forms = metric === "recall" ? RECALL_FORMS : PRECISION_FORMS;
  const fam = fitFamily(xs, ys, forms);
  const fits: FormFit[] = fam.fits.map((f) => ({
    form: f.form.name,
    formula: f.form.formula(f.params, c0),
    params: Object.fromEntries(f.form.params.map((n, i) => [n, f.params[i]])),
    rmse: f.rmse,
    looRmse: f.looRmse,
    converged: f.converged,
  }));
  const summary: ScalingFit = {
    family: family.name,
    metric,
    kind,
    points: pts.map((p, i) => ({ ...p.id, compute: p.compute, value: ys[i] })),
    fits,
    chosen: fam.chosen?.form.name ?? null,
    curve: [],
    looLargest: null,
  };
  if (!fam.chosen) return { summary, law: null };
  const { form, params } = fam.chosen;
  const { boot, resampleOf } = bootstrapFits(form, params, xs, pts, metric, resamples);
  summary.curve = curveWithBand(form, params, boot, xs, c0);
  summary.looLargest = largestLeftOut(form, xs, ys, pts);
  return {
    summary,
    law: {
      family: family.name,
      metric,
      kind,
      form,
      params,
      boot,
      resampleOf,
      range: [pts[0].compute, pts[pts.length - 1].compute],
      limits: [pts[0].compute / 10, family.maxCompute ?? pts[pts.length - 1].compute],
    },
  };
}

/** The chosen form refitted to every bootstrap resample of the points (those that converge). */
function bootstrapFits(
  form: Form,
  params: number[],
  xs: number[],
  pts: readonly FamilyPoint[],
  metric: "recall" | "precision",
  resamples: Resamples | null,
): { boot: number[][]; resampleOf: number[] } {
  const boot: number[][] = [];
  const resampleOf: number[] = [];
  if (!resamples) return { boot, resampleOf };
  const get = metric === "recall" ? bootRecall : bootPrecision;
  for (let b = 0; b < resamples.resamples; b++) {
    const yb = pts.map((p) => get(resamples, b, p.index));
    if (yb.some(Number.isNaN)) continue;
    const pb = refit(form, xs, yb, params);
    if (pb) {
      boot.push(pb);
      resampleOf.push(b);
    }
  }
  return { boot, resampleOf };
}

/** The fitted curve on a grid from half a decade below the points to the target, with a 95% band. */
function curveWithBand(
  form: Form,
  params: number[],
  boot: number[][],
  xs: number[],
  c0: number,
): ScalingFit["curve"] {
  const x0 = xs[0] - 0.5;
  const x1 = Math.max(0, xs[xs.length - 1]);
  return Array.from({ length: GRID }, (_, g) => {
    const x = x0 + ((x1 - x0) * g) / (GRID - 1);
    const value = form.predict(params, x);
    const vals = boot.map((pb) => form.predict(pb, x));
    return {
      compute: c0 * Math.pow(10, x),
      value,
      lo: vals.length > 0 ? quantile(vals, 0.025) : value,
      hi: vals.length > 0 ? quantile(vals, 0.975) : value,
    };
  });
}

/** The largest point as the form fitted to the others predicts it (three points or more). */
function largestLeftOut(
  form: Form,
  xs: number[],
  ys: number[],
  pts: readonly FamilyPoint[],
): ScalingFit["looLargest"] {
  if (xs.length < 3) return null;
  const n = xs.length - 1;
  const sol = fitForm(form, xs.slice(0, n), ys.slice(0, n));
  if (!sol) return null;
  return { compute: pts[n].compute, predicted: form.predict(sol.params, xs[n]), actual: ys[n] };
}

/** Evaluates a law at compute C with a 95% bootstrap interval (the point value when no resamples). */
export function evaluateLaw(
  law: FittedLaw,
  compute: number,
  c0: number,
): { value: number; lo: number; hi: number; draws: number[] } {
  const x = Math.log10(compute / c0);
  const value = law.form.predict(law.params, x);
  const draws = law.boot.map((p) => law.form.predict(p, x));
  return {
    value,
    lo: draws.length > 0 ? quantile(draws, 0.025) : value,
    hi: draws.length > 0 ? quantile(draws, 0.975) : value,
    draws,
  };
}

/**
 * The families: sizes at their last step, checkpoints of the target's model,
 * checkpoints of each other model (3 or more), and all points together. The
 * target run itself is in none.
 */
export function makeFamilies(
  points: FamilyPoint[],
  target: PredictorId,
  finals: Set<string>,
  targetCompute: number,
): Family[] {
  const key = (id: PredictorId) => checkpointKey(id.model, id.step);
  const others = points.filter((p) => key(p.id) !== key(target));
  const families: Family[] = [
    {
      name: "sizes (final step)",
      points: others.filter((p) => finals.has(key(p.id))),
      recommendable: true,
      maxCompute: targetCompute,
    },
    {
      name: `checkpoints of ${target.model}`,
      points: others.filter((p) => p.id.model === target.model),
      recommendable: true,
      maxCompute: targetCompute,
    },
  ];
  const models = [...new Set(others.map((p) => p.id.model))].filter((m) => m !== target.model);
  for (const m of models) {
    const pts = others.filter((p) => p.id.model === m);
    if (pts.length >= 3) {
      families.push({ name: `checkpoints of ${m}`, points: pts, recommendable: true });
    }
  }
  families.push({ name: "all", points: others, recommendable: false });
  return families;
}
