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
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  let pos = 0;
  const fail = (what: string): never => {
    throw new PickleError(`${what} at byte ${pos}`);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail("truncated pickle");
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, view.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, view.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("length beyond 2^53");
    return Number(v);
  };
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const text = (n: number) => {
    need(n);
    const s = utf8.decode(bytes.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("truncated GLOBAL");
    const s = text(end - pos);
    pos++;
    return s;
  };
  const pop = (): Value => {
    if (!stack.length) fail("pickle stack underflow");
    const v = stack.pop()!;
    if (v === MARK) fail("unexpected MARK");
    return v;
  };
  const popMark = (): Value[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail("no MARK");
    const items = stack.splice(at);
    items.shift();
    return items;
  };
  const top = (): Value => {
    if (!stack.length) fail("pickle stack underflow");
    return stack[stack.length - 1];
  };
  const dictAt = (v: Value): Map<Value, Value> => {
    if (!(v instanceof Map)) fail("SETITEM(S) on a non-dict");
    return v as Map<Value, Value>;
  };
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (FUNCTIONS.has(full) || (module === "torch" && name in STORAGE_DTYPES)) {
      return { kind: "global", name: full };
    }
    return fail(`global ${full} is not part of a torch.save state dict (never executed)`);
  };
  const int = (v: Value, what: string): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v)) fail(`${what} is not an integer`);
    return v as number;
  };
  const ints = (v: Value, what: string): number[] => {
    if (!Array.isArray(v)) fail(`${what} is not a tuple`);
    return (v as Value[]).map((x) => int(x, what));
  };
  const reduce = (fn: Value, args: Value): Value => {
    if (!fn || typeof fn !== "object" || !("kind" in fn) || fn.kind !== "global") {
      return fail("REDUCE of a non-global");
    }
    if (!Array.isArray(args)) return fail("REDUCE arguments are not a tuple");
    const name = (fn as Global).name;
    if (name === "collections.OrderedDict") {
      if (args.length) fail("OrderedDict with arguments");
      return new Map();
    }
    if (name === "torch._utils._rebuild_parameter") {
      const t = args[0];
      if (!t || typeof t !== "object" || !("kind" in t) || t.kind !== "tensor") {
        fail("_rebuild_parameter of a non-tensor");
      }
      return t;
    }
    if (name === "torch._utils._rebuild_tensor_v2") {
      const [storage, offset, size, stride] = args;
      if (
        !storage || typeof storage !== "object" || !("kind" in storage) ||
        storage.kind !== "storage"
      ) return fail("_rebuild_tensor_v2 of a non-storage");
      return {
        kind: "tensor",
        storage: storage as PickledStorage,
        offset: int(offset, "storage offset"),
        size: ints(size, "size"),
        stride: ints(stride, "stride"),
      };
    }
    return fail(`REDUCE of ${name}`);
  };
  const persistent = (pid: Value): PickledStorage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
      fail("a persistent id that is not ('storage', type, key, location, numel)");
    }
    const [, type, key, , numel] = pid as Value[];
    const t = type as Global;
    if (!t || typeof t !== "object" || !("kind" in t) || t.kind !== "global") {
      fail("a storage type that is not a class");
    }
    const cls = t.name.replace(/^torch\./, "");
    if (!(cls in STORAGE_DTYPES)) fail(`storage type ${t.name}`);
    if (typeof key !== "string") fail("a storage key that is not a string");
    return {
      kind: "storage",
      dtype: STORAGE_DTYPES[cls],
      key: key as string,
      numel: int(numel, "numel"),
    };
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: { // STOP
        const result = pop();
        if (!(result instanceof Map)) fail("the pickle is not a dict");
        const out = new Map<string, PickledTensor>();
        for (const [k, v] of result as Map<Value, Value>) {
          if (typeof k !== "string") fail("a state-dict key that is not a string");
          if (!v || typeof v !== "object" || !("kind" in v) || v.kind !== "tensor") {
            fail(`state-dict entry ${k} is not a tensor`);
          }
          out.set(k as string, v as PickledTensor);
        }
        return out;
      }
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x64: { // DICT
        const items = popMark();
        const d = new Map<Value, Value>();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x6c: // LIST
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85:
        stack.push([pop()]);
        break;
      case 0x86: {
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        dictAt(top()).set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) fail("SETITEMS with an odd number of items");
        const d = dictAt(top());
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail("APPEND to a non-list");
        (l as Value[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail("APPENDS to a non-list");
        (l as Value[]).push(...items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo ${i} is unset`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
          fail("an integer beyond 2^53");
        }
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()));
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail("STACK_GLOBAL of non-strings");
        }
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(reduce(pop(), args));
        break;
      }
      case 0x62: { // BUILD: only an OrderedDict's attributes (torch's `_metadata`), dropped
        pop();
        if (!(top() instanceof Map)) fail("BUILD of a non-dict");
        break;
      }
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, "0")} is not part of a torch.save state dict`);
    }
  }
}
