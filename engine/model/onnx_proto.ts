/**
 * A minimal protobuf wire-format codec for the ONNX messages the engine needs:
 * parse a model's graph interface (inputs, outputs, nodes, initializer
 * metadata), encode small messages, and append nodes/inputs/outputs to an
 * existing model without re-encoding its (possibly huge) initializers.
 *
 * Appending relies on protobuf merge semantics: a singular embedded message
 * field that occurs twice is merged, and repeated fields are concatenated. So
 * `model bytes + encoded field 7 (graph) holding only new nodes` is a valid
 * model whose graph has the old nodes followed by the new ones.
 *
 * @module
 */

/** ONNX TensorProto.DataType codes used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/** A tensor dimension: a number, a symbolic name, or unknown (null). */
export type Dim = number | string | null;

/** A graph input/output: name, element type and shape (null: unknown rank). */
export interface ValueInfo {
  name: string;
  elemType: number;
  dims: Dim[] | null;
}

/** A node attribute (only the kinds the engine writes or reads). */
export interface Attribute {
  name: string;
  i?: number;
  f?: number;
  s?: string;
  ints?: number[];
  t?: Tensor;
  g?: Graph;
  /** An encoded GraphProto (written as is; for subgraphs assembled from copied bytes). */
  graphBytes?: Uint8Array;
}

/** A graph node. */
export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes: Attribute[];
}

/** A tensor; `raw` views the encoded bytes (never copied when parsing). */
export interface Tensor {
  name: string;
  dims: number[];
  dataType: number;
  raw?: Uint8Array;
  /** `location` of external data, when stored outside the model file. */
  externalLocation?: string;
  /** Byte offset of the data within the external file (absent: 0). */
  externalOffset?: number;
  /** Byte length of the data within the external file (absent: to the file's end). */
  externalLength?: number;
}

/** A graph (subgraphs of If/Loop nodes are parsed too). */
export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Tensor[];
}

/** A model: opsets plus its graph. */
export interface Model {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  graph: Graph;
}

// ---------------------------------------------------------------- reading

interface Field {
  no: number;
  wire: number;
  /** varint / fixed value (wire 0, 1, 5) */
  num: bigint;
  /** length-delimited payload (wire 2) */
  bytes: Uint8Array;
  /** Byte range of the whole field (tag included) within the parsed buffer. */
  start: number;
  end: number;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

function* fields(buf: Uint8Array): Generator<Field> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error("truncated protobuf varint");
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const start = pos;
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    let num = 0n;
    let bytes: Uint8Array = EMPTY;
    if (wire === 0) num = varint();
    else if (wire === 1) {
      num = view.getBigUint64(pos, true);
      pos += 8;
    } else if (wire === 5) {
      num = BigInt(view.getUint32(pos, true));
      pos += 4;
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error("truncated protobuf field");
      bytes = buf.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    yield { no, wire, num, bytes, start, end: pos };
  }
}

const int64 = (v: bigint): number => Number(BigInt.asIntN(64, v));

/** Repeated int64: packed (wire 2) or one value per field (wire 0). */
function ints(f: Field, into: number[]): void {
  if (f.wire === 0) {
    into.push(int64(f.num));
    return;
  }
  for (const g of fields(packedAsFields(f.bytes))) into.push(int64(g.num));
}

/** Re-tags a packed varint payload as a sequence of field-1 varints. */
function packedAsFields(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    out.push(0x08);
    while (bytes[i] & 0x80) out.push(bytes[i++]);
    out.push(bytes[i++]);
  }
  return new Uint8Array(out);
}

