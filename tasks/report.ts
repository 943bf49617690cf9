/**
 * Renders a run folder's report (report.html, summary.json, predictors.csv)
 * from the stored scores, without scoring: reads the experiment snapshot
 * (`experiment.json`), the store, the run statistics (`runs.jsonl`), the
 * example rows' tokens and the tokenizer when there are, analyses, and writes
 * the three files atomically.
 *
 * @module
 */
import { z } from "zod";
import { join } from "node:path";
import { loadDuplicates, openTokenReader } from "../engine/data/datasets.ts";
import {
  missingInRuns,
  type OpenedRun,
  planRun,
  readExperimentSnapshot,
} from "../engine/plan/run_folder.ts";
import { duplicateWeights } from "../engine/model/fingerprint.ts";
import { type Manifest, readManifest } from "../engine/store/store.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import { readImportRecord } from "../engine/import/imported.ts";
import { loadImportedInput } from "./imported_input.ts";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import { readRowFeatures } from "../engine/data/features/rows_file.ts";
import { UserError } from "../engine/errors.ts";
import { boundedLines } from "../engine/os/lines.ts";
import { fsProblem, isNotFound } from "../engine/os/fs_errors.ts";
import { schemaProblem } from "../engine/os/json_file.ts";
import { checkpointKey, type Experiment, type ProgressSink } from "../engine/types.ts";
import { startWork, type WorkDisplay, type WorkOptions } from "../engine/run/progress.ts";
import {
  type AnalysisInput,
  analyze,
  exampleRows,
  inputRuns,
} from "../reports/analysis/analysis.ts";
import { defaultReaderThreads, scanStore } from "./report_scan.ts";
import { CorrelationThread } from "./report_correlations.ts";
import { noTargetSummary } from "../reports/analysis/no_target_summary.ts";
import { writeNoTargetReport } from "../reports/page/no_target_page.ts";
import { type RenderedReport, writeReport } from "../reports/page/report_files.ts";
import { shellQuote } from "../engine/os/shell.ts";

export { predictorsCsv, type RenderedReport, writeReport } from "../reports/page/report_files.ts";

/** Options of {@link renderReport}. */
export interface RenderOptions {
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
  /**
   * The run folder as the caller opened it (the completeness check, the
   * scoring or import task): its experiment, plan, manifest and missing
   * shards are used instead of read again.
   */
  run?: OpenedRun;
  /**
   * The progress line of a long render (reading the store, analysing; rate and
   * ETA, engine/run/progress.ts `startWork`); `false`: none. Default: on stderr.
   */
  progress?: WorkOptions | false;
  /**
   * Threads that read the store besides this one, which then only waits,
   * and (any but 0) the thread of the score correlations (default: one per
   * core, at most 4, none on one core; 0: this thread does everything).
   */
  threads?: number;
}

/** Reads the run folder's store, analyses it and writes the report files. */
export async function renderReport(
  runDir: string,
  opts: RenderOptions = {},
): Promise<RenderedReport> {
  const display = opts.progress === false ? null : startWork("report", opts.progress);
  const threads = opts.threads ?? defaultReaderThreads();
  // Listening by the time the store is read (see CorrelationThread).
  const correlating = threads > 0 ? new CorrelationThread() : null;
  try {
    return await render(runDir, { ...opts, threads }, display, correlating);
  } finally {
    display?.stop();
    correlating?.close();
  }
}

