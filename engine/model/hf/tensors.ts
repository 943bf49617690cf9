/**
 * What the checkpoint readers (safetensors, PyTorch zip) return: where each
 * tensor's bytes lie in which file, never the bytes themselves.
 *
 * @module
 */

/** Element types a checkpoint may store, with their sizes in bytes (safetensors' names). */
export const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** The element types the graph builders read (widened to float32 inside ONNX Runtime). */
export type WeightDtype = "F32" | "F16" | "BF16";

/** One tensor of a checkpoint: its place in a file. */
export interface TensorRef {
  /** The state-dict name (`gpt_neox.layers.0.attention.dense.weight`). */
  name: string;
  /** safetensors' dtype name (see {@link DTYPE_BYTES}). */
  dtype: string;
  shape: number[];
  /** Absolute path of the file holding the bytes. */
  file: string;
  /** Absolute byte offset of the first element in `file`. */
  offset: number;
  /** Bytes (elements × element size). */
  length: number;
}

/** Elements of a shape (1 for a scalar). */
export function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
