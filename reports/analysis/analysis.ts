/**
 * The analysis: how well cheap runs (smaller models, earlier checkpoints)
 * predict the target's memorization, as a function of their compute. Pure:
 * takes scores (from the store or imported) and returns a {@link Summary}.
 *
 * Examples (rows the target memorized) are chosen by {@link exampleRows};
 * the caller (tasks/report.ts) reads their tokens and passes them back in
 * `exampleTokens` together with a `decode` function, so `analyze` itself
 * stays synchronous and does no I/O.
 *
 * Statistics: precision and recall carry 95% Wilson score intervals; fitted
 * curves and recommendation stability come from a Poisson bootstrap over
 * rows (`analysis.bootstrap` resamples, seeded by `analysis.seed`).
 *
 * @module
 */
import {
  type AnalysisSettings,
  checkpointKey,
  checkpointLabel,
  type CheckpointScores,
  type Experiment,
  type ProgressSink,
} from "../../engine/types.ts";
import { DEFAULT_FOLDS, DEFAULT_RECALLS } from "../../engine/config/schema.ts";
import { UserError } from "../../engine/errors.ts";
import {
  type PredictorId,
  type PredictorRow,
  type Summary,
  SUMMARY_SCHEMA_VERSION,
  type ThresholdCurve,
} from "./summary.ts";
import { bootstrapConfusions, type Classifier, confusion, rates } from "./metrics.ts";
import { type AnalysedCheckpoint, analysedFrom, type Resamples, rowSpace } from "./checkpoints.ts";
import { type ScoredCheckpoint, scoredFromScores } from "../../engine/store/scored_checkpoint.ts";
import { listHas, RangesCursor } from "../../engine/rowset.ts";
import { seededRandom } from "../../engine/random.ts";
import { poisson } from "./stats.ts";
import { type FamilyPoint, fitScaling, type FittedLaw, makeFamilies } from "./families.ts";
import { type Candidate, recommend } from "./recommend.ts";
import { signalCurves } from "./score_signals.ts";
import type { CountedHistograms } from "./histograms.ts";
import { type CrossFit, crossFit } from "./crossfit.ts";
import {
  binaryFolded,
  computeForRecalls,
  foldPositives,
  type FoldSettings,
  heldOutFrontier,
  pointResamples,
  thresholdedPoints,
} from "./heldout.ts";
import { coverageOf } from "./coverage.ts";
import type { RowFeatures } from "../../engine/data/features/row_features.ts";
import { featurePredictors } from "./feature_predictors.ts";
import { featureCandidates, type FeatureFits, fitFeatureModels } from "./feature_candidates.ts";
import { scoringFlopsPerRow } from "../../engine/plan/plan.ts";
import { verdict } from "./verdict.ts";
import {
  correlationMatrix,
  distribution,
  pairMatrix,
  rateByComputedDuplicates,
  rateByDuplicates,
  rateByRow,
} from "./figures.ts";

/** Everything the analysis needs; plain values only. */
export interface AnalysisInput {
  /** The typed experiment (suite, memorization settings, target, analysis settings). */
  experiment: Experiment;
  /** Scores of every (model, step) run held in memory, rows ascending (small runs, tests). */
  scores?: CheckpointScores[];
  /**
   * Every (model, step) run as row sets with a streaming score source (the
   * store reader's and the import's form; engine/store/scored_checkpoint.ts). Used
   * instead of `scores` when given.
   */
  runs?: ScoredCheckpoint[];
  /** Duplicate count per dataset row (index = row), when the data carries it (wins when given). */
  duplicates?: Uint32Array | null;
  /** Row features of the run folder (the `features` step), when computed. */
  features?: RowFeatures | null;
  /**
   * Where the duplicate counts come from (default `data.duplicates`):
   * `computed` without `duplicates` takes the window counts of `features`,
   * walked chunk by chunk beside each run's rows (nothing per data row held).
   */
  duplicatesFrom?: "data.duplicates" | "computed";
  /**
   * Tokens of the example rows chosen by {@link exampleRows} (row → the
   * `context + continuation` tokens starting at the memorization offset).
   * Rows missing here get `tokens: []` and null text.
   */
  exampleTokens?: Map<number, ArrayLike<number>>;
  /** Decodes token ids to text (a tokenizer); without it example text is null. */
  decode?: (tokens: number[]) => string;
  /** How the scores were produced, copied to `Summary.run` (missing fields get defaults). */
  run?: Partial<Summary["run"]>;
  /** Counts the runs, laws and correlation matrices as the analysis gets through them. */
  progress?: ProgressSink;
  /**
   * The runs' signal histograms against the target, counted while the runs
   * were read (the report's store reader); computed here when absent.
   */
  histograms?: CountedHistograms;
  /**
   * Whether the score correlations are computed apart (the report computes
   * {@link correlationGroups}' matrices on another thread meanwhile): the
   * summary's `correlations` are then left empty for the caller to set.
   */
  correlationsApart?: boolean;
}

