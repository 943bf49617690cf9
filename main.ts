/**
 * Command line of the memorization forecasting harness: a table of
 * subcommands (each a {@link Command} in cli/, with its own `--help`), the
 * exit status policy and Ctrl-C. The only module that exits the process.
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
 * Exit status: 0 success, 2 bad input (a {@link UserError}: its message, no
 * stack trace), 1 failure while running (message, and the stack for
 * unexpected errors), 130 stopped by Ctrl-C.
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

exit status: 0 success, 2 bad input (file:line:column of the problem), 1 failure,
130 stopped by Ctrl-C (rerun the same command to resume).`;

/** True when the arguments before `--` ask for help. */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === "-h" || a === "--help");
}

/**
 * The context handed to a command: Ctrl-C is watched only once the command
 * asks for the stop signal; the first aborts it, a second exits at once.
 */
function makeContext(): Context & { dispose(): void } {
  let controller: AbortController | null = null;
  const onSigint = () => {
    if (controller!.signal.aborted) {
      console.error(
        "\nInterrupted twice: exiting now; shards in flight are lost, finished ones are kept.",
      );
      Deno.exit(130);
    }
    controller!.abort("Ctrl-C again to quit at once");
  };
  return {
    stopSignal() {
      if (!controller) {
        controller = new AbortController();
        Deno.addSignalListener("SIGINT", onSigint);
      }
      return controller.signal;
    },
    dispose() {
      if (controller) Deno.removeSignalListener("SIGINT", onSigint);
    },
  };
}

/** Runs the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
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
    if (isUserError(e)) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    const err = e as Error;
    console.error(`failed: ${err?.message ?? String(e)}`);
    if (err?.stack) console.error(err.stack);
    return 1;
  } finally {
    ctx.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
