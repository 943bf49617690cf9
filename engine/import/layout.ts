/**
 * Which run each input file of `deno task import` belongs to, from its path:
 *
 * - Hugging Face `EleutherAI/pythia-memorized-evals`, both layouts:
 *   `<split>/0000.parquet` and `data/<split>-00000-of-00002-<hash>.parquet`,
 *   split `<suite>.<size>` (fully trained: step 143000) or
 *   `<suite>.<size>.<step>`; the size token (70m … 12b) names the model of
 *   the experiment whose name has that token, the suite (`duped`,
 *   `deduped`) must be the experiment's;
 * - the reference script's per-rank CSVs `memorization_<model>_<step>/rank-<r>.csv`;
 * - the project's own exports: `<model>/step<step>.csv|parquet` and the
 *   Hive-partitioned `model=<model>/step=<step>/part-<n>.parquet`;
 * - a custom pattern: a regular expression over the path (relative to the
 *   folder given, `/`-separated) with named groups `model` and `step`, tried
 *   before the layouts above (files it does not match may still match them).
 *
 * A file that matches a layout but whose model or step does not parse is a
 * {@link UserError} naming the file; files matching no layout are returned
 * as ignored (the caller says so).
 *
 * @module
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { excerpt, UserError } from "../errors.ts";
import { compilePattern, matchPaths, type PathMatch } from "./pattern.ts";
import { fsProblem } from "../os/fs_errors.ts";
import type { Experiment } from "../types.ts";

/** The final step of the Pythia suites (a split without a step). */
export const PYTHIA_FINAL_STEP = 143000;
/** The sizes of the Pythia suites, as split names spell them. */
export const PYTHIA_SIZES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"];

/** What a file holds: memorized row indices (HF), `index,accuracy` per row, or an export's columns. */
export type InputKind = "memorized" | "accuracy" | "export";

/** One input file and its run. */
export interface InputFile {
  /** The file. */
  path: string;
  /** Model name (of the experiment). */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** What the file holds. */
  kind: InputKind;
  /** Which layout matched (for the report). */
  layout: "hf-split-folder" | "hf-data" | "reference-csv" | "export" | "export-hive" | "pattern";
}

const SPLIT = /^(?<suite>duped|deduped)\.(?<size>[0-9.]+[mb])(?:\.(?<step>[^.]+))?$/;

/** The suite of an experiment: `deduped` when a model name has that token, else `duped`. */
export function experimentSuite(exp: Experiment): "duped" | "deduped" {
  return exp.suite.models.some((m) => tokens(m.name).includes("deduped")) ? "deduped" : "duped";
}

function tokens(name: string): string[] {
  return name.toLowerCase().split(/[-_\s/]+/);
}

/** The experiment model a name denotes: the exact name, else the one with its size token. */
export function modelFor(exp: Experiment, name: string, file: string): string {
  if (exp.suite.models.some((m) => m.name === name)) return name;
  const size = tokens(name).find((t) => PYTHIA_SIZES.includes(t)) ??
    (PYTHIA_SIZES.includes(name.toLowerCase()) ? name.toLowerCase() : undefined);
  const hits = size ? exp.suite.models.filter((m) => tokens(m.name).includes(size)) : [];
  if (hits.length === 1) return hits[0].name;
  throw new UserError(
    `${file}: model "${name}" is not in the experiment ${exp.file} ` +
      `(models: ${exp.suite.models.map((m) => m.name).join(", ")})`,
  );
}

function parseStep(text: string, file: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UserError(`${file}: step "${text}" is not an integer`);
  }
  return Number(text);
}

/** The run of a Hugging Face split name, or null when the name is not a split. */
export function splitRun(
  split: string,
  exp: Experiment,
  file: string,
): { model: string; step: number } | null {
  const m = SPLIT.exec(split);
  if (!m?.groups) return null;
  const { suite, size, step } = m.groups;
  const want = experimentSuite(exp);
  if (suite !== want) {
    throw new UserError(
      `${file}: split "${split}" is of the ${suite} suite but the experiment ${exp.file} is ` +
        `the ${want} suite; give --suite ${want} to import only the ${want}.* splits (a whole ` +
        `download holds both), or --experiment experiments/pythia-${suite}.yaml for the ` +
        `${suite} ones`,
    );
  }
  if (!PYTHIA_SIZES.includes(size)) {
    throw new UserError(
      `${file}: size "${size}" of split "${split}" is not one of ${PYTHIA_SIZES}`,
    );
  }
  return {
    model: modelFor(exp, size, file),
    step: step === undefined ? PYTHIA_FINAL_STEP : parseStep(step, file),
  };
}

/** The split a file name of the HF layouts names, or null. */
function hfSplit(rel: string): { split: string; layout: InputFile["layout"] } | null {
  const parts = rel.split("/");
  const name = parts[parts.length - 1];
  if (!name.endsWith(".parquet")) return null;
  const data = /^(?<split>.+?)-\d{5}-of-\d{5}(?:-[^/]*)?\.parquet$/.exec(name);
  if (data?.groups && SPLIT.test(data.groups.split)) {
    return { split: data.groups.split, layout: "hf-data" };
  }
  if (parts.length >= 2 && /^\d+\.parquet$/.test(name) && SPLIT.test(parts[parts.length - 2])) {
    return { split: parts[parts.length - 2], layout: "hf-split-folder" };
  }
  // A split-like name whose step is not an integer: say so rather than ignore the file.
  const folder = parts.length >= 2 ? parts[parts.length - 2] : "";
  if (/^(duped|deduped)\./.test(folder)) return { split: folder, layout: "hf-split-folder" };
  if (data?.groups && /^(duped|deduped)\./.test(data.groups.split)) {
    return { split: data.groups.split, layout: "hf-data" };
  }
  return null;
}