/**
 * The experiment's analysis settings with defaults for fields older run
 * folders' snapshots lack (folds, recall_over, recalls).
 */
export function analysisSettings(exp: Experiment): AnalysisSettings {
  const a: Partial<AnalysisSettings> = exp.analysis;
  return {
    ...exp.analysis,
    folds: a.folds ?? DEFAULT_FOLDS,
    recallOver: a.recallOver ?? "all",
    recalls: a.recalls ?? [...DEFAULT_RECALLS],
  };
}

/** Number of example rows reported by default. */
export const EXAMPLE_COUNT = 12;

const sameId = (a: PredictorId, b: PredictorId) => a.model === b.model && a.step === b.step;

/** The runs of an input: `runs`, else `scores` as in-memory runs. */
export function inputRuns(input: Pick<AnalysisInput, "scores" | "runs">): ScoredCheckpoint[] {
  return input.runs ?? (input.scores ?? []).map(scoredFromScores);
}

/** The experiment's trained target, or an error when the file says `target: none`. */
function trainedTarget(exp: Experiment): PredictorId {
  if (exp.target) return exp.target;
  throw new UserError(
    `${exp.file}: target: none (no trained target): this analysis compares predictors ` +
      `against a target's memorization, so it needs one; give target: {model, step}.`,
  );
}

/** Checks the target was scored, or throws naming the runs that exist. */
function checkTarget(exp: Experiment, runs: readonly ScoredCheckpoint[]): void {
  const id = trainedTarget(exp);
  if (runs.some((s) => sameId(s, id))) return;
  throw new UserError(
    `no scores for the target ${checkpointLabel(id)} of ${exp.file}; scored runs: ${
      runs.map((s) => checkpointLabel(s)).join(", ") || "none"
    }. Score the target first or choose another target.`,
  );
}

/** Runs in suite order (model order of the experiment, then step). */
function orderedRuns(exp: Experiment, data: readonly ScoredCheckpoint[]): AnalysedCheckpoint[] {
  const order = new Map(exp.suite.models.map((m, i) => [m.name, i]));
  return [...data]
    .sort((a, b) =>
      (order.get(a.model) ?? 1e9) - (order.get(b.model) ?? 1e9) ||
      a.model.localeCompare(b.model) || a.step - b.step
    )
    .map((s) => analysedFrom(s, exp));
}

/** Rows the target memorized and which other runs also memorized them. */
function caughtBy(
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  row: number,
): PredictorId[] {
  return runs.filter((r) => r !== target && listHas(r.memorized, row)).map((r) => r.id);
}

/**
 * The dataset rows `analyze` reports as examples, so the caller can read
 * their tokens first: target-memorized rows ordered by how many other runs
 * caught them (then by row), taken evenly across that order.
 */
export function exampleRows(
  input: Pick<AnalysisInput, "experiment" | "scores" | "runs">,
  count: number = EXAMPLE_COUNT,
): number[] {
  const exp = input.experiment;
  const runs = orderedRuns(exp, inputRuns(input));
  const target = exp.target && runs.find((r) => sameId(r.id, exp.target!));
  if (!target) return [];
  return pickExamples(runs, target, count);
}