async function render(
  runDir: string,
  opts: RenderOptions & { threads: number },
  display: WorkDisplay | null,
  correlating: CorrelationThread | null,
): Promise<RenderedReport> {
  const t0 = performance.now();
  const print = opts.log ?? ((line: string) => console.error(line));
  // Lines go above the progress line; the final one after it.
  const log = display && !opts.log ? (line: string) => display.note(line) : print;
  const input = await loadAnalysisInput(runDir, log, opts.run, display ?? undefined, opts.threads);
  if (!input.experiment.target) {
    // target: none: report what was scored; forecasts come from `deno task forecast`.
    const out = await writeNoTargetReport(
      noTargetSummary(input.experiment, inputRuns(input)),
      runDir,
    );
    log(`Rendered ${out.html} (no trained target: the scored runs only)`);
    return out;
  }
  const t1 = performance.now();
  // The score correlations on another thread while this one analyses the rest.
  const apart = await correlating?.start(input.experiment, inputRuns(input)) ?? null;
  const progress = display ?? undefined;
  const summary = analyze({ ...input, progress, correlationsApart: !!apart });
  if (apart) summary.correlations = await apart.result(progress);
  const t2 = performance.now();
  const out = await writeReport(summary, runDir);
  const seconds = (performance.now() - t0) / 1000;
  const s = (ms: number) => (ms / 1000).toFixed(2);
  display?.stop();
  print(
    `Rendered ${out.html} in ${seconds.toFixed(2)} s ` +
      `(reading ${s(t1 - t0)} s, analysis ${s(t2 - t1)} s, page ${out.seconds.toFixed(2)} s)`,
  );
  return { ...out, seconds };
}

/** One line of `runs.jsonl` (written after each scoring invocation); other fields are kept. */
const runStatsSchema = z.looseObject({
  started: z.string().max(100).optional(),
  seconds: z.number().min(0).max(1e10).optional(),
  rows: z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});
type RunStats = z.output<typeof runStatsSchema>;

/**
 * The lines of `runs.jsonl`, each checked (a field of the wrong type or out of
 * range is a UserError naming the line and field, never a rate on the page);
 * none before the first run; a torn line (not JSON, from a killed run) is skipped.
 */
async function readRunStats(runDir: string): Promise<RunStats[]> {
  const path = join(runDir, "runs.jsonl");
  const out: RunStats[] = [];
  try {
    for await (const { line, text } of boundedLines(path, { maxBytes: 1 << 20 })) {
      if (text.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        if (e instanceof SyntaxError) continue;
        throw e;
      }
      const parsed = runStatsSchema.safeParse(value);
      if (!parsed.success) {
        throw new UserError(
          `${path}:${line}: ${schemaProblem(parsed.error, value)}; the run log was edited or ` +
            "damaged: fix or delete that line",
        );
      }
      out.push(parsed.data);
    }
  } catch (e) {
    if (isNotFound(e)) return [];
    throw fsProblem(path, e, "run log");
  }
  return out;
}

/** `cpu × 2 workers, 1 thread each`-style lines, one per distinct device slot. */
function deviceList(exp: Experiment): string[] {
  const counts = new Map<string, number>();
  for (const d of exp.devices) {
    const key = `${d.device}, ${d.threads} thread${d.threads === 1 ? "" : "s"} each`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} worker${n === 1 ? "" : "s"} on ${k}`);
}

/**
 * Gathers everything `analyze` needs from a run folder (and the data, when
 * reachable: without it the report has no example text and no missing-shard
 * list, and says so in a note). `opened`: the folder as already opened;
 * `progress`: counts the store's checkpoints as they are read.
 */
export async function loadAnalysisInput(
  runDir: string,
  log: (line: string) => void = () => {},
  opened?: OpenedRun,
  progress?: ProgressSink,
  readers?: number,
): Promise<AnalysisInput> {
  const experiment = opened?.experiment ?? await readExperimentSnapshot(runDir);
  const record = await readImportRecord(runDir);
  if (record) return await loadImportedInput(runDir, experiment, record, log);
  const manifest = opened?.manifest !== undefined ? opened.manifest : await readManifest(runDir);
  const { runs, histograms } = await scanStore(runDir, experiment, manifest, progress, readers);
  if (runs.length === 0) {
    throw new UserError(
      `${runDir}: the store holds no finished shard; run \`deno task experiment ${
        shellQuote(experiment.file)
      }\` first.`,
    );
  }
  const { missing, exampleTokens } = await readFromData(experiment, runs, log, opened);
  const features = await readRowFeatures(runDir);
  // a data.duplicates file given by the user wins over the computed window counts, which the
  // analysis walks chunk by chunk (figures.ts rateByComputedDuplicates)
  const given = await readDuplicates(experiment, log);
  return {
    experiment,
    runs,
    duplicates: given,
    features,
    duplicatesFrom: given ? "data.duplicates" : "computed",
    exampleTokens,
    decode: await loadDecoder(experiment.suite.tokenizer, log),
    run: await runInfo(runDir, experiment, manifest, missing, log),
    histograms,
  };
}

