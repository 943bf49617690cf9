import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parquetReadObjects } from "hyparquet";
import { exportScores, scoresToCsv } from "../engine/store/export.ts";
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

Deno.test("scoresToCsv writes the reference index,accuracy format", () => {
  assert.equal(scoresToCsv(scores), "index,accuracy\n3,1\n5,0.5\n9,0.03125\n");
});

Deno.test("exportScores writes CSV and Parquet that read back", async () => {
  const dir = await Deno.makeTempDir();
  const exp = {
    name: "t",
    suite: {
      models: [{ name: "m", parameters: 1, checkpoints: [{ step: 2, path: "/m.onnx" }] }],
      sequencesPerStep: 4,
    },
    data: { format: "raw", path: "/d" },
    memorization: {
      offset: 0,
      context: 32,
      continuation: 32,
      mode: "extractable",
      suppressedTokens: [0],
    },
    rows: { kind: "seen" },
    shardSize: 8,
  } as unknown as Experiment;
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
  assert.equal(csv, join(dir, "exports", "m-step2.csv"));
  assert.equal(await readFile(csv, "utf8"), "index,accuracy\n3,1\n5,0.5\n9,0.03125\n");

  const [pq] = await exportScores(dir, "parquet");
  const bytes = await readFile(pq);
  const rows = await parquetReadObjects({ file: new Uint8Array(bytes).buffer });
  assert.deepEqual(rows.map((r) => [Number(r.index), r.accuracy, r.matches, r.prefix, r.nll]), [
    [3, 1, 32, 32, 0.25],
    [5, 0.5, 16, 4, 1.5],
    [9, 0.03125, 1, 0, 3],
  ]);
});