/** A percent-encoded folder name (an export's model segment), or a UserError naming the file. */
function decodeSegment(name: string, file: string): string {
  try {
    return decodeURIComponent(name);
  } catch (e) {
    if (!(e instanceof URIError)) throw e;
    throw new UserError(
      `${file}: the model name ${excerpt(name)} in its path has a bad percent escape (% must ` +
        "be followed by two hex digits, as exports write /, %, = and \\ in names)",
    );
  }
}

/**
 * Classifies one path (relative to its folder, `/`-separated). `pattern`:
 * the `--pattern` and its match of `rel` (engine/import/pattern.ts), tried
 * first.
 */
export function classify(
  rel: string,
  path: string,
  exp: Experiment,
  pattern?: { source: string; match: PathMatch },
): InputFile | null {
  const groups = pattern?.match;
  if (pattern && groups) {
    if (groups.model === undefined || groups.step === undefined) {
      throw new UserError(
        `--pattern ${excerpt(pattern.source)}: needs named groups (?<model>…) and (?<step>…)`,
      );
    }
    const kind: InputKind = path.endsWith(".parquet") ? "export" : "accuracy";
    return {
      path,
      model: modelFor(exp, groups.model, path),
      step: parseStep(groups.step, path),
      kind: hfSplit(rel) ? "memorized" : kind,
      layout: "pattern",
    };
  }
  const hf = hfSplit(rel);
  if (hf) {
    const run = splitRun(hf.split, exp, path);
    if (!run) throw new UserError(`${path}: split "${hf.split}" is not <suite>.<size>[.<step>]`);
    return { path, ...run, kind: "memorized", layout: hf.layout };
  }
  // Path layouts with `model` and `step` groups: the reference CSVs and this harness's exports.
  const layouts: [RegExp, InputKind, InputFile["layout"], (name: string) => string][] = [
    [
      /(?:^|\/)memorization_(?<model>.+)_(?<step>[^_/]+)\/rank-\d+\.csv$/,
      "accuracy",
      "reference-csv",
      (name) => name,
    ],
    [
      /(?:^|\/)model=(?<model>[^/]+)\/step=(?<step>[^/]+)\/part-\d+\.parquet$/,
      "export",
      "export-hive",
      (name) => decodeSegment(name, path),
    ],
    [
      /(?:^|\/)(?<model>[^/]+)\/step(?<step>[^/.]+)\.(?<ext>csv|parquet)$/,
      "export",
      "export",
      (name) => decodeSegment(name, path),
    ],
  ];
  for (const [re, kind, layout, name] of layouts) {
    const groups = re.exec(rel)?.groups;
    if (!groups) continue;
    return {
      path,
      model: modelFor(exp, name(groups.model), path),
      step: parseStep(groups.step, path),
      kind,
      layout,
    };
  }
  return null;
}

/**
 * Whether a symbolic link leads to a file (a link to a folder is not followed,
 * so a folder cannot contain itself); a dangling link or a loop of links is a
 * UserError naming it.
 */
async function linkedFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (e) {
    throw fsProblem(path, e, "symbolic link");
  }
}

/**
 * Every file under `dir` (recursively, sorted), as paths relative to it with
 * `/` separators; an unreadable folder, a dangling symbolic link or a loop of
 * links is a UserError naming it.
 */
export async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true }).catch((e) => {
      throw fsProblem(d, e, "folder");
    });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isFile() || (e.isSymbolicLink() && (await linkedFile(p)))) {
        out.push(relative(dir, p).split(sep).join("/"));
      }
    }
  };
  await visit(dir);
  return out;
}

/** The input files under the folders (or the files themselves), classified; and the ignored paths. */
export async function findInputs(
  dirs: readonly string[],
  exp: Experiment,
  pattern?: string,
  opts: { skipOtherSuite?: boolean } = {},
): Promise<{ files: InputFile[]; ignored: string[]; otherSuite: string[] }> {
  if (pattern !== undefined) compilePattern(pattern);
  const lists: string[][][] = [];
  for (const dir of dirs) {
    let info;
    try {
      info = await stat(dir);
    } catch (e) {
      throw fsProblem(dir, e, "input");
    }
    lists.push(
      info.isDirectory()
        ? (await walk(dir)).map((r) => [r, join(dir, r)])
        : [[dir.split(sep).join("/"), dir]],
    );
  }
  const all = lists.flat().filter(([rel]) => !/(^|\/)\./.test(rel)); // hidden: .gitattributes, .cache
  // The pattern runs in a worker under a time budget (engine/import/pattern.ts).
  const matches = pattern !== undefined ? await matchPaths(pattern, all.map(([rel]) => rel)) : null;
  const files: InputFile[] = [], ignored: string[] = [], otherSuite: string[] = [];
  const want = experimentSuite(exp);
  all.forEach(([rel, path], i) => {
    const match = matches?.[i] ?? null;
    const split = opts.skipOtherSuite && !match ? hfSplit(rel)?.split : undefined;
    if (split && SPLIT.exec(split)?.groups?.suite !== want) {
      otherSuite.push(path);
      return;
    }
    const f = classify(
      rel,
      path,
      exp,
      pattern !== undefined ? { source: pattern, match } : undefined,
    );
    if (f) files.push(f);
    else ignored.push(path);
  });
  return { files, ignored, otherSuite };
}
