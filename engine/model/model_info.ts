/**
 * The graph side of the model adapter: detects a causal LM's ONNX interface
 * (Optimum with-past, legacy merged, no-cache) and reads its shape (layers,
 * heads, head size, vocabulary, weight FLOPs) from the graph and the
 * `config.json` beside it. Bad models get a UserError naming the file and
 * what was expected.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { findUnembedding, MIN_OPSET } from "./graph.ts";
import { readModelFile } from "./model_file.ts";
import { type Graph, type Model, parseModel, type ValueInfo } from "./onnx_proto.ts";
import { isNotFound } from "../os/fs_errors.ts";

/** How the model takes its past. */
export type ModelInterface = "with-past" | "merged" | "no-cache";

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present[a-z_]*\.(\d+)\.(key|value)$/;
const NO_CACHE_INPUTS = new Set(["input_ids", "attention_mask", "position_ids"]);

/** What the adapter learned from the graph (exported for tests). */
export interface ModelInfo {
  interface: ModelInterface;
  layers: number;
  heads: number;
  headDim: number;
  vocabSize: number;
  logitsType: number;
  pastType: number;
  idsType: number;
  hasPositionIds: boolean;
  hasAttentionMask: boolean;
  pastNames: string[];
  presentNames: string[];
  matmulFlopsPerToken: number;
  /** The part of it in the unembedding, when that is a MatMul the score head windows (else 0). */
  unembeddingFlopsPerToken: number;
}

/** Detects the interface and shape of a parsed model; throws UserError naming `file`. */
export function inspectModel(
  model: Model,
  file: string,
  config: Record<string, unknown> | null,
  declaredVocab?: number,
): ModelInfo {
  const g = model.graph;
  const init = new Set(g.initializers.map((t) => t.name));
  const inputs = g.inputs.filter((v) => !init.has(v.name));
  const names = inputs.map((v) => v.name);
  const bad = (what: string) =>
    new UserError(
      `${file}: ${what}. Expected an ONNX causal language model with inputs input_ids ` +
        `[+ attention_mask, position_ids, past_key_values.{i}.key/value, use_cache_branch] ` +
        `and output logits [batch, sequence, vocab] (found inputs: ${names.join(", ")}; ` +
        `outputs: ${g.outputs.map((v) => v.name).join(", ")}).`,
    );
  const { iface, ids, logits, past } = modelInterface(model, inputs, bad);
  const layers = past.length / 2;
  const cache = cacheLayout(g, past, bad);
  const cfg = configShape(config);
  checkConfigAgainstCache(`${file} (config.json beside it)`, cfg, past.length > 0, cache, layers);
  let { heads, headDim } = cache;
  if (!past.length && cfg.heads) {
    heads = cfg.heads;
    headDim = cfg.hidden ? cfg.hidden / cfg.heads : 0;
  }
  const vocabSize = vocabularySize(g, logits, cfg.vocab, declaredVocab, file, bad);
  return {
    interface: iface,
    layers: layers || (cfg.layers ?? 0),
    heads,
    headDim,
    vocabSize,
    logitsType: logits.elemType,
    pastType: past[0]?.elemType ?? logits.elemType,
    idsType: ids.elemType,
    hasPositionIds: names.includes("position_ids"),
    hasAttentionMask: names.includes("attention_mask"),
    pastNames: cache.pastNames,
    presentNames: cache.presentNames,
    matmulFlopsPerToken: weightMatmulFlops(g),
    unembeddingFlopsPerToken: 2 * (findUnembedding(g)?.weightElements ?? 0),
  };
}

/**
 * The model's interface from its opset, inputs and outputs: input_ids and
 * logits present, no input the adapter cannot feed, the past inputs (none:
 * no cache; with use_cache_branch: merged).
 */
function modelInterface(
  model: Model,
  inputs: ValueInfo[],
  bad: (what: string) => UserError,
): { iface: ModelInterface; ids: ValueInfo; logits: ValueInfo; past: ValueInfo[] } {
  const names = inputs.map((v) => v.name);
  const opset = model.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 0;
  if (opset < MIN_OPSET) throw bad(`default-domain opset ${opset} is older than ${MIN_OPSET}`);
  const ids = inputs.find((v) => v.name === "input_ids");
  if (!ids) throw bad("no input_ids input");
  const logits = model.graph.outputs.find((v) => v.name === "logits");
  if (!logits) throw bad("no logits output");
  if (logits.dims && logits.dims.length !== 3) throw bad("logits is not rank 3");
  const past = inputs.filter((v) => PAST.test(v.name));
  const useCacheBranch = names.includes("use_cache_branch");
  const unknown = names.filter((n) => !NO_CACHE_INPUTS.has(n) && !PAST.test(n)).filter((n) =>
    n !== "use_cache_branch"
  );
  if (unknown.length) throw bad(`unsupported input(s) ${unknown.join(", ")}`);
  const iface: ModelInterface = past.length === 0
    ? "no-cache"
    : useCacheBranch
    ? "merged"
    : "with-past";
  return { iface, ids, logits, past };
}

/** With a cache, the heads and layers `config.json` declares are those of the graph's cache. */
function checkConfigAgainstCache(
  where: string,
  cfg: ReturnType<typeof configShape>,
  hasPast: boolean,
  cache: { heads: number },
  layers: number,
): void {
  if (hasPast && cfg.heads !== undefined && (cfg.kvHeads ?? cfg.heads) !== cache.heads) {
    throw new UserError(
      `${where}: config.json declares ${
        cfg.kvHeads ?? cfg.heads
      } attention heads but the graph's past_key_values have ${cache.heads}; use the config.json exported with this model.`,
    );
  }
  if (hasPast && cfg.layers !== undefined && cfg.layers !== layers) {
    throw new UserError(
      `${where}: config.json declares ${cfg.layers} layers but the graph has ${layers} past_key_values pairs; use the config.json exported with this model.`,
    );
  }
}

