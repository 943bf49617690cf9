import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeShard, encodeShard } from "../engine/store/shard_file.ts";
import {
  makeManifest,
  missingShards,
  modelFingerprint,
  openStore,
  readCheckpointScores,
  shardPath,
  stableJson,
} from "../engine/store/store.ts";
import type { Experiment, Job, RowScores } from "../engine/types.ts";

function experiment(dir: string, context = 32): Experiment {
  return {
    name: "t",
    file: join(dir, "t.yaml"),
    suite: {
      models: [
        { name: "m1", parameters: 10, checkpoints: [{ step: 1, path: join(dir, "m1.onnx") }] },
        { name: "m2", parameters: 20, checkpoints: [{ step: 1, path: join(dir, "m2.onnx") }] },
      ],
      sequencesPerStep: 4,
      tokensPerSequence: 8,
      endOfTextId: 0,
    },
    data: { format: "raw", path: join(dir, "data.bin") },
    memorization: {
      offset: 0,
      context,
      continuation: 32,
      mode: "extractable",
      suppressedTokens: [0],
    },
    rows: { kind: "seen" },
    target: { model: "m2", step: 1 },
    devices: [{ device: "cpu", threads: 1 }],
    batchSize: 4,
    shardSize: 3,
    output: dir,
    analysis: {
      minPrecision: 0.9,
      budgets: [0.1],
      bootstrap: 10,
      seed: 0,
      parameterCount: "total",
    },
  };
}

function job(model: string, shard: number, rows: number[]): Job {
  return {
    id: `${model}/step1/shard${String(shard).padStart(5, "0")}`,
    model,
    step: 1,
    path: `/x/${model}.onnx`,
    shard,
    rows: Uint32Array.from(rows),
    flops: 1,
  };
}

function scores(rows: number[]): RowScores {
  return {
    rows: Uint32Array.from(rows),
    matches: Uint8Array.from(rows, (r) => r % 33),
    prefix: Uint8Array.from(rows, (r) => r % 20),
    nll: Float32Array.from(rows, (r) => r / 3),
  };
}

function fingerprints(dir: string, m1 = "f1"): Map<string, string> {
  return new Map([[join(dir, "m1.onnx"), m1], [join(dir, "m2.onnx"), "f2"]]);
}

Deno.test("encodeShard/decodeShard round-trip and reject truncated files", () => {
  const s = scores([5, 9, 70000]);
  const bytes = encodeShard(s, 32, 7, "ab".repeat(32));
  assert.equal(bytes.length, 64 + 30);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "MEMOSHRD");
  const d = decodeShard(bytes)!;
  assert.deepEqual([...d.rows], [5, 9, 70000]);
  assert.deepEqual([...d.matches], [5, 9, 70000 % 33]);
  assert.deepEqual([...d.prefix], [5, 9, 0]);
  assert.deepEqual([...d.nll], [5 / 3, 3, 70000 / 3].map(Math.fround));
  assert.equal(d.continuation, 32);
  assert.equal(d.shard, 7);
  assert.equal(d.key, "ab".repeat(32));
  assert.equal(decodeShard(bytes.subarray(0, bytes.length - 1)), null);
  assert.equal(decodeShard(new Uint8Array(10)), null);
});

Deno.test("stableJson ignores key order", () => {
  assert.equal(
    stableJson({ b: 1, a: { d: [2, 1], c: 0 } }),
    stableJson({ a: { c: 0, d: [2, 1] }, b: 1 }),
  );
});