function pickExamples(
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  count: number,
): number[] {
  const rows: { row: number; caught: number }[] = [];
  const seen = new RangesCursor(target.scored);
  for (const row of target.memorized) if (seen.has(row)) rows.push({ row, caught: 0 });
  for (const e of rows) e.caught = caughtBy(runs, target, e.row).length;
  rows.sort((a, b) => a.caught - b.caught || a.row - b.row);
  if (rows.length <= count) return rows.map((e) => e.row);
  return Array.from(
    { length: count },
    (_, i) => rows[Math.round((i * (rows.length - 1)) / (count - 1))].row,
  );
}

/** The predictor table: every run (the target included, trivially perfect) against the target. */
export function predictorTable(
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
): PredictorRow[] {
  const targetRows = target.scored.size;
  const targetMemorized = target.memorized.length;
  return runs.map((run) => {
    const c = confusion(run.scored, run.memorized, target.scored, target.memorized);
    const r = rates(c.tp, c.fp, c.fn);
    return {
      ...run.id,
      final: run.final,
      parameters: run.parameters,
      rowsCompared: c.n,
      coverage: targetRows > 0 ? c.n / targetRows : 0,
      tp: c.tp,
      fp: c.fp,
      fn: c.fn,
      tn: c.tn,
      ...r,
      ...coverageOf(c.tp, c.tp + c.fn, targetMemorized),
      predictorRate: c.n > 0 ? (c.tp + c.fp) / c.n : 0,
      targetRate: c.n > 0 ? (c.tp + c.fn) / c.n : 0,
      compute: run.compute,
      computeFraction: target.compute > 0 ? run.compute / target.compute : 0,
    };
  });
}

/** The scientific core of the analysis: what {@link analyzeRuns} returns. */
export interface CoreAnalysis {
  predictors: PredictorRow[];
  curves: ThresholdCurve[];
  scaling: Summary["scaling"];
  recommendations: Summary["recommendations"];
  computeForRecall: Summary["computeForRecall"];
  frontier: Summary["frontier"];
  /**
   * Every measured candidate with its cross-fit (for forecasts): binary
   * predictors, thresholded signals, then the data-only and combined models.
   */
  candidates: Candidate[];
  /** The models over the row features (null without features). */
  featureFits: FeatureFits | null;
  /** Recall's denominator per fold. */
  positives: number[];
  /** Distinct positive-row patterns pooled by the bootstrap (0 without bootstrap). */
  patterns: number;
  /** Seconds spent per stage (table, signals, bootstrap, fits, recommendations). */
  seconds: Record<string, number>;
}

/** An in-sample candidate's precision, recall and intervals from its cross-fit's all-rows counts. */
function inSampleOf(fit: CrossFit) {
  const c = fit.inSample.counts;
  const r = rates(c.tp, c.fp, c.fn);
  return {
    precision: r.precision ?? 0,
    precisionCI: r.precisionCI,
    recall: r.recall ?? 0,
    recallCI: r.recallCI,
  };
}

/**
 * The predictor table, signal curves (runs that carry scores), their
 * cross-fits over folds of rows, bootstrap resamples, scaling laws of binary
 * and thresholded predictors, recommendations and the compute needed per
 * recall, from runs as row sets. This is the part that scales to paper-size
 * row counts: memory is the row sets plus histograms per run and signal.
 */
