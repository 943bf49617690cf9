/**
 * `deno task forecast CALIBRATION_RUN RUN`: applies what a calibration run
 * (one with a trained target) learned to the cheap runs of another run that
 * has no target yet, and writes the rows predicted to be memorized:
 * `flagged.parquet` and `flagged.csv` (`index,signal`), `forecast.json`
 * (predictor, signal, threshold, compute fraction, expected precision and
 * recall with 95% intervals, the assumptions) and `forecast.html`.
 *
 * @module
 */
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readRunCheckpoints } from "./run_checkpoints.ts";
import { claimOutputFolder } from "../engine/os/run_marker.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import { writeAtomic } from "../engine/store/store.ts";
import { UserError } from "../engine/errors.ts";
import {
  checkpointKey,
  checkpointLabel,
  type Experiment,
  type ProgressSink,
} from "../engine/types.ts";
import { startWork, type WorkOptions } from "../engine/run/progress.ts";
import { analysisSettings, calibrate } from "../reports/analysis/analysis.ts";
import {
  type Calibration,
  chooseForecast,
  flagRows,
  type ForecastChoice,
  type ForecastOptions,
  predictionIntervals,
} from "../reports/analysis/forecast.ts";
import { readExperimentSnapshot } from "../engine/plan/run_folder.ts";
import { forecastPage } from "../reports/page/forecast_page.ts";
import type { ForecastFile } from "../reports/analysis/forecast.ts";
import {
  type CalibrationFigures,
  calibrationFigures,
  type FlaggedExample,
  mostConfident,
  type SignalHistogram,
} from "../reports/analysis/forecast_figures.ts";
import { signalHistograms } from "../reports/analysis/histograms.ts";
import { countInRanges, intersectCount, intersectRanges, restrictList } from "../engine/rowset.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import {
  personalKinds,
  readRowFeatures,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";
import { isFeatureSignal, type PredictorId } from "../reports/analysis/summary.ts";
import { shellQuote } from "../engine/os/shell.ts";

/** Flagged rows with personal data, and per kind, from each row's `;`-separated kinds. */
export function personalCounts(
  kinds: readonly string[],
): { withPersonal: number; kinds: Record<string, number> } {
  const per: Record<string, number> = {};
  let withPersonal = 0;
  for (const k of kinds) {
    if (k === "") continue;
    withPersonal++;
    for (const kind of k.split(";")) per[kind] = (per[kind] ?? 0) + 1;
  }
  return { withPersonal, kinds: per };
}

export type { ForecastFile };

/** Options of {@link runForecast}. */
export interface ForecastRunOptions extends ForecastOptions {
  /**
   * `--allow-mismatch`: forecast even when the calibration and the run differ
   * in the predictor model's parameters or the memorization settings; the
   * differences are printed and shown in forecast.json and on the page.
   */
  allowMismatch?: boolean;
  /** Output folder (default `RUN/forecast`). */
  output?: string;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
  /** The progress line (reading both stores, analysing the calibration); `false`: none. */
  progress?: WorkOptions | false;
}

/** Where the forecast files went. */
export interface ForecastOutput {
  dir: string;
  files: string[];
  forecast: ForecastFile;
}

/** The calibration facts a forecast needs, from a calibration's experiment and runs. */
export function calibrationOf(
  exp: Experiment,
  runs: readonly ScoredCheckpoint[],
  progress?: ProgressSink,
  features?: RowFeatures | null,
): Calibration {
  if (!exp.target) {
    throw new UserError(
      `${exp.file}: the calibration run has no trained target (target: none); calibrate on a ` +
        "run whose target was scored (the nano suite, imported Pythia evaluations)",
    );
  }
  const core = calibrate(exp, runs, progress, features);
  const s = analysisSettings(exp);
  return {
    candidates: core.candidates,
    positives: core.positives,
    targetCompute: core.target.compute,
    target: core.target.id,
    minPrecision: s.minPrecision,
    recallOver: s.recallOver,
    folds: s.folds,
    seed: s.seed,
  };
}

