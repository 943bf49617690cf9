/**
 * Loads an experiment file (YAML) into a validated, typed {@link Experiment}.
 * Every problem is a {@link UserError} naming `file:line:column`, the field,
 * and what would be valid; misspelt keys are never ignored (the nearest valid
 * key is suggested). Relative paths resolve against the experiment file's
 * folder; the default output is `runs/<name>` relative to the current folder.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, relative, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document } from "yaml";
import { UserError } from "../errors.ts";
import {
  experimentSchema,
  formatPath,
  fromZod,
  type Issue,
  nearest,
  parseRows,
  type RawExperiment,
  type RawRows,
  type YamlPath,
} from "./schema.ts";
import type { Checkpoint, DeviceSlot, Experiment, ModelSpec, RowSelection } from "../types.ts";

/** Options of {@link loadExperiment}. */
export interface LoadOptions {
  /** Output folder overriding the file's (relative to the current folder). */
  output?: string;
}

/** Reads, parses and validates an experiment file. Throws a {@link UserError} on bad input. */
export async function loadExperiment(path: string, opts: LoadOptions = {}): Promise<Experiment> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT"
      ? "the file does not exist"
      : code === "EISDIR"
      ? "this is a folder, not a file"
      : `it cannot be read (${(e as Error).message})`;
    throw new UserError(
      `${path}:1:1: cannot load the experiment file: ${why}. Give the path of a YAML ` +
        `experiment file, e.g. experiments/nano.yaml.`,
    );
  }
  return parseExperiment(text, file, { ...opts, display: path });
}

/**
 * Parses and validates the text of an experiment file whose absolute path is
 * `file` (used to resolve relative paths); `display` names it in messages.
 */
export function parseExperiment(
  text: string,
  file: string,
  opts: LoadOptions & { display?: string } = {},
): Experiment {
  const display = opts.display ?? (relative(".", file) || file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${display}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const hint = e.code === "DUPLICATE_KEY"
      ? "each key may appear once per mapping; remove or merge the repeated key"
      : "fix the YAML syntax (indentation with spaces, `key: value`, lists as `- item` " +
        "or `[a, b]`)";
    throw new UserError(`${where(e.pos[0])}: YAML syntax error: ${e.message}; ${hint}.`);
  }
  const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  const fail = (issues: Issue[]): never => {
    const located = issues.map((i) => ({ at: locate(doc, i.path, i.atKey === true), i }));
    located.sort((a, b) => a.at - b.at);
    throw new UserError(
      located.map(({ at, i }) => `${where(at)}: ${i.message}`).join("\n"),
    );
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail([{
      path: [],
      message: "an experiment file must be a YAML mapping with at least suite: and data: " +
        "(see experiments/nano.yaml)",
    }]);
  }
  const parsed = experimentSchema.safeParse(raw);
  const rows = parseRows((raw as Record<string, unknown>).rows, raw);
  const issues = [...(parsed.success ? [] : fromZod(parsed.error.issues, raw)), ...rows.issues];
  if (issues.length > 0 || !parsed.success || !rows.rows) return fail(issues);
  const built = build(parsed.data, rows.rows, file, opts.output);
  if (built.issues.length > 0) fail(built.issues);
  return built.experiment;
}

/** Byte offset of the node at `path` (or of its nearest existing ancestor). */
function locate(doc: Document, path: YamlPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let pos = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyPos = rangeStart(pair.key) ?? pos;
      if (atKey && i === path.length - 1) return keyPos;
      node = pair.value;
      pos = rangeStart(node) ?? keyPos;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      pos = rangeStart(node) ?? pos;
    } else break;
  }
  return pos;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}

