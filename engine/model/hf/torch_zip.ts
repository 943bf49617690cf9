/**
 * Reads a PyTorch checkpoint (`torch.save` since 1.6: a zip archive of
 * `<archive>/data.pkl`, the pickled state dict, and `<archive>/data/<key>`, each
 * storage's raw bytes, stored uncompressed) into tensor places without reading
 * any weight: the zip's central directory (zip64 too) gives each entry's local
 * header, the restricted pickle reader (./pickle.ts) each tensor's storage,
 * offset, size and stride. Compressed entries, non-contiguous tensors and
 * anything reaching beyond its entry or the file are UserErrors naming the
 * file and the tensor.
 *
 * @module
 */
import { UserError } from "../../errors.ts";
import { type CheckpointFile, openFile } from "./_file.ts";
import { PickleError, readStateDictPickle } from "./pickle.ts";
import { DTYPE_BYTES, elements, type TensorRef } from "./tensors.ts";

/** The largest central directory and `data.pkl` read into memory. */
const MAX_DIRECTORY_BYTES = 64 << 20;

interface Entry {
  name: string;
  method: number;
  compressed: number;
  size: number;
  local: number;
}

/** One entry's payload: where its bytes start and how many there are. */
interface Payload {
  offset: number;
  length: number;
}

/**
 * The tensors of one `torch.save` file, in the state dict's order.
 *
 * @example
 * ```ts ignore
 * for (const t of readTorchZip("pytorch_model.bin")) console.log(t.name, t.offset, t.length);
 * ```
 */
export function readTorchZip(path: string): TensorRef[] {
  using f = openFile(path, "PyTorch checkpoint");
  const bad = (what: string) => new UserError(`${path}: ${what}.`);
  const entries = centralDirectory(f, bad);
  const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    throw bad(
      "no <archive>/data.pkl entry: not a torch.save zip archive (the legacy pre-1.6 " +
        "format is not read; re-save it with a current torch.save or use safetensors)",
    );
  }
  const prefix = pkl.slice(0, -"data.pkl".length);
  const pklPayload = payload(f, entries.get(pkl)!, bad);
  if (pklPayload.length > MAX_DIRECTORY_BYTES) throw bad(`${pkl} is ${pklPayload.length} bytes`);
  let dict;
  try {
    dict = readStateDictPickle(f.read(pklPayload.offset, pklPayload.length));
  } catch (e) {
    if (e instanceof PickleError) throw bad(`${pkl}: ${e.message}`);
    throw e;
  }
  const storages = new Map<string, Payload>();
  const out: TensorRef[] = [];
  for (const [name, t] of dict) {
    const badTensor = (what: string) => bad(`tensor ${name}: ${what}`);
    const size = DTYPE_BYTES[t.storage.dtype];
    const entryName = `${prefix}data/${t.storage.key}`;
    let place = storages.get(entryName);
    if (!place) {
      const entry = entries.get(entryName);
      if (!entry) throw badTensor(`its storage ${entryName} is not in the archive`);
      place = payload(f, entry, (what) => badTensor(`storage ${entryName}: ${what}`));
      if (place.length !== t.storage.numel * size) {
        throw badTensor(
          `storage ${entryName} holds ${place.length} bytes, not the ${t.storage.numel} ` +
            `${t.storage.dtype} elements its pickle declares`,
        );
      }
      storages.set(entryName, place);
    }
    if (t.size.some((d) => d < 0) || t.size.length !== t.stride.length || t.offset < 0) {
      throw badTensor(`size [${t.size}], stride [${t.stride}] or offset ${t.offset} is invalid`);
    }
    let expected = 1;
    for (let i = t.size.length - 1; i >= 0; i--) {
      if (t.size[i] !== 1 && t.stride[i] !== expected) {
        throw badTensor(
          `is not contiguous (size [${t.size}], stride [${t.stride}]); save contiguous tensors`,
        );
      }
      expected *= t.size[i];
    }
    const length = elements(t.size) * size;
    if ((t.offset * size) + length > place.length) {
      throw badTensor(`reaches beyond its storage ${entryName}`);
    }
    out.push({
      name,
      dtype: t.storage.dtype,
      shape: t.size,
      file: path,
      offset: place.offset + t.offset * size,
      length,
    });
  }
  return out;
}

/** The archive's entries by name (end of central directory, zip64 when needed). */
function centralDirectory(
  f: CheckpointFile,
  bad: (what: string) => UserError,
): Map<string, Entry> {
  const { count, cdSize, cdOffset } = directoryPlace(f, bad);
  if (cdSize > MAX_DIRECTORY_BYTES || cdOffset + cdSize > f.size) {
    throw bad(
      `central directory [${cdOffset}, +${cdSize}) lies beyond the file's ${f.size} bytes: truncated file`,
    );
  }
  const cd = f.read(cdOffset, cdSize);
  const v = new DataView(cd.buffer);
  const entries = new Map<string, Entry>();
  const utf8 = new TextDecoder();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const { entry, end } = directoryEntry(cd, v, pos, i, utf8, bad);
    entries.set(entry.name, entry);
    pos = end;
  }
  return entries;
}

