/**
 * The report's table of the row features (issue 21): per budget, the
 * **combined** predictor (cross-fitted logistic regression over the signals
 * of the cheap runs within the budget and the row features) and the
 * **data-only** predictor (the features alone), both fitted and measured held
 * out by feature_candidates.ts and candidates of the recommendations like any
 * run's signal, beside what the recommendation picks, the best single run's
 * signal (the held-out selection among single runs' candidates) and the
 * paper's binary predictor (the best run's binary memorization within the
 * budget, chosen held out by `selectHeldOut`); and per kind of personal data,
 * the rows with it, how many the target memorized and how many each
 * predictor catches held out.
 *
 * The features' cost is their measured wall time, reported beside the
 * measured scoring time of the cheap runs (no FLOPs are estimated for them;
 * they count 0 FLOPs in the budget).
 *
 * @module
 */
import type { AnalysisSettings } from "../../engine/types.ts";
import type { RowFeatures } from "../../engine/data/features/row_features.ts";
import { PERSONAL_KINDS } from "../../engine/data/features/personal.ts";
import { ListCursor, RangesCursor } from "../../engine/rowset.ts";
import type { AnalysedCheckpoint } from "./checkpoints.ts";
import type { FeatureFits } from "./feature_candidates.ts";
import { type Counts, crossFit, selectHeldOut } from "./crossfit.ts";
import { binaryFolded } from "./heldout.ts";
import { rates } from "./metrics.ts";
import { type Candidate, measuredOf, predictorLabel } from "./recommend.ts";
import {
  type FeaturePredictor,
  type FeaturePredictors,
  isFeatureSignal,
  type PersonalKindRow,
  type Recommendation,
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

/** What the summary's feature table is built from (the analysis's core). */
export interface FeatureTableInput {
  /** The run folder's row features. */
  features: RowFeatures;
  fits: FeatureFits;
  runs: readonly AnalysedCheckpoint[];
  target: AnalysedCheckpoint;
  settings: AnalysisSettings;
  /** Every candidate of the analysis (single runs' and the feature models'). */
  candidates: readonly Candidate[];
  positives: number[];
  recommendations: readonly Recommendation[];
  /** Measured scoring seconds of every checkpoint of the run (null when unknown). */
  scoringSeconds: number | null;
  /** Measured seconds of the features step. */
  featureSeconds: number;
  /** Scoring FLOPs per row of a run with these parameters (engine/plan `scoringFlopsPerRow`). */
  scoringFlopsPerRow: (parameters: number) => number;
}

/**
 * Per budget, the combined and data-only predictors beside what the
 * recommendation picks, the best single run's signal and the paper's binary
 * predictor; per kind of personal data, what the target memorized and what
 * each predictor catches (held out).
 */
export function featurePredictors(input: FeatureTableInput): FeaturePredictors {
  const { fits, runs, target, settings, positives } = input;
  const folds = { folds: settings.folds, seed: settings.seed, recallOver: settings.recallOver };
  const binaries = runs.filter((r) => r !== target).map((r) => ({
    compute: r.compute,
    fit: crossFit(binaryFolded(r, target, folds, positives), settings.minPrecision),
    id: r.id,
  }));
  const single = input.candidates.filter((c) => !isFeatureSignal(c.signal));
  const scoringShare = scoringShares(input);
  const caughtBy: { name: string; caught: number[] }[] = [
    { name: "data-only", caught: fits.dataOnly.caught },
  ];
  const budgets = input.recommendations.map((rec, i) => {
    const combined = fits.byBudget[i];
    if (combined !== fits.dataOnly) {
      caughtBy.push({ name: `combined@${rec.budgetFraction}`, caught: combined.caught });
    }
    const sel = selectHeldOut(binaries, rec.budget, settings.minPrecision, positives);
    const binary = sel.pick === null ? null : {
      ...binaries[sel.pick].id,
      ...measured(sel.heldOut),
    };
    const best = measuredOf(
      single,
      selectHeldOut(single, rec.budget, settings.minPrecision, positives),
    );
    const scoringSeconds = scoringShare(combined.runs);
    const m = rec.measured;
    return {
      budgetFraction: rec.budgetFraction,
      budget: rec.budget,
      runs: combined.runs.map((r) => ({ ...r.id })),
      compute: combined.compute,
      cost: scoringSeconds === null ? null : {
        scoringSeconds,
        featureShare: input.featureSeconds / (input.featureSeconds + scoringSeconds || 1),
      },
      combined: measured(combined.fit.heldOut),
      dataOnly: measured(fits.dataOnly.fit.heldOut),
      recommended: m
        ? {
          signal: m.signal,
          label: predictorLabel(m),
          recall: m.recall,
          recallCI: m.recallCI,
          precision: m.precision,
        }
        : null,
      bestSingle: best
        ? {
          model: best.model,
          step: best.step,
          signal: best.signal,
          recall: best.recall,
          recallCI: best.recallCI,
          precision: best.precision,
        }
        : null,
      paperBinary: binary,
    };
  });
  return {
    rows: fits.rows,
    memorized: fits.memorized,
    sample: { rows: fits.sample.rows, ...fits.sample.rates },
    budgets,
    personal: personalRows(input.features, target, caughtBy),
  };
}

/**
 * The measured scoring seconds of a set of runs: the run's scoring time
 * apportioned by each checkpoint's estimated scoring FLOPs (per row × rows
 * scored); null when the scoring time is unknown.
 */
function scoringShares(
  input: FeatureTableInput,
): (used: readonly AnalysedCheckpoint[]) => number | null {
  const flops = (r: AnalysedCheckpoint) => input.scoringFlopsPerRow(r.parameters) * r.scored.size;
  const total = input.runs.reduce((a, r) => a + flops(r), 0);
  return (used) => {
    if (input.scoringSeconds === null || !(total > 0)) return null;
    return input.scoringSeconds * used.reduce((a, r) => a + flops(r), 0) / total;
  };
}

/**
 * Per kind with rows: rows with it the target scored, how many it memorized,
 * the held-out catches of each predictor and up to three masked examples
 * (from the compact personal index: nothing per row of the whole record).
 */
function personalRows(
  f: RowFeatures,
  target: AnalysedCheckpoint,
  caughtBy: { name: string; caught: number[] }[],
): PersonalKindRow[] {
  const K = PERSONAL_KINDS.length;
  const scored = new RangesCursor(target.scored), memo = new ListCursor(target.memorized);
  const rows = new Array<number>(K).fill(0), memorized = new Array<number>(K).fill(0);
  const first: number[][] = Array.from({ length: K }, () => []);
  const p = f.personal;
  for (let j = 0; j < p.rows.length; j++) {
    const r = p.rows[j];
    if (!scored.has(r)) continue;
    const y = memo.has(r);
    for (let k = 0; k < K; k++) {
      if (!((p.kinds[j] >> k) & 1)) continue;
      rows[k]++;
      if (y) memorized[k]++;
      if (first[k].length < 3) first[k].push(r);
    }
  }
  return PERSONAL_KINDS.flatMap((kind, k) => {
    if (rows[k] === 0) return [];
    const examples = first[k].flatMap((row) =>
      p.hits(row).filter((h) => h.kind === kind).slice(0, 1).map((h) => ({ row, masked: h.masked }))
    );
    return [{
      kind,
      rows: rows[k],
      memorized: memorized[k],
      caught: caughtBy.map((c) => {
        const tp = c.caught[k];
        const r = rates(tp, 0, memorized[k] - tp);
        return { predictor: c.name, caught: tp, recall: r.recall, recallCI: r.recallCI };
      }),
      examples,
    }];
  });
}
