import assert from "node:assert/strict";
import { mkdtemp, open, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkVocab, loadDuplicates, openTokenReader } from "../engine/data/datasets.ts";
import { UserError } from "../engine/errors.ts";
import type { DataSpec } from "../engine/types.ts";

/** Token value of row r, position p in the test files. */
const tok = (r: number, p: number) => (r * 100 + p) % 60000;

function rowsOf(n: number, len: number): number[][] {
  return Array.from({ length: n }, (_, r) => Array.from({ length: len }, (_, p) => tok(r, p)));
}

function encode(values: number[], dtype: "uint16" | "int32" | "int64" | "uint8"): Uint8Array {
  const size = { uint8: 1, uint16: 2, int32: 4, int64: 8 }[dtype];
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((v, i) => {
    if (dtype === "uint8") view.setUint8(i, v);
    if (dtype === "uint16") view.setUint16(2 * i, v, true);
    if (dtype === "int32") view.setInt32(4 * i, v, true);
    if (dtype === "int64") view.setBigInt64(8 * i, BigInt(v), true);
  });
  return new Uint8Array(view.buffer);
}

function npyBytes(descr: string, shape: number[], data: Uint8Array, version = 1, fortran = false) {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, ` +
    `'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  const pre = version === 1 ? 10 : 12;
  const len = Math.ceil((pre + dict.length + 1) / 64) * 64 - pre;
  const header = new Uint8Array(pre + len);
  header.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(header.buffer);
  if (version === 1) view.setUint16(8, len, true);
  else view.setUint32(8, len, true);
  header.set(new TextEncoder().encode(dict.padEnd(len - 1, " ") + "\n"), pre);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** An MMapIndexedDataset `.idx` for rows of the given sizes stored back to back. */
function idxBytes(sizes: number[], code: number, item: number, pointers?: number[]) {
  const n = sizes.length;
  const view = new DataView(new ArrayBuffer(34 + n * 12 + (n + 1) * 8));
  new TextEncoder().encode("MMIDIDX\x00\x00").forEach((b, i) => view.setUint8(i, b));
  view.setBigUint64(9, 1n, true);
  view.setUint8(17, code);
  view.setBigUint64(18, BigInt(n), true);
  view.setBigUint64(26, BigInt(n + 1), true);
  let at = 0;
  sizes.forEach((s, i) => {
    view.setInt32(34 + 4 * i, s, true);
    view.setBigInt64(34 + 4 * n + 8 * i, BigInt(pointers?.[i] ?? at), true);
    at += s * item;
  });
  for (let i = 0; i <= n; i++) view.setBigInt64(34 + 12 * n + 8 * i, BigInt(i), true);
  return new Uint8Array(view.buffer);
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "datasets-test-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function read(spec: DataSpec, rows: number[], start: number, length: number) {
  const reader = await openTokenReader(spec);
  try {
    return {
      reader,
      tokens: Array.from(await reader.readWindow(Uint32Array.from(rows), start, length)),
    };
  } finally {
    await reader.close();
  }
}

const expected = (rows: number[], start: number, length: number) =>
  rows.flatMap((r) => Array.from({ length }, (_, p) => tok(r, start + p)));

async function rejectsUser(fn: () => Promise<unknown>, pattern: RegExp) {
  await assert.rejects(fn, (e: Error) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e.stack}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("raw: windows of any rows, in the requested order, uint16 and int32", async () => {
  await withDir(async (dir) => {
    const data = rowsOf(50, 20);
    await writeFile(join(dir, "u16.bin"), encode(data.flat(), "uint16"));
    await writeFile(join(dir, "i32.bin"), encode(data.flat(), "int32"));
    const rows = [7, 0, 1, 2, 49, 30];
    const a = await read({ format: "raw", path: join(dir, "u16.bin"), rowLength: 20 }, rows, 3, 9);
    assert.equal(a.reader.rows, 50);
    assert.equal(a.reader.rowLength, 20);
    assert.deepEqual(a.tokens, expected(rows, 3, 9));
    const b = await read(
      { format: "raw", path: join(dir, "i32.bin"), rowLength: 20, dtype: "int32" },
      rows,
      0,
      20,
    );
    assert.deepEqual(b.tokens, expected(rows, 0, 20));
    await rejectsUser(
      () => openTokenReader({ format: "raw", path: join(dir, "u16.bin"), rowLength: 21 }),
      /2000 bytes is not a positive multiple of a row's 42 bytes/,
    );
    await rejectsUser(
      () => read({ format: "raw", path: join(dir, "u16.bin"), rowLength: 20 }, [4], 10, 11),
      /row 4 has 20 tokens but scoring needs tokens \[10, 21\)/,
    );
    await rejectsUser(
      () => openTokenReader({ format: "raw", path: join(dir, "missing.bin"), rowLength: 20 }),
      /missing\.bin: cannot open the raw token file \(ENOENT\)/,
    );
  });
});

Deno.test("raw: a row beyond 4 GiB in a sparse file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "big.bin");
    const rowLength = 2049;
    const rows = 1_400_000; // 5.74 GB: the last row starts past 2^32 bytes
    const last = rows - 1;
    assert.ok(last * rowLength * 2 > 2 ** 32 + 2 ** 30);
    const fh = await open(path, "w");
    await fh.truncate(rows * rowLength * 2);
    const values = Array.from({ length: rowLength }, (_, p) => (p * 7 + 11) % 50000);
    await fh.write(encode(values, "uint16"), 0, rowLength * 2, last * rowLength * 2);
    await fh.close();
    const { reader, tokens } = await read({ format: "raw", path, rowLength }, [3, last], 0, 64);
    assert.equal(reader.rows, rows);
    assert.deepEqual(tokens.slice(0, 64), new Array(64).fill(0));
    assert.deepEqual(tokens.slice(64), values.slice(0, 64));
    const again = await read({ format: "raw", path, rowLength }, [last], 2000, 49);
    assert.deepEqual(again.tokens, values.slice(2000));
  });
});

