/**
 * Reads a safetensors file's header (never its payload): a u64 little-endian
 * header length N, N bytes of JSON `{name: {dtype, shape, data_offsets:
 * [begin, end]}, "__metadata__": {...}}`, then the payload, offsets relative to
 * its start (8 + N). The file is untrusted: the header length, every dtype,
 * shape and offset is checked against the file's size before anything uses
 * it, and a bad one is a UserError naming the file and the tensor.
 *
 * @module
 */
import { UserError } from "../../errors.ts";
import { DTYPE_BYTES, elements, type TensorRef } from "./tensors.ts";
import { openFile } from "./_file.ts";

/** The largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * The tensors of one safetensors file, in header order.
 *
 * @example
 * ```ts ignore
 * for (const t of readSafetensors("model.safetensors")) console.log(t.name, t.dtype, t.shape);
 * ```
 */
export function readSafetensors(path: string): TensorRef[] {
  using f = openFile(path, "safetensors file");
  const bad = (what: string) =>
    new UserError(`${path}: ${what}; the safetensors file is damaged or not one.`);
  if (f.size < 8) throw bad(`${f.size} bytes, shorter than the 8-byte header length`);
  const n = new DataView(f.read(0, 8).buffer).getBigUint64(0, true);
  if (n < 2n || n > BigInt(Math.min(MAX_HEADER_BYTES, f.size - 8))) {
    throw bad(
      `header length ${n} is impossible for a file of ${f.size} bytes (at most ${
        Math.min(MAX_HEADER_BYTES, f.size - 8)
      })`,
    );
  }
  const headerLength = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(f.read(8, headerLength)));
  } catch (e) {
    throw bad(`the header is not JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw bad("the header is not a JSON object");
  }
  const base = 8 + headerLength;
  const payload = f.size - base;
  const out: TensorRef[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const badTensor = (what: string) => bad(`tensor ${name}: ${what}`);
    if (!entry || typeof entry !== "object") throw badTensor("the entry is not an object");
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw badTensor(`unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw badTensor(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw badTensor(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as number[];
    const length = elements(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== length) {
      throw badTensor(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${shape}] ` +
          `needs ${length}`,
      );
    }
    if (end > payload) {
      throw badTensor(
        `its bytes end at ${base + end}, beyond the file's end (${f.size} bytes): truncated file`,
      );
    }
    out.push({ name, dtype, shape: shape as number[], file: path, offset: base + begin, length });
  }
  return out;
}
