import assert from "node:assert/strict";
import { parseFixture } from "./fixtures/experiment.ts";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { isUserError } from "../engine/errors.ts";
import { join } from "node:path";
import { decodeShard, encodeShard, isShardProblem } from "../engine/store/shard_file.ts";
import {
  makeManifest,
  missingShards,
  openStore,
  readManifest,
  shardPath,
  stableJson,
} from "../engine/store/store.ts";
import { readStoredCheckpoints, readStoredSources } from "../engine/store/stored_checkpoints.ts";
import type { Experiment, Job, RowScores } from "../engine/types.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";

function experiment(dir: string, context = 32): Experiment {
  return parseFixture(
    `name: t
suite:
  sequences_per_step: 4
  tokens_per_sequence: 8
  models:
    - {name: m1, parameters: 10, checkpoints: {1: m1.onnx}}
    - {name: m2, parameters: 20, checkpoints: {1: m2.onnx}}
data: {format: raw, path: data.bin, row_length: 64}
memorization: {context: ${context}, continuation: 32}
target: {model: m2, step: 1}
batch_size: 4
shard_size: 3
analysis: {budgets: [0.1], bootstrap: 10}
`,
    { dir, output: dir },
  );
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
  const d = decodeShard(bytes);
  if (isShardProblem(d)) throw new Error(d.problem);
  assert.deepEqual([...d.rows], [5, 9, 70000]);
  assert.deepEqual([...d.matches], [5, 9, 70000 % 33]);
  assert.deepEqual([...d.prefix], [5, 9, 0]);
  assert.deepEqual([...d.nll], [5 / 3, 3, 70000 / 3].map(Math.fround));
  assert.equal(d.continuation, 32);
  assert.equal(d.shard, 7);
  assert.equal(d.key, "ab".repeat(32));
  assert.deepEqual(decodeShard(bytes.subarray(0, bytes.length - 1)), {
    problem: "truncated: 93 bytes, the header's 3 rows need 94",
  });
  assert.deepEqual(decodeShard(new Uint8Array(10)), {
    problem: "truncated: 10 bytes, shorter than the 64-byte header",
  });
});

Deno.test("decodeShard detects a flipped byte anywhere in the file and says what it found", () => {
  const bytes = encodeShard(scores([5, 9, 70000]), 32, 7, "ab".repeat(32));
  for (let at = 0; at < bytes.length; at++) {
    const bad = bytes.slice();
    bad[at] ^= 0x10;
    const d = decodeShard(bad);
    assert.ok(isShardProblem(d), `a flip at byte ${at} went unnoticed`);
    const expected = at < 8
      ? /^not a shard file/
      : at < 12
      ? /^shard format version/
      : at < 16
      ? /^(truncated|too long)/
      : /^checksum mismatch \(stored xxh64 [0-9a-f]{16}, contents hash to [0-9a-f]{16}\)$/;
    assert.match(d.problem, expected, `byte ${at}`);
  }
});