Deno.test("megatron: variable rows, prefix or either path, int64 pointers past 4 GiB", async () => {
  await withDir(async (dir) => {
    const sizes = [10, 4, 12, 8];
    const data = sizes.map((s, r) => Array.from({ length: s }, (_, p) => tok(r, p)));
    await writeFile(join(dir, "d.bin"), encode(data.flat(), "uint16"));
    await writeFile(join(dir, "d.idx"), idxBytes(sizes, 8, 2));
    for (const path of ["d", "d.bin", "d.idx"]) {
      const r = await read({ format: "megatron", path: join(dir, path) }, [2, 0, 3], 1, 3);
      assert.equal(r.reader.rows, 4);
      assert.equal(r.reader.rowLength, 10);
      assert.equal(r.reader.path, join(dir, "d.bin"));
      assert.deepEqual(r.tokens, expected([2, 0, 3], 1, 3));
    }
    await rejectsUser(
      () => read({ format: "megatron", path: join(dir, "d") }, [0, 1], 0, 8),
      /row 1 has 4 tokens but scoring needs tokens \[0, 8\)/,
    );
    await rejectsUser(
      () => openTokenReader({ format: "megatron", path: join(dir, "d"), rowLength: 12 }),
      /row 0 has 10 tokens but data\.row_length is 12/,
    );
    // int32 tokens; the second row's pointer lies beyond 4 GiB in a sparse .bin.
    const far = 2 ** 32 + 12345 * 4;
    const fh = await open(join(dir, "far.bin"), "w");
    await fh.truncate(far + 16 * 4);
    await fh.write(encode(data[2], "int32"), 0, 48, far);
    await fh.write(encode(data[0], "int32"), 0, 40, 0);
    await fh.close();
    await writeFile(join(dir, "far.idx"), idxBytes([10, 12], 4, 4, [0, far]));
    const r = await read({ format: "megatron", path: join(dir, "far") }, [1, 0], 2, 8);
    assert.equal(r.reader.dtype, "int32");
    assert.deepEqual(r.tokens, [...data[2].slice(2, 10), ...data[0].slice(2, 10)]);
  });
});

Deno.test("megatron: truncated and corrupt indexes are user errors", async () => {
  await withDir(async (dir) => {
    const sizes = [6, 6];
    await writeFile(join(dir, "d.bin"), encode(rowsOf(2, 6).flat(), "uint16"));
    const good = idxBytes(sizes, 8, 2);
    const spec = { format: "megatron" as const, path: join(dir, "d") };
    const cases: [Uint8Array, RegExp][] = [
      [good.slice(0, 20), /only 20 bytes \(header is 34\)/],
      [good.slice(0, good.length - 3), /need 82 bytes but the file has 79/],
      [Uint8Array.from(good, (b, i) => (i === 0 ? 0x4e : b)), /wrong magic bytes/],
      [Uint8Array.from(good, (b, i) => (i === 9 ? 2 : b)), /version 2 \(expected 1\)/],
      [Uint8Array.from(good, (b, i) => (i === 17 ? 7 : b)), /dtype float32 holds no token ids/],
      [Uint8Array.from(good, (b, i) => (i === 17 ? 42 : b)), /unknown dtype code 42/],
      [idxBytes([6, 9], 8, 2), /index says the data ends at byte 30 but the file has 24 bytes/],
    ];
    for (const [bytes, pattern] of cases) {
      await writeFile(join(dir, "d.idx"), bytes);
      await rejectsUser(() => openTokenReader(spec), pattern);
    }
    await rm(join(dir, "d.bin"));
    await writeFile(join(dir, "d.idx"), good);
    await rejectsUser(() => openTokenReader(spec), /d\.bin: cannot open the megatron data/);
  });
});