/** The assumptions under which a calibration's numbers carry over. */
export function assumptionsOf(cal: Calibration, choice: ForecastChoice): string[] {
  const runs = choice.runs ?? (isFeatureSignal(choice.signal) ? [] : [choice.predictor]);
  const label = runs.map(checkpointLabel).join(", ");
  return [
    ...(runs.length > 0
      ? [
        `The run's ${label} ${runs.length > 1 ? "stand" : "stands"} to its future target as ` +
        `the calibration's ${label} ${runs.length > 1 ? "stand" : "stands"} to ${
          checkpointLabel(cal.target)
        } (same model family, training recipe, data distribution and memorization settings).`,
      ]
      : []),
    ...(isFeatureSignal(choice.signal)
      ? [
        "The run's row features were computed from its own data by the same features step " +
        "(window and context counts over every position of its data, step, compression, " +
        "distinct share) and predict its target's memorization as the calibration's predicted " +
        `${checkpointLabel(cal.target)}'s (a corpus of another size or duplication shifts the ` +
        "counts the model was fitted on).",
      ]
      : []),
    `Precision and recall are the calibration's held-out values: the predictor, signal and ` +
    `threshold were chosen on ${cal.folds - 1} of ${cal.folds} folds of rows and measured on ` +
    "the remaining fold, summed over folds. Each row of this run is flagged by the rule of its " +
    "fold (the same row hash), which is what those numbers measured; `rule` is the choice on " +
    `all rows, shared by ${Math.round(choice.foldAgreement * cal.folds)} of ${cal.folds} folds.`,
    "The intervals cover the calibration's sampling error and this run's own (95%, Wilson with " +
    "the effective count of both), not a change of model family or data.",
    cal.recallOver === "all"
      ? "Recall counts every row the target will memorize among the rows the run scored; rows " +
        "the cheap run did not score are missed."
      : "Recall counts only the target's memorized rows that the predictor scored.",
  ];
}

/**
 * What makes a calibration's numbers not carry over to a run: the predictor
 * model with other parameter counts (a same-named model of another size), or
 * other memorization settings (context, continuation, offset, mode,
 * suppressed tokens) or rows per step (what a step means). One line each.
 */
export function comparability(
  calDir: string,
  cal: Experiment,
  runDir: string,
  run: Experiment,
  predictor: { model: string; step: number },
): string[] {
  const out: string[] = [];
  const a = cal.suite.models.find((m) => m.name === predictor.model);
  const b = run.suite.models.find((m) => m.name === predictor.model);
  for (const key of ["parameters", "nonEmbeddingParameters"] as const) {
    if (a?.[key] !== undefined && b?.[key] !== undefined && a[key] !== b[key]) {
      out.push(
        `the predictor ${predictor.model} has ${key} ${a[key]} in ${calDir} but ${b[key]} in ` +
          `${runDir} (another model under the same name)`,
      );
    }
  }
  const ma = cal.memorization, mb = run.memorization;
  for (const key of ["context", "continuation", "offset", "mode"] as const) {
    if (ma[key] !== mb[key]) {
      out.push(`memorization.${key} is ${ma[key]} in ${calDir} but ${mb[key]} in ${runDir}`);
    }
  }
  if (ma.suppressedTokens.join(",") !== mb.suppressedTokens.join(",")) {
    out.push(
      `memorization.suppressed_tokens differ ([${ma.suppressedTokens.slice(0, 8)}] in ${calDir}, ` +
        `[${mb.suppressedTokens.slice(0, 8)}] in ${runDir})`,
    );
  }
  if (cal.suite.sequencesPerStep !== run.suite.sequencesPerStep) {
    out.push(
      `suite.sequences_per_step is ${cal.suite.sequencesPerStep} in ${calDir} but ` +
        `${run.suite.sequencesPerStep} in ${runDir} (step ${predictor.step} has seen other rows)`,
    );
  }
  return out;
}

/**
 * A warning when the chosen rule's held-out precision misses the precision
 * floor badly (even the upper end of its 95% interval is below it): the
 * calibration is too small, or no rule generalizes to unseen rows.
 */
