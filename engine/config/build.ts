/**
 * From a schema-valid experiment file to the typed {@link Experiment}: the
 * cross-field checks (distinct names, ascending steps, a target that exists,
 * a window that fits a row, totals within {@link LIMITS}) and the conversion to
 * absolute paths, one named step per part of the file. Problems are collected
 * as {@link Issue}s so that all of them are reported at once.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import type {
  Checkpoint,
  DataSpec,
  DeviceSlot,
  Experiment,
  MemorizationSettings,
  ModelSpec,
  RowSelection,
} from "../types.ts";
import { formatPath, type YamlPath } from "./fields.ts";
import { type Issue, nearest } from "./messages.ts";
import { LIMITS, type RawExperiment } from "./schema.ts";
import { UserError } from "../errors.ts";
import { hubCache, hubSnapshot } from "../model/hf/hub.ts";

type Report = (path: YamlPath, message: string, atKey?: boolean) => void;
type RawModel = RawExperiment["suite"]["models"][number];

/** What {@link build} needs besides the parsed file. */
export interface BuildContext {
  /** Absolute path of the experiment file (relative paths resolve against its folder). */
  file: string;
  /** Output folder overriding the file's (relative to the current folder). */
  outputOverride?: string;
  /** `file:line:column` of a path in the file (kept in {@link Experiment.locations}). */
  where?: (path: YamlPath, atKey?: boolean) => string;
}

/** Cross-field checks and conversion to the typed, absolute-path {@link Experiment}. */
export function build(raw: RawExperiment, ctx: BuildContext): {
  experiment: Experiment;
  issues: Issue[];
} {
  const issues: Issue[] = [];
  const report: Report = (path, message, atKey = false) => issues.push({ path, message, atKey });
  const abs = (p: string) => resolve(dirname(ctx.file), p);
  const name = raw.name ?? basename(ctx.file, extname(ctx.file)).replace(/[^A-Za-z0-9._-]/g, "_");
  const models = checkpointTotal(raw, report) ? buildModels(raw, abs, report) : [];
  const target = resolveTarget(raw, models, report);
  const data = buildData(raw, abs, report);
  const memorization = buildMemorization(raw, report);
  const devices = buildDevices(raw, report);
  const output = ctx.outputOverride !== undefined
    ? resolve(ctx.outputOverride)
    : raw.output !== undefined
    ? abs(raw.output)
    : resolve("runs", name);
  const experiment: Experiment = {
    name,
    file: ctx.file,
    suite: {
      models,
      sequencesPerStep: raw.suite.sequences_per_step,
      tokensPerSequence: raw.suite.tokens_per_sequence,
      endOfTextId: raw.suite.end_of_text_id,
      ...(raw.suite.tokenizer
        ? { tokenizer: abs(raw.suite.tokenizer) }
        : folderTokenizer(models, target)),
    },
    data,
    memorization,
    rows: buildRows(raw.rows, report),
    ...(target ? { target } : {}),
    devices,
    ...(raw.devices === "auto" ? { devicesAuto: true } : {}),
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
    ...(ctx.where ? { locations: locations(raw, ctx.where) } : {}),
  };
  return { experiment, issues };
}

/**
 * Without `suite.tokenizer`: the `tokenizer.json` of a Hugging Face model folder
 * among the checkpoints (the target's first, then each model's last), which then
 * decodes the report's example rows.
 */
function folderTokenizer(
  models: ModelSpec[],
  target: Experiment["target"],
): { tokenizer?: string } {
  const last = (m: ModelSpec) => m.checkpoints.at(-1)?.path;
  const order = [...models].sort((a, b) =>
    Number(b.name === target?.model) - Number(a.name === target?.model)
  );
  for (const dir of order.map(last)) {
    if (dir && existsSync(join(dir, "tokenizer.json")) && existsSync(join(dir, "config.json"))) {
      return { tokenizer: join(dir, "tokenizer.json") };
    }
  }
  return {};
}

/** The checkpoints the file declares, all models together, are within the limit. */
function checkpointTotal(raw: RawExperiment, report: Report): boolean {
  const total = raw.suite.models.reduce(
    (a, m) =>
      a +
      (m.checkpoints
        ? Object.keys(m.checkpoints).length
        : (m.steps ?? raw.suite.steps)?.length ?? 0),
    0,
  );
  if (total <= LIMITS.checkpoints) return true;
  report(
    ["suite", "models"],
    `suite.models: the models have ${total} checkpoints in all, more than the ` +
      `${LIMITS.checkpoints} allowed: list fewer steps or split the suite into experiments`,
  );
  return false;
}

