/**
 * `deno task forecast`: a calibration run's held-out choice of predictor
 * applied to another run's cheap runs (tasks/forecast.ts).
 *
 * @module
 */
import { UserError } from "../engine/errors.ts";
import { type Command, parse, runDirOf, WAIT_OPTION, withRunFolder } from "./command.ts";

const OPTIONS = {
  "predictor": { type: "string" },
  "signal": { type: "string" },
  "budget": { type: "string" },
  "output": { type: "string" },
  "allow-mismatch": { type: "boolean" },
  ...WAIT_OPTION,
} as const;

/** The `forecast` subcommand. */
export const forecastCommand: Command = {
  synopsis: "deno task forecast CALIBRATION_RUN RUN [options]\n" +
    "                                             flag the rows RUN's cheap runs predict its future\n" +
    "                                             target will memorize, as calibrated on a run with\n" +
    "                                             a trained target (flagged.parquet/csv, forecast.json)",
  help: `deno task forecast CALIBRATION_RUN RUN [options]

Flags the rows that RUN's cheap runs predict its future target will memorize,
with the predictor, signal and thresholds chosen (cross-fitted) on
CALIBRATION_RUN, a run with a trained target. The candidates are each run's
signals and, when both run folders have row features (the features step of
deno task experiment), the data-only and combined logistic models; each row
is flagged by the rule (and model) of its fold. Writes flagged.parquet,
flagged.csv, forecast.json and forecast.html. Both arguments are run folders
or experiment files.

options:
  --predictor MODEL@STEP  use this run's own signals (scored in both runs);
                       default: the best held-out choice
  --signal S           binary, score, prefix, nll, combined (row features and
                       cheap runs' signals) or data-only (row features alone)
  --budget F           only predictors costing at most F of the calibration target's compute
  --output DIR         where the files go (default RUN/forecast; a new, empty or
                       forecast folder: a folder of other files is refused)
  --allow-mismatch     forecast even when the two runs' predictor model (parameters) or
                       memorization settings differ (default: refused); the differences
                       are printed and shown in forecast.json and on the page
  --wait               when another process writes either run folder, wait for it
  -h, --help           this text`,
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parse(args, OPTIONS);
    if (positionals.length !== 2) {
      throw new UserError(
        `expected CALIBRATION_RUN RUN (two run folders or experiment files), got ${positionals.length}`,
      );
    }
    const { parseForecastOptions } = await import("../reports/analysis/forecast.ts");
    const opts = parseForecastOptions(values as Record<string, string | undefined>);
    const [cal, run] = [await runDirOf(positionals[0]), await runDirOf(positionals[1])];
    const { runForecast } = await import("../tasks/forecast.ts");
    const forecast = () =>
      runForecast(cal, run, {
        ...opts,
        ...(values.output !== undefined ? { output: values.output as string } : {}),
        ...(values["allow-mismatch"] === true ? { allowMismatch: true } : {}),
      });
    // Both folders' locks, in path order (two forecasts crossing with --wait cannot deadlock).
    const [first, second] = [...new Set([cal, run])].sort();
    const wait = values.wait === true;
    const out = await withRunFolder(
      first,
      "forecast",
      wait,
      () => second ? withRunFolder(second, "forecast", wait, forecast) : forecast(),
    );
    for (const f of out.files) console.log(f);
    return 0;
  },
};