export function floorWarning(choice: ForecastChoice, floor: number, calDir: string): string | null {
  const p = choice.expected.precision;
  if (!(p.hi < floor)) return null;
  return `the rule's held-out precision on ${calDir} is ${p.value.toFixed(3)} (95% interval ` +
    `${p.lo.toFixed(3)}–${p.hi.toFixed(3)}), well below the ${floor} floor it was chosen for: ` +
    "most flagged rows are not expected to be memorized; calibrate on a larger run, or lower " +
    "analysis.min_precision to what the calibration supports";
}

/**
 * `index,signal` lines of the flagged rows; with `kinds` (the run folder's row
 * features) a third column `personal_kinds` (`;`-separated kinds, empty for none).
 */
export function flaggedCsv(
  rows: readonly number[],
  values: readonly number[],
  kinds?: readonly string[],
): string {
  const lines = [kinds ? "index,signal,personal_kinds" : "index,signal"];
  for (let i = 0; i < rows.length; i++) {
    lines.push(`${rows[i]},${values[i]}${kinds ? `,${kinds[i]}` : ""}`);
  }
  return lines.join("\n") + "\n";
}

/** A Parquet file of the flagged rows (index INT64, signal DOUBLE; personal_kinds UTF-8 with `kinds`). */
export function flaggedParquet(
  rows: readonly number[],
  values: readonly number[],
  kinds?: readonly string[],
): Uint8Array {
  return new Uint8Array(parquetWriteBuffer({
    columnData: [
      { name: "index", data: rows.map(BigInt), type: "INT64" },
      { name: "signal", data: [...values], type: "DOUBLE" },
      ...(kinds ? [{ name: "personal_kinds", data: [...kinds], type: "STRING" as const }] : []),
    ],
    rowGroupSize: Math.max(1, Math.min(rows.length, 1 << 20)),
  }));
}

/** Flagged rows shown on the forecast page, most confident first. */
export const EXAMPLE_ROWS = 20;

/**
 * The calibration's rows in bins of the chosen signal of its predictor,
 * against its target (over the rows both scored): the signal's histogram, or
 * for a binary rule two bins (memorized by the predictor, not).
 */
export function calibrationHistogram(
  predictor: ScoredCheckpoint,
  target: ScoredCheckpoint,
  signal: ForecastFile["signal"],
  seed: number,
): SignalHistogram {
  if (signal === "binary") {
    const both = intersectRanges(predictor.scored, target.scored);
    const flagged = restrictList(predictor.memorized, both);
    const pos0 = intersectCount(flagged, target.memorized);
    const pos1 = countInRanges(target.memorized, both) - pos0;
    return {
      pos: [pos0, pos1],
      neg: [flagged.length - pos0, both.size - flagged.length - pos1],
      thresholds: [1, 0],
    };
  }
  if (!predictor.source) {
    throw new UserError(
      `the calibration's ${
        checkpointLabel(predictor)
      } carries no per-row scores for --signal ${signal}`,
    );
  }
  const hs = signalHistograms(predictor.source, predictor.continuation, target, {
    seed,
    folds: 1,
  });
  return hs.find((h) => h.signal === signal)!;
}

/**
 * The flagged rows' tokens from the run's data and their text from its
 * tokenizer; token ids only without a tokenizer, nothing when the data is
 * not readable (said in `log`).
 */
export async function flaggedExamples(
  exp: Experiment,
  picked: readonly { row: number; value: number }[],
  log: (line: string) => void,
): Promise<FlaggedExample[]> {
  const m = exp.memorization;
  const width = m.context + m.continuation;
  let tokens: Map<number, number[]> = new Map();
  if (picked.length > 0) {
    try {
      const rows = [...picked.map((p) => p.row)].sort((a, b) => a - b);
      const reader = await openTokenReader(exp.data);
      try {
        const flat = await reader.readWindow(Uint32Array.from(rows), m.offset, width);
        tokens = new Map(
          rows.map((r, i) => [r, Array.from(flat.subarray(i * width, (i + 1) * width))]),
        );
      } finally {
        await reader.close();
      }
    } catch (e) {
      log(
        `Note: the run's data is not readable (${(e as Error).message}); the forecast page ` +
          "lists the flagged rows without their text.",
      );
    }
  }
  const decode = tokens.size > 0 ? await loadDecoder(exp.suite.tokenizer, log) : undefined;
  return picked.map(({ row, value }) => {
    const t = tokens.get(row) ?? [];
    const text = (ids: number[]) => (decode && ids.length > 0 ? decode(ids) : null);
    return {
      row,
      value,
      context: text(t.slice(0, m.context)),
      continuation: text(t.slice(m.context, width)),
      tokens: t,
    };
  });
}