/** Every model with its checkpoints, in file order. */
function buildModels(raw: RawExperiment, abs: (p: string) => string, report: Report): ModelSpec[] {
  if (raw.suite.steps) checkAscending(raw.suite.steps, ["suite", "steps"], report);
  const seen = new Map<string, number>();
  return raw.suite.models.map((m, i) => {
    const at: YamlPath = ["suite", "models", i];
    if (seen.has(m.name)) {
      report(
        [...at, "name"],
        `model name "${m.name}" is used twice (also suite.models[${seen.get(m.name)}]): ` +
          `give every model a distinct name`,
      );
    }
    seen.set(m.name, i);
    checkParameters(raw, m, at, report);
    const scoresAll = (m.rows ?? (raw.rows === "all" ? "all" : "seen")) === "all";
    return {
      name: m.name,
      parameters: m.parameters,
      ...(m.non_embedding_parameters ? { nonEmbeddingParameters: m.non_embedding_parameters } : {}),
      ...(m.vocab_size ? { vocabSize: m.vocab_size } : {}),
      ...(scoresAll ? { rows: "all" as const } : {}),
      checkpoints: modelCheckpoints(m, { at, suiteSteps: raw.suite.steps, abs, report }),
    };
  });
}

function checkParameters(raw: RawExperiment, m: RawModel, at: YamlPath, report: Report): void {
  if (m.non_embedding_parameters !== undefined && m.non_embedding_parameters > m.parameters) {
    report(
      [...at, "non_embedding_parameters"],
      `${formatPath(at)}.non_embedding_parameters ${m.non_embedding_parameters} exceeds ` +
        `parameters ${m.parameters}: it counts a subset`,
    );
  }
  if (raw.analysis.parameter_count === "non-embedding" && !m.non_embedding_parameters) {
    report(
      at,
      `model ${m.name} has no non_embedding_parameters, which ` +
        `analysis.parameter_count: non-embedding needs: add it or use parameter_count: total`,
    );
  }
}

/** A model's checkpoints from `hub`, `checkpoints: {STEP: file}` or a `path` template over steps. */
function modelCheckpoints(m: RawModel, place: ModelPlace): Checkpoint[] {
  const { at, report } = place;
  if (m.hub) return hubCheckpoints(m, m.hub, place);
  if (m.checkpoints) return listedCheckpoints(m, m.checkpoints, place);
  if (!m.path) {
    report(
      at,
      `model ${m.name} has neither path nor checkpoints: add path: ` +
        `${m.name}/step{step}.onnx (a template), checkpoints: {STEP: file.onnx} or ` +
        `hub: {repo: ORG/NAME} (a Hugging Face cache)`,
    );
    return [];
  }
  return templateCheckpoints(m, m.path, place);
}

/** Where a model stands in the file, and what its checkpoints resolve against. */
interface ModelPlace {
  /** The model's path in the file (`suite.models[i]`). */
  at: YamlPath;
  /** `suite.steps`, the steps of a model that lists none. */
  suiteSteps: number[] | undefined;
  /** A path of the file made absolute (against the file's folder). */
  abs: (p: string) => string;
  report: Report;
}

/** The model's steps (checked ascending when the model lists its own), else the suite's. */
function modelSteps(m: RawModel, { at, suiteSteps, report }: ModelPlace): number[] | undefined {
  if (m.steps) checkAscending(m.steps, [...at, "steps"], report);
  return m.steps ?? suiteSteps;
}

/** `hub: {repo, revision}`: each step's snapshot in the local Hugging Face cache. */
function hubCheckpoints(
  m: RawModel,
  hub: NonNullable<RawModel["hub"]>,
  place: ModelPlace,
): Checkpoint[] {
  const { at, report } = place;
  for (const field of ["path", "checkpoints"] as const) {
    if (m[field]) {
      report(
        [...at, field],
        `model ${m.name} gives both hub and ${field}: keep one (hub names its checkpoints ` +
          `in the local Hugging Face cache)`,
        true,
      );
    }
  }
  const steps = modelSteps(m, place);
  if (!steps) {
    report(at, `model ${m.name} has no checkpoint steps: add steps: [...] to the model or suite`);
    return [];
  }
  if (!hub.revision.includes("{step}") && steps.length > 1) {
    report(
      [...at, "hub", "revision"],
      `hub.revision "${hub.revision}" of model ${m.name} has no {step} but the model has ` +
        `${steps.length} steps: write a template such as step{step}`,
    );
    return [];
  }
  const cache = hubCache();
  const checkpoints: Checkpoint[] = [];
  for (const step of steps) {
    try {
      const revision = hub.revision.replaceAll("{step}", String(step));
      checkpoints.push({ step, path: hubSnapshot(hub.repo, revision, cache) });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      report([...at, "hub"], `model ${m.name} step ${step}: ${e.message}`);
    }
  }
  return checkpoints;
}