function parseValueInfo(buf: Uint8Array): ValueInfo {
  const vi: ValueInfo = { name: "", elemType: 0, dims: null };
  for (const f of fields(buf)) {
    if (f.no === 1) vi.name = utf8.decode(f.bytes);
    if (f.no !== 2) continue;
    for (const t of fields(f.bytes)) {
      if (t.no !== 1) continue; // tensor_type
      for (const tt of fields(t.bytes)) {
        if (tt.no === 1) vi.elemType = Number(tt.num);
        if (tt.no !== 2) continue;
        vi.dims = [];
        for (const d of fields(tt.bytes)) {
          if (d.no !== 1) continue;
          let dim: Dim = null;
          for (const dv of fields(d.bytes)) {
            if (dv.no === 1) dim = int64(dv.num);
            if (dv.no === 2) dim = utf8.decode(dv.bytes);
          }
          vi.dims.push(dim);
        }
      }
    }
  }
  return vi;
}

function parseTensor(buf: Uint8Array): Tensor {
  const t: Tensor = { name: "", dims: [], dataType: 0 };
  for (const f of fields(buf)) {
    if (f.no === 1) ints(f, t.dims);
    else if (f.no === 2) t.dataType = Number(f.num);
    else if (f.no === 8) t.name = utf8.decode(f.bytes);
    else if (f.no === 9) t.raw = f.bytes;
    else if (f.no === 13) {
      let key = "";
      let value = "";
      for (const e of fields(f.bytes)) {
        if (e.no === 1) key = utf8.decode(e.bytes);
        if (e.no === 2) value = utf8.decode(e.bytes);
      }
      if (key === "location") t.externalLocation = value;
      if (key === "offset") t.externalOffset = Number(value);
      if (key === "length") t.externalLength = Number(value);
    }
  }
  return t;
}

function parseAttribute(buf: Uint8Array): Attribute {
  const a: Attribute = { name: "" };
  for (const f of fields(buf)) {
    if (f.no === 1) a.name = utf8.decode(f.bytes);
    else if (f.no === 2) a.f = new Float32Array(new Uint32Array([Number(f.num)]).buffer)[0];
    else if (f.no === 3) a.i = int64(f.num);
    else if (f.no === 4) a.s = utf8.decode(f.bytes);
    else if (f.no === 5) a.t = parseTensor(f.bytes);
    else if (f.no === 6) a.g = parseGraph(f.bytes);
    else if (f.no === 8) ints(f, a.ints ??= []);
  }
  return a;
}

function parseNode(buf: Uint8Array): Node {
  const n: Node = { opType: "", inputs: [], outputs: [], attributes: [] };
  for (const f of fields(buf)) {
    if (f.no === 1) n.inputs.push(utf8.decode(f.bytes));
    else if (f.no === 2) n.outputs.push(utf8.decode(f.bytes));
    else if (f.no === 3) n.name = utf8.decode(f.bytes);
    else if (f.no === 4) n.opType = utf8.decode(f.bytes);
    else if (f.no === 5) n.attributes.push(parseAttribute(f.bytes));
    else if (f.no === 7) n.domain = utf8.decode(f.bytes);
  }
  return n;
}

/** Parses an encoded GraphProto. */
export function parseGraph(buf: Uint8Array): Graph {
  const g: Graph = { name: "", nodes: [], inputs: [], outputs: [], initializers: [] };
  for (const f of fields(buf)) {
    if (f.no === 1) g.nodes.push(parseNode(f.bytes));
    else if (f.no === 2) g.name = utf8.decode(f.bytes);
    else if (f.no === 5) g.initializers.push(parseTensor(f.bytes));
    else if (f.no === 11) g.inputs.push(parseValueInfo(f.bytes));
    else if (f.no === 12) g.outputs.push(parseValueInfo(f.bytes));
  }
  return g;
}