/** Where the central directory lies: its entry count, size and offset, from the end record. */
function directoryPlace(
  f: CheckpointFile,
  bad: (what: string) => UserError,
): { count: number; cdSize: number; cdOffset: number } {
  const tailLength = Math.min(f.size, 22 + 0xffff);
  const tail = f.read(f.size - tailLength, tailLength);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) {
    throw bad(
      "not a zip archive (no end of central directory): truncated or not a torch.save file",
    );
  }
  const count = tv.getUint16(eocd + 10, true);
  const cdSize = tv.getUint32(eocd + 12, true);
  const cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    return zip64DirectoryPlace(f, f.size - tailLength + eocd - 20, bad);
  }
  return { count, cdSize, cdOffset };
}

/** The zip64 end record's count, size and offset, through its locator at `locator`. */
function zip64DirectoryPlace(
  f: CheckpointFile,
  locator: number,
  bad: (what: string) => UserError,
): { count: number; cdSize: number; cdOffset: number } {
  const lv = new DataView(f.read(locator, 20).buffer);
  if (lv.getUint32(0, true) !== 0x07064b50) {
    throw bad("zip64 end of central directory locator missing");
  }
  const at = safe(lv.getBigUint64(8, true), bad);
  const rv = new DataView(f.read(at, 56).buffer);
  if (rv.getUint32(0, true) !== 0x06064b50) throw bad("zip64 end of central directory missing");
  return {
    count: safe(rv.getBigUint64(32, true), bad),
    cdSize: safe(rv.getBigUint64(40, true), bad),
    cdOffset: safe(rv.getBigUint64(48, true), bad),
  };
}

/** Entry `i` of the central directory, at `pos`, and where the next one starts. */
function directoryEntry(
  cd: Uint8Array,
  v: DataView,
  pos: number,
  i: number,
  utf8: TextDecoder,
  bad: (what: string) => UserError,
): { entry: Entry; end: number } {
  if (pos + 46 > cd.length || v.getUint32(pos, true) !== 0x02014b50) {
    throw bad(`central directory entry ${i} is damaged`);
  }
  const nameLength = v.getUint16(pos + 28, true);
  const extraLength = v.getUint16(pos + 30, true);
  const commentLength = v.getUint16(pos + 32, true);
  const end = pos + 46 + nameLength + extraLength + commentLength;
  if (end > cd.length) throw bad(`central directory entry ${i} is damaged`);
  const entry: Entry = {
    name: utf8.decode(cd.subarray(pos + 46, pos + 46 + nameLength)),
    method: v.getUint16(pos + 10, true),
    compressed: v.getUint32(pos + 20, true),
    size: v.getUint32(pos + 24, true),
    local: v.getUint32(pos + 42, true),
  };
  zip64Sizes(v, entry, pos + 46 + nameLength, extraLength, bad);
  return { entry, end };
}

/**
 * The entry's zip64 extended information in its extra fields (`[x, x +
 * length)`): the 0xFFFFFFFF fields, in this order, replaced by their 64-bit values.
 */
function zip64Sizes(
  v: DataView,
  entry: Entry,
  x: number,
  length: number,
  bad: (what: string) => UserError,
): void {
  const extraEnd = x + length;
  while (x + 4 <= extraEnd) {
    const id = v.getUint16(x, true), len = v.getUint16(x + 2, true);
    if (id === 0x0001) {
      let at = x + 4;
      const next = () => {
        if (at + 8 > x + 4 + len) throw bad(`entry ${entry.name}: zip64 field too short`);
        const n = safe(v.getBigUint64(at, true), bad);
        at += 8;
        return n;
      };
      if (entry.size === 0xffffffff) entry.size = next();
      if (entry.compressed === 0xffffffff) entry.compressed = next();
      if (entry.local === 0xffffffff) entry.local = next();
    }
    x += 4 + len;
  }
}

/** Where an entry's stored bytes lie (checked: stored, inside the file). */
function payload(f: CheckpointFile, e: Entry, bad: (what: string) => UserError): Payload {
  if (e.method !== 0) {
    throw bad(
      `zip entry ${e.name} is compressed (method ${e.method}); only stored entries are read ` +
        "in place (torch.save stores them: was the file re-zipped?)",
    );
  }
  if (e.compressed !== e.size) throw bad(`zip entry ${e.name}: sizes disagree`);
  const head = new DataView(f.read(e.local, 30).buffer);
  if (head.getUint32(0, true) !== 0x04034b50) throw bad(`zip entry ${e.name}: no local header`);
  const offset = e.local + 30 + head.getUint16(26, true) + head.getUint16(28, true);
  if (offset + e.size > f.size) {
    throw bad(
      `zip entry ${e.name} ends at byte ${
        offset + e.size
      }, beyond the file's ${f.size}: truncated file`,
    );
  }
  return { offset, length: e.size };
}

function safe(v: bigint, bad: (what: string) => UserError): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad("a zip64 size beyond 2^53");
  return Number(v);
}
