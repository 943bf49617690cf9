/**
 * A Hugging Face model folder as an ONNX model: `config.json` read into an
 * architecture (./config.ts), the weights' places read from the checkpoint
 * files (./weights.ts), and the decoder graph (./decoder.ts) written with every
 * weight an external-data reference into the checkpoint file that holds it, at
 * its byte offset. No weight passes through JavaScript and none is written a
 * second time: ONNX Runtime, given the folder as its external-data folder,
 * reads them straight from the checkpoint files. float16 and bfloat16 weights
 * are widened to float32 by a Cast inside ONNX Runtime (folded when the session
 * is created: the float32 copy is what stays in memory), so the model computes
 * in float32 whatever its stored type.
 *
 * @module
 */
import { readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { UserError } from "../../errors.ts";
import { isNotFound } from "../../os/fs_errors.ts";
import { DataType, encodeModel, type Node, node, type Tensor } from "../onnx_proto.ts";
import { archFromConfig, type ArchSpec } from "./config.ts";
import { decoderGraph, type WeightSource, type WeightUse } from "./decoder.ts";
import { type CheckpointWeights, readCheckpointWeights } from "./weights.ts";
import type { TensorRef } from "./tensors.ts";

/** ONNX's bfloat16 element type (TensorProto.BFLOAT16). */
const BFLOAT16 = 16;
const ONNX_TYPE: Record<string, number> = {
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: BFLOAT16,
};

/** A model folder read by {@link readHfFolder}. */
export interface HfModel {
  /** The folder. */
  dir: string;
  /**
   * ONNX Runtime's external-data folder: the deepest folder holding the weight
   * files' real paths (the folder itself, or `blobs/` in the Hugging Face cache,
   * whose snapshot files are symlinks there: ONNX Runtime resolves symlinks and
   * refuses data outside its folder). The references name the files' real paths
   * relative to it, so nothing is written anywhere.
   */
  dataDir: string;
  /** The parsed `config.json`. */
  config: Record<string, unknown>;
  spec: ArchSpec;
  /** The ONNX model: the graph, small constants and references into the weight files. */
  bytes: Uint8Array;
  /** The files scoring reads, relative to `dir`: `config.json`, the index, the weight files. */
  files: string[];
  /** Bytes of the stored weights, and of the same weights in float32 (what ONNX Runtime holds). */
  storedBytes: number;
  float32Bytes: number;
}

/** True when `path` is a folder holding `config.json` (a Hugging Face model folder). */
export function isHfFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory() && statSync(join(path, "config.json")).isFile();
  } catch (e) {
    // A path that is not there (or a file where a folder would be) is not a folder.
    if (isNotFound(e) || (e as { code?: string }).code === "ENOTDIR") return false;
    throw e;
  }
}

/**
 * The files holding a folder's weights, relative to it: the index (when
 * sharded), then the weight files (what a fingerprint hashes besides
 * `config.json`).
 */
export function hfWeightFiles(dir: string): string[] {
  const w = readCheckpointWeights(dir);
  return [...(w.index ? [w.index] : []), ...w.files];
}

/** Reads a model folder into an ONNX model (UserError naming the file, field or tensor). */
export function readHfFolder(dir: string): HfModel {
  const { config, configPath } = readConfig(dir);
  const spec = archFromConfig(config, configPath);
  const weights = readCheckpointWeights(dir);
  const refs = new ExternalWeights(dir, configPath, spec, weights);
  const g = decoderGraph(spec, refs.source, "float32");
  gatherBeforeWidening(g.nodes);
  checkEveryTensorUsed(weights, refs.used, spec, configPath);
  const bytes = encodeModel({
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    graph: {
      name: spec.kind,
      nodes: g.nodes,
      inputs: g.inputs,
      outputs: g.outputs,
      initializers: [...g.initializers, ...refs.initializers],
    },
  });
  const files = ["config.json", ...(weights.index ? [weights.index] : []), ...weights.files];
  return {
    dir,
    dataDir: refs.dataDir,
    config,
    spec,
    bytes,
    files,
    storedBytes: refs.storedBytes,
    float32Bytes: refs.float32Bytes,
  };
}

/** The folder's `config.json`, parsed. */
function readConfig(dir: string): { config: Record<string, unknown>; configPath: string } {
  const configPath = join(dir, "config.json");
  try {
    return { config: JSON.parse(readFileSync(configPath, "utf8")), configPath };
  } catch (e) {
    throw new UserError(`${configPath}: cannot be read as JSON (${(e as Error).message}).`);
  }
}

/**
 * The decoder's weights as external-data references into the checkpoint
 * files ({@link ExternalWeights.source}, asked by the graph builder for each
 * tensor): each tensor checked against the shape the graph needs, referenced
 * once, and transposed and widened to float32 by nodes the graph adds.
 */
class ExternalWeights {
  /** The tensors referenced so far, by name. */
  readonly used = new Set<string>();
  /** One external-data reference per used tensor. */
  readonly initializers: Tensor[] = [];
  /** ONNX Runtime's external-data folder ({@link HfModel.dataDir}). */
  readonly dataDir: string;
  storedBytes = 0;
  float32Bytes = 0;
  /** `name|use` (and `value|cast`) → the graph value already made for it. */
  private readonly made = new Map<string, string>();
  /** Each weight file's real path (symlinks resolved). */
  private readonly real: Map<string, string>;

