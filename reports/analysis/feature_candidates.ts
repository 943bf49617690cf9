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
 * Bounded memory at the Pile's size: the model rows (rows with features the
 * target scored) are never held row by row. Each model is fitted on a
 * deterministic **sample** of at most {@link FEATURE_SAMPLE_ROWS} rows
 * (combined.ts `sampleRates`, `inSample`: every row when they fit, as on the
 * nano suite; otherwise the memorized rows up to half the cap and the others
 * at the rate that fills it, each weighted by 1 / its rate so that the
 * probabilities stay calibrated), then **applied to every model row chunk by
 * chunk** (feature_rows.ts `modelBlocks`): one pass counts the out-of-fold
 * probabilities into the folded histograms the threshold is chosen on, a
 * second lists the rows the all-rows rule flags and counts, per kind of
 * personal data, the memorized rows each fold's rule catches.
 *
 * @module
 */
import type { AnalysisSettings } from "../../engine/types.ts";
import type { RowFeatures } from "../../engine/data/features/row_features.ts";
import { PERSONAL_KINDS } from "../../engine/data/features/personal.ts";
import { listBuilder, ListCursor, RangesCursor } from "../../engine/rowset.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import {
  type Columns,
  crossFitModels,
  FEATURE_SAMPLE_ROWS,
  FoldedCounter,
  inSample,
  type LogisticModel,
  predictor,
  probabilityBin,
  runsWithinBudget,
  type SampleRates,
  sampleRates,
} from "./combined.ts";
import { type CrossFit, crossFit } from "./crossfit.ts";
import { modelBlocks, type SignalRun } from "./feature_rows.ts";
import { foldOf } from "./histograms.ts";
import { type Classifier, rates } from "./metrics.ts";
import type { Candidate } from "./recommend.ts";
import type { FeatureSignal } from "./summary.ts";

export { featureColumns } from "./feature_rows.ts";
export { probabilityBin } from "./combined.ts";

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
  /**
   * Per kind of personal data (`PERSONAL_KINDS` order): the memorized rows
   * with it that their fold's rule (chosen on the other folds) flags.
   */
  caught: number[];
  /** The rows the all-rows rule flags (ascending): what the bootstrap counts. */
  flagged: Uint32Array;
  /** Rows the models were fitted on (the sample). */
  fitRows: number;
}

/** The data-only fit and one combined fit per recommendation budget, on the same rows. */
export interface FeatureFits {
  /** Model rows: rows with features the target scored. */
  rows: number;
  /** Of them, memorized by the target. */
  memorized: number;
  /** The fitting sample: its rows and each class's inclusion rate (1 and 1: every row). */
  sample: { rows: number; rates: SampleRates };
  dataOnly: FeatureFit;
  /** Per `settings.budgets` entry: its combined fit (the data-only one when no cheap run fits). */
  byBudget: FeatureFit[];
}

/** Options of {@link fitFeatureModels}. */
export interface FeatureFitOptions {
  /** Rows a model is fitted on at most (default {@link FEATURE_SAMPLE_ROWS}). */
  sampleRows?: number;
}

/** What every fit of one analysis shares: the features, the target, settings, sample rates. */
interface ModelRows {
  f: RowFeatures;
  target: AnalysedCheckpoint;
  settings: AnalysisSettings;
  positives: readonly number[];
  rates: SampleRates;
}

/** A filter of the rows the target scored, for rows asked in ascending order. */
function scoredBy(target: AnalysedCheckpoint): (row: number) => boolean {
  const c = new RangesCursor(target.scored);
  return (row) => c.has(row);
}

/** Model rows (rows with features the target scored) and how many the target memorized. */
function countModelRows(f: RowFeatures, target: AnalysedCheckpoint) {
  const scored = scoredBy(target), memo = new ListCursor(target.memorized);
  let rows = 0, memorized = 0;
  for (let k = 0; k < f.chunks; k++) {
    for (const r of f.chunk(k).rows) {
      if (!scored(r)) continue;
      rows++;
      if (memo.has(r)) memorized++;
    }
  }
  return { rows, memorized };
}

/** The fitting sample's columns, labels, weights (1 / rate) and rows, in row order. */
function gatherSample(m: ModelRows, runs: readonly SignalRun[]) {
  const memo = new ListCursor(m.target.memorized);
  const parts: { columns: Columns; y: Uint8Array; w: Float64Array; rows: Uint32Array }[] = [];
  for (const b of modelBlocks(m.f, runs, scoredBy(m.target))) {
    const take: number[] = [], y: number[] = [];
    for (let i = 0; i < b.rows.length; i++) {
      const label = memo.has(b.rows[i]);
      if (!inSample(b.rows[i], label, m.rates, m.settings.seed)) continue;
      take.push(i);
      y.push(label ? 1 : 0);
    }
    const columns: Columns = {};
    for (const [name, c] of Object.entries(b.columns)) {
      columns[name] = Float64Array.from(take, (i) => c[i]);
    }
    const w = Float64Array.from(y, (v) => 1 / (v ? m.rates.memorized : m.rates.other));
    parts.push({
      columns,
      y: Uint8Array.from(y),
      w,
      rows: Uint32Array.from(take, (i) => b.rows[i]),
    });
  }
  const n = parts.reduce((a, p) => a + p.rows.length, 0);
  const concat = <T extends Float64Array | Uint8Array | Uint32Array>(
    pick: (p: typeof parts[0]) => T,
    out: T,
  ) => {
    let at = 0;
    for (const p of parts) {
      out.set(pick(p), at);
      at += pick(p).length;
    }
    return out;
  };
  const columns: Columns = {};
  for (const name of Object.keys(parts[0]?.columns ?? {})) {
    columns[name] = concat((p) => p.columns[name] as Float64Array, new Float64Array(n));
  }
  return {
    columns,
    y: concat((p) => p.y, new Uint8Array(n)),
    w: concat((p) => p.w, new Float64Array(n)),
    rows: concat((p) => p.rows, new Uint32Array(n)),
  };
}

