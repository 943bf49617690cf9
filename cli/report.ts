/**
 * `deno task report`: re-renders a run folder's report from its stored
 * scores, once every shard is in (or what is there, with `--partial`).
 *
 * @module
 */
import { assertComplete } from "../engine/cluster/cluster.ts";
import { type Command, parse, runFolderArgument, WAIT_OPTION, withRunFolder } from "./command.ts";

const OPTIONS = { "partial": { type: "boolean" }, ...WAIT_OPTION } as const;

/** The `report` subcommand. */
export const reportCommand: Command = {
  synopsis:
    "deno task report [RUN_DIR | FILE]          re-render a run folder's report from its scores",
  help: `deno task report [RUN_DIR | FILE] [--partial]

Renders report.html, summary.json and predictors.csv of a run folder from its
stored scores, without scoring. A FILE (experiment YAML) means its run folder.

options:
  --partial            render even when shards are missing (default: list them, exit 2)
  --wait               when another process writes the run folder, wait for it
  -h, --help           this text

RUN_DIR | FILE defaults to experiments/nano.yaml's run folder.`,
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parse(args, OPTIONS);
    const runDir = await runFolderArgument(positionals);
    const out = await withRunFolder(runDir, "report", values.wait === true, async () => {
      // A cluster run is reported once every shard is in; otherwise list the missing ones.
      const run = values.partial ? undefined : await assertComplete(runDir);
      const { renderReport } = await import("../tasks/report.ts");
      return await renderReport(runDir, run ? { run } : {});
    });
    console.log(`report: ${out.html}\nsummary: ${out.summary}\npredictors: ${out.csv}`);
    return 0;
  },
};
