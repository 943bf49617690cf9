/**
 * NumPy `.npy` headers (format versions 1, 2 and 3) and the integer element
 * types the token readers decode. Only little-endian integer dtypes in C
 * order are accepted; anything else is a {@link UserError} saying how to
 * convert the file.
 *
 * @module
 */
import { UserError } from "../errors.ts";

/** An integer element type of token files. */
export type IntDtype =
  | "uint8"
  | "int8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64";

/** Bytes per element of each {@link IntDtype}. */
export const ITEM_SIZE: Record<IntDtype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
};

/** A parsed `.npy` header. */
export interface NpyHeader {
  dtype: IntDtype;
  shape: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
}

const NPY_DTYPES: Record<string, IntDtype> = {
  u1: "uint8",
  i1: "int8",
  i2: "int16",
  u2: "uint16",
  i4: "int32",
  u4: "uint32",
  i8: "int64",
  u8: "uint64",
};

/**
 * Parses the header at the start of a `.npy` file (`bytes` holds at least its
 * first bytes; 64 KiB is plenty). `path` names the file in errors.
 */
export function parseNpyHeader(bytes: Uint8Array, path: string): NpyHeader {
  const bad = (why: string): never => {
    throw new UserError(
      `${path}: not a usable .npy file: ${why}. Save token rows with numpy.save(path, ` +
        `array.astype(numpy.uint16)) (a C-ordered integer array).`,
    );
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) bad("missing \\x93NUMPY magic");
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let start: number;
  if (major === 1) [headerLength, start] = [view.getUint16(8, true), 10];
  else if (major === 2 || major === 3) {
    if (bytes.length < 12) bad("truncated header");
    [headerLength, start] = [view.getUint32(8, true), 12];
  } else return bad(`unsupported format version ${major} (expected 1, 2 or 3)`);
  if (start + headerLength > bytes.length) bad("truncated header");
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  if (!descr) return bad(`no integer 'descr' in header ${header.trim()}`);
  const [, order, kind, size] = descr;
  const dtype = NPY_DTYPES[kind + size];
  if (!dtype) return bad(`dtype ${order}${kind}${size} is not an integer type`);
  if (order === ">" && size !== "1") bad("big-endian data (use array.astype('<u2'))");
  if (/'fortran_order'\s*:\s*True/.test(header)) {
    bad("Fortran order (use numpy.ascontiguousarray)");
  }
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!shapeText) return bad("no 'shape' in header");
  const shape = shapeText[1].split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (shape.some((n) => !Number.isSafeInteger(n) || n < 0)) bad(`bad shape (${shapeText[1]})`);
  return { dtype, shape, dataOffset: start + headerLength };
}

/** Whether typed arrays on this machine are little-endian (then the fast paths apply). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Decodes `count` little-endian integers of `dtype` from `view` at `byteOffset`
 * into `out` at `outOffset`. Returns the index in `out` of the first value
 * outside the int32 token range [0, 2^31), or -1.
 */
export function decodeInts(
  view: DataView,
  byteOffset: number,
  dtype: IntDtype,
  count: number,
  out: Int32Array,
  outOffset: number,
): number {
  const at = view.byteOffset + byteOffset;
  if (LITTLE_ENDIAN && dtype === "uint16" && at % 2 === 0) {
    out.set(new Uint16Array(view.buffer, at, count), outOffset);
    return -1;
  }
  if (LITTLE_ENDIAN && dtype === "int32" && at % 4 === 0) {
    const src = new Int32Array(view.buffer, at, count);
    out.set(src, outOffset);
    const negative = src.findIndex((v) => v < 0);
    return negative < 0 ? -1 : outOffset + negative;
  }
  let bad = -1;
  for (let i = 0; i < count; i++) {
    let v: number;
    switch (dtype) {
      case "uint16":
        v = view.getUint16(byteOffset + 2 * i, true);
        break;
      case "int32":
        v = view.getInt32(byteOffset + 4 * i, true);
        break;
      case "uint8":
        v = view.getUint8(byteOffset + i);
        break;
      case "int8":
        v = view.getInt8(byteOffset + i);
        break;
      case "int16":
        v = view.getInt16(byteOffset + 2 * i, true);
        break;
      case "uint32":
        v = view.getUint32(byteOffset + 4 * i, true);
        break;
      default: {
        const lo = view.getUint32(byteOffset + 8 * i, true);
        const hi = view.getUint32(byteOffset + 8 * i + 4, true);
        v = hi === 0 ? lo : -1;
      }
    }
    if ((v < 0 || v > 0x7fffffff) && bad < 0) bad = outOffset + i;
    out[outOffset + i] = v;
  }
  return bad;
}
