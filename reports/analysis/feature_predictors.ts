/**
 * The row features in the analysis (issue 21): per budget, the **combined**
 * predictor (cross-fitted logistic regression over the signals of the cheap
 * runs within the budget and the row features, combined.ts) and the
 * **data-only** predictor (the features alone), measured held out exactly as
 * the other predictors (out-of-fold probabilities, the threshold of each fold
 * chosen on the other folds by crossfit.ts at the precision floor), beside the
 * budget's recommended single signal and the paper's binary predictor (the
 * best run's binary memorization within the budget, chosen held out by
 * `selectHeldOut`); and per kind of personal data, the rows with it, how
 * many the target memorized and how many each predictor catches held out.
 *
 * The features' compute is their measured wall time (`Summary.features.seconds`),
 * not FLOPs: it is reported, and counted as 0 FLOPs in the budget.
 *
 * @module
 */
import type { AnalysisSettings } from "../../engine/types.ts";
import { featureIndex, type RowFeatures } from "../../engine/data/features/row_features.ts";
import { PERSONAL_KINDS } from "../../engine/data/features/personal.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import { chunkMemorized } from "../../engine/store/scored_checkpoint.ts";
import {
  type Columns,
  crossFitLogistic,
  dataColumns,
  PROBABILITY_BINS,
  probabilityFolded,
  runColumns,
  type RunSignals,
  runsWithinBudget,
} from "./combined.ts";
import { type Counts, crossFit, selectHeldOut } from "./crossfit.ts";
import { binaryFolded, foldPositives } from "./heldout.ts";
import { rates } from "./metrics.ts";
import type {
  FeaturePredictor,
  FeaturePredictors,
  PersonalKindRow,
  Recommendation,
} from "./summary.ts";

/** Held-out measurement of counts. */
function measured(
  c: Counts,
): Pick<FeaturePredictor, "recall" | "recallCI" | "precision" | "tp" | "fp"> {
  const r = rates(c.tp, c.fp, c.fn);
  return {
    recall: r.recall ?? 0,
    recallCI: r.recallCI,
    precision: r.precision,
    tp: c.tp,
    fp: c.fp,
  };
}

/** The rows the model is fitted on: feature rows the target scored, with its labels. */
function modelRows(target: AnalysedCheckpoint, f: RowFeatures) {
  const at: number[] = [], rows: number[] = [], y: number[] = [];
  for (let k = 0; k < target.source!.chunks; k++) {
    const c = target.source!.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      const j = featureIndex(f, c.rows[i]);
      if (j < 0) continue;
      at.push(j);
      rows.push(c.rows[i]);
      y.push(chunkMemorized(c, i, target.continuation) ? 1 : 0);
    }
  }
  return { at, rows, y };
}

/** A run's per-row signals aligned with `rows` (NaN where it did not score the row). */
function signalsOf(run: AnalysedCheckpoint, index: Map<number, number>, n: number): RunSignals {
  const matches = new Float64Array(n).fill(NaN);
  const prefix = run.source!.prefix ? new Float64Array(n).fill(NaN) : undefined;
  const nll = run.source!.nll ? new Float64Array(n).fill(NaN) : undefined;
  for (let k = 0; k < run.source!.chunks; k++) {
    const c = run.source!.chunk(k);
    for (let i = 0; i < c.rows.length; i++) {
      const j = index.get(c.rows[i]);
      if (j === undefined) continue;
      matches[j] = c.matches[i];
      if (prefix) prefix[j] = c.prefix![i];
      if (nll) nll[j] = c.nll![i];
    }
  }
  return {
    name: `${run.id.model}@${run.id.step}`,
    compute: run.compute,
    matches,
    ...(prefix ? { prefix } : {}),
    ...(nll ? { nll } : {}),
  };
}

/** A predictor's held-out fit and, per row, whether its fold's rule predicts it memorized. */
function fitPredictor(
  columns: Columns,
  y: number[],
  rows: number[],
  settings: AnalysisSettings,
  positives: number[],
): { counts: Counts; predicted: Uint8Array } {
  const cf = crossFitLogistic(columns, y, {
    folds: settings.folds,
    seed: settings.seed,
    rows,
  });
  const fit = crossFit(
    probabilityFolded(cf, y, settings.folds, positives),
    settings.minPrecision,
  );
  const B = PROBABILITY_BINS;
  const predicted = new Uint8Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const bin = fit.folds[cf.fold[i]].bin;
    const b = Math.min(B - 1, Math.max(0, Math.floor((1 - cf.probability[i]) * B)));
    predicted[i] = bin !== null && b <= bin ? 1 : 0;
  }
  return { counts: fit.heldOut, predicted };
}