Deno.test("store writes shards, skips finished ones and merges them per checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const exp = experiment(dir);
  const store = openStore(dir);
  assert.deepEqual(await store.prepare(makeManifest(exp, "data1", fingerprints(dir))), []);
  const jobs = [
    job("m1", 0, [0, 1, 2]),
    job("m1", 1, [3]),
    job("m2", 0, [0, 1, 2]),
    job("m2", 1, [3]),
  ];
  assert.equal((await missingShards(dir, { jobs })).length, 4);
  await store.writeShard(jobs[1], scores([3]));
  await store.writeShard(jobs[0], scores([0, 1, 2]));
  await store.writeShard(jobs[2], scores([0, 1, 2]));
  assert.deepEqual((await missingShards(dir, { jobs })).map((j) => j.id), ["m2/step1/shard00001"]);
  // A shard whose rows differ from the job's is not finished.
  assert.equal(await store.isDone(job("m1", 1, [4])), false);
  const read = await readCheckpointScores(dir);
  assert.deepEqual(read.map((c) => [c.model, c.step, c.continuation, [...c.rows]]), [
    ["m1", 1, 32, [0, 1, 2, 3]],
    ["m2", 1, 32, [0, 1, 2]],
  ]);
  assert.deepEqual([...read[0].matches], [0, 1, 2, 3]);
  assert.deepEqual([...read[0].nll!], [0, 1 / 3, 2 / 3, 1].map(Math.fround));
  assert.equal(
    (await readdir(join(dir, "scores", "m1", "step1"))).filter((n) => n.endsWith(".tmp")).length,
    0,
  );
});

Deno.test("store never mixes settings: changed settings or model move old scores aside", async () => {
  const dir = await Deno.makeTempDir();
  const jobs = [job("m1", 0, [0, 1, 2]), job("m2", 0, [0, 1, 2])];
  const store = openStore(dir);
  await store.prepare(makeManifest(experiment(dir), "data1", fingerprints(dir)));
  for (const j of jobs) await store.writeShard(j, scores([0, 1, 2]));
  assert.equal((await missingShards(dir, { jobs })).length, 0);

  // m1's file changed: only its shards are moved aside.
  const notices = await openStore(dir).prepare(
    makeManifest(experiment(dir), "data1", fingerprints(dir, "f1b")),
  );
  assert.equal(notices.length, 1);
  assert.match(notices[0], /m1\.onnx changed since its scores were made; moved them to .*stale/);
  assert.deepEqual((await missingShards(dir, { jobs })).map((j) => j.id), ["m1/step1/shard00000"]);
  assert.deepEqual((await readCheckpointScores(dir)).map((c) => c.model), ["m2"]);

  // Different memorization settings: every stored score is moved aside.
  const other = await openStore(dir).prepare(
    makeManifest(experiment(dir, 16), "data1", fingerprints(dir, "f1b")),
  );
  assert.match(other[0], /settings changed since the stored scores were made/);
  assert.equal((await missingShards(dir, { jobs })).length, 2);
  assert.deepEqual(await readCheckpointScores(dir), []);
});

Deno.test("a shard with a foreign key is ignored by readers", async () => {
  const dir = await Deno.makeTempDir();
  const store = openStore(dir);
  await store.prepare(makeManifest(experiment(dir), "data1", fingerprints(dir)));
  const j = job("m1", 0, [0, 1, 2]);
  await store.writeShard(j, scores([0, 1, 2]));
  assert.equal(await store.isDone(j), true);
  await writeFile(
    join(dir, shardPath("m1", 1, 0)),
    encodeShard(scores([0, 1, 2]), 32, 0, "00".repeat(32)),
  );
  assert.equal(await store.isDone(j), false);
  assert.deepEqual(await readCheckpointScores(dir), []);
});

Deno.test("modelFingerprint changes with content and with config.json", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "m.onnx");
  await writeFile(path, new Uint8Array(3 << 20).fill(1));
  const a = await modelFingerprint(path);
  assert.equal(a, await modelFingerprint(path));
  const bytes = await readFile(path);
  bytes[bytes.length - 1] = 2;
  await writeFile(path, bytes);
  const b = await modelFingerprint(path);
  assert.notEqual(a, b);
  await writeFile(join(dir, "config.json"), "{}");
  assert.notEqual(b, await modelFingerprint(path));
});