export function analyzeRuns(
  exp: Experiment,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  progress?: ProgressSink,
  features?: RowFeatures | null,
  counted?: CountedHistograms,
): CoreAnalysis {
  const settings = analysisSettings(exp);
  const seconds: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (name: string) => {
    const t = performance.now();
    seconds[name] = (t - t0) / 1000;
    t0 = t;
  };
  const table = predictorTable(runs, target);
  lap("table");
  const others = runs.map((r, i) => ({ run: r, row: table[i] })).filter((o) => o.run !== target);
  const folds: FoldSettings = {
    folds: settings.folds,
    seed: settings.seed,
    recallOver: settings.recallOver,
  };
  const positives = foldPositives(target, folds);
  const measured = measureCandidates(others, target, settings, folds, positives, {
    progress,
    counted,
  });
  lap("signals");
  const featureFits = features
    ? fitFeatureModels(features, runs, target, settings, positives)
    : null;
  if (featureFits) addFeatureCandidates(measured, featureFits, target);
  lap("features");
  const random = seededRandom(settings.seed);
  const { resamples, patterns } = bootstrap(measured.classifiers, target, settings, random);
  lap("bootstrap");
  const { scaling, laws } = fitLaws(runs, target, measured, resamples, settings, {
    positives,
    random,
    progress,
  });
  lap("fits");
  const { candidates } = measured;
  const recommendations = recommend(candidates, laws, resamples, {
    budgets: settings.budgets,
    minPrecision: settings.minPrecision,
    targetCompute: target.compute,
    positives,
    recallOver: settings.recallOver,
  });
  const computeForRecall = computeForRecalls({
    recalls: settings.recalls,
    candidates,
    laws,
    minPrecision: settings.minPrecision,
    targetCompute: target.compute,
    positives,
  });
  lap("recommendations");
  return {
    predictors: table,
    curves: measured.curves,
    scaling,
    recommendations,
    computeForRecall,
    frontier: heldOutFrontier(candidates, settings.minPrecision, positives),
    candidates,
    positives,
    featureFits,
    patterns,
    seconds,
  };
}

/** The data-only and combined models as candidates (after the runs', with their classifiers). */
function addFeatureCandidates(
  measured: Measured,
  fits: FeatureFits,
  target: AnalysedCheckpoint,
): void {
  for (const c of featureCandidates(fits, target)) {
    measured.candidates.push({ ...c.candidate, index: measured.classifiers.length });
    measured.classifiers.push(c.classifier);
  }
}

/** A run other than the target with its row of the predictor table. */
interface Other {
  run: AnalysedCheckpoint;
  row: PredictorRow;
}

/** What {@link measureCandidates} measured of the runs other than the target. */
interface Measured {
  /** The binary predictors' (compute, recall, precision) points, for the scaling fits. */
  points: FamilyPoint[];
  /** Every binary and thresholded candidate with its cross-fit; `index` into `classifiers`. */
  candidates: Candidate[];
  /** The candidates' classifiers as the bootstrap counts them. */
  classifiers: Classifier[];
  /** The signal curves of the runs that carry scores. */
  curves: ThresholdCurve[];
}

/**
 * Candidates and bootstrap classifiers: binary predictors first, then
 * thresholded signals. Under recall_over: all a classifier counts over every
 * row the target scored.
 */
function measureCandidates(
  others: readonly Other[],
  target: AnalysedCheckpoint,
  settings: AnalysisSettings,
  folds: FoldSettings,
  positives: number[],
  { progress, counted }: { progress?: ProgressSink; counted?: CountedHistograms } = {},
): Measured {
  const all = settings.recallOver === "all";
  const classifiers: Classifier[] = others.map((o) => ({
    scored: all ? target.scored : o.run.scored,
    memorized: o.run.memorized,
  }));
  const candidates: Candidate[] = [];
  const points: FamilyPoint[] = [];
  others.forEach((o, i) => {
    const { precision } = o.row;
    const recall = all ? o.row.recallAll : o.row.recall;
    points.push({ id: o.run.id, compute: o.run.compute, recall, precision, index: i });
    if (precision !== null && recall !== null) {
      const fit = crossFit(binaryFolded(o.run, target, folds, positives), settings.minPrecision);
      candidates.push({
        id: o.run.id,
        signal: "binary",
        threshold: null,
        ...inSampleOf(fit),
        compute: o.run.compute,
        index: i,
        fit,
      });
    }
  });
  const curves: ThresholdCurve[] = [];
  progress?.phase("analysing", others.length, "runs");
  for (const o of others) {
    const sig = signalCurves(
      o.run,
      target,
      o.row.precision,
      settings.minPrecision,
      folds,
      positives,
      counted,
    );
    curves.push(...sig.curves);
    for (const c of sig.candidates) {
      candidates.push({ ...c.candidate, index: classifiers.length });
      classifiers.push(c.classifier);
    }
    progress?.add(1);
  }
  return { points, candidates, classifiers, curves };
}