/** Parses an encoded ModelProto (throws a plain Error when the bytes are not one). */
export function parseModel(buf: Uint8Array): Model {
  const m: Model = {
    irVersion: 0,
    opsets: [],
    graph: { name: "", nodes: [], inputs: [], outputs: [], initializers: [] },
  };
  let sawGraph = false;
  for (const f of fields(buf)) {
    if (f.no === 1) m.irVersion = int64(f.num);
    else if (f.no === 8) {
      const o = { domain: "", version: 0 };
      for (const e of fields(f.bytes)) {
        if (e.no === 1) o.domain = utf8.decode(e.bytes);
        if (e.no === 2) o.version = int64(e.num);
      }
      m.opsets.push(o);
    } else if (f.no === 7) {
      const g = parseGraph(f.bytes);
      if (!sawGraph) m.graph = g;
      else {
        m.graph.nodes.push(...g.nodes);
        m.graph.inputs.push(...g.inputs);
        m.graph.outputs.push(...g.outputs);
        m.graph.initializers.push(...g.initializers);
      }
      sawGraph = true;
    }
  }
  if (!sawGraph) throw new Error("no graph in ONNX model");
  return m;
}

// ---------------------------------------------------------------- writing

const utf8e = new TextEncoder();

/** Growable protobuf writer. */
class Writer {
  #buf = new Uint8Array(256);
  #len = 0;
  #ensure(n: number) {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    this.#ensure(10);
    while (x >= 0x80n) {
      this.#buf[this.#len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.#buf[this.#len++] = Number(x);
    return this;
  }
  tag(no: number, wire: number): this {
    return this.varint((no << 3) | wire);
  }
  int(no: number, v: number | bigint): this {
    return this.tag(no, 0).varint(v);
  }
  bytes(no: number, b: Uint8Array): this {
    this.tag(no, 2).varint(b.length);
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  string(no: number, s: string): this {
    return this.bytes(no, utf8e.encode(s));
  }
  float(no: number, v: number): this {
    this.tag(no, 5);
    this.#ensure(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, v, true);
    this.#len += 4;
    return this;
  }
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** The tag and length of a length-delimited field (to stream a large field's payload after it). */
export function fieldHeader(no: number, length: number): Uint8Array {
  return new Writer().tag(no, 2).varint(length).finish();
}

/** Encodes a TensorProto (raw data or external location). */
export function encodeTensor(t: Tensor): Uint8Array {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.externalLocation !== undefined) {
    const entry = (key: string, value: string) =>
      w.bytes(13, new Writer().string(1, key).string(2, value).finish());
    entry("location", t.externalLocation);
    if (t.externalOffset !== undefined) entry("offset", String(t.externalOffset));
    if (t.externalLength !== undefined) entry("length", String(t.externalLength));
    w.int(14, 1);
  }
  return w.finish();
}

function encodeAttribute(a: Attribute): Uint8Array {
  const w = new Writer().string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f).int(20, 1);
  else if (a.i !== undefined) w.int(3, a.i).int(20, 2);
  else if (a.s !== undefined) w.string(4, a.s).int(20, 3);
  else if (a.t !== undefined) w.bytes(5, encodeTensor(a.t)).int(20, 4);
  else if (a.g !== undefined) w.bytes(6, encodeGraph(a.g)).int(20, 5);
  else if (a.graphBytes !== undefined) w.bytes(6, a.graphBytes).int(20, 5);
  else if (a.ints !== undefined) {
    for (const v of a.ints) w.int(8, v);
    w.int(20, 7);
  }
  return w.finish();
}

/** Encodes a NodeProto. */
export function encodeNode(n: Node): Uint8Array {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes) w.bytes(5, encodeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

/** Encodes a ValueInfoProto of a tensor. */
export function encodeValueInfo(v: ValueInfo): Uint8Array {
  const tt = new Writer().int(1, v.elemType);
  if (v.dims) {
    const shape = new Writer();
    for (const d of v.dims) {
      const dim = new Writer();
      if (typeof d === "number") dim.int(1, d);
      else if (typeof d === "string") dim.string(2, d);
      shape.bytes(1, dim.finish());
    }
    tt.bytes(2, shape.finish());
  }
  const type = new Writer().bytes(1, tt.finish()).finish();
  return new Writer().string(1, v.name).bytes(2, type).finish();
}

/** Encodes a GraphProto (all parts optional: a partial graph merges into another). */
export function encodeGraph(g: Partial<Graph>): Uint8Array {
  const w = new Writer();
  for (const n of g.nodes ?? []) w.bytes(1, encodeNode(n));
  if (g.name) w.string(2, g.name);
  for (const t of g.initializers ?? []) w.bytes(5, encodeTensor(t));
  for (const v of g.inputs ?? []) w.bytes(11, encodeValueInfo(v));
  for (const v of g.outputs ?? []) w.bytes(12, encodeValueInfo(v));
  return w.finish();
}

/** Encodes a complete ModelProto. */
export function encodeModel(m: Model): Uint8Array {
  const w = new Writer().int(1, m.irVersion).string(2, "memorization-harness");
  for (const o of m.opsets) {
    const op = new Writer();
    if (o.domain) op.string(1, o.domain);
    op.int(2, o.version);
    w.bytes(8, op.finish());
  }
  return w.bytes(7, encodeGraph(m.graph)).finish();
}

/** A model's bytes taken apart at its (first) graph: each part a list of whole encoded fields. */
export interface SplitModel {
  /** The ModelProto's fields other than the graph (IR version, opsets, producer, ...). */
  model: Uint8Array[];
  /** The graph's fields by kind: NodeProto (1), TensorProto and sparse initializers (5, 15). */
  nodes: Uint8Array[];
  initializers: Uint8Array[];
  /** The graph's name (field 2), if any. */
  name: Uint8Array[];
}

/** Splits model bytes into its fields (copied byte for byte; inputs, outputs and value_info dropped). */
export function splitModel(model: Uint8Array): SplitModel {
  const out: SplitModel = { model: [], nodes: [], initializers: [], name: [] };
  let seen = false;
  for (const top of fields(model)) {
    const whole = model.subarray(top.start, top.end);
    if (top.no !== 7 || seen) {
      out.model.push(whole);
      continue;
    }
    seen = true;
    for (const f of fields(top.bytes)) {
      const part = top.bytes.subarray(f.start, f.end);
      if (f.no === 1) out.nodes.push(part);
      else if (f.no === 5 || f.no === 15) out.initializers.push(part);
      else if (f.no === 2) out.name.push(part);
    }
  }
  return out;
}

/** Concatenates encoded parts. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concat(...parts);
}

/** Returns model bytes whose graph is extended by `extra` (nodes, inputs, outputs, initializers). */
export function appendToGraph(model: Uint8Array, extra: Partial<Graph>): Uint8Array {
  const tail = new Writer().bytes(7, encodeGraph(extra)).finish();
  const out = new Uint8Array(model.length + tail.length);
  out.set(model);
  out.set(tail, model.length);
  return out;
}

/**
 * Returns model bytes with node `index` of the (first) graph replaced by
 * `replacement` (one node or several, in order); everything else is copied byte for byte.
 */
export function replaceGraphNode(
  model: Uint8Array,
  index: number,
  replacement: Node | Node[],
): Uint8Array {
  for (const g of fields(model)) {
    if (g.no !== 7) continue;
    let i = 0;
    for (const n of fields(g.bytes)) {
      if (n.no !== 1 || i++ !== index) continue;
      const nodeField = concat(
        ...[replacement].flat().map((r) => new Writer().bytes(1, encodeNode(r)).finish()),
      );
      const graph = concat(g.bytes.subarray(0, n.start), nodeField, g.bytes.subarray(n.end));
      const graphField = new Writer().bytes(7, graph).finish();
      return concat(model.subarray(0, g.start), graphField, model.subarray(g.end));
    }
    break;
  }
  throw new Error(`no node ${index} in the model's graph`);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A float32 tensor from values (helper for tests and small constants). */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  const raw = new Uint8Array(new Float32Array(values).buffer);
  return { name, dims, dataType: DataType.FLOAT, raw };
}

/** An int64 tensor from values. */
export function int64Tensor(name: string, dims: number[], values: number[]): Tensor {
  const raw = new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);
  return { name, dims, dataType: DataType.INT64, raw };
}

/** Shorthand for a node. */
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: Attribute[] = [],
): Node {
  return { opType, inputs, outputs, attributes };
}
