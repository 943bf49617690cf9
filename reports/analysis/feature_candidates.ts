/**
 * The models over the row features as candidates of the analysis (issue 21):
 * the **data-only** predictor (a logistic model of the row features alone,
 * no model compute) and, per budget of the recommendations, the **combined**
 * predictor (the row features and the signals of the cheap runs
 * `runsWithinBudget` picks; its compute is the sum of theirs). Each is
 * cross-fitted (combined.ts: fold f's rows get the probability of the model
 * fitted without them) and its threshold chosen and measured per fold by
 * crossfit.ts, so it enters the frontier, the recommendations and the
 * compute for a recall like any run's signal. No scaling law is fitted to
 * them (docs/analysis.md says why).
 *
 * @module
 */
import type { AnalysisSettings } from "../../engine/types.ts";
import { featureIndex, type RowFeatures } from "../../engine/data/features/row_features.ts";
import { chunkMemorized } from "../../engine/store/scored_checkpoint.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import {
  type Columns,
  crossFitLogistic,
  dataColumns,
  type LogisticModel,
  PROBABILITY_BINS,
  probabilityFolded,
  runColumns,
  type RunSignals,
  runsWithinBudget,
} from "./combined.ts";
import { type CrossFit, crossFit } from "./crossfit.ts";
import { type Classifier, rates } from "./metrics.ts";
import type { Candidate } from "./recommend.ts";
import type { FeatureSignal } from "./summary.ts";

/** A model over the row features, measured held out. */
export interface FeatureFit {
  signal: FeatureSignal;
  /** The cheap runs whose signals it uses, most expensive first (none: data-only). */
  runs: AnalysedCheckpoint[];
  /** Their summed training compute (0 for data-only). */
  compute: number;
  /** The threshold's cross-fit on the out-of-fold probabilities. */
  fit: CrossFit;
  /** The model of each fold (fitted without that fold's rows). */
  models: LogisticModel[];
  /** Rows per probability bin the target memorized / did not (all folds summed). */
  pos: Float64Array;
  neg: Float64Array;
  /** Per model row: 1 when its fold's rule (chosen on the other folds) flags it. */
  predicted: Uint8Array;
  /** The rows the all-rows rule flags (ascending): what the bootstrap counts. */
  flagged: Uint32Array;
}

