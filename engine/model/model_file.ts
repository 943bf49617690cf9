/**
 * Reads an ONNX model file without holding its weights in JavaScript: the
 * file's protobuf structure is walked with positional reads, every large
 * inline initializer is rewritten as an external-data reference into the
 * model file itself (`location` = the file's name, `offset` = where its raw
 * bytes lie), and everything else is copied byte for byte. The result is a
 * small model (the graph, small constants, references) that ONNX Runtime loads
 * from bytes with the model's folder as its external-data folder, reading each
 * weight straight from the file once. (The model's fingerprint is the
 * store's: engine/model/fingerprint.ts.)
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { fieldHeader } from "./onnx_proto.ts";

/** Inline tensors whose raw data is at least this many bytes become references. */
export const EXTERNAL_THRESHOLD = 4096;

/** A model file read by {@link readModelFile}. */
export interface ModelFile {
  /** The model with its large inline weights as references into the file itself. */
  bytes: Uint8Array;
  /** Bytes of the file. */
  size: number;
}

interface Span {
  no: number;
  wire: number;
  /** Start of the field (its tag) and of its payload, end of the field. */
  start: number;
  payload: number;
  end: number;
}

/** Positional reads of one open file. */
class Source {
  readonly size: number;
  constructor(readonly fd: number) {
    this.size = fstatSync(fd).size;
  }
  read(pos: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, out, got, n - got, pos + got);
      if (r === 0) throw new Error(`truncated protobuf at byte ${pos + got}`);
      got += r;
    }
    return out;
  }
  /** The fields of the message stored in [from, to). */
  *fields(from: number, to: number): Generator<Span> {
    let pos = from;
    while (pos < to) {
      const head = this.read(pos, Math.min(20, to - pos));
      let at = 0;
      const varint = () => {
        let v = 0, mul = 1;
        for (;;) {
          if (at >= head.length) throw new Error(`truncated protobuf varint at byte ${pos + at}`);
          const b = head[at++];
          v += (b & 0x7f) * mul;
          if ((b & 0x80) === 0) return v;
          mul *= 128;
        }
      };
      const key = varint();
      const no = Math.floor(key / 8), wire = key % 8;
      let len: number;
      if (wire === 0) {
        varint();
        len = 0;
      } else if (wire === 1) len = 8;
      else if (wire === 5) len = 4;
      else if (wire === 2) len = varint();
      else throw new Error(`unsupported protobuf wire type ${wire} at byte ${pos}`);
      const payload = pos + at;
      const end = payload + len;
      if (end > to) throw new Error(`truncated protobuf field at byte ${pos}`);
      yield { no, wire, start: pos, payload, end };
      pos = end;
    }
  }
  bytes(s: Span): Uint8Array {
    return this.read(s.start, s.end - s.start);
  }
}

const enc = new TextEncoder();

/** A field of string key/value pairs entry (StringStringEntryProto) as field 13 of a tensor. */
function externalEntry(key: string, value: string): Uint8Array[] {
  const k = enc.encode(key), v = enc.encode(value);
  const body = [fieldHeader(1, k.length), k, fieldHeader(2, v.length), v];
  return [fieldHeader(13, body.reduce((n, b) => n + b.length, 0)), ...body];
}

/** A tensor's fields with its raw data replaced by a reference to [offset, offset + length) of `location`. */
function asReference(src: Source, tensor: Span, location: string): Uint8Array[] | null {
  const parts: Uint8Array[] = [];
  let raw: Span | null = null;
  for (const f of src.fields(tensor.payload, tensor.end)) {
    if (f.no === 9 && f.wire === 2) raw = f;
    else if (f.no === 14) return null; // already external
    else parts.push(src.bytes(f));
  }
  if (!raw || raw.end - raw.payload < EXTERNAL_THRESHOLD) return null;
  parts.push(
    ...externalEntry("location", location),
    ...externalEntry("offset", String(raw.payload)),
    ...externalEntry("length", String(raw.end - raw.payload)),
    Uint8Array.of(14 << 3, 1), // data_location = EXTERNAL
  );
  return parts;
}

/**
 * Reads a model as described in the module doc (throws a plain Error on bad
 * protobuf). `location`: what the references name instead of the file's name
 * (the fingerprint passes a name no file has, to tell them from the model's
 * own external data).
 */
export function readModelFile(path: string, opts: { location?: string } = {}): ModelFile {
  const fd = openSync(path, "r");
  try {
    const src = new Source(fd);
    const location = opts.location ?? basename(path);
    const out: Uint8Array[] = [];
    for (const top of src.fields(0, src.size)) {
      if (top.no !== 7 || top.wire !== 2) {
        out.push(src.bytes(top));
        continue;
      }
      const graph: Uint8Array[] = [];
      for (const f of src.fields(top.payload, top.end)) {
        const big = f.no === 5 && f.wire === 2 && f.end - f.payload >= EXTERNAL_THRESHOLD;
        const ref = big ? asReference(src, f, location) : null;
        if (!ref) {
          graph.push(src.bytes(f));
          continue;
        }
        graph.push(fieldHeader(5, ref.reduce((n, b) => n + b.length, 0)), ...ref);
      }
      out.push(fieldHeader(7, graph.reduce((n, b) => n + b.length, 0)), ...graph);
    }
    const bytes = new Uint8Array(out.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of out) {
      bytes.set(b, at);
      at += b.length;
    }
    return { bytes, size: src.size };
  } finally {
    closeSync(fd);
  }
}
