/**
 * `deno task export`: writes a run folder's per-row scores, one file per
 * checkpoint (CSV `index,accuracy` as the reference files, or Parquet).
 *
 * @module
 */
import { UserError } from "../engine/errors.ts";
import { type Command, parse, runFolderArgument, WAIT_OPTION, withRunFolder } from "./command.ts";

const OPTIONS = { "format": { type: "string" }, ...WAIT_OPTION } as const;

/** The `export` subcommand. */
export const exportCommand: Command = {
  synopsis: "deno task export [RUN_DIR | FILE] [--format csv|parquet|dataset]\n" +
    "                                             per-row scores per checkpoint, streamed: csv\n" +
    "                                             (index,accuracy), parquet (every column), dataset\n" +
    "                                             (Hive: exports/dataset/model=…/step=…/part-N.parquet)",
  help: `deno task export [RUN_DIR | FILE] [--format csv|parquet|dataset]

Writes the stored per-row scores of a run folder, streamed shard by shard, one
file per checkpoint, and prints their paths. csv: index,accuracy (accuracy =
matches / continuation, the reference files' format); parquet: index,
accuracy, matches, prefix, nll; dataset: a Hive-partitioned Parquet dataset
(exports/dataset/model=…/step=…/part-N.parquet).

options:
  --format csv|parquet|dataset (default csv)
  --wait               when another process writes the run folder, wait for it
  -h, --help           this text`,
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parse(args, OPTIONS);
    const format = values.format ?? "csv";
    if (format !== "csv" && format !== "parquet" && format !== "dataset") {
      throw new UserError(`--format ${format}: expected csv, parquet or dataset`);
    }
    const runDir = await runFolderArgument(positionals);
    const { exportScores } = await import("../tasks/export.ts");
    // The folder's lock: a scoring run must not move shards aside while they are read.
    const written = await withRunFolder(
      runDir,
      "export",
      values.wait === true,
      () => exportScores(runDir, format, { log: (line) => console.error(line), progress: {} }),
    );
    if (written.length === 0) throw new UserError(`${runDir}: no stored scores to export`);
    for (const path of written) console.log(path);
    return 0;
  },
};
