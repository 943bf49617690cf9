import assert from "node:assert/strict";
import { parseFixture } from "./fixtures/experiment.ts";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { chunkCsv, CsvLines, exportScores } from "../tasks/export.ts";
import { makeManifest, openStore } from "../engine/store/store.ts";
import type { CheckpointScores, Experiment } from "../engine/types.ts";

const scores: Required<CheckpointScores> = {
  model: "m",
  step: 2,
  continuation: 32,
  rows: Uint32Array.from([3, 5, 9]),
  matches: Uint8Array.from([32, 16, 1]),
  prefix: Uint8Array.from([32, 4, 0]),
  nll: Float32Array.from([0.25, 1.5, 3]),
};

/** A one-checkpoint experiment. */
function experiment(model: string, step: number, shardSize: number, dir: string): Experiment {
  return parseFixture(
    `name: t
suite:
  sequences_per_step: 4
  models: [{name: ${model}, parameters: 1, checkpoints: {${step}: /m.onnx}}]
data: {format: raw, path: /d, row_length: 64}
shard_size: ${shardSize}
`,
    { dir, output: dir },
  );
}

Deno.test("chunkCsv writes the reference index,accuracy rows", () => {
  assert.equal(chunkCsv(scores, scores.continuation), "3,1\n5,0.5\n9,0.03125\n");
});

Deno.test("chunkCsv prints every index and accuracy as JavaScript does (digit edges, any l)", () => {
  const edges = [0, 1, 9, 10, 99, 100, 999_999_999, 1_000_000_000, 2 ** 31, 2 ** 32 - 1];
  const run = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);
  const rows = Uint32Array.from([
    ...edges,
    ...Array.from({ length: 1000 }, (_, i) => i * 4099),
    ...run(0, 1200), // consecutive rows: the digits are incremented in place
    ...run(9_999_990, 20),
    ...run(2 ** 32 - 3, 3),
  ]);
  const matches = Uint8Array.from(rows, (_, i) => (i * 37) % 256);
  for (const l of [32, 3, 7, 1]) {
    const expected = [...rows].map((r, i) => `${r},${matches[i] / l}\n`).join("");
    assert.equal(chunkCsv({ rows, matches }, l), expected, `l = ${l}`);
    // In slices into one buffer, as the export writes them (the digits carry over).
    const lines = new CsvLines(l), out = new Uint8Array(rows.length * lines.maxLine);
    let text = "";
    for (let at = 0; at < rows.length; at += 700) {
      const n = lines.write({ rows, matches }, at, Math.min(rows.length, at + 700), out);
      text += new TextDecoder().decode(out.subarray(0, n));
    }
    assert.equal(text, expected, `l = ${l}, in slices`);
  }
});

Deno.test("exportScores writes CSV and Parquet that read back", async () => {
  const dir = await Deno.makeTempDir();
  const exp = experiment("m", 2, 8, dir);
  const store = openStore(dir);
  await store.prepare(makeManifest(exp, "d", new Map([["/m.onnx", "f"]])));
  const job = {
    id: "m/step2/shard00000",
    model: "m",
    step: 2,
    path: "/m.onnx",
    shard: 0,
    rows: scores.rows,
    flops: 1,
  };
  await store.writeShard(job, scores);

  const [csv] = await exportScores(dir, "csv");
  assert.equal(csv, join(dir, "exports", "m", "step2.csv"));
  assert.equal(await readFile(csv, "utf8"), "index,accuracy\n3,1\n5,0.5\n9,0.03125\n");

  const [pq] = await exportScores(dir, "parquet");
  const bytes = await readFile(pq);
  const rows = await parquetReadObjects({ file: new Uint8Array(bytes).buffer });
  assert.deepEqual(
    rows.map((r) => [Number(r.index), r.accuracy, r.matches, r.prefix, r.nll, r.memorized]),
    [
      [3, 1, 32, 32, 0.25, true],
      [5, 0.5, 16, 4, 1.5, false],
      [9, 0.03125, 1, 0, 3, false],
    ],
  );
  const parts = await exportScores(dir, "dataset");
  assert.deepEqual(parts, [join(dir, "exports", "dataset", "model=m", "step=2", "part-0.parquet")]);
  const ds = await parquetReadObjects({ file: new Uint8Array(await readFile(parts[0])).buffer });
  assert.deepEqual(Object.keys(ds[0]), ["index", "matches", "prefix", "nll", "memorized"]);
  assert.deepEqual(ds.map((r) => Number(r.index)), [3, 5, 9]);
});

