/**
 * `deno task experiment`: score a suite, analyse, render the report; or
 * print the plan (`--dry-run`), or submit to Slurm (`--slurm`).
 *
 * @module
 */
import { jobsForGroup, parseShardGroup } from "../engine/cluster/cluster.ts";
import { SLURM_OPTIONS, splitSlurmArgs } from "../engine/cluster/slurm.ts";
import { loadExperiment } from "../engine/config/config.ts";
import { checkInputFiles, namedFiles, unreadable } from "../engine/config/paths.ts";
import { UserError } from "../engine/errors.ts";
import { formatPlan, planJson } from "../engine/plan/plan.ts";
import { openRun } from "../engine/plan/run_folder.ts";
import type { Experiment } from "../engine/types.ts";
import { type Command, DEFAULT_EXPERIMENT, parse, WAIT_OPTION } from "./command.ts";

/** Help text of `deno task experiment --help`. */
const HELP = `deno task experiment [FILE] [options]
deno task experiment FILE --slurm [--slurm-dry-run] [--slurm-tasks N] [-- SBATCH_OPTIONS]

Scores every checkpoint of the suite on the selected rows (resuming: finished
shards are skipped), analyses the scores and renders runs/<name>/report.html.

options:
  --dry-run            print the plan (jobs, rows, scoring and training FLOPs, resume
                       state) without loading a model; works without the data file
  --json               with --dry-run: the plan as one JSON object
  --output DIR         run folder (default: the file's output:, else runs/<name>)
  --shard-group I/N    run only shard group I of N (0-based), e.g. on a cluster node
  --no-report          score only; render later with \`deno task report\`
  --wait               when another process writes the run folder, wait for it
                       instead of refusing
  --slurm              submit shard groups as a Slurm job array plus a report job;
                       arguments after -- go to sbatch
  --slurm-dry-run      write the Slurm scripts without submitting
  --slurm-tasks N      number of array tasks (default 8)
  -h, --help           this text

FILE defaults to experiments/nano.yaml (the embedded nano suite).
Ctrl-C, SIGTERM and SIGHUP stop after the shards in flight (exit 130, 143, 129);
rerun the same command to resume. --debug adds stack traces to errors.

examples:
  deno task experiment                                  # the nano suite, end to end
  deno task experiment experiments/pythia-deduped.yaml --dry-run
  deno task experiment my.yaml --shard-group 3/8 --no-report
  deno task experiment my.yaml --slurm -- --partition=gpu --time=12:00:00`;

/** The options parsed after the Slurm ones are split off (engine/cluster/slurm.ts). */
const OPTIONS = {
  "dry-run": { type: "boolean" },
  "json": { type: "boolean" },
  "shard-group": { type: "string" },
  "output": { type: "string" },
  "no-report": { type: "boolean" },
  ...WAIT_OPTION,
} as const;

/** The `experiment` subcommand. */
export const experimentCommand: Command = {
  synopsis: "deno task experiment [FILE] [options]     score a suite, analyse, render the report",
  help: HELP,
  options: { ...OPTIONS, ...SLURM_OPTIONS },
  async run(args, ctx) {
    const { harness, slurm } = splitSlurmArgs(args);
    const { values, positionals } = parse(harness, OPTIONS);
    if (positionals.length > 1) {
      throw new UserError(
        `expected one experiment file, got ${positionals.length}: ${positionals.join(" ")} ` +
          `(options go after the file; sbatch options after --slurm --)`,
      );
    }
    if (values.json && !values["dry-run"]) {
      throw new UserError("--json goes with --dry-run (the plan as JSON)");
    }
    const file = positionals[0] ?? DEFAULT_EXPERIMENT;
    const output = values.output as string | undefined;
    const exp = await loadExperiment(file, output !== undefined ? { output } : {});
    const shardGroup = values["shard-group"] !== undefined
      ? parseShardGroup(values["shard-group"] as string)
      : undefined;
    if (slurm) {
      const { submitSlurm } = await import("../engine/cluster/slurm.ts");
      const done = await submitSlurm(exp, {
        dryRun: slurm.dryRun,
        sbatchArgs: slurm.sbatchArgs,
        ...(slurm.tasks !== undefined ? { tasks: slurm.tasks } : {}),
      });
      console.log(done.message);
      return 0;
    }
    if (values["dry-run"]) {
      console.log(await dryRun(exp, { shardGroup, json: values.json === true }));
      return 0;
    }
    checkInputFiles(exp);
    const { scoreAndReport } = await import("../tasks/experiment.ts");
    const outcome = await scoreAndReport(exp, {
      ...(shardGroup ? { shardGroup } : {}),
      noReport: values["no-report"] === true,
      wait: values.wait === true,
      signal: ctx.stopSignal(),
    });
    const stop = ctx.stopped();
    if (stop) return stop.exitCode;
    if (outcome.interrupted) return 130;
    console.log(
      `scored ${outcome.scored} jobs, ${outcome.skipped} already done` +
        (outcome.report ? `; report: ${outcome.report}` : ""),
    );
    return 0;
  },
};

/** The `--dry-run` text (or JSON): the plan, even when the data file is absent. */
export async function dryRun(
  exp: Experiment,
  opts: { shardGroup?: { index: number; count: number }; json?: boolean } = {},
): Promise<string> {
  const folder = await openRun(exp.output, { experiment: exp, missingData: "assume" });
  const { plan, notes } = folder;
  const group = opts.shardGroup;
  const groupJobs = group ? jobsForGroup(plan, group.index, group.count).length : undefined;
  if (opts.json) {
    return JSON.stringify(
      {
        ...planJson(plan, notes),
        rowsAssumed: folder.rowsAssumed,
        runDir: folder.dir,
        ...(group ? { shardGroup: { ...group, jobs: groupJobs } } : {}),
      },
      null,
      2,
    );
  }
  const groupNote = group
    ? [
      `--shard-group ${group.index}/${group.count} runs ${groupJobs} of the ${plan.jobs.length} jobs`,
    ]
    : [];
  return formatPlan(plan, [...notes, ...groupNote, ...missingFilesNote(exp)]);
}

/** A note on the checkpoint files scoring would need that are not there (the plan needs none). */
function missingFilesNote(exp: Experiment): string[] {
  const files = namedFiles(exp).filter((f) => f.what.startsWith("checkpoint"));
  const missing = files.filter((f) => unreadable(f.path, f.checkpoint) !== undefined);
  if (missing.length === 0) return [];
  return [
    `${missing.length} of ${files.length} checkpoint files cannot be read (first: ` +
    `${missing[0].path}, ${missing[0].field} at ${missing[0].at}); scoring needs them`,
  ];
}