/** The data-only fit and one combined fit per recommendation budget, on the same rows. */
export interface FeatureFits {
  /** The model rows: rows with features the target scored, ascending. */
  rows: number[];
  /** The target's label of each (1: memorized). */
  y: number[];
  /** Index of each row in the features' arrays. */
  at: number[];
  dataOnly: FeatureFit;
  /** Per `settings.budgets` entry: its combined fit (the data-only one when no cheap run fits). */
  byBudget: FeatureFit[];
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

/**
 * A run's per-row signals aligned with the model rows (`index`: row → its
 * position; NaN where the run did not score the row). Column names are
 * `model@step.prefix|matches|nll` (combined.ts `runColumns`), the same in
 * any run folder, so a forecast can rebuild them.
 */
export function signalsOf(
  run: Pick<AnalysedCheckpoint, "model" | "step" | "compute" | "source">,
  index: ReadonlyMap<number, number>,
  n: number,
): RunSignals {
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
    name: `${run.model}@${run.step}`,
    compute: run.compute,
    matches,
    ...(prefix ? { prefix } : {}),
    ...(nll ? { nll } : {}),
  };
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

/** Probability bin of p (bin 0 the most probable), as `probabilityFolded` bins it. */
export function probabilityBin(p: number): number {
  const B = PROBABILITY_BINS;
  return Math.min(B - 1, Math.max(0, Math.floor((1 - p) * B)));
}

/** Cross-fits a model and its threshold on the model rows. */
function fitModel(
  signal: FeatureSignal,
  used: AnalysedCheckpoint[],
  columns: Columns,
  m: { rows: number[]; y: number[] },
  settings: AnalysisSettings,
  positives: readonly number[],
): FeatureFit {
  const { rows, y } = m;
  const cf = crossFitLogistic(columns, y, { folds: settings.folds, seed: settings.seed, rows });
  const folded = probabilityFolded(
    cf,
    y,
    settings.folds,
    settings.recallOver === "all" ? positives : undefined,
  );
  const fit = crossFit(folded, settings.minPrecision);
  const predicted = new Uint8Array(y.length);
  const flagged: number[] = [];
  const all = fit.inSample.bin;
  for (let i = 0; i < y.length; i++) {
    const b = probabilityBin(cf.probability[i]);
    const bin = fit.folds[cf.fold[i]].bin;
    predicted[i] = bin !== null && b <= bin ? 1 : 0;
    if (all !== null && b <= all) flagged.push(rows[i]);
  }
  const sum = (h: Float64Array[]) =>
    h.reduce((a, v) => a.map((x, b) => x + v[b]), new Float64Array(PROBABILITY_BINS));
  return {
    signal,
    runs: used,
    compute: used.reduce((a, r) => a + r.compute, 0),
    fit,
    models: cf.models,
    pos: sum(folded.pos),
    neg: sum(folded.neg),
    predicted,
    flagged: Uint32Array.from(flagged),
  };
}

/**
 * The data-only model and, per recommendation budget, the combined model of
 * the cheap runs within it (runs cheaper than the target with per-row
 * scores; one fit per distinct set of runs); null without per-row target
 * scores or rows with features.
 */
export function fitFeatureModels(
  f: RowFeatures,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  settings: AnalysisSettings,
  positives: readonly number[],
): FeatureFits | null {
  if (!target.source) return null;
  const m = modelRows(target, f);
  if (m.rows.length === 0) return null;
  const data = featureColumns(f, m.at);
  const dataOnly = fitModel("data-only", [], data, m, settings, positives);
  const cheap = runs.filter((r) => r !== target && r.source && r.compute < target.compute);
  const index = new Map(m.rows.map((r, i) => [r, i]));
  const signals = new Map<AnalysedCheckpoint, RunSignals>();
  const signalOf = (r: AnalysedCheckpoint) => {
    if (!signals.has(r)) signals.set(r, signalsOf(r, index, m.rows.length));
    return signals.get(r)!;
  };
  const bySet = new Map<string, FeatureFit>();
  const byBudget = settings.budgets.map((fraction) => {
    const used = runsWithinBudget(cheap, fraction * target.compute).map((i) => cheap[i]);
    if (used.length === 0) return dataOnly;
    const key = used.map((r) => `${r.model}@${r.step}`).join(" ");
    if (!bySet.has(key)) {
      const columns = { ...runColumns(used.map(signalOf)), ...data };
      bySet.set(key, fitModel("combined", used, columns, m, settings, positives));
    }
    return bySet.get(key)!;
  });
  return { ...m, dataOnly, byBudget };
}

/**
 * The candidates of the fits (each distinct fit once; none when no threshold
 * reaches the floor on all rows), with the rows their all-rows rule flags as
 * the bootstrap's classifier.
 */
export function featureCandidates(
  fits: FeatureFits,
  target: AnalysedCheckpoint,
): { candidate: Omit<Candidate, "index">; classifier: Classifier }[] {
  const distinct = [...new Set([fits.dataOnly, ...fits.byBudget])];
  return distinct.flatMap((x) => {
    const bin = x.fit.inSample.bin;
    if (bin === null) return [];
    const c = x.fit.inSample.counts;
    const r = rates(c.tp, c.fp, c.fn);
    return [{
      candidate: {
        id: { model: x.signal, step: 0 },
        signal: x.signal,
        threshold: x.fit.thresholds[bin],
        runs: x.runs.map((run) => ({ ...run.id })),
        precision: r.precision ?? 0,
        precisionCI: r.precisionCI,
        recall: r.recall ?? 0,
        recallCI: r.recallCI,
        compute: x.compute,
        fit: x.fit,
        feature: { models: x.models, pos: x.pos, neg: x.neg },
      },
      classifier: { scored: target.scored, memorized: x.flagged },
    }];
  });
}
