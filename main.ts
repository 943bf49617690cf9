/**
 * Command line of the memorization forecasting harness.
 *
 * ```sh
 * deno task experiment [FILE] [--dry-run] [--output DIR] [--shard-group I/N] [--no-report]
 * deno task experiment FILE --slurm [--slurm-dry-run] [--slurm-tasks N] [-- SBATCH_OPTIONS]
 * deno task report [RUN_DIR | FILE] [--partial]
 * deno task forecast CALIBRATION_RUN RUN [--predictor MODEL@STEP] [--signal S] [--budget F]
 *   [--output DIR]
 * ```
 *
 * Exit status: 0 success, 2 bad input (a {@link UserError}: its message, no
 * stack trace), 1 failure while running (message, and the stack for
 * unexpected errors).
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadExperiment } from "./engine/config/config.ts";
import { isUserError, UserError } from "./engine/errors.ts";
import { formatPlan, makePlan } from "./engine/run/plan.ts";
import { seenLimit, selectRows } from "./engine/data/rows.ts";
import type { Experiment } from "./engine/types.ts";

/** The experiment run when no file is given (the embedded nano suite). */
export const DEFAULT_EXPERIMENT = fileURLToPath(
  new URL("./experiments/nano.yaml", import.meta.url),
);

/** Usage text of `--help`. */
export const HELP = `memorization forecasting harness

usage:
  deno task experiment [FILE] [options]     score a suite, analyse, render the report
  deno task report [RUN_DIR | FILE]          re-render a run folder's report from its scores
  deno task export [RUN_DIR | FILE] [--format csv|parquet|dataset]
                                             per-row scores per checkpoint, streamed: csv
                                             (index,accuracy), parquet (every column), dataset
                                             (Hive: exports/dataset/model=…/step=…/part-N.parquet)
  deno task import DIR... [options]          scores produced elsewhere (Hugging Face
                                             pythia-memorized-evals, reference CSVs, exports)
                                             become a run folder, analysed and reported
  deno task forecast CALIBRATION_RUN RUN [options]
                                             flag the rows RUN's cheap runs predict its future
                                             target will memorize, as calibrated on a run with
                                             a trained target (flagged.parquet/csv, forecast.json)

experiment options:
  --dry-run            print the plan (jobs, rows, scoring and training FLOPs, resume
                       state) without loading a model; works without the data file
  --output DIR         run folder (default: the file's output:, else runs/<name>)
  --shard-group I/N    run only shard group I of N (0-based), e.g. on a cluster node
  --no-report          score only; render later with \`deno task report\`
  --slurm              submit shard groups as a Slurm job array plus a report job;
                       arguments after -- go to sbatch
  --slurm-dry-run      write the Slurm scripts without submitting
  --slurm-tasks N      number of array tasks (default 8)
  -h, --help           this text

import options:
  --experiment FILE    the suite (default: experiments/pythia-<suite>.yaml from the
                       Hugging Face split names)
  --rows A:B           restrict every run to rows [A, B) (the paper's heatmaps: 0:23552000);
                       default: the rows each run has seen, [0, step × sequences_per_step)
  --output RUN         run folder (default runs/<experiment name>-import)
  --tokenizer FILE     tokenizer.json to decode the example rows (default: token ids)
  --pattern REGEX      custom layout: a regular expression over each file's path with
                       named groups (?<model>…) and (?<step>…)

report options:
  --partial            render even when shards are missing (default: list them, exit 2)

forecast options:
  --predictor MODEL@STEP  use this run (scored in both runs); default: the best held-out choice
  --signal S           binary, score, prefix or nll
  --budget F           only predictors costing at most F of the calibration target's compute
  --output DIR         where the files go (default RUN/forecast)

FILE defaults to experiments/nano.yaml (the embedded nano suite).

examples:
  deno task experiment                                  # the nano suite, end to end
  deno task experiment experiments/pythia-deduped.yaml --dry-run
  deno task experiment my.yaml --shard-group 3/8 --no-report
  deno task experiment my.yaml --slurm -- --partition=gpu --time=12:00:00
  deno task report runs/nano

exit status: 0 success, 2 bad input (file:line:column of the problem), 1 failure.`;

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  try {
    const [command, ...rest] = args;
    if (command === undefined || command === "-h" || command === "--help" || command === "help") {
      console.log(HELP);
      return 0;
    }
    if (command === "experiment") return await experiment(rest);
    if (command === "report") return await report(rest);
    if (command === "export") return await exportCommand(rest);
    if (command === "import") return await importCommand(rest);
    if (command === "forecast") return await forecastCommand(rest);
    throw new UserError(
      `unknown command "${command}": expected experiment, report, export, import or forecast ` +
        "(see --help)",
    );
  } catch (e) {
    if (isUserError(e)) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    const err = e as Error;
    console.error(`failed: ${err?.message ?? String(e)}`);
    if (err?.stack) console.error(err.stack);
    return 1;
  }
}

