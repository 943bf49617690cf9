/**
 * The zod schema of experiment files (snake_case keys, as written in YAML),
 * the documentation of every field (what is valid, used in error messages and
 * to suggest the nearest key for a misspelt one), and the conversion of zod
 * issues into plain {@link Issue}s with a YAML path.
 *
 * @module
 */
import { z } from "zod";

/** A path into the YAML document: map keys and sequence indices. */
export type YamlPath = (string | number)[];

/** One problem found in an experiment file, before it is located in the text. */
export interface Issue {
  /** Where the problem is (the value, or the key when `atKey`). */
  path: YamlPath;
  /** What is wrong and what would be valid (without the location). */
  message: string;
  /** Point at the key of the last path segment rather than at its value. */
  atKey?: boolean;
}

/** Names of models and experiments: used as folder names. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Device strings: `cpu`, `cuda:N`, `webgpu:N`. */
export const DEVICE_RE = /^(cpu|cuda:\d+|webgpu:\d+)$/;

/** Analysis budgets used when the file gives none (fractions of the target's compute). */
export const DEFAULT_BUDGETS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1];
/** Default recalls whose compute the analysis reports. */
export const DEFAULT_RECALLS = [0.5, 0.8, 0.9, 0.95];

const posInt = z.int().min(1);
const natInt = z.int().min(0);
const text = z.string().min(1);

const modelSchema = z.strictObject({
  name: z.string().regex(NAME_RE),
  parameters: posInt,
  non_embedding_parameters: posInt.optional(),
  vocab_size: posInt.optional(),
  path: text.optional(),
  checkpoints: z.record(z.string(), text).optional(),
  steps: z.array(posInt).min(1).optional(),
  rows: z.enum(["seen", "all"]).optional(),
});

/** The schema of an experiment file (everything but `rows`, which {@link rowsSchema} checks). */
export const experimentSchema = z.strictObject({
  name: z.string().regex(NAME_RE).optional(),
  suite: z.strictObject({
    sequences_per_step: posInt.default(1024),
    tokens_per_sequence: posInt.default(2048),
    end_of_text_id: natInt.default(0),
    tokenizer: text.optional(),
    steps: z.array(posInt).min(1).optional(),
    models: z.array(modelSchema).min(1),
  }),
  data: z.strictObject({
    format: z.enum(["megatron", "raw", "npy"]),
    path: text,
    row_length: posInt.optional(),
    dtype: z.enum(["uint16", "int32", "int64", "uint32"]).optional(),
    duplicates: text.optional(),
  }),
  memorization: z.strictObject({
    offset: natInt.default(0),
    context: posInt.default(32),
    continuation: z.int().min(1).max(255).default(32),
    mode: z.enum(["extractable", "full"]).default("extractable"),
    suppressed_tokens: z.array(natInt).optional(),
  }).prefault({}),
  rows: z.unknown().optional(),
  target: z.union([z.literal("none"), z.strictObject({ model: text, step: posInt.optional() })])
    .optional(),
  devices: z.array(z.strictObject({
    device: z.string().regex(DEVICE_RE),
    workers: posInt.default(1),
    threads: posInt.optional(),
  })).min(1).optional(),
  batch_size: posInt.default(64),
  shard_size: posInt.default(65536),
  output: text.optional(),
  analysis: z.strictObject({
    min_precision: z.number().gt(0).max(1).default(0.9),
    budgets: z.array(z.number().gt(0).max(1)).min(1).default(DEFAULT_BUDGETS),
    bootstrap: natInt.default(200),
    seed: natInt.default(0),
    parameter_count: z.enum(["total", "non-embedding"]).default("total"),
    folds: posInt.max(100).default(5),
    recall_over: z.enum(["all", "covered"]).default("all"),
    recalls: z.array(z.number().gt(0).max(1)).min(1).default(DEFAULT_RECALLS),
  }).prefault({}),
});

/** The parsed (snake_case) experiment file. */
export type RawExperiment = z.infer<typeof experimentSchema>;

const rangeSchema = z.strictObject({ range: z.tuple([natInt, natInt]) });
const sampleSchema = z.strictObject({ sample: posInt, seed: natInt.default(0) });

/** The parsed `rows` field. */
export type RawRows = "seen" | "all" | { range: [number, number] } | {
  sample: number;
  seed: number;
};

/**
 * What is valid for every field, keyed by path pattern (`[]` for any index,
 * `{}` for any map key). The keys of an object are the patterns one segment
 * below it, so this table also drives the "did you mean" suggestions.
 */
