import assert from "node:assert/strict";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { importScores } from "../engine/store/import.ts";
import { UserError } from "../engine/errors.ts";

async function tempDir() {
  return await Deno.makeTempDir({ prefix: "import_test_" });
}

Deno.test("reference CSVs (header optional, several files per run) become sorted scores", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(
    join(dir, "memorization_70m_143000_a.csv"),
    "index,accuracy\n5,1.0\n2,0.5\n",
  );
  await Deno.writeTextFile(join(dir, "memorization_70m_143000_b.csv"), "9,0.03125\r\n0,1\n\n");
  await Deno.writeTextFile(join(dir, "memorization_12b_143000.csv"), "0,1\n2,1\n5,0.25\n9,1\n");
  await Deno.writeTextFile(join(dir, "notes.txt"), "ignored");
  const scores = await importScores({
    dir,
    pattern: String.raw`memorization_(?<model>[^_]+)_(?<step>\d+)`,
    continuation: 32,
  });
  assert.equal(scores.length, 2);
  const s70 = scores.find((s) => s.model === "70m")!;
  assert.equal(s70.step, 143000);
  assert.deepEqual(Array.from(s70.rows), [0, 2, 5, 9]);
  assert.deepEqual(Array.from(s70.matches), [32, 16, 32, 1]);
  assert.equal(s70.prefix, undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("memorized-row lists (CSV and Parquet) cover the rows each run has seen", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "m.csv"), "index\n3\n1\n");
  const parquet = parquetWriteBuffer({
    columnData: [{ name: "idx", data: [BigInt(0), BigInt(7)], type: "INT64" }],
  });
  await Deno.writeFile(join(dir, "big.parquet"), new Uint8Array(parquet));
  const scores = await importScores({
    files: [
      { path: join(dir, "m.csv"), model: "small", step: 1, kind: "memorized" },
      { path: join(dir, "big.parquet"), model: "big", step: 2 },
    ],
    continuation: 32,
    sequencesPerStep: 4,
  });
  const small = scores.find((s) => s.model === "small")!;
  assert.deepEqual(Array.from(small.rows), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(small.matches), [0, 32, 0, 32]);
  const big = scores.find((s) => s.model === "big")!;
  assert.deepEqual(Array.from(big.rows), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(Array.from(big.matches), [32, 0, 0, 0, 0, 0, 0, 32]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Parquet with index, accuracy, prefix and nll keeps every column", async () => {
  const dir = await tempDir();
  const parquet = parquetWriteBuffer({
    columnData: [
      { name: "index", data: [BigInt(4), BigInt(1)], type: "INT64" },
      { name: "accuracy", data: [0.5, 1], type: "DOUBLE" },
      { name: "prefix", data: [3, 32], type: "INT32" },
      { name: "nll", data: [1.5, 0.25], type: "FLOAT" },
    ],
  });
  await Deno.writeFile(join(dir, "s.parquet"), new Uint8Array(parquet));
  const [s] = await importScores({
    files: [{ path: join(dir, "s.parquet"), model: "m", step: 3 }],
    continuation: 32,
  });
  assert.deepEqual(Array.from(s.rows), [1, 4]);
  assert.deepEqual(Array.from(s.matches), [32, 16]);
  assert.deepEqual(Array.from(s.prefix!), [32, 3]);
  assert.deepEqual(Array.from(s.nll!), [0.25, 1.5]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad input names the file and line", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "bad.csv"), "index,accuracy\n1,0.5\n2,1.7\n");
  await assert.rejects(
    importScores({
      files: [{ path: join(dir, "bad.csv"), model: "m", step: 1 }],
      continuation: 32,
    }),
    (e: Error) => e instanceof UserError && /bad\.csv:3: accuracy "1\.7"/.test(e.message),
  );
  await Deno.writeTextFile(join(dir, "dup.csv"), "2,1\n1,0\n2,0.5\n");
  await assert.rejects(
    importScores({
      files: [{ path: join(dir, "dup.csv"), model: "m", step: 1 }],
      continuation: 32,
    }),
    /row 2 appears twice/,
  );
  await assert.rejects(
    importScores({
      files: [{ path: join(dir, "dup.csv"), model: "m", step: 1, kind: "memorized" }],
      continuation: 32,
    }),
    /needs the rows its run scored/,
  );
  await Deno.remove(dir, { recursive: true });
});
