/**
 * The pipeline of `deno task experiment`: score (tasks/score.ts) → row
 * features (tasks/features.ts) → analyse → render (tasks/report.ts). The scoring engine knows
 * nothing of reports; this is where the two meet.
 *
 * @module
 */
import { lockForScoring, runExperiment, type RunOptions, type RunOutcome } from "./score.ts";
import type { Experiment } from "../engine/types.ts";

// The report's and the features' modules (the analysis, the charts, the page: ~90 MB of the
// main thread's memory) are imported when their step starts, after scoring, so that the
// scoring process does not carry them beside its workers.

/** Options of {@link scoreAndReport}: the run's, and whether to render afterwards. */
export interface PipelineOptions extends RunOptions {
  /** Score only; render later with `deno task report`. */
  noReport?: boolean;
}

/** What the pipeline did: the scoring outcome and the report's path when one was rendered. */
export interface PipelineOutcome extends RunOutcome {
  /** Path of report.html, when the report step ran. */
  report?: string;
}

/**
 * Scores every pending shard, then (unless interrupted or `noReport`)
 * renders the report from the whole store, both under the run folder's lock.
 * The run folder as the scoring left it (experiment, plan, manifest) is handed
 * to the report, which reads only the scores. A failed report step keeps the
 * scores and says how to rerun it.
 */
export async function scoreAndReport(
  exp: Experiment,
  opts: PipelineOptions = {},
): Promise<PipelineOutcome> {
  const lock = await lockForScoring(exp, opts);
  if (!lock) {
    return { scored: 0, skipped: 0, interrupted: true, rows: 0, seconds: 0, runDir: exp.output };
  }
  try {
    return await scoreAndRender(exp, opts);
  } finally {
    await lock.release();
  }
}

async function scoreAndRender(exp: Experiment, opts: PipelineOptions): Promise<PipelineOutcome> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const outcome = await runExperiment(exp, { ...opts, holdsLock: true });
  if (outcome.interrupted) return outcome;
  await featureStep(outcome.run?.experiment ?? exp, opts, log);
  if (opts.noReport) return outcome;
  try {
    const { renderReport } = await import("./report.ts");
    const rendered = await renderReport(
      outcome.runDir,
      outcome.run ? { log, run: outcome.run } : { log },
    );
    return { ...outcome, report: rendered.html };
  } catch (e) {
    log(
      `The report step failed; the scores are kept. Rerun it with: deno task report ${outcome.runDir}`,
    );
    throw e;
  }
}

/**
 * The features step (cheap: one scan of the data), after scoring and under
 * the same lock and shard group. A failure is reported and the pipeline goes
 * on: the report then has no row features.
 */
async function featureStep(
  exp: Experiment,
  opts: PipelineOptions,
  log: (line: string) => void,
): Promise<void> {
  try {
    const { computeFeatures } = await import("./features.ts");
    await computeFeatures(exp, {
      log,
      ...(opts.shardGroup ? { shardGroup: opts.shardGroup } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if (opts.signal?.aborted) return;
    log(
      `warning: the features step failed (${
        (e as Error).message
      }); the report has no row features.`,
    );
  }
}