  constructor(
    private readonly dir: string,
    private readonly configPath: string,
    private readonly spec: ArchSpec,
    private readonly weights: CheckpointWeights,
  ) {
    const files = new Set([...weights.tensors.values()].map((t) => t.file));
    this.real = new Map([...files].map((f) => [f, realpathSync(f)]));
    this.dataDir = commonFolder([...this.real.values()]);
  }

  readonly source: WeightSource = (name, shape, use, add) => {
    const key = `${name}|${use}`;
    const known = this.made.get(key);
    if (known) return known;
    const { stored, t } = this.checked(name, shape);
    this.reference(name, stored, t);
    const value = this.converted(name, t, use, add);
    this.made.set(key, value);
    return value;
  };

  /**
   * The stored tensor for the graph's `name` (GPT-2's own checkpoints name the
   * base model's tensors without `transformer.`): present, of a read dtype, of
   * the shape the graph needs.
   */
  private checked(name: string, shape: number[]): { stored: string; t: TensorRef } {
    const { dir, weights, spec, configPath } = this;
    const stored = spec.kind === "gpt2" && !weights.tensors.has(name)
      ? name.replace(/^transformer\./, "")
      : name;
    const t = weights.tensors.get(stored);
    if (!t) {
      throw new UserError(
        `${dir}: tensor ${name} is missing from ${weights.index ?? weights.files.join(", ")}, ` +
          `but a ${spec.kind} model with this config.json needs it; the folder is incomplete ` +
          "or its config.json belongs to another model.",
      );
    }
    if (!(t.dtype in ONNX_TYPE)) {
      throw new UserError(
        `${t.file}: tensor ${name} has dtype ${t.dtype}; only F32, F16 and BF16 weights are read.`,
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(
        `${t.file}: tensor ${name} has shape [${t.shape}] but ${configPath} implies [${shape}]; ` +
          "the weights and config.json do not belong together.",
      );
    }
    return { stored, t };
  }

  /**
   * The tensor's external-data reference (its file relative to dataDir,
   * offset, length) under the graph's `name`, once per `stored` tensor.
   */
  private reference(name: string, stored: string, t: TensorRef): void {
    if (this.used.has(stored)) return;
    this.used.add(stored);
    this.initializers.push({
      name,
      dims: t.shape,
      dataType: ONNX_TYPE[t.dtype],
      externalLocation: relative(this.dataDir, this.real.get(t.file)!),
      externalOffset: t.offset,
      externalLength: t.length,
    });
    this.storedBytes += t.length;
    this.float32Bytes += t.length * (4 / (t.dtype === "F32" ? 4 : 2));
  }

  /** The graph value of the tensor for `use`: transposed for a matrix, then widened to float32. */
  private converted(name: string, t: TensorRef, use: WeightUse, add: (n: Node) => void): string {
    let value = name;
    // Transposed in the stored type, then widened: the transient copy the folding makes
    // is the stored size, not float32's (Pythia-70M's float16 .bin: peak RSS at load
    // 674 MB against 751 with Cast first, measured side by side).
    if (use === "matrix" || use === "unembedding") {
      const transposed = `${name}/transposed`;
      add(node("Transpose", [value], [transposed], [{ name: "perm", ints: [1, 0] }]));
      value = transposed;
    }
    if (t.dtype !== "F32") {
      const cast = `${value}/float32`;
      if (!this.made.has(`${value}|cast`)) {
        add(node("Cast", [value], [cast], [{ name: "to", i: DataType.FLOAT }]));
        this.made.set(`${value}|cast`, cast);
      }
      value = cast;
    }
    return value;
  }
}

/** Every tensor of the checkpoint is part of the model (a tied `lm_head.weight` aside). */
function checkEveryTensorUsed(
  weights: CheckpointWeights,
  used: Set<string>,
  spec: ArchSpec,
  configPath: string,
): void {
  for (const [name, t] of weights.tensors) {
    if (used.has(name)) continue;
    if (spec.tied && name === "lm_head.weight") continue; // saved beside a tied embedding: unused
    throw new UserError(
      `${t.file}: tensor ${name} is not part of a ${spec.kind} model with this config.json ` +
        `(${configPath}); the checkpoint has parts this architecture does not implement.`,
    );
  }
}

/**
 * An embedding widened by a Cast and only gathered from is gathered in its
 * stored type and the gathered rows widened: the float16/bfloat16 table stays
 * as stored instead of a float32 copy (Pythia-70M: 51 MB instead of 103).
 */
function gatherBeforeWidening(nodes: Node[]): void {
  for (let i = 0; i < nodes.length; i++) {
    const cast = nodes[i];
    if (cast.opType !== "Cast") continue;
    const users = nodes.filter((n) => n.inputs.includes(cast.outputs[0]));
    if (
      users.length !== 1 || users[0].opType !== "Gather" || users[0].inputs[0] !== cast.outputs[0]
    ) {
      continue;
    }
    const gather = users[0];
    const rows = `${gather.outputs[0]}/stored`;
    const widen = node("Cast", [rows], [gather.outputs[0]], cast.attributes);
    gather.inputs = [cast.inputs[0], ...gather.inputs.slice(1)];
    gather.outputs = [rows];
    nodes.splice(nodes.indexOf(gather) + 1, 0, widen);
    nodes.splice(i, 1);
    i--;
  }
}

/** The deepest folder holding every path. */
function commonFolder(paths: string[]): string {
  let base = dirname(paths[0] ?? sep);
  while (!paths.every((p) => p.startsWith(base.endsWith(sep) ? base : base + sep))) {
    base = dirname(base);
  }
  return base;
}
