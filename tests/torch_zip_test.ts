/**
 * The PyTorch zip reader (engine/model/hf/torch_zip.ts) on zip64 archives:
 * the fixture's `pytorch_model.bin` repacked with zip64 records (every entry's
 * sizes and offset in its zip64 extra field, or every other entry's, as
 * writers of large archives do) gives the same tensors with the same bytes;
 * a zip64 end record that points outside the file is exit 2 naming it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readTorchZip } from "../engine/model/hf/torch_zip.ts";
import { isUserError } from "../engine/errors.ts";

const PLAIN = join(import.meta.dirname!, "fixtures", "hf", "neox-bin-f16", "pytorch_model.bin");

/** A zip's stored entries (name and bytes) from its plain central directory. */
function storedEntries(bytes: Uint8Array): { name: string; data: Uint8Array }[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (v.getUint32(end, true) !== 0x06054b50) end--;
  const count = v.getUint16(end + 10, true);
  let at = v.getUint32(end + 16, true);
  const out = [];
  for (let i = 0; i < count; i++) {
    assert.equal(v.getUint32(at, true), 0x02014b50);
    assert.equal(v.getUint16(at + 10, true), 0, "stored, not compressed");
    const size = v.getUint32(at + 20, true), nameLength = v.getUint16(at + 28, true);
    const extra = v.getUint16(at + 30, true), comment = v.getUint16(at + 32, true);
    const local = v.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const start = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    out.push({ name, data: bytes.subarray(start, start + size) });
    at += 46 + nameLength + extra + comment;
  }
  return out;
}

/** Little-endian bytes of fields: [value, width in bytes]. */
function le(...fields: [number, number][]): Uint8Array {
  const out = new Uint8Array(fields.reduce((n, [, w]) => n + w, 0));
  const v = new DataView(out.buffer);
  let at = 0;
  for (const [x, w] of fields) {
    if (w === 2) v.setUint16(at, x, true);
    else if (w === 4) v.setUint32(at, x, true);
    else v.setBigUint64(at, BigInt(x), true);
    at += w;
  }
  return out;
}

/**
 * The entries as a zip64 archive: entries `zip64(i)` keep their sizes and
 * local offset in a zip64 extra field (0xffffffff in the directory), the
 * others in the directory itself; then the zip64 end record, its locator and
 * an end record of 0xffff/0xffffffff. `locatorAt` overrides the locator's
 * pointer to the zip64 end record.
 */
function zip64(
  entries: { name: string; data: Uint8Array }[],
  zip64: (i: number) => boolean,
  locatorAt?: number,
): Uint8Array {
  const parts: Uint8Array[] = [], directory: Uint8Array[] = [];
  let size = 0;
  const push = (into: Uint8Array[], b: Uint8Array) => (into.push(b), b.length);
  entries.forEach(({ name, data }, i) => {
    const nb = new TextEncoder().encode(name), local = size;
    size += push(parts, le([0x04034b50, 4], [45, 2], [0, 2], [0, 2], [0, 2], [0, 2], [0, 4]));
    size += push(parts, le([data.length, 4], [data.length, 4], [nb.length, 2], [0, 2]));
    size += push(parts, nb) + push(parts, data);
    const big = zip64(i);
    const extra = big ? le([1, 2], [24, 2], [data.length, 8], [data.length, 8], [local, 8]) : le();
    directory.push(
      le([0x02014b50, 4], [45, 2], [45, 2], [0, 2], [0, 2], [0, 2], [0, 2], [0, 4]),
      le([big ? 0xffffffff : data.length, 4], [big ? 0xffffffff : data.length, 4]),
      le([nb.length, 2], [extra.length, 2], [0, 2], [0, 2], [0, 2], [0, 4]),
      le([big ? 0xffffffff : local, 4]),
      nb,
      extra,
    );
  });
  const cdAt = size;
  const cdSize = directory.reduce((n, b) => n + b.length, 0);
  parts.push(...directory);
  size += cdSize;
  const n = entries.length;
  parts.push(
    le([0x06064b50, 4], [44, 8], [45, 2], [45, 2], [0, 4], [0, 4], [n, 8], [n, 8]),
    le([cdSize, 8], [cdAt, 8]),
    le([0x07064b50, 4], [0, 4], [locatorAt ?? size, 8], [1, 4]),
    le([0x06054b50, 4], [0, 2], [0, 2], [0xffff, 2], [0xffff, 2], [0xffffffff, 4]),
    le([0xffffffff, 4], [0, 2]),
  );
  const out = new Uint8Array(parts.reduce((m, b) => m + b.length, 0));
  let at = 0;
  for (const b of parts) out.set(b, at), at += b.length;
  return out;
}

/** Each tensor's name, dtype, shape and bytes. */
function tensorsOf(path: string): [string, string, number[], Uint8Array][] {
  const bytes = Deno.readFileSync(path);
  return readTorchZip(path).map((t) => [
    t.name,
    t.dtype,
    t.shape,
    bytes.slice(t.offset, t.offset + t.length),
  ]);
}

Deno.test("a torch.save zip repacked with zip64 records gives the same tensors and bytes", () => {
  const dir = Deno.makeTempDirSync({ prefix: "torch_zip_test_" });
  try {
    const entries = storedEntries(Deno.readFileSync(PLAIN));
    assert.ok(entries.some((e) => e.name.endsWith("/data.pkl")));
    const expected = tensorsOf(PLAIN);
    assert.ok(expected.length > 10);
    for (
      const [label, which] of [["every entry", () => true], [
        "every other entry",
        (i: number) => i % 2 === 0,
      ]] as const
    ) {
      const path = join(dir, "pytorch_model.bin");
      Deno.writeFileSync(path, zip64(entries, which));
      assert.deepEqual(tensorsOf(path), expected, label);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a zip64 end record pointing outside the file is exit 2 naming the file", () => {
  const dir = Deno.makeTempDirSync({ prefix: "torch_zip_test_" });
  try {
    const path = join(dir, "pytorch_model.bin");
    Deno.writeFileSync(path, zip64(storedEntries(Deno.readFileSync(PLAIN)), () => true, 2 ** 40));
    assert.throws(
      () => readTorchZip(path),
      (e: unknown) => isUserError(e) && (e as Error).message.startsWith(`${path}: `),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
