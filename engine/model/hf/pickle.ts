/**
 * A restricted reader of the pickles `torch.save` writes for a state dict
 * (protocol 2, also the opcodes of protocols 3–4 it may use): an ordered dict of
 * tensors, each `torch._utils._rebuild_tensor_v2(storage, storage_offset, size,
 * stride, requires_grad, backward_hooks)` over a storage named by a persistent
 * id `('storage', torch.HalfStorage, key, location, numel)`. Nothing is ever
 * executed: the only globals are `collections.OrderedDict`, the two rebuild
 * functions and the storage classes, each interpreted here; any other global
 * or opcode is an error naming it. (npm's `pickleparser` reads any pickle into
 * generic objects; this reader's allow-list is the point, so it is our own.)
 *
 * @module
 */

/** A storage named by a persistent id. */
export interface PickledStorage {
  kind: "storage";
  /** safetensors' dtype name of the storage class (`F16` for `torch.HalfStorage`). */
  dtype: string;
  /** The storage's key: its bytes are the zip entry `<archive>/data/<key>`. */
  key: string;
  /** Elements of the storage. */
  numel: number;
}

/** A tensor rebuilt from a storage. */
export interface PickledTensor {
  kind: "tensor";
  storage: PickledStorage;
  /** Offset in elements. */
  offset: number;
  size: number[];
  stride: number[];
}

/** The dtype of each storage class `torch.save` names. */
export const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

type Value =
  | null
  | boolean
  | number
  | string
  | Value[]
  | Map<Value, Value>
  | Global
  | PickledStorage
  | PickledTensor
  | Mark;

interface Global {
  kind: "global";
  name: string;
}

const MARK = { kind: "mark" } as const;
type Mark = typeof MARK;

const FUNCTIONS = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
]);

/** An error in the pickle (the caller adds the file's name). */
export class PickleError extends Error {}

/**
 * Reads a state-dict pickle into its ordered entries (name → tensor).
 * Throws {@link PickleError} on anything outside the subset.
 */
export function readStateDictPickle(bytes: Uint8Array): Map<string, PickledTensor> {
  const m = new Unpickler(bytes);
  for (;;) {
    const op = m.input.u8();
    if (op === STOP) return stateDict(m, m.pop());
    const handler = HANDLERS.get(op);
    if (!handler) {
      return m.fail(
        `opcode 0x${op.toString(16).padStart(2, "0")} is not part of a torch.save state dict`,
      );
    }
    handler(m);
  }
}

// ------------------------------------------------------------------ the input and the machine

/**
 * The pickle's bytes and the position read next. Every read is bounded by the
 * bytes; errors name the position they were found at.
 */
class PickleInput {
  pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(what: string): never {
    throw new PickleError(`${what} at byte ${this.pos}`);
  }

  /** `n` more bytes are there. */
  need(n: number): void {
    if (this.pos + n > this.bytes.length) this.fail("truncated pickle");
  }

  /** The value `get` reads from the next `n` bytes (checked there), which are then passed. */
  private fixed<T>(n: number, get: (at: number) => T): T {
    this.need(n);
    this.pos += n;
    return get(this.pos - n);
  }

  u8(): number {
    return this.fixed(1, (at) => this.bytes[at]);
  }

  u16(): number {
    return this.fixed(2, (at) => this.view.getUint16(at, true));
  }

  u32(): number {
    return this.fixed(4, (at) => this.view.getUint32(at, true));
  }

  i32(): number {
    return this.fixed(4, (at) => this.view.getInt32(at, true));
  }

  /** An unsigned 64-bit length, at most 2^53. */
  u64(): number {
    const v = this.fixed(8, (at) => this.view.getBigUint64(at, true));
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail("length beyond 2^53");
    return Number(v);
  }

  /** A big-endian IEEE 754 double. */
  f64(): number {
    return this.fixed(8, (at) => this.view.getFloat64(at, false));
  }

  /** A little-endian two's-complement integer of `n` bytes, within ±(2^53 − 1). */
  long(n: number): number {
    this.need(n);
    const { bytes, pos } = this;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
    if (n && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    this.pos += n;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      this.fail("an integer beyond 2^53");
    }
    return Number(v);
  }

  /** `n` bytes of UTF-8 (invalid UTF-8 is an error here, not the decoder's TypeError). */
  text(n: number): string {
    this.need(n);
    let s: string;
    try {
      s = this.utf8.decode(this.bytes.subarray(this.pos, this.pos + n));
    } catch (e) {
      if (e instanceof TypeError) this.fail("a string that is not UTF-8");
      throw e;
    }
    this.pos += n;
    return s;
  }

  /** A line of text up to its newline (GLOBAL's module and name). */
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail("truncated GLOBAL");
    const s = this.text(end - this.pos);
    this.pos++;
    return s;
  }
}

/** The unpickler's state: the input, the stack (with its MARKs) and the memo. */
class Unpickler {
  readonly input: PickleInput;
  readonly stack: Value[] = [];
  readonly memo = new Map<number, Value>();