/** The Poisson bootstrap of every classifier's confusion counts (none when `bootstrap` is 0). */
function bootstrap(
  classifiers: readonly Classifier[],
  target: AnalysedCheckpoint,
  settings: AnalysisSettings,
  random: () => number,
): { resamples: Resamples | null; patterns: number } {
  if (settings.bootstrap <= 0) return { resamples: null, patterns: 0 };
  const boot = bootstrapConfusions(
    classifiers,
    target.scored,
    target.memorized,
    settings.bootstrap,
    (mean) => poisson(mean, random),
  );
  return {
    resamples: {
      counts: boot.counts,
      classifiers: classifiers.length,
      resamples: settings.bootstrap,
    },
    patterns: boot.patterns,
  };
}

/**
 * Scaling laws of recall and precision over compute, per family of binary
 * and of thresholded predictors; the laws of recommendable families are kept
 * for the recommendations.
 */
function fitLaws(
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  { points, candidates }: Measured,
  resamples: Resamples | null,
  settings: AnalysisSettings,
  { positives, random, progress }: {
    positives: number[];
    random: () => number;
    progress?: ProgressSink;
  },
): { scaling: Summary["scaling"]; laws: FittedLaw[] } {
  const finals = new Set(
    runs.filter((r) => r.final).map((r) => checkpointKey(r.id.model, r.id.step)),
  );
  const thresholded = thresholdedPoints(candidates, settings.minPrecision, positives);
  const thresholdedBoot = settings.bootstrap > 0
    ? pointResamples(thresholded, settings.bootstrap, random)
    : null;
  const kinds = [
    { kind: "binary" as const, points, resamples },
    {
      kind: "thresholded" as const,
      points: thresholded.map((p, index) => {
        const r = rates(p.counts.tp, p.counts.fp, p.counts.fn);
        return { id: p.id, compute: p.compute, recall: r.recall, precision: r.precision, index };
      }),
      resamples: thresholdedBoot,
    },
  ];
  const scaling: Summary["scaling"] = [];
  const laws: FittedLaw[] = [];
  const families = kinds.map((k) => makeFamilies(k.points, target.id, finals, target.compute));
  progress?.phase("fitting laws", 2 * families.reduce((a, f) => a + f.length, 0), "laws");
  kinds.forEach((k, i) => {
    for (const fam of families[i]) {
      for (const metric of ["recall", "precision"] as const) {
        const res = fitScaling(fam, metric, target.compute, k.resamples, k.kind);
        scaling.push(res.summary);
        if (res.law && fam.recommendable) laws.push(res.law);
        progress?.add(1);
      }
    }
  });
  return { scaling, laws };
}

/**
 * The core analysis of a calibration run (one with a trained target), for
 * forecasts: the runs in suite order, the target, and what
 * {@link analyzeRuns} learned (candidates with their cross-fits).
 */
export function calibrate(
  exp: Experiment,
  data: readonly ScoredCheckpoint[],
  progress?: ProgressSink,
  features?: RowFeatures | null,
): CoreAnalysis & { runs: AnalysedCheckpoint[]; target: AnalysedCheckpoint } {
  checkTarget(exp, data);
  const runs = orderedRuns(exp, data);
  const target = runs.find((r) => sameId(r.id, trainedTarget(exp)))!;
  return { ...analyzeRuns(exp, runs, target, progress, features), runs, target };
}

