/**
 * What every subcommand of main.ts is made of: a {@link Command} (its help
 * text and its run function), the {@link Context} main.ts hands it, and the
 * argument helpers the commands share. To add a subcommand, write a module in
 * cli/ exporting a Command and add it to the table in main.ts.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadExperiment } from "../engine/config/config.ts";
import { UserError } from "../engine/errors.ts";
import type { StopRequest } from "../engine/os/stop_signals.ts";
import { claimRunFolder } from "../engine/os/lock.ts";

/** The experiment run when no file is given (the embedded nano suite). */
export const DEFAULT_EXPERIMENT: string = fileURLToPath(
  new URL("../experiments/nano.yaml", import.meta.url),
);

/** What main.ts gives a running command. */
export interface Context {
  /**
   * A signal that aborts on the first stop request (SIGINT, SIGTERM, SIGHUP,
   * the end of the `deno task` parent) with the {@link StopRequest} as its
   * reason. A command that never asks for it is stopped by exiting at once.
   */
  stopSignal(): AbortSignal;
  /** The stop request that aborted the signal, if any (its `exitCode` is the command's). */
  stopped(): StopRequest | null;
}

/** The `--wait` option of the commands that write a run folder. */
export const WAIT_OPTION = { "wait": { type: "boolean" } } as const;

/**
 * Runs `fn` holding the run folder's exclusive lock (engine/os/lock.ts):
 * refuses naming the holder when another process writes the folder, or with
 * `wait` waits for it. Leftover temporary files of killed runs are removed.
 * `folder`: `existing` (default) for a command that reads a run folder (one
 * that is not a run folder is refused before anything is written into it),
 * `output` for one that makes it (a new, empty or run folder; a folder of the
 * user's own is refused).
 */
export async function withRunFolder<T>(
  dir: string,
  purpose: string,
  wait: boolean,
  fn: () => Promise<T>,
  folder: "output" | "existing" = "existing",
): Promise<T> {
  const lock = await claimRunFolder(dir, { purpose, wait, folder, log: (l) => console.error(l) });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** One subcommand of the command line. */
export interface Command {
  /** One line for the global `--help`: `usage  what it does`. */
  synopsis: string;
  /** The text of `deno task <command> --help`: its `options:` list names every one of {@link options}. */
  help: string;
  /** Every option the command takes (besides `-h, --help`), as node:util `parseArgs` declares them. */
  options: Options;
  /** Runs the command with its arguments (after the command name); returns the exit status. */
  run(args: string[], ctx: Context): Promise<number>;
}

/** Option declarations of node:util `parseArgs`. */
export type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

/** Parses a command's arguments strictly; a bad option is a UserError pointing to `--help`. */
export function parse(
  args: string[],
  options: Options,
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

/** The one positional argument (or `fallback`); more than one is a UserError. */
export function onePositional(positionals: string[], what: string, fallback: string): string {
  if (positionals.length > 1) {
    throw new UserError(
      `expected one ${what}, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  return positionals[0] ?? fallback;
}

/**
 * The run folder of the one positional argument, a run folder or an
 * experiment file (default: the embedded nano suite's).
 */
export async function runFolderArgument(positionals: string[]): Promise<string> {
  return await runDirOf(
    onePositional(positionals, "run folder or experiment file", DEFAULT_EXPERIMENT),
  );
}

/** Resolves a run folder from a folder or an experiment file argument. */
export async function runDirOf(target: string): Promise<string> {
  if (!existsSync(target)) {
    throw new UserError(
      `${target}: no such run folder or experiment file (run \`deno task experiment\` first)`,
    );
  }
  return statSync(target).isFile() ? (await loadExperiment(target)).output : target;
}