function parse(
  args: string[],
  options: NonNullable<Parameters<typeof parseArgs>[0]>["options"],
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    throw new UserError(`${(e as Error).message.split("\n")[0]} (see --help)`);
  }
}

async function experiment(args: string[]): Promise<number> {
  const { parseShardGroup } = await import("./engine/cluster/cluster.ts");
  const { splitSlurmArgs } = await import("./engine/cluster/slurm.ts");
  const { harness, slurm } = splitSlurmArgs(args);
  const { values, positionals } = parse(harness, {
    "dry-run": { type: "boolean" },
    "shard-group": { type: "string" },
    "output": { type: "string" },
    "no-report": { type: "boolean" },
    "help": { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UserError(
      `expected one experiment file, got ${positionals.length}: ${positionals.join(" ")} ` +
        `(options go after the file; sbatch options after --slurm --)`,
    );
  }
  const file = positionals[0] ?? DEFAULT_EXPERIMENT;
  const output = values.output as string | undefined;
  const exp = await loadExperiment(file, output !== undefined ? { output } : {});
  const shardGroup = values["shard-group"] !== undefined
    ? parseShardGroup(values["shard-group"] as string)
    : undefined;
  if (slurm) {
    const { submitSlurm } = await import("./engine/cluster/slurm.ts");
    const done = await submitSlurm(exp, {
      dryRun: slurm.dryRun,
      sbatchArgs: slurm.sbatchArgs,
      ...(slurm.tasks !== undefined ? { tasks: slurm.tasks } : {}),
    });
    console.log(done.message);
    return 0;
  }
  if (values["dry-run"]) {
    console.log(await dryRun(exp, shardGroup));
    return 0;
  }
  const { runExperiment } = await import("./engine/run/run.ts");
  const outcome = await runExperiment(exp, {
    dryRun: false,
    ...(shardGroup ? { shardGroup } : {}),
    noReport: values["no-report"] === true,
  });
  if (outcome.interrupted) return 130;
  console.log(
    `scored ${outcome.scored} jobs, ${outcome.skipped} already done` +
      (outcome.report ? `; report: ${outcome.report}` : ""),
  );
  return 0;
}

/** The `--dry-run` text: the plan, even when the data file is absent. */
export async function dryRun(
  exp: Experiment,
  shardGroup?: { index: number; count: number },
): Promise<string> {
  const notes: string[] = [];
  let totalRows: number;
  const dataFile = exp.data.format === "megatron"
    ? exp.data.path.replace(/\.(bin|idx)$/, "") + ".idx"
    : exp.data.path;
  if (!existsSync(dataFile)) {
    totalRows = seenLimit(exp, Number.MAX_SAFE_INTEGER);
    notes.push(
      `data file ${dataFile} is missing: assuming ${totalRows} rows (the rows the ` +
        `checkpoints have seen, max step × sequences_per_step); scoring needs the file`,
    );
  } else {
    const { openTokenReader } = await import("./engine/data/datasets.ts");
    const reader = await openTokenReader(exp.data);
    totalRows = reader.rows;
    await reader.close();
  }
  const selection = selectRows(exp, totalRows);
  let plan = makePlan(exp, totalRows, { selection });
  if (existsSync(exp.output) && statSync(exp.output).isDirectory()) {
    try {
      const { missingShards } = await import("./engine/store/store.ts");
      const missing = new Set((await missingShards(exp.output, plan)).map((j) => j.id));
      const done = new Set(plan.jobs.filter((j) => !missing.has(j.id)).map((j) => j.id));
      plan = makePlan(exp, totalRows, { selection, done });
    } catch (e) {
      notes.push(`could not read the resume state in ${exp.output}: ${(e as Error).message}`);
    }
  } else notes.push(`run folder ${exp.output} does not exist yet`);
  if (shardGroup) {
    const { jobsForGroup } = await import("./engine/cluster/cluster.ts");
    const group = jobsForGroup(plan, shardGroup.index, shardGroup.count);
    notes.push(
      `--shard-group ${shardGroup.index}/${shardGroup.count} runs ${group.length} of the ` +
        `${plan.jobs.length} jobs`,
    );
  }
  return formatPlan(plan, notes);
}

/** Resolves a run folder from a folder or an experiment file argument. */
async function runDirOf(target: string): Promise<string> {
  if (!existsSync(target)) {
    throw new UserError(
      `${target}: no such run folder or experiment file (run \`deno task experiment\` first)`,
    );
  }
  return statSync(target).isFile() ? (await loadExperiment(target)).output : target;
}

async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    "help": { type: "boolean", short: "h" },
    "format": { type: "string" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UserError(`expected one run folder or experiment file, got ${positionals.length}`);
  }
  const format = values.format ?? "csv";
  if (format !== "csv" && format !== "parquet" && format !== "dataset") {
    throw new UserError(`--format ${format}: expected csv, parquet or dataset`);
  }
  const runDir = await runDirOf(positionals[0] ?? DEFAULT_EXPERIMENT);
  const { exportScores } = await import("./engine/store/export.ts");
  const written = await exportScores(runDir, format, { log: (line) => console.error(line) });
  if (written.length === 0) throw new UserError(`${runDir}: no stored scores to export`);
  for (const path of written) console.log(path);
  return 0;
}

async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    "help": { type: "boolean", short: "h" },
    "experiment": { type: "string" },
    "rows": { type: "string" },
    "output": { type: "string" },
    "tokenizer": { type: "string" },
    "pattern": { type: "string" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length === 0) {
    throw new UserError(
      "import: give the folders (or files) to import, e.g. pythia-memorized-evals/",
    );
  }
  const { importAndReport, parseRows, defaultExperimentFile } = await import(
    "./reports/page/import_run.ts"
  );
  const rows = values.rows !== undefined ? parseRows(values.rows as string) : undefined;
  const file = (values.experiment as string | undefined) ??
    await defaultExperimentFile(
      positionals,
      fileURLToPath(new URL("./experiments", import.meta.url)),
    );
  if (!file) {
    throw new UserError(
      "import: no Hugging Face split names under the inputs to choose the suite from; " +
        "give --experiment FILE (e.g. experiments/pythia-deduped.yaml)",
    );
  }
  const exp = await loadExperiment(file);
  const output = (values.output as string | undefined) ?? `runs/${exp.name}-import`;
  const command = "deno task import " +
    args.map((w) => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`).join(" ");
  const out = await importAndReport({
    inputs: positionals,
    experiment: exp,
    output,
    ...(rows ? { rows } : {}),
    ...(values.pattern !== undefined ? { pattern: values.pattern as string } : {}),
    ...(values.tokenizer !== undefined ? { tokenizer: values.tokenizer as string } : {}),
    command,
  });
  console.log(`report: ${out.html}\nsummary: ${out.summary}\npredictors: ${out.csv}`);
  return 0;
}

async function forecastCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    "help": { type: "boolean", short: "h" },
    "predictor": { type: "string" },
    "signal": { type: "string" },
    "budget": { type: "string" },
    "output": { type: "string" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UserError(
      `expected CALIBRATION_RUN RUN (two run folders or experiment files), got ${positionals.length}`,
    );
  }
  const { parseForecastOptions } = await import("./reports/analysis/forecast.ts");
  const opts = parseForecastOptions(values as Record<string, string | undefined>);
  const [cal, run] = [await runDirOf(positionals[0]), await runDirOf(positionals[1])];
  const { runForecast } = await import("./reports/page/forecast.ts");
  const out = await runForecast(cal, run, {
    ...opts,
    ...(values.output !== undefined ? { output: values.output as string } : {}),
  });
  for (const f of out.files) console.log(f);
  return 0;
}

async function report(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    "help": { type: "boolean", short: "h" },
    "partial": { type: "boolean" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length > 1) {
    throw new UserError(`expected one run folder or experiment file, got ${positionals.length}`);
  }
  const runDir = await runDirOf(positionals[0] ?? DEFAULT_EXPERIMENT);
  if (!values.partial) {
    // A cluster run is reported once every shard is in; otherwise list the missing ones.
    const { assertComplete } = await import("./engine/cluster/cluster.ts");
    await assertComplete(runDir);
  }
  const { renderReport } = await import("./reports/page/render.ts");
  const out = await renderReport(runDir);
  console.log(`report: ${out.html}\nsummary: ${out.summary}\npredictors: ${out.csv}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