/** Analyses the scores of an experiment into the summary every report is rendered from. */
export function analyze(input: AnalysisInput): Summary {
  const exp = input.experiment;
  const data = inputRuns(input);
  checkTarget(exp, data);
  const runs = orderedRuns(exp, data);
  const target = runs.find((r) => sameId(r.id, trainedTarget(exp)))!;
  const core = analyzeRuns(exp, runs, target, input.progress, input.features, input.histograms);
  const summary: Summary = {
    schemaVersion: SUMMARY_SCHEMA_VERSION,
    ...experimentAndTarget(exp, runs, target, core.predictors),
    predictors: core.predictors,
    pairMatrix: pairMatrix(runs.filter((r) => r.final)),
    curves: core.curves,
    scaling: core.scaling,
    recommendations: core.recommendations,
    computeForRecall: core.computeForRecall,
    frontier: core.frontier,
    verdict: "",
    ...figuresOf(input, runs, target, rowSpace(data)),
    ...(input.features ? { features: featureSummary(input, input.features, runs, core) } : {}),
    statistics: statisticsOf(exp, core),
    run: { ...defaultRunInfo(exp, runs), ...input.run },
  };
  summary.verdict = verdict(summary);
  return summary;
}

/** `Summary.experiment` (the settings the numbers depend on) and `Summary.target`. */
function experimentAndTarget(
  exp: Experiment,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  table: readonly PredictorRow[],
): Pick<Summary, "experiment" | "target"> {
  const settings = analysisSettings(exp);
  const targetRow = table[runs.indexOf(target)];
  return {
    experiment: {
      name: exp.name,
      file: exp.file,
      target: { ...target.id },
      memorization: {
        ...exp.memorization,
        suppressedTokens: [...exp.memorization.suppressedTokens],
      },
      minPrecision: settings.minPrecision,
      recallOver: settings.recallOver,
      sequencesPerStep: exp.suite.sequencesPerStep,
      tokensPerSequence: exp.suite.tokensPerSequence,
      parameterCount: settings.parameterCount,
    },
    target: {
      ...target.id,
      rowsScored: targetRow.rowsCompared,
      memorized: targetRow.tp + targetRow.fn,
      rate: targetRow.targetRate,
      compute: target.compute,
    },
  };
}

/** The figures' data: correlations, distributions, rates by row and by duplicates, examples. */
function figuresOf(
  input: AnalysisInput,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
  size: number,
): Pick<
  Summary,
  "correlations" | "distributions" | "rateByRow" | "rateByDuplicates" | "examples"
> {
  const finalRuns = runs.filter((r) => r.final);
  const targetModelRuns = runs.filter((r) => r.id.model === target.id.model);
  const byRowRuns = [...new Set([...finalRuns, ...targetModelRuns])];
  const continuous = runs.some((r) => r.source);
  return {
    // Without any per-row score (memorized-row lists only) scores are binary: no distributions
    // or correlations of scores to show.
    correlations: continuous && !input.correlationsApart
      ? correlations(runs, input.progress)
      : NO_CORRELATIONS,
    distributions: continuous ? runs.map(distribution) : [],
    rateByRow: byRowRuns.map((r) => rateByRow(r, size)),
    rateByDuplicates: input.duplicates
      ? byRowRuns.map((s) => rateByDuplicates(s, input.duplicates!))
      : input.duplicatesFrom === "computed" && input.features
      ? rateByComputedDuplicates(byRowRuns, input.features)
      : null,
    examples: examples(input, runs, target),
  };
}

/**
 * `Summary.features`: the row features' size, their measured cost beside the
 * scoring's, and the table of the combined and data-only predictors.
 */
function featureSummary(
  input: AnalysisInput,
  features: RowFeatures,
  runs: readonly AnalysedCheckpoint[],
  core: CoreAnalysis,
): NonNullable<Summary["features"]> {
  const exp = input.experiment;
  const scoringSeconds = input.run?.seconds ?? null;
  const target = runs.find((r) => sameId(r.id, trainedTarget(exp)))!;
  return {
    seconds: features.seconds,
    rows: features.count,
    shards: features.shards,
    tokens: features.tokens,
    duplicates: input.duplicatesFrom ?? "data.duplicates",
    cost: {
      featureSeconds: features.seconds,
      scoringSeconds,
      shareOfScoring: scoringSeconds ? features.seconds / scoringSeconds : null,
    },
    predictors: core.featureFits
      ? featurePredictors({
        features,
        fits: core.featureFits,
        runs,
        target,
        settings: analysisSettings(exp),
        candidates: core.candidates,
        positives: core.positives,
        recommendations: core.recommendations,
        scoringSeconds,
        featureSeconds: features.seconds,
        scoringFlopsPerRow: (parameters) => scoringFlopsPerRow(exp, parameters),
      })
      : null,
  };
}