export const FIELDS: Record<string, string> = {
  "": "a mapping with keys suite, data, memorization, rows, target, devices, batch_size, " +
    "shard_size, output, analysis and name",
  "name": "a name of letters, digits, '.', '_' and '-' (used for the run folder), e.g. nano",
  "suite": "a mapping with the models and how steps map to training rows",
  "suite.sequences_per_step": "a positive integer: rows consumed per optimizer step (Pythia 1024)",
  "suite.tokens_per_sequence": "a positive integer: tokens counted per row for compute " +
    "(Pythia 2048)",
  "suite.end_of_text_id": "a non-negative integer token id (Pythia 0)",
  "suite.tokenizer": "a path to a Hugging Face tokenizer.json (relative to the experiment file)",
  "suite.steps": "an ascending list of positive integer checkpoint steps, e.g. [23000, 143000]",
  "suite.steps[]": "a positive integer step",
  "suite.models": "a non-empty list of models, each {name, parameters, path or checkpoints}",
  "suite.models[]": "a mapping {name, parameters, path: 'dir/step{step}.onnx'} " +
    "(or checkpoints: {STEP: file.onnx})",
  "suite.models[].name": "a model name of letters, digits, '.', '_' and '-', e.g. pythia-70m",
  "suite.models[].parameters": "a positive integer: the total parameter count, e.g. 70426624",
  "suite.models[].non_embedding_parameters": "a positive integer parameter count without " +
    "embeddings, e.g. 18915328",
  "suite.models[].vocab_size": "a positive integer vocabulary size, e.g. 50304",
  "suite.models[].path": "an ONNX path template containing {step}, e.g. 70m/step{step}/model.onnx",
  "suite.models[].checkpoints": "a mapping from step to ONNX path, e.g. {23: a.onnx, 43: b.onnx}",
  "suite.models[].checkpoints{}": "an ONNX file path",
  "suite.models[].steps": "an ascending list of positive integer steps (overrides suite.steps)",
  "suite.models[].steps[]": "a positive integer step",
  "suite.models[].rows": "seen or all: which selected rows this model's checkpoints score " +
    "(all: also rows not trained on yet, a forecast; default: all under rows: all, else seen)",
  "data": "a mapping {format, path, row_length, dtype, duplicates}",
  "data.format": "one of megatron, raw, npy",
  "data.path": "the data file (megatron: the .bin/.idx pair or their prefix; raw: the .bin; " +
    "npy: the .npy), relative to the experiment file",
  "data.row_length": "a positive integer: tokens per row (Pythia 2049)",
  "data.dtype": "one of uint16, int32, int64, uint32 (raw format only)",
  "data.duplicates": "a path to per-row duplicate counts (.npy of integers, or CSV row,count)",
  "memorization": "a mapping {offset, context, continuation, mode, suppressed_tokens}",
  "memorization.offset": "a non-negative integer: first context token within a row (paper 0)",
  "memorization.context": "a positive integer context length k (paper 32)",
  "memorization.continuation": "an integer continuation length l from 1 to 255 (paper 32)",
  "memorization.mode": "one of extractable, full",
  "memorization.suppressed_tokens": "a list of non-negative token ids never generated " +
    "(default [end_of_text_id])",
  "memorization.suppressed_tokens[]": "a non-negative integer token id",
  "rows": "seen, all, {range: [START, END]} or {sample: N, seed: S}",
  "rows.range": "[START, END]: two non-negative integers with START < END",
  "rows.range[]": "a non-negative integer row index",
  "rows.sample": "a positive integer: how many rows to sample uniformly",
  "rows.seed": "a non-negative integer seed of the sample",
  "target": "a mapping {model: NAME, step: STEP}, or none for a run without a trained target " +
    "(default: the largest model, its last step)",
  "target.model": "the name of one of the suite's models",
  "target.step": "one of the target model's steps",
  "devices": "a non-empty list of {device, workers, threads}",
  "devices[]": "a mapping {device: cpu | cuda:N | webgpu:N, workers: N, threads: N}",
  "devices[].device": "cpu, cuda:N or webgpu:N (N a device number, e.g. cuda:0)",
  "devices[].workers": "a positive integer: worker threads on this device (default 1)",
  "devices[].threads": "a positive integer: intra-op threads per worker",
  "batch_size": "a positive integer: rows per forward pass (default 64)",
  "shard_size": "a positive integer: rows per shard, the unit of work and resume (default 65536)",
  "output": "a folder for the run (relative to the experiment file), e.g. runs/nano",
  "analysis": "a mapping {min_precision, budgets, bootstrap, seed, parameter_count, folds, " +
    "recall_over, recalls}",
  "analysis.min_precision": "a number in (0, 1], e.g. 0.9",
  "analysis.budgets": "a non-empty list of compute fractions in (0, 1], e.g. [0.01, 0.1]",
  "analysis.budgets[]": "a number in (0, 1]: a fraction of the target's compute",
  "analysis.bootstrap": "a non-negative integer: bootstrap resamples (default 200)",
  "analysis.seed": "a non-negative integer seed",
  "analysis.parameter_count": "one of total, non-embedding",
  "analysis.folds": "an integer from 1 to 100: folds of rows for cross-fitting thresholds " +
    "(default 5; 1 = choose and measure on the same rows)",
  "analysis.recall_over": "all (the target's memorized rows, default) or covered (only those " +
    "the predictor scored)",
  "analysis.recalls": "a non-empty list of recalls in (0, 1] whose compute is reported, " +
    "e.g. [0.5, 0.8, 0.9]",
  "analysis.recalls[]": "a number in (0, 1]: a recall",
};