Deno.test("npy: versions 1-3, integer dtypes, bad headers", async () => {
  await withDir(async (dir) => {
    const data = rowsOf(6, 9);
    const cases: [string, "uint16" | "int32" | "int64", number][] = [
      ["<u2", "uint16", 1],
      ["<i4", "int32", 2],
      ["<i8", "int64", 3],
    ];
    for (const [descr, dtype, version] of cases) {
      const path = join(dir, `${dtype}.npy`);
      await writeFile(path, npyBytes(descr, [6, 9], encode(data.flat(), dtype), version));
      const r = await read({ format: "npy", path }, [5, 1], 2, 7);
      assert.equal(r.reader.rows, 6);
      assert.equal(r.reader.rowLength, 9);
      assert.deepEqual(r.tokens, expected([5, 1], 2, 7));
    }
    const bytes = encode(data.flat(), "uint16");
    const bad: [Uint8Array, RegExp][] = [
      [npyBytes("<u2", [6, 9], bytes.slice(0, 100)), /declares 6 × 9 uint16 \(236 bytes\)/],
      [npyBytes("<u2", [54], bytes), /shape \(54\); expected 2-D/],
      [npyBytes(">u2", [6, 9], bytes), /big-endian/],
      [npyBytes("<f4", [6, 9], bytes), /dtype <f4 is not an integer type/],
      [npyBytes("<u2", [6, 9], bytes, 1, true), /Fortran order/],
      [npyBytes("<u2", [6, 9], bytes, 4), /unsupported format version 4/],
      [new TextEncoder().encode("not numpy at all"), /missing \\x93NUMPY magic/],
    ];
    for (const [content, pattern] of bad) {
      await writeFile(join(dir, "bad.npy"), content);
      await rejectsUser(
        () => openTokenReader({ format: "npy", path: join(dir, "bad.npy") }),
        pattern,
      );
    }
    await rejectsUser(
      () => openTokenReader({ format: "npy", path: join(dir, "uint16.npy"), rowLength: 8 }),
      /rows have 9 tokens but data\.row_length is 8/,
    );
    const neg = npyBytes("<i4", [1, 3], encode([1, -4, 2], "int32"));
    await writeFile(join(dir, "neg.npy"), neg);
    await rejectsUser(
      () => read({ format: "npy", path: join(dir, "neg.npy") }, [0], 0, 3),
      /row 0 holds the value -4 which is not a token id/,
    );
  });
});

Deno.test("fingerprint: stable across opens and mtimes, changes with content", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "d.bin");
    const spec: DataSpec = { format: "raw", path, rowLength: 10 };
    const values = rowsOf(20000, 10).flat();
    await writeFile(path, encode(values, "uint16"));
    const fp = async () => {
      const r = await openTokenReader(spec);
      try {
        return await r.fingerprint();
      } finally {
        await r.close();
      }
    };
    const a = await fp();
    assert.match(a, /^sha256:[0-9a-f]{64}$/);
    await utimes(path, new Date(2000, 1, 1), new Date(2000, 1, 1));
    assert.equal(await fp(), a);
    values[200_000 - 5] += 1; // a token in the last 64 KiB
    await writeFile(path, encode(values, "uint16"));
    assert.notEqual(await fp(), a);
  });
});

Deno.test("checkVocab rejects ids at or above the vocabulary", () => {
  checkVocab(Int32Array.of(0, 5, 9), 10, "data.bin rows 0-1");
  assert.throws(
    () => checkVocab(Int32Array.of(0, 10, 3), 10, "data.bin rows 0-1"),
    (e: Error) =>
      e instanceof UserError &&
      e.message.startsWith(
        "data.bin rows 0-1: token id 10 (element 1) is outside the model's " +
          "vocabulary of 10",
      ),
  );
});

Deno.test("duplicates: 1-D npy and CSV row,count", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, "d.npy"), npyBytes("<i8", [4], encode([1, 3, 0, 7], "int64")));
    assert.deepEqual(Array.from(await loadDuplicates(join(dir, "d.npy"))), [1, 3, 0, 7]);
    await writeFile(join(dir, "d.csv"), "row,count\n3,5\n0,2\n\n");
    assert.deepEqual(Array.from(await loadDuplicates(join(dir, "d.csv"))), [2, 0, 0, 5]);
    await writeFile(join(dir, "bad.csv"), "row,count\n3,x\n");
    await rejectsUser(
      () => loadDuplicates(join(dir, "bad.csv")),
      /bad\.csv:2:1: expected "row,count"/,
    );
    await writeFile(join(dir, "bad.npy"), npyBytes("<u2", [2, 2], encode([1, 2, 3, 4], "uint16")));
    await rejectsUser(() => loadDuplicates(join(dir, "bad.npy")), /must be a 1-D array/);
  });
});