Deno.test("DuckDB reads the exports back: the file's schema, and the Hive dataset as one table with model and step", async () => {
  const dir = await Deno.makeTempDir();
  const exp = experiment("m-1.4b", 2, 8, dir);
  const store = openStore(dir);
  await store.prepare(makeManifest(exp, "d", new Map([["/m.onnx", "f"]])));
  const job = { id: "x", model: "m-1.4b", step: 2, path: "/m.onnx", shard: 0, flops: 1 };
  await store.writeShard({ ...job, rows: scores.rows }, scores);
  const [file] = await exportScores(dir, "parquet");
  await exportScores(dir, "dataset");
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const db = await DuckDBInstance.create(":memory:");
  const sql = await db.connect();
  try {
    const q = async (text: string) => (await sql.runAndReadAll(text)).getRows();
    const quoted = (path: string) => `'${path.replaceAll("'", "''")}'`;
    assert.deepEqual(
      (await q(`DESCRIBE SELECT * FROM read_parquet(${quoted(file)})`)).map((r) => r.slice(0, 2)),
      [
        ["index", "BIGINT"],
        ["accuracy", "DOUBLE"],
        ["matches", "INTEGER"],
        ["prefix", "INTEGER"],
        ["nll", "FLOAT"],
        ["memorized", "BOOLEAN"],
      ],
    );
    assert.deepEqual(await q(`SELECT * FROM read_parquet(${quoted(file)})`), [
      [3n, 1, 32, 32, 0.25, true],
      [5n, 0.5, 16, 4, 1.5, false],
      [9n, 0.03125, 1, 0, 3, false],
    ]);
    const glob = quoted(join(dir, "exports", "dataset", "**", "*.parquet"));
    assert.deepEqual(
      await q(
        `SELECT model, step, "index", matches, prefix, nll, memorized ` +
          `FROM read_parquet(${glob}, hive_partitioning = true) ORDER BY "index"`,
      ),
      [
        ["m-1.4b", 2n, 3n, 32, 32, 0.25, true],
        ["m-1.4b", 2n, 5n, 16, 4, 1.5, false],
        ["m-1.4b", 2n, 9n, 1, 0, 3, false],
      ],
    );
  } finally {
    sql.closeSync();
    db.closeSync();
  }
  // A corrupt shard met while a Parquet file is written: the store's error, and no temporary file left.
  const shard = join(dir, "scores", "m-1.4b", "step2", "shard00000.bin");
  const bytes = await readFile(shard);
  bytes[70] ^= 1;
  await Deno.writeFile(shard, bytes);
  for (const format of ["parquet", "dataset"] as const) {
    await assert.rejects(() => exportScores(dir, format), /shard00000\.bin is corrupt \(checksum/);
  }
  const files = await readdir(join(dir, "exports"), { recursive: true });
  assert.deepEqual(files.filter((f) => f.endsWith(".tmp")), []);
});

Deno.test("exports stream in row groups and parts, and import back to the same scores", async () => {
  const dir = await Deno.makeTempDir();
  const exp = experiment("m-1.4b", 8, 10, dir);
  const store = openStore(dir);
  await store.prepare(makeManifest(exp, "d", new Map([["/m.onnx", "f"]])));
  // Three shards of 10 rows (rows 0..29 of step 8 = 32 rows seen, the last two not scored).
  const all = Array.from({ length: 30 }, (_, i) => i);
  for (let k = 0; k < 3; k++) {
    const rows = Uint32Array.from(all.slice(10 * k, 10 * k + 10));
    await store.writeShard({
      id: `m-1.4b/step8/shard${k}`,
      model: "m-1.4b",
      step: 8,
      path: "/m.onnx",
      shard: k,
      rows,
      flops: 1,
    }, {
      rows,
      matches: Uint8Array.from(rows, (r) => (r % 3 === 0 ? 32 : r % 32)),
      prefix: Uint8Array.from(rows, (r) => (r % 3 === 0 ? 32 : 0)),
      nll: Float32Array.from(rows, (r) => r / 8),
    });
  }
  const parts = await exportScores(dir, "dataset", { rowGroup: 8, partRows: 16 });
  const base = join(dir, "exports", "dataset", "model=m-1.4b", "step=8");
  assert.deepEqual(parts, [join(base, "part-0.parquet"), join(base, "part-1.parquet")]);
  const groups = [];
  const back: number[] = [];
  for (const p of parts) {
    const file = new Uint8Array(await readFile(p)).buffer;
    groups.push(parquetMetadata(file).row_groups.map((g) => Number(g.num_rows)));
    for (const r of await parquetReadObjects({ file })) back.push(Number(r.index));
  }
  assert.deepEqual(groups, [[8, 8], [8, 6]]);
  assert.deepEqual(back, all);
  const [pq] = await exportScores(dir, "parquet", { rowGroup: 8 });
  assert.equal(pq, join(dir, "exports", "m-1.4b", "step8.parquet"));
  const meta = parquetMetadata(new Uint8Array(await readFile(pq)).buffer);
  assert.deepEqual(meta.row_groups.map((g) => Number(g.num_rows)), [8, 8, 8, 6]);

  // The Hive dataset imports back (its two parts are one run; "-" in the model is no problem).
  const { importRuns } = await import("../engine/import/import.ts");
  const { readImportedCheckpoints } = await import("../engine/import/imported.ts");
  const out = join(dir, "imported-run");
  const record = await importRuns({
    inputs: [join(dir, "exports", "dataset")],
    experiment: { ...exp, memorization: { ...exp.memorization } },
    output: out,
    command: "test",
    log: () => {},
  });
  assert.equal(record.runs[0].model, "m-1.4b");
  assert.deepEqual(record.runs[0].columns, ["matches", "prefix", "nll"]);
  const [run] = await readImportedCheckpoints(out, record);
  assert.equal(run.scored.size, 30);
  assert.deepEqual(Array.from(run.memorized), all.filter((r) => r % 3 === 0));
  const c = run.source!.chunk(0);
  assert.deepEqual(Array.from(c.nll!), all.map((r) => r / 8));
  assert.deepEqual(Array.from(c.matches), all.map((r) => (r % 3 === 0 ? 32 : r % 32)));
});