  constructor(bytes: Uint8Array) {
    this.input = new PickleInput(bytes);
  }

  fail(what: string): never {
    return this.input.fail(what);
  }

  push(v: Value): void {
    this.stack.push(v);
  }

  /** The top value (never a MARK), removed. */
  pop(): Value {
    if (!this.stack.length) this.fail("pickle stack underflow");
    const v = this.stack.pop()!;
    if (v === MARK) this.fail("unexpected MARK");
    return v;
  }

  /** The values above the topmost MARK, removed with it. */
  popMark(): Value[] {
    const at = this.stack.lastIndexOf(MARK);
    if (at < 0) this.fail("no MARK");
    const items = this.stack.splice(at);
    items.shift();
    return items;
  }

  /** The top value, left in place. */
  top(): Value {
    if (!this.stack.length) this.fail("pickle stack underflow");
    return this.stack[this.stack.length - 1];
  }

  /** The dict on top of the stack (SETITEM, SETITEMS). */
  topDict(): Map<Value, Value> {
    const v = this.top();
    if (!(v instanceof Map)) this.fail("SETITEM(S) on a non-dict");
    return v as Map<Value, Value>;
  }

  /** The list on top of the stack (APPEND, APPENDS). */
  topList(op: string): Value[] {
    const l = this.top();
    if (!Array.isArray(l)) this.fail(`${op} to a non-list`);
    return l as Value[];
  }
}

// ------------------------------------------------------------------ the opcodes, by group

type Handler = (m: Unpickler) => void;

const STOP = 0x2e;

/** The protocol header and frames (a frame's length is read and its bytes read as a stream). */
const FRAMING: [number, Handler][] = [
  [0x80, (m) => { // PROTO
    if (m.input.u8() > 5) m.fail("unsupported pickle protocol");
  }],
  [0x95, (m) => void m.input.u64()], // FRAME
];

/** Containers built on the stack: MARK, empty and marked dicts, lists and tuples, their items. */
const CONTAINERS: [number, Handler][] = [
  [0x28, (m) => m.push(MARK)], // MARK
  [0x7d, (m) => m.push(new Map())], // EMPTY_DICT
  [0x5d, (m) => m.push([])], // EMPTY_LIST
  [0x29, (m) => m.push([])], // EMPTY_TUPLE
  [0x64, (m) => { // DICT
    const items = m.popMark();
    const d = new Map<Value, Value>();
    for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
    m.push(d);
  }],
  [0x6c, (m) => m.push(m.popMark())], // LIST
  [0x74, (m) => m.push(m.popMark())], // TUPLE
  [0x85, (m) => m.push([m.pop()])], // TUPLE1
  [0x86, (m) => { // TUPLE2
    const b = m.pop(), a = m.pop();
    m.push([a, b]);
  }],
  [0x87, (m) => { // TUPLE3
    const c = m.pop(), b = m.pop(), a = m.pop();
    m.push([a, b, c]);
  }],
  [0x73, (m) => { // SETITEM
    const v = m.pop(), k = m.pop();
    m.topDict().set(k, v);
  }],
  [0x75, (m) => { // SETITEMS
    const items = m.popMark();
    if (items.length % 2) m.fail("SETITEMS with an odd number of items");
    const d = m.topDict();
    for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
  }],
  [0x61, (m) => { // APPEND
    const v = m.pop();
    m.topList("APPEND").push(v);
  }],
  [0x65, (m) => { // APPENDS
    const items = m.popMark();
    m.topList("APPENDS").push(...items);
  }],
];

/** The memo: values stored under an index and pushed again by it. */
const MEMO: [number, Handler][] = [
  [0x71, (m) => m.memo.set(m.input.u8(), m.top())], // BINPUT
  [0x72, (m) => m.memo.set(m.input.u32(), m.top())], // LONG_BINPUT
  [0x94, (m) => m.memo.set(m.memo.size, m.top())], // MEMOIZE
  [0x68, (m) => memoGet(m, m.input.u8())], // BINGET
  [0x6a, (m) => memoGet(m, m.input.u32())], // LONG_BINGET
];

function memoGet(m: Unpickler, i: number): void {
  if (!m.memo.has(i)) m.fail(`memo ${i} is unset`);
  m.push(m.memo.get(i)!);
}

/** Numbers, strings, None and the booleans. */
const SCALARS: [number, Handler][] = [
  [0x4a, (m) => m.push(m.input.i32())], // BININT
  [0x4b, (m) => m.push(m.input.u8())], // BININT1
  [0x4d, (m) => m.push(m.input.u16())], // BININT2
  [0x8a, (m) => m.push(m.input.long(m.input.u8()))], // LONG1
  [0x47, (m) => m.push(m.input.f64())], // BINFLOAT
  [0x4e, (m) => m.push(null)], // NONE
  [0x88, (m) => m.push(true)], // NEWTRUE
  [0x89, (m) => m.push(false)], // NEWFALSE
  [0x58, (m) => m.push(m.input.text(m.input.u32()))], // BINUNICODE
  [0x8c, (m) => m.push(m.input.text(m.input.u8()))], // SHORT_BINUNICODE
  [0x8d, (m) => m.push(m.input.text(m.input.u64()))], // BINUNICODE8
];