/** Reads both run folders, chooses the rule, flags the rows and writes the forecast files. */
export async function runForecast(
  calibrationDir: string,
  runDir: string,
  opts: ForecastRunOptions = {},
): Promise<ForecastOutput> {
  const display = opts.progress === false ? null : startWork("forecast", opts.progress);
  const log = opts.log ??
    ((line: string) => (display ? display.note(line) : console.error(line)));
  try {
    return await forecast(calibrationDir, runDir, { ...opts, log }, display ?? undefined);
  } finally {
    display?.stop();
  }
}

/** Both run folders as the forecast reads them: experiments, scored runs, row features. */
interface ForecastInputs {
  calExp: Experiment;
  calRuns: ScoredCheckpoint[];
  calFeatures: RowFeatures | null;
  runExp: Experiment;
  runRuns: ScoredCheckpoint[];
  runFeatures: RowFeatures | null;
  runOf: (id: PredictorId) => ScoredCheckpoint;
}

/** Reads both run folders (scores and row features); the run must have scored something. */
async function readInputs(
  calibrationDir: string,
  runDir: string,
  progress?: ProgressSink,
): Promise<ForecastInputs> {
  const calExp = await readExperimentSnapshot(calibrationDir);
  const calRuns = await readRunCheckpoints(calibrationDir, calExp, progress);
  const runExp = await readExperimentSnapshot(runDir);
  const runRuns = await readRunCheckpoints(runDir, runExp, progress);
  if (runRuns.length === 0) {
    throw new UserError(`${runDir}: the store holds no finished shard; score the run first`);
  }
  const byId = new Map(runRuns.map((r) => [checkpointKey(r.model, r.step), r]));
  return {
    calExp,
    calRuns,
    calFeatures: await readRowFeatures(calibrationDir),
    runExp,
    runRuns,
    runFeatures: await readRowFeatures(runDir),
    runOf: (id) => byId.get(checkpointKey(id.model, id.step))!,
  };
}

/**
 * `--signal combined|data-only` needs row features in both run folders: a
 * UserError saying which lacks them and what computes them.
 */
function checkFeatureSignal(
  opts: ForecastOptions,
  dirs: { calibration: string; run: string },
  inputs: ForecastInputs,
): void {
  if (!opts.signal || !isFeatureSignal(opts.signal)) return;
  const lacking = [
    ...(inputs.calFeatures ? [] : [{ dir: dirs.calibration, exp: inputs.calExp }]),
    ...(inputs.runFeatures ? [] : [{ dir: dirs.run, exp: inputs.runExp }]),
  ];
  if (lacking.length === 0) return;
  throw new UserError(
    `--signal ${opts.signal} needs the row features of both run folders, and ${
      lacking.map((l) => l.dir).join(" and ")
    } ${lacking.length > 1 ? "have" : "has"} none (features/<key>/rows.json): run ${
      lacking.map((l) => `deno task experiment ${shellQuote(l.exp.file)}`).join(" and ")
    } (finished scoring shards are skipped; the features step follows the scoring), or give ` +
      "--signal binary|score|prefix|nll",
  );
}

/**
 * The rule, with the warnings of the calibration and the run (not comparable:
 * refused unless --allow-mismatch; a precision floor missed badly) and a note
 * when a model over the row features would have won had the run had them.
 */