Deno.test("decodeShard names a version 1 shard (written before checksums) as such", () => {
  const bytes = encodeShard(scores([1]), 32, 0, "ab".repeat(32));
  new DataView(bytes.buffer).setUint32(8, 1, true);
  bytes.fill(0, 56, 64);
  assert.deepEqual(decodeShard(bytes), {
    problem: "shard format version 1 (written before shards carried checksums)",
  });
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

Deno.test("a shard that cannot be read is an error, not a missing shard to score again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = openStore(dir);
    await store.prepare(makeManifest(experiment(dir), "data1", fingerprints(dir)));
    const j = job("m1", 0, [0, 1, 2]);
    assert.equal(await store.isDone(j), false); // absent: to be scored
    // A symbolic link to itself: there, but no read gets through (ELOOP, even as root).
    const path = join(dir, shardPath("m1", 1, 0));
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.symlink(path, path);
    await assert.rejects(
      () => store.isDone(j),
      (e: Error) => e.name !== "UserError" && e.message.startsWith(`${path}: cannot be read`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readStoredCheckpoints: ranges, memorized rows and counts in one pass; chunks read back whatever their sizes", async () => {
  const dir = await Deno.makeTempDir();
  const exp = experiment(dir);
  const store = openStore(dir);
  await store.prepare(makeManifest(exp, "data1", fingerprints(dir)));
  // Shards of 3, 1 and 3 rows (the reused buffer shrinks and grows), gaps between rows 2 and 5.
  const parts = [[0, 1, 2], [5], [6, 7, 40]];
  for (const [k, rows] of parts.entries()) {
    const s = scores(rows);
    s.prefix = Uint8Array.from(rows, (r) => (r === 6 || r === 40 ? 32 : r % 20));
    await store.writeShard(job("m1", k, rows), s);
  }
  const [run] = await readStoredCheckpoints(dir);
  assert.deepEqual([...run.scored.bounds], [0, 3, 5, 8, 40, 41]);
  assert.equal(run.scored.size, 7);
  assert.deepEqual([...run.memorized], [6, 40]);
  const all = parts.flat();
  const counts = new Array(33).fill(0);
  for (const r of all) counts[Math.min(r % 33, 32)]++;
  assert.deepEqual(run.matchCounts, counts);
  const source = run.source!;
  for (let pass = 0; pass < 2; pass++) {
    const seen: number[][] = [];
    for (let k = 0; k < source.chunks; k++) {
      const c = source.chunk(k);
      seen.push([...c.rows]);
      assert.deepEqual([...c.matches], parts[k].map((r) => r % 33));
      assert.deepEqual([...c.nll!], parts[k].map((r) => Math.fround(r / 3)));
    }
    assert.deepEqual(seen, parts);
  }
  source.close?.();
  assert.deepEqual([...source.chunk(1).rows], [5]);
  // A shard verified by the first pass and replaced since (a new file) is verified again.
  const path = join(dir, shardPath("m1", 1, 2));
  const bytes = await readFile(path);
  bytes[64 + 3] ^= 4;
  await writeFile(`${path}.new`, bytes);
  await Deno.rename(`${path}.new`, path);
  assert.throws(() => source.chunk(2), /shard00002\.bin is corrupt \(checksum mismatch/);
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
  assert.deepEqual(await readStoredCheckpoints(dir), []);
  assert.deepEqual(await readStoredSources(dir), []);
});

Deno.test("a corrupt shard is reported with its path, moved to stale/corrupt/ and counted as missing", async () => {
  const dir = await Deno.makeTempDir();
  const notes: string[] = [];
  const store = openStore(dir, { onNotice: (m) => notes.push(m) });
  await store.prepare(makeManifest(experiment(dir), "data1", fingerprints(dir)));
  const j = job("m1", 0, [0, 1, 2]);
  await store.writeShard(j, scores([0, 1, 2]));
  const path = join(dir, shardPath("m1", 1, 0));
  const bytes = await readFile(path);
  bytes[64 + 4 * 3 + 1] ^= 1; // one bit of an NLL
  await writeFile(path, bytes);

  // Readers that only look (dry run, report) name it and leave it in place.
  const looked: string[] = [];
  assert.deepEqual(
    (await missingShards(dir, { jobs: [j] }, { onNotice: (m) => looked.push(m) })).map((x) => x.id),
    [j.id],
  );
  assert.equal(looked.length, 1);
  assert.match(
    looked[0],
    /shard00000\.bin is corrupt \(checksum mismatch .*\); a run of the experiment rescores it/,
  );
  await assert.rejects(() => readCheckpointScores(dir), (e) => {
    assert.ok(isUserError(e));
    assert.match((e as Error).message, /shard00000\.bin is corrupt \(checksum mismatch/);
    return true;
  });
  // The export's reader reads headers first and the shard when it streams it.
  const [source] = await readStoredSources(dir);
  assert.throws(() => source.source.chunk(0), /shard00000\.bin is corrupt \(checksum mismatch/);
  // A flipped bit in the header's key: decoded whole, so corrupt, not foreign.
  const keyFlipped = bytes.slice();
  keyFlipped[64 + 4 * 3 + 1] ^= 1;
  keyFlipped[30] ^= 1;
  await writeFile(path, keyFlipped);
  await assert.rejects(() => readStoredSources(dir), /shard00000\.bin is corrupt \(checksum/);
  await writeFile(path, bytes);

  // The writer moves it aside and rescoring replaces it.
  assert.equal(await store.isDone(j), false);
  assert.equal(notes.length, 1);
  assert.match(
    notes[0],
    /shard00000\.bin is corrupt \(checksum mismatch .*\); moved it to .*stale\/corrupt\/m1-step1-shard00000\.bin\..*; it is rescored\./,
  );
  const moved = await readdir(join(dir, "stale", "corrupt"));
  assert.equal(moved.length, 1);
  assert.deepEqual(await readFile(join(dir, "stale", "corrupt", moved[0])), bytes);
  await store.writeShard(j, scores([0, 1, 2]));
  assert.equal(await store.isDone(j), true);
  assert.deepEqual(
    [...(await readCheckpointScores(dir))[0].nll!],
    [0, 1 / 3, 2 / 3].map(Math.fround),
  );
});

Deno.test("a manifest that is not JSON or not a manifest is a user error naming it", async () => {
  const dir = await Deno.makeTempDir();
  for (const text of ['{"version": 2, "settingsHash": "ab"', "[]", '{"version": 2}']) {
    await writeFile(join(dir, "manifest.json"), text);
    await assert.rejects(() => readManifest(dir), (e) => {
      assert.ok(isUserError(e));
      assert.match(
        (e as Error).message,
        new RegExp(`^${join(dir, "manifest.json")}: .*: the manifest is damaged\\. .*delete it`),
      );
      return true;
    });
  }
});

Deno.test("a store of format version 1 is moved to stale/ with a note and rescored", async () => {
  const dir = await Deno.makeTempDir();
  const store = openStore(dir);
  const manifest = makeManifest(experiment(dir), "data1", fingerprints(dir));
  await store.prepare(manifest);
  const j = job("m1", 0, [0, 1, 2]);
  await store.writeShard(j, scores([0, 1, 2]));
  // Rewrite the folder as the previous version left it.
  const v1 = {
    ...manifest,
    version: 1,
    settingsHash: "11".repeat(32),
    settings: { storeVersion: 1 },
  };
  await writeFile(join(dir, "manifest.json"), JSON.stringify(v1));
  const notices = await openStore(dir).prepare(manifest);
  assert.equal(notices.length, 1);
  assert.match(
    notices[0],
    /store format 1, this harness writes format 2 .*cannot verify .*moved them to .*stale\/scores-.*; they are rescored/,
  );
  assert.equal((await missingShards(dir, { jobs: [j] })).length, 1);
});
