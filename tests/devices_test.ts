import assert from "node:assert/strict";
import { choose, cpuCandidates, trialExperiment } from "../bench/devices.ts";
import { writeMegatron } from "../bench/megatron.ts";
import { loadExperiment } from "../engine/config/config.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { makePlan } from "../engine/run/plan.ts";
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