function chooseRule(
  cal: Calibration,
  inputs: ForecastInputs,
  dirs: { calibration: string; run: string },
  opts: ForecastRunOptions,
): { choice: ForecastChoice; warnings: string[]; notes: string[] } {
  const available = (id: PredictorId) => inputs.runOf(id) !== undefined;
  const choice = chooseForecast(cal, available, opts, inputs.runFeatures !== null);
  const warnings = (choice.runs ?? (isFeatureSignal(choice.signal) ? [] : [choice.predictor]))
    .flatMap((p) => comparability(dirs.calibration, inputs.calExp, dirs.run, inputs.runExp, p));
  if (warnings.length > 0 && !opts.allowMismatch) {
    throw new UserError(
      `${dirs.calibration} and ${dirs.run} are not comparable: ${warnings.join("; ")}. A ` +
        "forecast carries over only between runs of the same predictor model and memorization " +
        "settings; give --allow-mismatch to forecast anyway (the mismatch is then printed and " +
        "shown on the page)",
    );
  }
  const floor = floorWarning(choice, cal.minPrecision, dirs.calibration);
  if (floor) warnings.push(floor);
  const notes: string[] = [];
  if (!inputs.runFeatures && !opts.signal) {
    const better = betterWithFeatures(cal, available, opts, choice);
    if (better) {
      notes.push(
        `${better} (${dirs.run} has no row features: run deno task ` +
          `experiment ${shellQuote(inputs.runExp.file)} to compute them)`,
      );
    }
  }
  return { choice, warnings, notes };
}

/** A sentence when a model over the row features would beat the choice made without them. */
function betterWithFeatures(
  cal: Calibration,
  available: (id: PredictorId) => boolean,
  opts: ForecastOptions,
  choice: ForecastChoice,
): string | null {
  if (!cal.candidates.some((c) => isFeatureSignal(c.signal))) return null;
  let best: ForecastChoice;
  try {
    best = chooseForecast(cal, available, opts, true);
  } catch (e) {
    if (e instanceof UserError) return null; // no rule qualifies with the features either
    throw e;
  }
  if (!isFeatureSignal(best.signal)) return null;
  if (!(best.expected.recall.value > choice.expected.recall.value)) return null;
  return `with row features the ${best.signal} rule (${best.rule}) would be chosen, held-out ` +
    `recall ${best.expected.recall.value.toFixed(3)} against ${
      choice.expected.recall.value.toFixed(3)
    }`;
}

/** The page's charts of the calibration: the chosen signal's histogram against its target. */
function figuresOf(
  cal: Calibration,
  inputs: ForecastInputs,
  choice: ForecastChoice,
): CalibrationFigures {
  const { calRuns } = inputs;
  const target = calRuns.find((r) => r.model === cal.target.model && r.step === cal.target.step)!;
  const predictor = choice.histogram
    ? null
    : calRuns.find((r) => r.model === choice.predictor.model && r.step === choice.predictor.step)!;
  const histogram = choice.histogram ??
    calibrationHistogram(predictor!, target, choice.signal, cal.seed);
  const positives = cal.recallOver === "all"
    ? target.memorized.length
    : Array.from(histogram.pos).reduce((a, b) => a + b, 0);
  return calibrationFigures(histogram, positives, target.continuation, choice);
}

/** The kinds of personal data of each flagged row (from the run's row features), on the examples too. */
function personalOf(
  features: RowFeatures | null,
  rows: readonly number[],
  examples: FlaggedExample[],
): string[] | undefined {
  if (!features) return undefined;
  const kinds = rows.map((r) => personalKinds(features, r).join(";"));
  const byRow = new Map(rows.map((r, i) => [r, kinds[i]]));
  for (const x of examples) {
    const k = byRow.get(x.row) ?? "";
    x.personal = k === "" ? [] : k.split(";");
  }
  return kinds;
}

/** Writes flagged.parquet, flagged.csv, forecast.json and forecast.html into `dir`. */
async function writeForecast(
  dir: string,
  forecast: ForecastFile,
  flagged: { rows: number[]; values: number[] },
  kinds: string[] | undefined,
): Promise<string[]> {
  const files = ["flagged.parquet", "flagged.csv", "forecast.json", "forecast.html"]
    .map((f) => join(dir, f));
  await writeAtomic(files[0], flaggedParquet(flagged.rows, flagged.values, kinds));
  await writeAtomic(files[1], flaggedCsv(flagged.rows, flagged.values, kinds));
  await writeAtomic(files[2], JSON.stringify(forecast, null, 2) + "\n");
  await writeAtomic(files[3], await forecastPage(forecast));
  return files;
}

