import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { trialExperiment } from "../bench/devices.ts";
import { isUserError } from "../engine/errors.ts";
import { autoDevices, type Candidate, choose, cpuCandidates } from "../engine/run/devices.ts";
import { formatPlan } from "../engine/plan/plan.ts";
import { runExperiment, workerTask } from "../tasks/score.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { writeMegatron } from "../bench/megatron.ts";
import { loadExperiment } from "../engine/config/config.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { tempDir } from "./tiny_lm.ts";

Deno.test("device trial candidates split the cores into workers × threads", () => {
  assert.deepEqual(
    cpuCandidates(6).map((c) => [c.workers, c.threads]),
    [[1, 6], [2, 3], [3, 2], [6, 1]],
  );
  assert.deepEqual(cpuCandidates(1).map((c) => [c.workers, c.threads]), [[1, 1]]);
});

Deno.test("the device choice is the fastest, or fewer workers within 5% of it, with the reason", () => {
  const c = (workers: number, rowsPerS: number) => ({
    device: "cpu",
    workers,
    threads: 4 / workers,
    rowsPerS,
  });
  const clear = choose([c(1, 40), c(2, 50), c(4, 45)]);
  assert.equal(clear.best.workers, 2);
  assert.match(clear.why, /2 × 2 \(50\.0 rows\/s\) is the fastest; the others: 1 × 4 \(40\.0/);
  const close = choose([c(1, 48.5), c(2, 50), c(4, 49)]);
  assert.equal(close.best.workers, 1);
  assert.match(close.why, /1 × 4 \(48\.5 rows\/s\) is within 5% of the fastest, 2 × 2 \(50\.0/);
});

Deno.test("the trial's experiment file is valid: one checkpoint, its first 1024 rows", async () => {
  await using tmp = await tempDir();
  const data = writeMegatron(`${tmp.path}/data`, { rows: 1100, vocab: 50304, rowLength: 65 });
  await Deno.writeFile(`${tmp.path}/m.onnx`, new Uint8Array(1));
  const file = `${tmp.path}/trial.yaml`;
  await Deno.writeTextFile(file, trialExperiment("70m", `${tmp.path}/m.onnx`, data, "full"));
  const exp = await loadExperiment(file);
  assert.equal(exp.suite.models.length, 1);
  assert.equal(exp.suite.models[0].parameters, 70_426_624);
  assert.equal(exp.memorization.mode, "full");
  const reader = await openTokenReader(exp.data);
  const plan = makePlan(exp, reader.rows);
  await reader.close();
  assert.equal(plan.jobs.reduce((n, j) => n + j.rows.length, 0), 1024);
  assert.equal(plan.jobs.length, 16);
});

async function autoExperiment(tmp: string): Promise<string> {
  const yaml = await writeReducedExperiment(tmp, {
    models: 1,
    steps: 1,
    rows: 256,
    shardSize: 128,
    batchSize: 32,
    output: join(tmp, "out"),
  });
  // deno-lint-ignore no-explicit-any
  const doc = parse(await Deno.readTextFile(yaml)) as any;
  doc.devices = "auto";
  await Deno.writeTextFile(yaml, stringify(doc));
  return yaml;
}

Deno.test("devices: auto is valid, and a word other than auto says what is", async () => {
  await using tmp = await tempDir();
  const exp = await loadExperiment(await autoExperiment(tmp.path));
  assert.equal(exp.devicesAuto, true);
  assert.deepEqual(exp.devices.map((d) => d.device), ["cpu"]);
  const reader = await openTokenReader(exp.data);
  const plan = makePlan(exp, reader.rows);
  await reader.close();
  assert.match(formatPlan(plan), /device slots chosen by a trial when scoring starts/);
  const bad = `${tmp.path}/bad.yaml`;
  await Deno.writeTextFile(
    bad,
    (await Deno.readTextFile(`${tmp.path}/reduced.yaml`)).replace("devices: auto", "devices: fast"),
  );
  await assert.rejects(loadExperiment(bad), (e: Error) => {
    assert.ok(isUserError(e));
    assert.match(e.message, /bad\.yaml:\d+:\d+/);
    assert.match(e.message, /devices/);
    assert.match(e.message, /auto/);
    return true;
  });
});

Deno.test("devices: auto measures every split of the cores, keeps the choice per host, and the run scores as a fixed one", async () => {
  await using tmp = await tempDir();
  const exp = await loadExperiment(await autoExperiment(tmp.path));
  const reader = await openTokenReader(exp.data);
  const plan = makePlan(exp, reader.rows);
  await reader.close();
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  const slots = await autoDevices(exp, plan.jobs, (job) => workerTask(exp, job), log, 2);
  const file = join(exp.output, "devices", `${hostname().replace(/[^A-Za-z0-9._-]/g, "_")}.json`);
  const kept = JSON.parse(await Deno.readTextFile(file));
  assert.deepEqual(kept.measured.map((c: Candidate) => [c.workers, c.threads]), [[1, 2], [2, 1]]);
  for (const c of kept.measured) assert.ok(c.rowsPerS > 0);
  assert.equal(slots.length, kept.workers);
  assert.ok(slots.every((s) => s.device === "cpu" && s.threads === kept.threads));
  assert.ok(lines.some((l) => /devices: auto: a trial of 1 × 2, 2 × 1/.test(l)), lines.join("\n"));
  assert.equal(lines.filter((l) => / rows\/s \(.* s in all\)/.test(l)).length, 4, "A B B A");
  // The same host, cores, checkpoint, mode and batch: the kept choice, no trial.
  const again: string[] = [];
  const reused = await autoDevices(exp, plan.jobs, (job) => workerTask(exp, job), (l) => {
    again.push(l);
  }, 2);
  assert.deepEqual(reused, slots);
  assert.equal(again.length, 1);
  assert.match(again[0], /devices: auto → \d × \d \(chosen /);
  // A run with devices: auto completes, records the slots it used, and scores every row.
  const runLines: string[] = [];
  const outcome = await runExperiment(exp, { progress: false, log: (l) => runLines.push(l) });
  assert.equal(outcome.interrupted, false);
  const snapshot = JSON.parse(await Deno.readTextFile(join(exp.output, "experiment.json")));
  assert.equal(snapshot.devices.length, kept.workers);
  const scores = await readCheckpointScores(exp.output);
  const scored = scores.reduce((n, c) => n + c.rows.length, 0);
  assert.equal(scored, plan.jobs.reduce((n, j) => n + j.rows.length, 0));
});