/**
 * Objects: the allowed globals, the calls of them that REDUCE interprets
 * (never executes), the storages named by persistent ids, and BUILD.
 */
const OBJECTS: [number, Handler][] = [
  [0x63, (m) => { // GLOBAL
    const module = m.input.line();
    m.push(global(m, module, m.input.line()));
  }],
  [0x93, (m) => { // STACK_GLOBAL
    const name = m.pop(), module = m.pop();
    if (typeof module !== "string" || typeof name !== "string") {
      m.fail("STACK_GLOBAL of non-strings");
    }
    m.push(global(m, module as string, name as string));
  }],
  [0x51, (m) => m.push(persistent(m, m.pop()))], // BINPERSID
  [0x52, (m) => { // REDUCE
    const args = m.pop();
    m.push(reduce(m, m.pop(), args));
  }],
  [0x62, (m) => { // BUILD: only an OrderedDict's attributes (torch's `_metadata`), dropped
    m.pop();
    if (!(m.top() instanceof Map)) m.fail("BUILD of a non-dict");
  }],
];

/** Every opcode read, STOP aside; any other is an error naming it. */
const HANDLERS = new Map<number, Handler>([
  ...FRAMING,
  ...CONTAINERS,
  ...MEMO,
  ...SCALARS,
  ...OBJECTS,
]);

// ------------------------------------------------------------------ what the objects mean

function isKind<K extends string>(v: Value, kind: K): v is Extract<Value, { kind: K }> {
  return v !== null && typeof v === "object" && "kind" in v && v.kind === kind;
}

/** A global of the allow-list (a function or a storage class); any other is an error. */
function global(m: Unpickler, module: string, name: string): Global {
  const full = `${module}.${name}`;
  if (FUNCTIONS.has(full) || (module === "torch" && name in STORAGE_DTYPES)) {
    return { kind: "global", name: full };
  }
  return m.fail(`global ${full} is not part of a torch.save state dict (never executed)`);
}

function int(m: Unpickler, v: Value, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) m.fail(`${what} is not an integer`);
  return v as number;
}

function ints(m: Unpickler, v: Value, what: string): number[] {
  if (!Array.isArray(v)) m.fail(`${what} is not a tuple`);
  return (v as Value[]).map((x) => int(m, x, what));
}

/** A call of an allowed function, interpreted: a new OrderedDict, a parameter, a tensor. */
function reduce(m: Unpickler, fn: Value, args: Value): Value {
  if (!isKind(fn, "global")) return m.fail("REDUCE of a non-global");
  if (!Array.isArray(args)) return m.fail("REDUCE arguments are not a tuple");
  const name = fn.name;
  if (name === "collections.OrderedDict") {
    if (args.length) m.fail("OrderedDict with arguments");
    return new Map();
  }
  if (name === "torch._utils._rebuild_parameter") {
    const t = args[0];
    if (!isKind(t, "tensor")) m.fail("_rebuild_parameter of a non-tensor");
    return t;
  }
  if (name === "torch._utils._rebuild_tensor_v2") {
    const [storage, offset, size, stride] = args;
    if (!isKind(storage, "storage")) return m.fail("_rebuild_tensor_v2 of a non-storage");
    return {
      kind: "tensor",
      storage,
      offset: int(m, offset, "storage offset"),
      size: ints(m, size, "size"),
      stride: ints(m, stride, "stride"),
    };
  }
  return m.fail(`REDUCE of ${name}`);
}

/** The storage a persistent id `('storage', type, key, location, numel)` names. */
function persistent(m: Unpickler, pid: Value): PickledStorage {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
    m.fail("a persistent id that is not ('storage', type, key, location, numel)");
  }
  const [, type, key, , numel] = pid as Value[];
  if (!isKind(type, "global")) m.fail("a storage type that is not a class");
  const t = type as Global;
  const cls = t.name.replace(/^torch\./, "");
  if (!(cls in STORAGE_DTYPES)) m.fail(`storage type ${t.name}`);
  if (typeof key !== "string") m.fail("a storage key that is not a string");
  return {
    kind: "storage",
    dtype: STORAGE_DTYPES[cls],
    key: key as string,
    numel: int(m, numel, "numel"),
  };
}

/** STOP's value: a dict of string keys to tensors, in its order. */
function stateDict(m: Unpickler, result: Value): Map<string, PickledTensor> {
  if (!(result instanceof Map)) m.fail("the pickle is not a dict");
  const out = new Map<string, PickledTensor>();
  for (const [k, v] of result as Map<Value, Value>) {
    if (typeof k !== "string") m.fail("a state-dict key that is not a string");
    if (!isKind(v, "tensor")) m.fail(`state-dict entry ${k} is not a tensor`);
    out.set(k as string, v as PickledTensor);
  }
  return out;
}