async function forecast(
  calibrationDir: string,
  runDir: string,
  opts: ForecastRunOptions & { log: (line: string) => void },
  progress?: ProgressSink,
): Promise<ForecastOutput> {
  const log = opts.log;
  const dirs = { calibration: calibrationDir, run: runDir };
  const inputs = await readInputs(calibrationDir, runDir, progress);
  checkFeatureSignal(opts, dirs, inputs);
  const cal = calibrationOf(inputs.calExp, inputs.calRuns, progress, inputs.calFeatures);
  const { choice, warnings, notes } = chooseRule(cal, inputs, dirs, opts);
  for (const w of warnings) log(`warning: ${w}`);
  for (const n of notes) log(`Note: ${n}`);
  const flagged = flagRows(inputs.runOf, choice, inputs.runFeatures);
  const dir = opts.output ?? join(runDir, "forecast");
  await claimOutputFolder(dir, "forecast");
  const examples = await flaggedExamples(
    inputs.runExp,
    mostConfident(flagged.rows, flagged.values, choice.signal, EXAMPLE_ROWS),
    log,
  );
  const kinds = personalOf(inputs.runFeatures, flagged.rows, examples);
  const forecast = forecastFile(cal, inputs, dirs, {
    choice,
    flagged: flagged.rows.length,
    examples,
    kinds,
    figures: figuresOf(cal, inputs, choice),
    warnings,
    budget: opts.budget ?? null,
  });
  const files = await writeForecast(dir, forecast, flagged, kinds);
  log(
    `Forecast: ${choice.rule} flags ${flagged.rows.length} of ${forecast.run.rowsScored} rows; ` +
      `expected precision ${choice.expected.precision.value.toFixed(3)}, recall ` +
      `${choice.expected.recall.value.toFixed(3)} (held out on ${calibrationDir})`,
  );
  return { dir, files, forecast };
}

/** `forecast.json`: the rule, what it flagged, what the calibration expects and why. */
function forecastFile(
  cal: Calibration,
  inputs: ForecastInputs,
  dirs: { calibration: string; run: string },
  x: {
    choice: ForecastChoice;
    flagged: number;
    examples: FlaggedExample[];
    kinds: string[] | undefined;
    figures: CalibrationFigures;
    warnings: string[];
    budget: number | null;
  },
): ForecastFile {
  const { choice } = x;
  const target = inputs.calRuns.find((r) =>
    r.model === cal.target.model && r.step === cal.target.step
  )!;
  return {
    calibration: {
      run: dirs.calibration,
      experiment: inputs.calExp.name,
      target: cal.target,
      rowsScored: target.scored.size,
      memorized: target.memorized.length,
    },
    run: { run: dirs.run, experiment: inputs.runExp.name, rowsScored: rowsScored(inputs, choice) },
    predictor: choice.predictor,
    signal: choice.signal,
    ...(choice.runs ? { runs: choice.runs } : {}),
    threshold: choice.threshold,
    rule: choice.rule,
    computeFraction: choice.computeFraction,
    budget: x.budget,
    flagged: x.flagged,
    expected: {
      ...predictionIntervals(choice, x.flagged),
      calibration: choice.expected,
      recallOver: cal.recallOver,
      folds: cal.folds,
      minPrecision: cal.minPrecision,
    },
    inSample: choice.inSample,
    foldRules: choice.foldRules,
    foldAgreement: choice.foldAgreement,
    assumptions: assumptionsOf(cal, choice),
    examples: x.examples,
    personal: x.kinds ? personalCounts(x.kinds) : null,
    figures: x.figures,
    ...(x.warnings.length > 0 ? { warnings: x.warnings } : {}),
  };
}

/**
 * Rows of the run the rule could flag: the predictor's scored rows, or for a
 * model rule the rows with row features.
 */
function rowsScored(inputs: ForecastInputs, choice: ForecastChoice): number {
  if (isFeatureSignal(choice.signal)) return inputs.runFeatures?.count ?? 0;
  return inputs.runOf(choice.predictor).scored.size;
}