/**
 * What the report reads from the training data: the ids of the shards the
 * store lacks (by the plan over the data's rows, or `opened`'s) and the
 * example rows' tokens. When the data is not readable, a note says so and
 * both are left out.
 */
async function readFromData(
  experiment: Experiment,
  runs: ScoredCheckpoint[],
  log: (line: string) => void,
  opened?: OpenedRun,
): Promise<{ missing: string[]; exampleTokens?: Map<number, ArrayLike<number>> }> {
  const unreadable = (e: unknown) =>
    log(
      `Note: the training data is not readable (${(e as Error).message}); ` +
        "the report shows no example text and no missing-shard check.",
    );
  let jobs = opened?.missing;
  if (!jobs) {
    let plan = opened?.plan;
    if (!plan) {
      try {
        plan = (await planRun(experiment)).plan;
      } catch (e) {
        unreadable(e);
        return { missing: [] };
      }
    }
    jobs = missingInRuns(plan.jobs, runs);
  }
  const missing = jobs.map((j) => j.id);
  const rows = exampleRows({ experiment, runs });
  if (rows.length === 0) return { missing };
  try {
    return { missing, exampleTokens: await readExampleTokens(experiment, rows) };
  } catch (e) {
    unreadable(e);
    return { missing };
  }
}

/** The tokens of `rows` (context and continuation, from the memorization offset on). */
async function readExampleTokens(
  experiment: Experiment,
  rows: number[],
): Promise<Map<number, ArrayLike<number>>> {
  const m = experiment.memorization;
  const reader = await openTokenReader(experiment.data);
  try {
    const width = m.context + m.continuation;
    const tokens = await reader.readWindow(Uint32Array.from(rows), m.offset, width);
    return new Map(rows.map((r, i) => [r, tokens.subarray(i * width, (i + 1) * width)]));
  } finally {
    await reader.close();
  }
}

/** The data's duplicate counts when the experiment names them (null, with a note, when unreadable). */
async function readDuplicates(
  experiment: Experiment,
  log: (line: string) => void,
): Promise<Uint32Array | null> {
  if (!experiment.data.duplicates) return null;
  try {
    return await loadDuplicates(experiment.data.duplicates);
  } catch (e) {
    log(`Note: duplicate counts not loaded (${(e as Error).message}).`);
    return null;
  }
}

/** How the scores were produced (`Summary.run`): commands, run statistics, fingerprints. */
async function runInfo(
  runDir: string,
  experiment: Experiment,
  manifest: Manifest | null,
  missing: string[],
  log: (line: string) => void,
): Promise<AnalysisInput["run"]> {
  const stats = await readRunStats(runDir);
  const seconds = stats.reduce((a, s) => a + (s.seconds ?? 0), 0);
  const rows = stats.reduce((a, s) => a + (s.rows ?? 0), 0);
  const fingerprints = new Map(
    (manifest?.checkpoints ?? []).map((c) => [checkpointKey(c.model, c.step), c.fingerprint]),
  );
  const dataFingerprint = manifest?.settings.data;
  const warnings = duplicateWeights(manifest?.checkpoints ?? []);
  for (const w of warnings) log(`warning: ${w}`);
  return {
    command: `deno task experiment ${shellQuote(experiment.file)}\ndeno task report ${
      shellQuote(runDir)
    }`,
    startedAt: stats[0]?.started ?? null,
    seconds: stats.length > 0 ? seconds : null,
    rowsPerSecond: seconds > 0 ? rows / seconds : null,
    devices: deviceList(experiment),
    models: experiment.suite.models.flatMap((model) =>
      model.checkpoints.map((c) => ({
        name: model.name,
        step: c.step,
        path: c.path,
        fingerprint: fingerprints.get(checkpointKey(model.name, c.step)) ?? null,
      }))
    ),
    data: {
      path: experiment.data.path,
      fingerprint: typeof dataFingerprint === "string" ? dataFingerprint : null,
    },
    missingShards: missing,
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}
