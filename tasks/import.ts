/**
 * `deno task import`, composed: import the files into a run folder
 * (engine/import/import.ts), snapshot the experiment, read the example rows'
 * tokens, analyse and render the report, as `deno task experiment` does after
 * scoring. `deno task report RUN` re-renders it from the run folder alone.
 *
 * @module
 */
import { resolve } from "node:path";
import { join } from "node:path";
import { type ImportOptions, importRuns } from "../engine/import/import.ts";
import { writeJson } from "../engine/store/store.ts";
import { UserError } from "../engine/errors.ts";
import { fsProblem, isNotFound } from "../engine/os/fs_errors.ts";
import type { Experiment } from "../engine/types.ts";
import { attachExamples } from "./imported_input.ts";
import { type RenderedReport, renderReport } from "./report.ts";
import { walk } from "../engine/import/layout.ts";
import { stat } from "node:fs/promises";

/** Options of {@link importAndReport}: those of the import, and a tokenizer for the examples. */
export interface ImportRunOptions extends ImportOptions {
  /** A tokenizer.json to decode the example rows. */
  tokenizer?: string;
}

/** Imports, snapshots the experiment and renders the report; returns the report's files. */
export async function importAndReport(opts: ImportRunOptions): Promise<RenderedReport> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const exp: Experiment = {
    ...opts.experiment,
    output: resolve(opts.output),
    suite: {
      ...opts.experiment.suite,
      ...(opts.tokenizer ? { tokenizer: resolve(opts.tokenizer) } : {}),
    },
    ...(opts.rows ? { rows: { kind: "range" as const, ...opts.rows } } : {}),
  };
  if (opts.tokenizer) {
    try {
      await stat(opts.tokenizer);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw new UserError(`--tokenizer ${opts.tokenizer}: no such file (a tokenizer.json)`);
    }
  }
  await importRuns({
    inputs: opts.inputs,
    experiment: exp,
    output: exp.output,
    ...(opts.rows ? { rows: opts.rows } : {}),
    ...(opts.pattern !== undefined ? { pattern: opts.pattern } : {}),
    ...(opts.suite !== undefined ? { suite: opts.suite } : {}),
    command: opts.command,
    log,
  });
  await writeJson(join(exp.output, "experiment.json"), exp);
  await attachExamples(exp.output, exp, log);
  return await renderReport(exp.output, { log, run: { experiment: exp } });
}

/** `A:B` → `[A, B)`, or a UserError. */
export function parseRows(text: string): { start: number; end: number } {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[1]) >= Number(m[2])) {
    throw new UserError(`--rows ${text}: expected A:B with integers A < B, e.g. 0:23552000`);
  }
  return { start: Number(m[1]), end: Number(m[2]) };
}

/**
 * The experiment file an import uses when none is given: the Pythia suite
 * (experiments/pythia-<suite>.yaml) named by the Hugging Face split folders
 * or file names under the inputs; null when they name none.
 */
export async function defaultExperimentFile(
  inputs: readonly string[],
  experimentsDir: string,
): Promise<string | null> {
  for (const input of inputs) {
    let paths: string[];
    try {
      paths = (await stat(input)).isDirectory() ? await walk(input) : [input];
    } catch (e) {
      throw fsProblem(input, e, "input");
    }
    for (const p of paths) {
      const m = /(?:^|[/-])(duped|deduped)\.[0-9.]+[mb](?:[./-]|$)/.exec(p);
      if (m) return join(experimentsDir, `pythia-${m[1]}.yaml`);
    }
  }
  return null;
}