/** The data-only model's columns for the feature rows `at` (indices into `f`'s arrays). */
export function featureColumns(f: RowFeatures, at: readonly number[]): Columns {
  const pick = (a: number[]) => Float64Array.from(at, (j) => a[j]);
  return dataColumns({
    windowCount: pick(f.window),
    contextCount: pick(f.context),
    step: pick(f.step),
    compression: pick(f.compression),
    distinct: pick(f.distinct),
  });
}

/**
 * Per budget, the combined and data-only predictors beside the recommended
 * single signal and the paper's binary predictor; per kind of personal data,
 * what the target memorized and what each predictor catches (held out).
 */
export function featurePredictors(
  f: RowFeatures,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  settings: AnalysisSettings,
  recommendations: readonly Recommendation[],
): FeaturePredictors | null {
  if (!target.source) return null;
  const { at, rows, y } = modelRows(target, f);
  if (rows.length === 0) return null;
  const data = featureColumns(f, at);
  const folds = { folds: settings.folds, seed: settings.seed, recallOver: settings.recallOver };
  const positives = foldPositives(target, folds);
  const dataOnly = fitPredictor(data, y, rows, settings, positives);
  const cheap = runs.filter((r) => r !== target && r.source && r.compute < target.compute);
  const index = new Map(rows.map((r, i) => [r, i]));
  const signals = new Map<AnalysedCheckpoint, RunSignals>();
  const signalOf = (r: AnalysedCheckpoint) => {
    if (!signals.has(r)) signals.set(r, signalsOf(r, index, rows.length));
    return signals.get(r)!;
  };
  const binaries = runs.filter((r) => r !== target).map((r) => ({
    compute: r.compute,
    fit: crossFit(binaryFolded(r, target, folds, positives), settings.minPrecision),
    id: r.id,
  }));
  const predictedBy: { name: string; predicted: Uint8Array }[] = [
    { name: "data-only", predicted: dataOnly.predicted },
  ];
  const budgets = recommendations.map((rec) => {
    const used = runsWithinBudget(cheap, rec.budget).map((i) => cheap[i]);
    const combined = used.length > 0
      ? fitPredictor(
        { ...runColumns(used.map(signalOf)), ...data },
        y,
        rows,
        settings,
        positives,
      )
      : dataOnly;
    if (used.length > 0) {
      predictedBy.push({ name: `combined@${rec.budgetFraction}`, predicted: combined.predicted });
    }
    const sel = selectHeldOut(binaries, rec.budget, settings.minPrecision, positives);
    const binary = sel.pick === null ? null : {
      ...binaries[sel.pick].id,
      ...measured(sel.heldOut),
    };
    const m = rec.measured;
    return {
      budgetFraction: rec.budgetFraction,
      budget: rec.budget,
      runs: used.map((r) => ({ ...r.id })),
      compute: used.reduce((a, r) => a + r.compute, 0),
      combined: measured(combined.counts),
      dataOnly: measured(dataOnly.counts),
      bestSingle: m
        ? {
          model: m.model,
          step: m.step,
          signal: m.signal,
          recall: m.recall,
          recallCI: m.recallCI,
          precision: m.precision,
        }
        : null,
      paperBinary: binary,
    };
  });
  return {
    rows: rows.length,
    memorized: y.reduce((a, v) => a + v, 0),
    budgets,
    personal: personalRows(f, at, rows, y, predictedBy),
  };
}

/** Per kind with rows: rows, memorized by the target, and held-out catches of each predictor. */
function personalRows(
  f: RowFeatures,
  at: number[],
  rows: number[],
  y: number[],
  predictedBy: { name: string; predicted: Uint8Array }[],
): PersonalKindRow[] {
  const out: PersonalKindRow[] = [];
  for (const kind of PERSONAL_KINDS) {
    const members: number[] = [];
    for (let i = 0; i < rows.length; i++) {
      if ((f.personal[String(f.rows[at[i]])] ?? []).some((h) => h.kind === kind)) members.push(i);
    }
    if (members.length === 0) continue;
    const memorized = members.filter((i) => y[i] === 1);
    const examples = members.slice(0, 3).flatMap((i) =>
      (f.personal[String(rows[i])] ?? []).filter((h) => h.kind === kind).slice(0, 1).map((h) => ({
        row: rows[i],
        masked: h.masked,
      }))
    );
    out.push({
      kind,
      rows: members.length,
      memorized: memorized.length,
      caught: predictedBy.map((p) => {
        const tp = memorized.filter((i) => p.predicted[i] === 1).length;
        const r = rates(tp, 0, memorized.length - tp);
        return { predictor: p.name, caught: tp, recall: r.recall, recallCI: r.recallCI };
      }),
      examples,
    });
  }
  return out;
}