/** `Summary.statistics`: how intervals, the bootstrap and the folds were made. */
function statisticsOf(exp: Experiment, core: CoreAnalysis): Summary["statistics"] {
  const settings = analysisSettings(exp);
  return {
    intervals: "Wilson score (95%) for precision and recall",
    bootstrap: settings.bootstrap,
    seed: settings.seed,
    patterns: core.patterns,
    folds: settings.folds,
  };
}

/** The example rows with their text and the runs that also memorized them. */
function examples(
  input: AnalysisInput,
  runs: readonly AnalysedCheckpoint[],
  target: AnalysedCheckpoint,
): Summary["examples"] {
  const l = input.experiment.memorization.continuation;
  const k = input.experiment.memorization.context;
  return pickExamples(runs, target, EXAMPLE_COUNT).map((row) => {
    const raw = input.exampleTokens?.get(row);
    const tokens = raw ? Array.from(raw) : [];
    const text = (t: number[]) => (input.decode && t.length > 0 ? input.decode(t) : null);
    return {
      row,
      context: text(tokens.slice(0, k)),
      continuation: text(tokens.slice(k, k + l)),
      tokens,
      caughtBy: caughtBy(runs, target, row),
    };
  });
}

/** `Summary.correlations` when there are none (runs without per-row scores) or not yet. */
const NO_CORRELATIONS: Summary["correlations"] = {
  models: { labels: [], values: [], rows: 0 },
  checkpoints: [],
};

/**
 * The runs of each score-correlation matrix, in suite order: the final
 * models, then each model's checkpoints; null when no run has per-row scores
 * (the summary then has none). What {@link analyze} computes, for a caller
 * that computes them apart ({@link AnalysisInput.correlationsApart}) with
 * figures.ts `correlationMatrix`.
 */
export function correlationGroups(
  exp: Experiment,
  data: readonly ScoredCheckpoint[],
):
  | { models: ScoredCheckpoint[]; checkpoints: { model: string; runs: ScoredCheckpoint[] }[] }
  | null {
  return data.some((r) => r.source) ? groupsOf(orderedRuns(exp, data)) : null;
}

/** {@link correlationGroups} of runs in suite order. */
function groupsOf<R extends AnalysedCheckpoint>(runs: readonly R[]) {
  const models = [...new Set(runs.map((r) => r.id.model))];
  return {
    models: runs.filter((r) => r.final),
    checkpoints: models.map((m) => ({ model: m, runs: runs.filter((r) => r.id.model === m) })),
  };
}

/**
 * Score correlations between the final models and between each model's
 * checkpoints (one pass over their scores per matrix, counted in `progress`).
 */
function correlations(
  runs: readonly AnalysedCheckpoint[],
  progress?: ProgressSink,
): Summary["correlations"] {
  const groups = groupsOf(runs);
  progress?.phase("score correlations", groups.checkpoints.length + 1, "matrices");
  const between = correlationMatrix(groups.models);
  progress?.add(1);
  const checkpoints = groups.checkpoints.map((g) => {
    const c = { model: g.model, ...correlationMatrix(g.runs) };
    progress?.add(1);
    return c;
  });
  return { models: between, checkpoints };
}

/** `Summary.run` when the caller says nothing of how the scores were produced. */
function defaultRunInfo(exp: Experiment, runs: readonly AnalysedCheckpoint[]): Summary["run"] {
  return {
    command: "",
    startedAt: null,
    seconds: null,
    rowsPerSecond: null,
    devices: [],
    models: runs.map((r) => ({
      name: r.id.model,
      step: r.id.step,
      path: exp.suite.models.find((m) => m.name === r.id.model)?.checkpoints
        .find((c) => c.step === r.id.step)?.path ?? "",
      fingerprint: null,
    })),
    data: { path: exp.data.path, fingerprint: null },
    missingShards: [],
  };
}
