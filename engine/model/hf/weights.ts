/**
 * The weights of a Hugging Face model folder: which files hold them
 * (`model.safetensors`, sharded safetensors with `model.safetensors.index.json`,
 * `pytorch_model.bin`, sharded `.bin` with `pytorch_model.bin.index.json`) and
 * where each tensor lies in them. Legacy non-persistent buffers of old GPT-NeoX
 * files are dropped. Reads headers only.
 *
 * @module
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";
import { readSafetensors } from "./safetensors.ts";
import type { TensorRef } from "./tensors.ts";
import { readTorchZip } from "./torch_zip.ts";

/**
 * Buffers old GPT-NeoX and GPT-2 checkpoints carry that are not weights (the
 * causal mask and rotary frequencies, recomputed by the graph).
 */
export const LEGACY_BUFFER =
  /(^|\.)attention\.(bias|masked_bias|rotary_emb\.inv_freq)$|\.rotary_emb\.inv_freq$|(^|\.)attn\.(bias|masked_bias)$/;

/** The weight files of a folder and their tensors. */
export interface CheckpointWeights {
  /** Weight files, as names relative to the folder, in a stable order. */
  files: string[];
  /** The index file, when the weights are sharded. */
  index?: string;
  /** Tensors by name (legacy buffers dropped). */
  tensors: Map<string, TensorRef>;
}

const FORMATS = [
  { index: "model.safetensors.index.json", single: "model.safetensors", read: readSafetensors },
  { index: "pytorch_model.bin.index.json", single: "pytorch_model.bin", read: readTorchZip },
];

/** Finds and reads the weights of the model folder `dir` (UserError naming file and tensor). */
export function readCheckpointWeights(dir: string): CheckpointWeights {
  for (const format of FORMATS) {
    const indexPath = join(dir, format.index);
    if (existsSync(indexPath)) {
      const files = readIndex(indexPath);
      const tensors = new Map<string, TensorRef>();
      for (const [file, names] of files) {
        const path = join(dir, file);
        if (!existsSync(path)) {
          throw new UserError(
            `${indexPath}: names ${file} (tensor ${names[0]}) but ${path} does not exist; ` +
              "download every shard of the checkpoint.",
          );
        }
        const found = new Map(format.read(path).map((t) => [t.name, t]));
        for (const name of names) {
          const t = found.get(name);
          if (!t) {
            throw new UserError(
              `${path}: has no tensor ${name}, which ${format.index} places in it; the shard ` +
                "does not belong to this index (a stale or mixed download?).",
            );
          }
          if (!LEGACY_BUFFER.test(name)) tensors.set(name, t);
        }
      }
      return { files: [...files.keys()], index: format.index, tensors };
    }
    const single = join(dir, format.single);
    if (existsSync(single)) {
      const tensors = new Map<string, TensorRef>();
      for (const t of format.read(single)) {
        if (tensors.has(t.name)) throw new UserError(`${single}: tensor ${t.name} appears twice.`);
        if (!LEGACY_BUFFER.test(t.name)) tensors.set(t.name, t);
      }
      return { files: [format.single], tensors };
    }
  }
  throw new UserError(
    `${dir}: holds config.json but no weights (model.safetensors, model.safetensors.index.json, ` +
      "pytorch_model.bin or pytorch_model.bin.index.json); download the checkpoint's files.",
  );
}

/** An index's shard files, each with the tensors it names (in the index's order). */
function readIndex(path: string): Map<string, string[]> {
  const size = statSync(path).size;
  if (size > 64 << 20) throw new UserError(`${path}: ${size} bytes, too large for an index.`);
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message}).`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (!map || typeof map !== "object" || Array.isArray(map)) {
    throw new UserError(`${path}: no weight_map object {tensor: file}.`);
  }
  const files = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || !/^[^/\\]+$/.test(file) || file === "." || file === "..") {
      throw new UserError(
        `${path}: weight_map.${name} is ${JSON.stringify(file)}, not a file name in the folder.`,
      );
    }
    files.set(file, [...(files.get(file) ?? []), name]);
  }
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
