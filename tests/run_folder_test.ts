import assert from "node:assert/strict";
import { copyFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertComplete } from "../engine/cluster/cluster.ts";
import { currentManifest, openRun } from "../engine/plan/run_folder.ts";
import { openStore, writeJson } from "../engine/store/store.ts";
import type { Experiment } from "../engine/types.ts";
import { experimentFromYaml } from "./fixtures/experiment.ts";

const YAML = `suite:
  sequences_per_step: 4
  steps: [10, 100]
  models: [{name: m, parameters: 1000, path: "m{step}.onnx"}]
data: {format: raw, path: data.bin, row_length: 20}
memorization: {context: 8, continuation: 8}
shard_size: 150
`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "run_folder_test" });
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const NANO = new URL("../experiments/nano/s1/", import.meta.url).pathname;

/** The experiment with a 1000-row data file; its models are nano checkpoints (only fingerprinted). */
async function withData(dir: string): Promise<Experiment> {
  const exp = await experimentFromYaml(dir, YAML);
  await writeFile(join(dir, "data.bin"), new Uint8Array(1000 * 20 * 2));
  await copyFile(join(NANO, "step23.onnx"), join(dir, "m10.onnx"));
  await copyFile(join(NANO, "step43.onnx"), join(dir, "m100.onnx"));
  return exp;
}

/** Scores (zeros) every job but `skip` into the run folder, as a scoring run would. */
async function store(exp: Experiment, skip: (id: string) => boolean): Promise<void> {
  const folder = await openRun(exp.output, { experiment: exp, fingerprint: true });
  const s = openStore(exp.output);
  await s.prepare(await currentManifest(folder, () => {}));
  await writeJson(join(exp.output, "experiment.json"), exp);
  for (const job of folder.plan.jobs) {
    if (skip(job.id)) continue;
    const n = job.rows.length;
    await s.writeShard(job, {
      rows: job.rows,
      matches: new Uint8Array(n),
      prefix: new Uint8Array(n),
      nll: new Float32Array(n),
    });
  }
}

Deno.test("openRun before any data or run: assumed rows, every job missing, both said in notes", () =>
  withDir(async (dir) => {
    const exp = await experimentFromYaml(dir, YAML);
    const folder = await openRun(exp.output, { experiment: exp, missingData: "assume" });
    assert.equal(folder.rowsAssumed, true);
    assert.equal(folder.totalRows, 400); // max step 100 × 4 rows per step
    assert.equal(folder.manifest, null);
    assert.equal(folder.missing.length, folder.plan.jobs.length);
    assert.deepEqual(folder.plan.finished, []);
    assert.match(folder.notes[0], /data file .*data\.bin is missing: assuming 400 rows/);
    assert.match(folder.notes[1], /run folder .*out does not exist yet/);
    // Without "assume", the absent data is an error naming the file.
    await assert.rejects(
      openRun(exp.output, { experiment: exp }),
      (e: Error) => e.name === "UserError" && e.message.includes(join(dir, "data.bin")),
    );
  }));

Deno.test("openRun marks stored shards finished and lists the rest", () =>
  withDir(async (dir) => {
    const exp = await withData(dir);
    const all = (await openRun(exp.output, { experiment: exp })).plan.jobs.map((j) => j.id);
    assert.deepEqual(all, [
      "m/step100/shard00000",
      "m/step100/shard00001",
      "m/step100/shard00002",
      "m/step10/shard00000",
    ]);
    await store(exp, (id) => id === "m/step100/shard00001");
    const folder = await openRun(exp.output); // the experiment from the folder's snapshot
    assert.equal(folder.experiment.name, exp.name);
    assert.equal(folder.totalRows, 1000);
    assert.equal(folder.rowsAssumed, false);
    assert.equal(folder.dataFingerprint, null);
    assert.deepEqual(folder.missing.map((j) => j.id), ["m/step100/shard00001"]);
    assert.deepEqual(folder.plan.finished, all.filter((id) => id !== "m/step100/shard00001"));
    assert.deepEqual(folder.notes, []);
  }));

Deno.test("openRun reports a damaged manifest or snapshot instead of ignoring it", () =>
  withDir(async (dir) => {
    const exp = await withData(dir);
    await store(exp, () => false);
    await writeFile(join(exp.output, "manifest.json"), "{ not json");
    await assert.rejects(
      openRun(exp.output, { experiment: exp }),
      (e: Error) => e.name === "UserError" && /manifest\.json: not valid JSON/.test(e.message),
    );
    await writeFile(join(exp.output, "experiment.json"), "[");
    await assert.rejects(
      openRun(exp.output),
      (e: Error) => e.name === "UserError" && /experiment\.json: not valid JSON/.test(e.message),
    );
  }));

Deno.test("assertComplete lists missing shards, and says when it cannot check", () =>
  withDir(async (dir) => {
    await assert.rejects(
      assertComplete(dir),
      (e: Error) => e.name === "UserError" && /experiment\.json: not found/.test(e.message),
    );
    const exp = await withData(dir);
    await store(exp, (id) => id.startsWith("m/step10/"));
    await assert.rejects(
      assertComplete(exp.output),
      (e: Error) =>
        e.name === "UserError" &&
        e.message.includes("1 of 4 shards are missing") &&
        e.message.includes("m step10: shard 0 (1 of 1 missing)"),
    );
    await store(exp, () => false);
    assert.deepEqual((await assertComplete(exp.output))?.missing, []);
    await rm(join(dir, "data.bin"));
    await assert.rejects(
      assertComplete(exp.output),
      (e: Error) =>
        e.name === "UserError" &&
        /cannot check that every shard is stored: .*data\.bin/.test(e.message) &&
        e.message.includes("--partial"),
    );
  }));

Deno.test("rows: seen over data shorter than what the checkpoints saw is scored with a note, never silently", async () => {
  await withDir(async (dir) => {
    // 100 steps × 4 sequences = 400 rows seen; the data has 300.
    const exp = await experimentFromYaml(
      dir,
      YAML.replace("shard_size: 150", "rows: seen\nshard_size: 150"),
    );
    await writeFile(join(dir, "data.bin"), new Uint8Array(300 * 20 * 2));
    const folder = await openRun(join(dir, "run"), { experiment: exp });
    assert.equal(folder.plan.selectedRows, 300);
    const note = folder.notes.find((n) => /rows: seen/.test(n));
    assert.ok(note, folder.notes.join("\n"));
    assert.match(note, /seen 400 rows .* has 300; scoring those 300/);
    assert.match(note, /:\d+:\d+: rows: seen/, "at the line of rows");
    // Data covering what was seen: no note.
    await writeFile(join(dir, "data.bin"), new Uint8Array(400 * 20 * 2));
    const full = await openRun(join(dir, "run"), { experiment: exp });
    assert.ok(!full.notes.some((n) => /rows: seen/.test(n)));
  });
});