/** `checkpoints: {STEP: file}`: the listed files, by ascending step. */
function listedCheckpoints(
  m: RawModel,
  listed: NonNullable<RawModel["checkpoints"]>,
  { at, abs, report }: ModelPlace,
): Checkpoint[] {
  if (m.path) {
    report(
      [...at, "path"],
      `model ${m.name} gives both path and checkpoints: keep path ` +
        `(a template with {step}) or checkpoints ({STEP: file.onnx}), not both`,
      true,
    );
  }
  if (m.steps) {
    report(
      [...at, "steps"],
      `model ${m.name} gives both steps and checkpoints: the ` +
        `checkpoints' keys are its steps; remove steps`,
      true,
    );
  }
  const checkpoints: Checkpoint[] = [];
  for (const [key, path] of Object.entries(listed)) {
    if (!/^\d+$/.test(key) || Number(key) < 1 || Number(key) > LIMITS.step) {
      report(
        [...at, "checkpoints", key],
        `checkpoint step "${key}" of model ${m.name} is not a positive integer up to ` +
          `${LIMITS.step}: keys of checkpoints are steps, e.g. 143: file.onnx`,
        true,
      );
    } else checkpoints.push({ step: Number(key), path: abs(path) });
  }
  return checkpoints.sort((a, b) => a.step - b.step);
}

/** `path` with `{step}`: one file per step (the model's steps, else the suite's). */
function templateCheckpoints(m: RawModel, path: string, place: ModelPlace): Checkpoint[] {
  const { at, abs, report } = place;
  const steps = modelSteps(m, place);
  if (!steps) {
    report(
      at,
      `model ${m.name} has no checkpoint steps: add steps: [...] to the model ` +
        `or to the suite (suite.steps), e.g. steps: [23, 43, 143]`,
    );
    return [];
  }
  if (!path.includes("{step}") && steps.length > 1) {
    report(
      [...at, "path"],
      `path "${path}" of model ${m.name} has no {step} but the model has ${steps.length} ` +
        `steps: write a template such as ${m.name}/step{step}.onnx, or list files under ` +
        `checkpoints: {STEP: file.onnx}`,
    );
    return [];
  }
  return steps.map((step) => ({ step, path: abs(path.replaceAll("{step}", String(step))) }));
}

/** The target: by default the largest model at its last step; `none`: no trained target. */
function resolveTarget(
  raw: RawExperiment,
  models: ModelSpec[],
  report: Report,
): Experiment["target"] {
  const want = raw.target;
  if (want === "none") return undefined;
  if (!want) {
    if (models.length === 0) return { model: "", step: 0 };
    const largest = models.reduce((a, b) => (b.parameters >= a.parameters ? b : a));
    return { model: largest.name, step: largest.checkpoints.at(-1)?.step ?? 0 };
  }
  const model = models.find((m) => m.name === want.model);
  if (!model) {
    const names = models.map((m) => m.name);
    const guess = nearest(want.model, names);
    report(
      ["target", "model"],
      `target.model "${want.model}" is not a model of the suite` +
        `${guess ? `; did you mean "${guess}"?` : ";"} Models: ${names.join(", ")}.`,
    );
    return { model: want.model, step: want.step ?? 0 };
  }
  const steps = model.checkpoints.map((c) => c.step);
  const step = want.step ?? steps[steps.length - 1];
  if (!steps.includes(step)) {
    report(
      ["target", "step"],
      `target.step ${step} is not a checkpoint of ${model.name}: its steps are ${steps.join(", ")}`,
    );
  }
  return { model: model.name, step };
}

function buildData(raw: RawExperiment, abs: (p: string) => string, report: Report): DataSpec {
  const data = raw.data;
  if (data.format === "raw" && data.row_length === undefined) {
    report(
      ["data"],
      `data.row_length is required for format raw (rows have no header): the ` +
        `tokens per row, e.g. row_length: 2049 for Pythia's document.bin`,
    );
  }
  if (data.dtype !== undefined && data.format !== "raw") {
    report(
      ["data", "dtype"],
      `data.dtype applies to format raw only (${data.format} files ` +
        `declare their own element type): remove it`,
      true,
    );
  }
  return {
    format: data.format,
    path: abs(data.path),
    ...(data.row_length !== undefined ? { rowLength: data.row_length } : {}),
    ...(data.format === "raw" ? { dtype: data.dtype ?? "uint16" } : {}),
    ...(data.duplicates ? { duplicates: abs(data.duplicates) } : {}),
  };
}

