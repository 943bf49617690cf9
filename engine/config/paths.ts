/**
 * Checks that every file an experiment names (data, checkpoints, tokenizer,
 * duplicate counts) exists and can be read, before scoring starts, and reports
 * all that cannot at once, each at the `file:line:column` of the field that
 * names it ({@link Experiment.locations}). `--dry-run` skips this: it plans
 * without the files.
 *
 * @module
 */
import { closeSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { megatronPaths } from "../data/datasets.ts";
import { UserError } from "../errors.ts";
import type { Experiment } from "../types.ts";

/** One file named by an experiment: where it is named and what it is. */
export interface NamedFile {
  /** Absolute path. */
  path: string;
  /** The field that names it, e.g. `suite.models[0].path` (for step 143). */
  field: string;
  /** `file:line:column` of the field, or the experiment file's path when unknown. */
  at: string;
  /** What the file is, for the message: "checkpoint nano-s1 step 23". */
  what: string;
  /** A checkpoint: may be a Hugging Face model folder (one holding `config.json`). */
  checkpoint?: boolean;
}

/** Every input file the experiment names, in file order. */
export function namedFiles(exp: Experiment): NamedFile[] {
  const at = (field: string) => exp.locations?.[field] ?? exp.file;
  const out: NamedFile[] = [];
  const dataFields = exp.data.format === "megatron"
    ? Object.values(megatronPaths(exp.data.path)).reverse()
    : [exp.data.path];
  for (const path of dataFields) {
    out.push({ path, field: "data.path", at: at("data.path"), what: `${exp.data.format} data` });
  }
  if (exp.data.duplicates) {
    out.push({
      path: exp.data.duplicates,
      field: "data.duplicates",
      at: at("data.duplicates"),
      what: "duplicate counts",
    });
  }
  if (exp.suite.tokenizer) {
    out.push({
      path: exp.suite.tokenizer,
      field: "suite.tokenizer",
      at: at("suite.tokenizer"),
      what: "tokenizer",
    });
  }
  exp.suite.models.forEach((m, i) => {
    for (const c of m.checkpoints) {
      const key = `suite.models[${i}].checkpoints.${c.step}`;
      const field = exp.locations?.[key] ? key : `suite.models[${i}].path`;
      out.push({
        path: c.path,
        field,
        at: at(field),
        what: `checkpoint ${m.name} step ${c.step}`,
        checkpoint: true,
      });
    }
  });
  return out;
}

/**
 * Why a file cannot be read, or undefined when it can; with `modelFolder`, a
 * folder whose `config.json` can be read (a Hugging Face model folder) is one.
 */
export function unreadable(path: string, modelFolder = false): string | undefined {
  try {
    if (statSync(path).isDirectory()) {
      if (!modelFolder) return "it is a folder, not a file";
      const config = join(path, "config.json");
      if (unreadable(config) === undefined) return undefined;
      return "it is a folder without a readable config.json: neither an ONNX file nor a " +
        "Hugging Face model folder";
    }
    closeSync(openSync(path, "r"));
    return undefined;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return "it does not exist";
    if (code === "EACCES" || code === "EPERM") return "permission denied (it cannot be read)";
    return `it cannot be read (${(e as Error).message})`;
  }
}

/**
 * Throws one {@link UserError} listing every input file of `exp` that does not
 * exist or cannot be read, each at the line of the field that names it.
 */
export function checkInputFiles(exp: Experiment): void {
  const found: { at: string; text: string }[] = [];
  const seen = new Set<string>();
  for (const f of namedFiles(exp)) {
    if (seen.has(f.path)) continue;
    seen.add(f.path);
    const why = unreadable(f.path, f.checkpoint);
    if (why) found.push({ at: f.at, text: `${f.at}: ${f.field}: the ${f.what} ${f.path}: ${why}` });
  }
  // In file order (a stable sort keeps a template's checkpoints in step order).
  const line = (at: string) => (/:(\d+):(\d+)$/.exec(at)?.slice(1).map(Number) ?? [0, 0]);
  found.sort((a, b) => line(a.at)[0] - line(b.at)[0] || line(a.at)[1] - line(b.at)[1]);
  const problems = found.map((f) => f.text);
  if (problems.length === 0) return;
  const shown = problems.slice(0, 20);
  if (problems.length > shown.length) {
    shown.push(`… and ${problems.length - shown.length} more files that cannot be read`);
  }
  throw new UserError(
    `${shown.join("\n")}\nGive paths to existing, readable files (relative paths resolve ` +
      `against the experiment file's folder); --dry-run plans without them.`,
  );
}
