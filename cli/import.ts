/**
 * `deno task import`: scores produced elsewhere (Hugging Face
 * pythia-memorized-evals, reference CSVs, this harness's exports) become a
 * run folder, analysed and reported (tasks/import.ts).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { UserError } from "../engine/errors.ts";
import { join, resolve } from "node:path";
import { type Command, parse, WAIT_OPTION, withRunFolder } from "./command.ts";
import { shellQuote } from "../engine/os/shell.ts";

const OPTIONS = {
  "experiment": { type: "string" },
  "rows": { type: "string" },
  "output": { type: "string" },
  "tokenizer": { type: "string" },
  "pattern": { type: "string" },
  "suite": { type: "string" },
  ...WAIT_OPTION,
} as const;

/** The `import` subcommand. */
export const importCommand: Command = {
  synopsis: "deno task import DIR... [options]          scores produced elsewhere (Hugging Face\n" +
    "                                             pythia-memorized-evals, reference CSVs, exports)\n" +
    "                                             become a run folder, analysed and reported",
  help: `deno task import DIR... [options]

Turns scores produced elsewhere (Hugging Face pythia-memorized-evals, the
reference per-rank CSVs, this harness's exports) into a run folder, analyses
them and renders its report.

options:
  --experiment FILE    the suite (default: experiments/pythia-<suite>.yaml from --suite
                       or the Hugging Face split names)
  --suite duped|deduped import only this Pythia suite's Hugging Face splits (a whole
                       download of pythia-memorized-evals holds both; without it a split
                       of the other suite is an error)
  --rows A:B           restrict every run to rows [A, B) (the paper's heatmaps: 0:23552000);
                       default: the rows each run has seen, [0, step × sequences_per_step)
  --output RUN         run folder (default runs/<experiment name>-import)
  --tokenizer FILE     tokenizer.json to decode the example rows (default: token ids)
  --pattern REGEX      custom layout: a regular expression over each file's path with
                       named groups (?<model>…) and (?<step>…)
  --wait               when another process writes the run folder, wait for it
  -h, --help           this text`,
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parse(args, OPTIONS);
    const suite = values.suite as string | undefined;
    if (suite !== undefined && suite !== "duped" && suite !== "deduped") {
      throw new UserError(`--suite ${suite}: expected duped or deduped`);
    }
    if (positionals.length === 0) {
      throw new UserError(
        "import: give the folders (or files) to import, e.g. pythia-memorized-evals/",
      );
    }
    const { importAndReport, parseRows, defaultExperimentFile } = await import(
      "../tasks/import.ts"
    );
    const rows = values.rows !== undefined ? parseRows(values.rows as string) : undefined;
    const experiments = fileURLToPath(new URL("../experiments", import.meta.url));
    const file = (values.experiment as string | undefined) ??
      (suite ? join(experiments, `pythia-${suite}.yaml`) : undefined) ??
      await defaultExperimentFile(positionals, experiments);
    if (!file) {
      throw new UserError(
        "import: no Hugging Face split names under the inputs to choose the suite from; " +
          "give --experiment FILE (e.g. experiments/pythia-deduped.yaml)",
      );
    }
    const exp = await loadExperiment(file);
    const output = (values.output as string | undefined) ?? `runs/${exp.name}-import`;
    const command = "deno task import " + args.map(shellQuote).join(" ");
    const out = await withRunFolder(
      resolve(output),
      "import",
      values.wait === true,
      () =>
        importAndReport({
          inputs: positionals,
          experiment: exp,
          output,
          ...(rows ? { rows } : {}),
          ...(values.pattern !== undefined ? { pattern: values.pattern as string } : {}),
          ...(suite !== undefined ? { suite: suite as "duped" | "deduped" } : {}),
          ...(values.tokenizer !== undefined ? { tokenizer: values.tokenizer as string } : {}),
          command,
        }),
      "output",
    );
    console.log(`report: ${out.html}\nsummary: ${out.summary}\npredictors: ${out.csv}`);
    return 0;
  },
};