/** The vocabulary size (logits, config.json or the embedding), and the experiment's agrees. */
function vocabularySize(
  g: Graph,
  logits: ValueInfo,
  configVocab: number | undefined,
  declaredVocab: number | undefined,
  file: string,
  bad: (what: string) => UserError,
): number {
  const vocabSize = findVocab(g, logits, configVocab);
  if (!vocabSize) {
    throw bad("the vocabulary size is unknown (no static logits dim, no config.json)");
  }
  if (declaredVocab !== undefined && declaredVocab !== vocabSize) {
    throw new UserError(
      `${file}: the experiment declares vocab_size ${declaredVocab} but the model's logits have ${vocabSize} entries; fix vocab_size in the experiment file or the model path.`,
    );
  }
  return vocabSize;
}

/**
 * The cache's input and output names, layer by layer (key, value), and its
 * heads × head size, the same in every layer; `bad` makes the error.
 */
function cacheLayout(
  g: Graph,
  past: ValueInfo[],
  bad: (what: string) => UserError,
): { pastNames: string[]; presentNames: string[]; heads: number; headDim: number } {
  const pastNames: string[] = [];
  const presentNames: string[] = [];
  let heads = 0;
  let headDim = 0;
  for (let i = 0; i < past.length / 2; i++) {
    for (const kind of ["key", "value"]) {
      const p = past.find((v) => v.name === `past_key_values.${i}.${kind}`);
      const o = g.outputs.find((v) => v.name.match(PRESENT)?.slice(1).join(".") === `${i}.${kind}`);
      if (!p) throw bad(`missing input past_key_values.${i}.${kind}`);
      if (!o) throw bad(`missing output present.${i}.${kind}`);
      if (!p.dims || p.dims.length !== 4) throw bad(`${p.name} is not rank 4`);
      const [h, d] = [p.dims[1], p.dims[3]];
      if (typeof h === "number") heads ||= h;
      if (typeof d === "number") headDim ||= d;
      if ((typeof h === "number" && h !== heads) || (typeof d === "number" && d !== headDim)) {
        throw bad(
          `${p.name} has shape [${p.dims}] unlike the other layers' heads ${heads} × ${headDim}`,
        );
      }
      pastNames.push(p.name);
      presentNames.push(o.name);
    }
  }
  if (past.length && (!heads || !headDim)) {
    throw bad("past_key_values have no static heads/head size");
  }
  return { pastNames, presentNames, heads, headDim };
}

/** The shape a `config.json` declares, under the names the common architectures use. */
function configShape(config: Record<string, unknown> | null) {
  const num = (...keys: string[]) => {
    for (const k of keys) if (typeof config?.[k] === "number") return config[k] as number;
    return undefined;
  };
  return {
    heads: num("num_attention_heads", "n_head", "num_heads"),
    kvHeads: num("num_key_value_heads"),
    layers: num("num_hidden_layers", "n_layer", "num_layers"),
    hidden: num("hidden_size", "n_embd", "d_model"),
    vocab: num("vocab_size"),
  };
}

function findVocab(g: Graph, logits: ValueInfo, cfg?: number): number {
  const d = logits.dims?.[2];
  if (typeof d === "number" && d > 0) return d;
  if (cfg) return cfg;
  const emb = g.nodes.find((n) => n.opType === "Gather" && n.inputs[1] === "input_ids");
  const t = g.initializers.find((i) => i.name === emb?.inputs[0]);
  return t?.dims[0] ?? 0;
}

/** 2 × elements of every MatMul/Gemm weight initializer (through Cast/Transpose), one If branch. */
export function weightMatmulFlops(g: Graph): number {
  const init = new Map(g.initializers.map((t) => [t.name, t]));
  const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const weight = (name: string): number => {
    for (let hops = 0; hops < 4; hops++) {
      const t = init.get(name);
      if (t) return t.dims.length === 2 ? t.dims[0] * t.dims[1] : 0;
      const p = producer.get(name);
      if (!p || !["Cast", "Transpose", "Identity", "DequantizeLinear"].includes(p.opType)) return 0;
      name = p.inputs[0];
    }
    return 0;
  };
  let flops = 0;
  for (const n of g.nodes) {
    if (n.opType === "MatMul" || n.opType === "Gemm") flops += 2 * weight(n.inputs[1]);
    if (n.opType === "If") {
      const branch = n.attributes.find((a) => a.g)?.g;
      if (branch) {
        flops += weightMatmulFlops({
          ...branch,
          initializers: [...g.initializers, ...branch.initializers],
        });
      }
    }
  }
  return flops;
}

/** The `location` of every external-data tensor (subgraphs too). */
export function externalLocations(g: Graph, into = new Set<string>()): Set<string> {
  for (const t of g.initializers) if (t.externalLocation) into.add(t.externalLocation);
  for (const n of g.nodes) {
    for (const a of n.attributes) {
      if (a.t?.externalLocation) into.add(a.t.externalLocation);
      if (a.g) externalLocations(a.g, into);
    }
  }
  return into;
}

/** The `config.json` beside a model file, when present. */
export async function readConfig(file: string): Promise<Record<string, unknown> | null> {
  const path = join(dirname(file), "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message}); fix or remove it.`);
  }
}

/** Parses and inspects a model file without creating a session (for references and benches). */
export async function readModelInfo(path: string): Promise<ModelInfo> {
  const file = resolve(path);
  return inspectModel(parseModel(readModelFile(file).bytes), file, await readConfig(file));
}