/** The pattern of a concrete path: `suite.models[].name`. */
export function pathPattern(path: YamlPath, mapKeys = new Set(["checkpoints"])): string {
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (typeof seg === "number") out += "[]";
    else if (i > 0 && mapKeys.has(String(path[i - 1]))) out += "{}";
    else out += (out === "" ? "" : ".") + seg;
  }
  return out;
}

/** A concrete path as text: `suite.models[2].name`. */
export function formatPath(path: YamlPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += (out === "" ? "" : ".") + seg;
  }
  return out === "" ? "the top level" : out;
}

/** The keys allowed in the mapping at `path`. */
export function validKeys(path: YamlPath): string[] {
  const prefix = pathPattern(path);
  const keys: string[] = [];
  for (const pattern of Object.keys(FIELDS)) {
    const rest = prefix === ""
      ? pattern
      : pattern.startsWith(prefix + ".")
      ? pattern.slice(prefix.length + 1)
      : null;
    if (rest && /^[a-z_]+$/.test(rest)) keys.push(rest);
  }
  return keys;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `word` (camelCase, case and small typos forgiven), or undefined. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) =>
    s.replace(/([a-z])([A-Z])/g, "$1_$2").replace(/-/g, "_").toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(norm(word), norm(c));
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

/** Looks up the raw value at a path. */
export function valueAt(root: unknown, path: YamlPath): unknown {
  let node = root;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return node;
}

/** A short description of a raw YAML value for messages. */
export function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "empty (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Explains a number written as a string (`70_000_000`, `"1024"`), or returns undefined. */
export function numberAsString(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const t = value.trim();
  if (/^[+-]?\d[\d_,]*(\.\d+)?([eE][+-]?\d+)?$/.test(t) && /[_,]/.test(t)) {
    const plain = t.replace(/[_,]/g, "");
    return `${JSON.stringify(value)} is a string, not a number: YAML 1.2 allows no ` +
      `underscores or commas in numbers; write ${plain}`;
  }
  if (/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t)) {
    return `${JSON.stringify(value)} is a quoted string, not a number; write ${t} without quotes`;
  }
  return undefined;
}

/** Turns zod issues into {@link Issue}s with messages that say what is valid. */
export function fromZod(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  base: YamlPath = [],
): Issue[] {
  const out: Issue[] = [];
  // A misspelt key is reported once, as unknown (with the suggestion), not also as missing.
  const suggested = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    const path = [...base, ...(issue.path as (string | number)[])];
    for (const key of issue.keys) {
      const guess = nearest(key, validKeys(path));
      if (guess) suggested.add(JSON.stringify([...path, guess]));
    }
  }
  for (const issue of issues) {
    const path = [...base, ...(issue.path as (string | number)[])];
    if (issue.code === "unrecognized_keys") {
      const keys = validKeys(path);
      for (const key of issue.keys) {
        const guess = nearest(key, keys);
        const where = path.length === 0 ? "at the top level" : `in ${formatPath(path)}`;
        out.push({
          path: [...path, key],
          atKey: true,
          message: `unknown key "${key}" ${where}` +
            (guess ? `; did you mean "${guess}"?` : ";") + ` Valid keys: ${keys.join(", ")}.`,
        });
      }
      continue;
    }
    const value = valueAt(raw, path);
    if (value === undefined && suggested.has(JSON.stringify(path))) continue;
    const valid = FIELDS[pathPattern(path)] ?? issue.message;
    const asString = numberAsString(value);
    let message: string;
    if (asString) message = `${asString} (expected ${valid})`;
    else if (value === undefined) message = `required but missing; expected ${valid}`;
    else if (issue.code === "invalid_type") {
      message = `${describe(value)} has the wrong type; expected ${valid}`;
    } else message = `${describe(value)} is not valid; expected ${valid}`;
    out.push({ path, message: `${formatPath(path)}: ${message}` });
  }
  return out;
}

/** Checks the `rows` field; returns its value or issues. */
export function parseRows(value: unknown, raw: unknown): { rows?: RawRows; issues: Issue[] } {
  if (value === undefined || value === "seen") return { rows: "seen", issues: [] };
  if (value === "all") return { rows: "all", issues: [] };
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const schema = "sample" in value ? sampleSchema : "range" in value ? rangeSchema : null;
    if (schema) {
      const r = schema.safeParse(value);
      if (r.success) return { rows: r.data as RawRows, issues: [] };
      return { issues: fromZod(r.error.issues, raw, ["rows"]) };
    }
  }
  return {
    issues: [{
      path: ["rows"],
      message: `rows: ${describe(value)} is not valid: expected ${FIELDS["rows"]}`,
    }],
  };
}