/**
 * Applies the fold models to every model row, chunk by chunk: `visit` gets
 * each row (ascending), its fold, its out-of-fold probability and its label.
 */
function applyModels(
  m: ModelRows,
  runs: readonly SignalRun[],
  models: readonly LogisticModel[],
  visit: (row: number, fold: number, p: number, memorized: boolean) => void,
): void {
  const { folds, seed } = m.settings;
  const memo = new ListCursor(m.target.memorized);
  for (const b of modelBlocks(m.f, runs, scoredBy(m.target))) {
    const predict = models.map((model) => predictor(model, b.columns));
    for (let i = 0; i < b.rows.length; i++) {
      const r = b.rows[i];
      const fold = folds > 1 ? foldOf(r, seed, folds) : 0;
      visit(r, fold, predict[fold](i), memo.has(r));
    }
  }
}

/** The rows the all-rows rule flags, and per kind the memorized rows each fold's rule catches. */
function flagModelRows(
  m: ModelRows,
  runs: readonly SignalRun[],
  models: readonly LogisticModel[],
  fit: CrossFit,
): { flagged: Uint32Array; caught: number[] } {
  const flagged = listBuilder();
  const caught = new Array<number>(PERSONAL_KINDS.length).fill(0);
  const all = fit.inSample.bin;
  const p = m.f.personal;
  let j = 0;
  applyModels(m, runs, models, (row, fold, prob, memorized) => {
    const b = probabilityBin(prob);
    if (all !== null && b <= all) flagged.add(row);
    const bin = fit.folds[fold].bin;
    if (!memorized || bin === null || b > bin) return;
    while (j < p.rows.length && p.rows[j] < row) j++;
    if (j === p.rows.length || p.rows[j] !== row) return;
    for (let k = 0; k < caught.length; k++) if ((p.kinds[j] >> k) & 1) caught[k]++;
  });
  return { flagged: flagged.done(), caught };
}

/**
 * Cross-fits a model on the sample, then applies it to every model row:
 * the folded histograms, the threshold's cross-fit, the flagged rows.
 */
function fitModel(
  signal: FeatureSignal,
  used: AnalysedCheckpoint[],
  m: ModelRows,
): FeatureFit {
  const { folds, seed, minPrecision, recallOver } = m.settings;
  const runs = used.map((r) => ({ name: `${r.model}@${r.step}`, source: r.source! }));
  const sample = gatherSample(m, runs);
  const weighted = m.rates.memorized < 1 || m.rates.other < 1;
  const models = crossFitModels(
    sample.columns,
    sample.y,
    { folds, seed, rows: sample.rows },
    weighted ? { weights: sample.w } : {},
  );
  const counter = new FoldedCounter(folds);
  applyModels(m, runs, models, (_, fold, p, y) => counter.add(fold, p, y));
  const folded = counter.folded(recallOver === "all" ? m.positives : undefined);
  const fit = crossFit(folded, minPrecision);
  const sum = (h: Float64Array[]) =>
    h.reduce((a, v) => a.map((x, b) => x + v[b]), new Float64Array(h[0].length));
  return {
    signal,
    runs: used,
    compute: used.reduce((a, r) => a + r.compute, 0),
    fit,
    models,
    pos: sum(folded.pos),
    neg: sum(folded.neg),
    ...flagModelRows(m, runs, models, fit),
    fitRows: sample.rows.length,
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
  options: FeatureFitOptions = {},
): FeatureFits | null {
  if (!target.source) return null;
  const counted = countModelRows(f, target);
  if (counted.rows === 0) return null;
  const rates = sampleRates(
    counted.rows,
    counted.memorized,
    options.sampleRows ?? FEATURE_SAMPLE_ROWS,
  );
  const m: ModelRows = { f, target, settings, positives, rates };
  const dataOnly = fitModel("data-only", [], m);
  const cheap = runs.filter((r) => r !== target && r.source && r.compute < target.compute);
  const bySet = new Map<string, FeatureFit>();
  const byBudget = settings.budgets.map((fraction) => {
    const used = runsWithinBudget(cheap, fraction * target.compute).map((i) => cheap[i]);
    if (used.length === 0) return dataOnly;
    const key = used.map((r) => `${r.model}@${r.step}`).join(" ");
    if (!bySet.has(key)) bySet.set(key, fitModel("combined", used, m));
    return bySet.get(key)!;
  });
  return { ...counted, sample: { rows: dataOnly.fitRows, rates }, dataOnly, byBudget };
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
