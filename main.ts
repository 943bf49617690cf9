/**
 * Command line of the memorization forecasting harness: a table of
 * subcommands (each a {@link Command} in cli/, with its own `--help`), the
 * exit status policy and stop requests (SIGINT, SIGTERM, SIGHUP, the end of
 * the `deno task` parent: engine/os/stop_signals.ts). The only module that exits
 * the process.
 *
 * ```sh
 * deno task experiment [FILE] [--dry-run [--json]] [--output DIR] [--shard-group I/N] [--no-report]
 * deno task experiment FILE --slurm [--slurm-dry-run] [--slurm-tasks N] [-- SBATCH_OPTIONS]
 * deno task report [RUN_DIR | FILE] [--partial]
 * deno task export [RUN_DIR | FILE] [--format csv|parquet|dataset]
 * deno task forecast CALIBRATION_RUN RUN [--predictor MODEL@STEP] [--signal S] [--budget F]
 *   [--output DIR]
 * deno task import DIR... [--experiment FILE] [--rows A:B] [--output RUN] [--pattern REGEX]
 * ```
 *
 * Exit status: 0 success, 2 bad input (a {@link UserError}: its message), 1
 * failure while running, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (129 also
 * for the end of the `deno task` parent). Errors are one paragraph; `--debug`
 * (anywhere before `--`) adds stack traces.
 *
 * @module
 */
import type { Command, Context } from "./cli/command.ts";
import { experimentCommand } from "./cli/experiment.ts";
import { exportCommand } from "./cli/export.ts";
import { forecastCommand } from "./cli/forecast.ts";
import { importCommand } from "./cli/import.ts";
import { reportCommand } from "./cli/report.ts";
import { isUserError, UserError } from "./engine/errors.ts";
import { type StopRequest, watchStops } from "./engine/os/stop_signals.ts";

export { DEFAULT_EXPERIMENT } from "./cli/command.ts";

/** The subcommands, in the order `--help` lists them. Add new ones here. */
export const COMMANDS: Record<string, Command> = {
  experiment: experimentCommand,
  report: reportCommand,
  export: exportCommand,
  import: importCommand,
  forecast: forecastCommand,
};

/** Usage text of `--help`. */
export const HELP = `memorization forecasting harness

usage:
${Object.values(COMMANDS).map((c) => `  ${c.synopsis}`).join("\n")}

\`deno task <command> --help\` shows a command's options.

examples:
  deno task experiment                                  # the nano suite, end to end
  deno task experiment experiments/pythia-deduped.yaml --dry-run
  deno task report runs/nano

--debug (any command): print stack traces with errors.

exit status: 0 success, 2 bad input (file:line:column of the problem), 1 failure,
130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (rerun the same command to resume).`;

/** True when the arguments before `--` ask for help. */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === "-h" || a === "--help");
}

/**
 * The context handed to a command. Stop requests (SIGINT, SIGTERM, SIGHUP,
 * the end of the `deno task` parent) are watched for every command: once the
 * command asked for the stop signal (scoring), the first request aborts it
 * and a second exits at once; otherwise the process exits at once (every file
 * is written atomically, so nothing partial is left; locks go on exit).
 */
function makeContext(): Context & { dispose(): void } {
  let controller: AbortController | null = null;
  const watch = watchStops({
    onStop: (stop) => {
      if (controller) return controller.abort(stop);
      console.error(
        `\nStopped by ${stop.reason}; every file is written whole, nothing partial is left.`,
      );
      Deno.exit(stop.exitCode);
    },
    onSecond: (stop) => {
      console.error(
        "\nStopped again: exiting now; shards in flight are lost, finished ones are kept.",
      );
      Deno.exit(stop.exitCode);
    },
    onIgnored: (signal) => console.error(`${signal} ignored (this run was started under nohup).`),
  });
  return {
    stopSignal() {
      controller ??= new AbortController();
      return controller.signal;
    },
    stopped() {
      return controller?.signal.aborted ? controller.signal.reason as StopRequest : null;
    },
    dispose() {
      watch.dispose();
    },
  };
}

/** Runs the command line; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  // Arguments after `--` are sbatch's.
  const sep = argv.indexOf("--");
  const own = sep < 0 ? argv : argv.slice(0, sep);
  const debug = own.includes("--debug");
  const args = [...own.filter((a) => a !== "--debug"), ...(sep < 0 ? [] : argv.slice(sep))];
  const ctx = makeContext();
  try {
    const [name, ...rest] = args;
    if (name === undefined || name === "-h" || name === "--help") {
      console.log(HELP);
      return 0;
    }
    if (name === "help") {
      console.log(rest[0] && COMMANDS[rest[0]] ? COMMANDS[rest[0]].help : HELP);
      return 0;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) {
      throw new UserError(
        `unknown command "${name}": expected ${Object.keys(COMMANDS).join(", ")} (see --help)`,
      );
    }
    if (wantsHelp(rest)) {
      console.log(command.help);
      return 0;
    }
    return await command.run(rest, ctx);
  } catch (e) {
    return reportError(e, debug);
  } finally {
    ctx.dispose();
  }
}

/**
 * Prints an error as one paragraph (its stack trace and its causes' only with
 * `--debug`) and returns the exit status: 2 for what the user can fix, 1 for a
 * failure while running.
 */
export function reportError(e: unknown, debug: boolean): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const stacks = () => {
    for (let x: unknown = err; x instanceof Error; x = x.cause) console.error(x.stack);
  };
  if (isUserError(e)) {
    console.error(`error: ${err.message}`);
    if (debug) stacks();
    return 2;
  }
  if (err instanceof Deno.errors.NotCapable) {
    // Deno's "run again with --allow-…" is wrong advice for a fixed permission set.
    const what = err.message.replace(/,? run again with the --allow-\S+ flag\.?$/, "");
    console.error(
      `error: ${what}: outside what the "run" permission set in deno.json allows ` +
        "(it may write only under ./runs and /tmp).",
    );
    if (debug) stacks();
    return 2;
  }
  console.error(`failed: ${err.message}${debug ? "" : " (--debug shows where)"}`);
  if (debug) stacks();
  return 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