/** Cross-field checks and conversion to the typed, absolute-path {@link Experiment}. */
function build(
  raw: RawExperiment,
  rows: RawRows,
  file: string,
  outputOverride: string | undefined,
): { experiment: Experiment; issues: Issue[] } {
  const issues: Issue[] = [];
  const issue = (path: YamlPath, message: string, atKey = false) =>
    issues.push({ path, message, atKey });
  const dir = dirname(file);
  const abs = (p: string) => resolve(dir, p);
  const name = raw.name ?? basename(file, extname(file)).replace(/[^A-Za-z0-9._-]/g, "_");
  const suite = raw.suite;
  if (suite.steps) checkAscending(suite.steps, ["suite", "steps"], issue);

  const models: ModelSpec[] = [];
  const seen = new Map<string, number>();
  suite.models.forEach((m, i) => {
    const at: YamlPath = ["suite", "models", i];
    if (seen.has(m.name)) {
      issue(
        [...at, "name"],
        `model name "${m.name}" is used twice (also suite.models[` +
          `${seen.get(m.name)}]): give every model a distinct name`,
      );
    }
    seen.set(m.name, i);
    if (m.non_embedding_parameters !== undefined && m.non_embedding_parameters > m.parameters) {
      issue(
        [...at, "non_embedding_parameters"],
        `suite.models[${i}].non_embedding_parameters ` +
          `${m.non_embedding_parameters} exceeds parameters ${m.parameters}: it counts a subset`,
      );
    }
    if (raw.analysis.parameter_count === "non-embedding" && !m.non_embedding_parameters) {
      issue(
        at,
        `model ${m.name} has no non_embedding_parameters, which ` +
          `analysis.parameter_count: non-embedding needs: add it or use parameter_count: total`,
      );
    }
    const checkpoints: Checkpoint[] = [];
    if (m.checkpoints) {
      if (m.path) {
        issue(
          [...at, "path"],
          `model ${m.name} gives both path and checkpoints: keep path ` +
            `(a template with {step}) or checkpoints ({STEP: file.onnx}), not both`,
          true,
        );
      }
      if (m.steps) {
        issue(
          [...at, "steps"],
          `model ${m.name} gives both steps and checkpoints: the ` +
            `checkpoints' keys are its steps; remove steps`,
          true,
        );
      }
      for (const [key, path] of Object.entries(m.checkpoints)) {
        if (!/^\d+$/.test(key) || Number(key) < 1) {
          issue(
            [...at, "checkpoints", key],
            `checkpoint step "${key}" of model ${m.name} ` +
              `is not a positive integer: keys of checkpoints are steps, e.g. 143: file.onnx`,
            true,
          );
        } else checkpoints.push({ step: Number(key), path: abs(path) });
      }
      checkpoints.sort((a, b) => a.step - b.step);
    } else if (m.path) {
      const steps = m.steps ?? suite.steps;
      if (m.steps) checkAscending(m.steps, [...at, "steps"], issue);
      if (!steps) {
        issue(
          at,
          `model ${m.name} has no checkpoint steps: add steps: [...] to the model ` +
            `or to the suite (suite.steps), e.g. steps: [23, 43, 143]`,
        );
      } else if (!m.path.includes("{step}") && steps.length > 1) {
        issue(
          [...at, "path"],
          `path "${m.path}" of model ${m.name} has no {step} but the ` +
            `model has ${steps.length} steps: write a template such as ` +
            `${m.name}/step{step}.onnx, or list files under checkpoints: {STEP: file.onnx}`,
        );
      } else {
        for (const step of steps) {
          checkpoints.push({ step, path: abs(m.path.replaceAll("{step}", String(step))) });
        }
      }
    } else {
      issue(
        at,
        `model ${m.name} has neither path nor checkpoints: add path: ` +
          `${m.name}/step{step}.onnx (a template) or checkpoints: {STEP: file.onnx}`,
      );
    }
    models.push({
      name: m.name,
      parameters: m.parameters,
      ...(m.non_embedding_parameters ? { nonEmbeddingParameters: m.non_embedding_parameters } : {}),
      ...(m.vocab_size ? { vocabSize: m.vocab_size } : {}),
      ...((m.rows ?? (rows === "all" ? "all" : "seen")) === "all" ? { rows: "all" as const } : {}),
      checkpoints,
    });
  });

  // The target: by default the largest model at its last step; none: no trained target.
  let target: Experiment["target"] = { model: "", step: 0 };
  if (raw.target === "none") target = undefined;
  else if (raw.target) {
    const want = raw.target;
    const model = models.find((m) => m.name === want.model);
    if (!model) {
      const names = models.map((m) => m.name);
      const guess = nearest(want.model, names);
      issue(
        ["target", "model"],
        `target.model "${want.model}" is not a model of the ` +
          `suite${guess ? `; did you mean "${guess}"?` : ";"} Models: ${names.join(", ")}.`,
      );
    } else {
      const steps = model.checkpoints.map((c) => c.step);
      const step = want.step ?? steps[steps.length - 1];
      if (!steps.includes(step)) {
        issue(
          ["target", "step"],
          `target.step ${step} is not a checkpoint of ${model.name}: ` +
            `its steps are ${steps.join(", ")}`,
        );
      }
      target = { model: model.name, step };
    }
  } else if (models.length > 0) {
    const largest = models.reduce((a, b) => (b.parameters >= a.parameters ? b : a));
    const last = largest.checkpoints[largest.checkpoints.length - 1];
    target = { model: largest.name, step: last?.step ?? 0 };
  }

  const data = raw.data;
  if (data.format === "raw" && data.row_length === undefined) {
    issue(
      ["data"],
      `data.row_length is required for format raw (rows have no header): the ` +
        `tokens per row, e.g. row_length: 2049 for Pythia's document.bin`,
    );
  }
  if (data.dtype !== undefined && data.format !== "raw") {
    issue(
      ["data", "dtype"],
      `data.dtype applies to format raw only (${data.format} files ` +
        `declare their own element type): remove it`,
      true,
    );
  }
  const mem = raw.memorization;
  const need = mem.offset + mem.context + mem.continuation;
  if (data.row_length !== undefined && need > data.row_length) {
    issue(
      ["memorization"],
      `memorization needs offset + context + continuation = ` +
        `${mem.offset} + ${mem.context} + ${mem.continuation} = ${need} tokens per row but ` +
        `data.row_length is ${data.row_length}: shorten the context/continuation or the offset`,
    );
  }
  let selection: RowSelection = { kind: rows === "all" ? "all" : "seen" };
  if (typeof rows === "object" && "range" in rows) {
    const [start, end] = rows.range;
    if (start >= end) {
      issue(
        ["rows", "range"],
        `rows.range [${start}, ${end}] is empty: expected [START, END] ` +
          `with START < END (END exclusive)`,
      );
    }
    selection = { kind: "range", start, end };
  } else if (typeof rows === "object" && "sample" in rows) {
    selection = { kind: "sample", count: rows.sample, seed: rows.seed };
  }

  const cores = Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
  const devices: DeviceSlot[] = [];
  const entries = raw.devices ?? [{ device: "cpu", workers: 1, threads: undefined }];
  const cpuWorkers = entries.filter((d) => d.device === "cpu")
    .reduce((a, d) => a + d.workers, 0);
  const listed = new Map<string, number>();
  entries.forEach((d, i) => {
    if (listed.has(d.device)) {
      issue(
        ["devices", i, "device"],
        `device ${d.device} is listed twice (also devices[` +
          `${listed.get(d.device)}]): list it once with workers: N`,
      );
    }
    listed.set(d.device, i);
    const threads = d.threads ??
      (d.device === "cpu" ? Math.max(1, Math.floor(cores / Math.max(1, cpuWorkers))) : 1);
    for (let w = 0; w < d.workers; w++) devices.push({ device: d.device, threads });
  });

  const output = outputOverride !== undefined
    ? resolve(outputOverride)
    : raw.output !== undefined
    ? abs(raw.output)
    : resolve("runs", name);
  const experiment: Experiment = {
    name,
    file,
    suite: {
      models,
      sequencesPerStep: suite.sequences_per_step,
      tokensPerSequence: suite.tokens_per_sequence,
      endOfTextId: suite.end_of_text_id,
      ...(suite.tokenizer ? { tokenizer: abs(suite.tokenizer) } : {}),
    },
    data: {
      format: data.format,
      path: abs(data.path),
      ...(data.row_length !== undefined ? { rowLength: data.row_length } : {}),
      ...(data.format === "raw" ? { dtype: data.dtype ?? "uint16" } : {}),
      ...(data.duplicates ? { duplicates: abs(data.duplicates) } : {}),
    },
    memorization: {
      offset: mem.offset,
      context: mem.context,
      continuation: mem.continuation,
      mode: mem.mode,
      suppressedTokens: mem.suppressed_tokens ?? [suite.end_of_text_id],
    },
    rows: selection,
    ...(target ? { target } : {}),
    devices,
    batchSize: raw.batch_size,
    shardSize: raw.shard_size,
    output,
    analysis: {
      minPrecision: raw.analysis.min_precision,
      budgets: raw.analysis.budgets,
      bootstrap: raw.analysis.bootstrap,
      seed: raw.analysis.seed,
      parameterCount: raw.analysis.parameter_count,
      folds: raw.analysis.folds,
      recallOver: raw.analysis.recall_over,
      recalls: raw.analysis.recalls,
    },
  };
  return { experiment, issues };
}

function checkAscending(
  steps: number[],
  at: YamlPath,
  issue: (path: YamlPath, message: string) => void,
): void {
  for (let j = 1; j < steps.length; j++) {
    if (steps[j] <= steps[j - 1]) {
      issue(
        [...at, j],
        `${formatPath([...at, j])}: step ${steps[j]} follows ${steps[j - 1]}: ` +
          `steps must be strictly ` +
          `ascending (each checkpoint listed once, in training order)`,
      );
      return;
    }
  }
}