function buildMemorization(raw: RawExperiment, report: Report): MemorizationSettings {
  const mem = raw.memorization;
  const need = mem.offset + mem.context + mem.continuation;
  const rowLength = raw.data.row_length;
  if (rowLength !== undefined && need > rowLength) {
    report(
      ["memorization"],
      `memorization needs offset + context + continuation = ` +
        `${mem.offset} + ${mem.context} + ${mem.continuation} = ${need} tokens per row but ` +
        `data.row_length is ${rowLength}: shorten the context/continuation or the offset`,
    );
  }
  return {
    offset: mem.offset,
    context: mem.context,
    continuation: mem.continuation,
    mode: mem.mode,
    suppressedTokens: mem.suppressed_tokens ?? [raw.suite.end_of_text_id],
  };
}

function buildRows(rows: RawExperiment["rows"], report: Report): RowSelection {
  if (rows === "seen" || rows === "all") return { kind: rows };
  if ("range" in rows) {
    const [start, end] = rows.range;
    if (start >= end) {
      report(
        ["rows", "range"],
        `rows.range [${start}, ${end}] is empty: expected [START, END] ` +
          `with START < END (END exclusive)`,
      );
    }
    return { kind: "range", start, end };
  }
  return { kind: "sample", count: rows.sample, seed: rows.seed };
}

/** One slot per worker; the total is checked before any slot is made. */
function buildDevices(raw: RawExperiment, report: Report): DeviceSlot[] {
  // `auto`: the default slot until the trial at the start of scoring (engine/run/devices.ts).
  const entries = raw.devices === undefined || raw.devices === "auto"
    ? [{ device: "cpu", workers: 1, threads: undefined }]
    : raw.devices;
  const total = entries.reduce((a, d) => a + d.workers, 0);
  if (total > LIMITS.slots) {
    report(
      ["devices"],
      `devices: ${total} workers in all, more than the ${LIMITS.slots} allowed: ` +
        `one worker per device (or per few cores) is usually fastest`,
    );
    return [];
  }
  const cores = Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
  const cpuWorkers = entries.filter((d) => d.device === "cpu").reduce((a, d) => a + d.workers, 0);
  const listed = new Map<string, number>();
  const devices: DeviceSlot[] = [];
  entries.forEach((d, i) => {
    if (listed.has(d.device)) {
      report(
        ["devices", i, "device"],
        `device ${d.device} is listed twice (also devices[${listed.get(d.device)}]): ` +
          `list it once with workers: N`,
      );
    }
    listed.set(d.device, i);
    const threads = d.threads ??
      (d.device === "cpu" ? Math.max(1, Math.floor(cores / Math.max(1, cpuWorkers))) : 1);
    for (let w = 0; w < d.workers; w++) devices.push({ device: d.device, threads });
  });
  return devices;
}

/** Where the fields that later checks refer to were written (data, models, rows, output). */
function locations(
  raw: RawExperiment,
  where: (path: YamlPath, atKey?: boolean) => string,
): Record<string, string> {
  const paths: YamlPath[] = [
    ["data", "path"],
    ["data", "duplicates"],
    ["data", "row_length"],
    ["suite", "tokenizer"],
    ["rows"],
    ["shard_size"],
    ["output"],
    ["target"],
  ];
  if (typeof raw.rows === "object") paths.push(["rows", "range" in raw.rows ? "range" : "sample"]);
  raw.suite.models.forEach((m, i) => {
    paths.push(["suite", "models", i, "path"]);
    paths.push(["suite", "models", i, "hub"]);
    for (const key of Object.keys(m.checkpoints ?? {})) {
      paths.push(["suite", "models", i, "checkpoints", key]);
    }
  });
  return Object.fromEntries(paths.map((p) => [formatPath(p), where(p)]));
}

function checkAscending(steps: number[], at: YamlPath, report: Report): void {
  for (let j = 1; j < steps.length; j++) {
    if (steps[j] <= steps[j - 1]) {
      report(
        [...at, j],
        `${formatPath([...at, j])}: step ${steps[j]} follows ${steps[j - 1]}: steps must be ` +
          `strictly ascending (each checkpoint listed once, in training order)`,
      );
      return;
    }
  }
}
