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
  const predictedBy: { name: string; predicted: Uint8Array }[] = [
    { name: "data-only", predicted: fits.dataOnly.predicted },
  ];
  const budgets = input.recommendations.map((rec, i) => {
    const combined = fits.byBudget[i];
    if (combined !== fits.dataOnly) {
      predictedBy.push({ name: `combined@${rec.budgetFraction}`, predicted: combined.predicted });
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
    rows: fits.rows.length,
    memorized: fits.y.reduce((a, v) => a + v, 0),
    budgets,
    personal: personalRows(input.fits.at, fits, predictedBy, input),
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

/** Per kind with rows: rows, memorized by the target, and held-out catches of each predictor. */
function personalRows(
  at: number[],
  { rows, y }: FeatureFits,
  predictedBy: { name: string; predicted: Uint8Array }[],
  { features: f }: { features: RowFeatures },
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
