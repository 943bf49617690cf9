import assert from "node:assert/strict";
import { withFault } from "./fixtures/faults.ts";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { loadExperiment } from "../engine/config/config.ts";
import { isUserError } from "../engine/errors.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadModel } from "../engine/model/model.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { runExperiment, type RunOptions } from "../tasks/score.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";
import type { CheckpointScores, Experiment } from "../engine/types.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";

const quiet: RunOptions = {
  progress: false,
  log: () => {},
};

async function reduced(): Promise<Experiment> {
  const dir = await Deno.makeTempDir({ prefix: "run_test" });
  const yaml = await writeReducedExperiment(dir, {
    models: 2,
    steps: 2,
    rows: 384,
    shardSize: 64,
    batchSize: 32,
    output: join(dir, "out"),
  });
  return await loadExperiment(yaml);
}

/** Scores every job of the plan by calling the engine directly, batch by batch like the worker. */
async function direct(exp: Experiment): Promise<CheckpointScores[]> {
  const reader = await openTokenReader(exp.data);
  const plan = makePlan(exp, reader.rows);
  const m = exp.memorization;
  const out: CheckpointScores[] = [];
  for (const model of exp.suite.models) {
    for (const c of model.checkpoints) {
      const jobs = plan.jobs.filter((j) => j.model === model.name && j.step === c.step);
      if (jobs.length === 0) continue;
      const lm = await loadModel(c.path, { device: "cpu", threads: 1 });
      const rows: number[] = [], matches: number[] = [], prefix: number[] = [], nll: number[] = [];
      for (const job of jobs) {
        for (let at = 0; at < job.rows.length; at += exp.batchSize) {
          const batch = job.rows.subarray(at, at + exp.batchSize);
          const tokens = await reader.readWindow(batch, m.offset, m.context + m.continuation);
          const s = await scoreBatch(lm, tokens, batch.length, m);
          rows.push(...batch),
            matches.push(...s.matches),
            prefix.push(...s.prefix),
            nll.push(...s.nll);
        }
      }
      await lm.release();
      out.push({
        model: model.name,
        step: c.step,
        continuation: m.continuation,
        rows: Uint32Array.from(rows),
        matches: Uint8Array.from(matches),
        prefix: Uint8Array.from(prefix),
        nll: Float32Array.from(nll),
      });
    }
  }
  await reader.close();
  return out;
}

async function shardFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of await readdir(join(dir, "scores"), { recursive: true })) {
    if (/shard\d+\.bin$/.test(e)) out.push(e);
  }
  return out.sort();
}

Deno.test("the reduced nano experiment through the pool equals the engine called directly; a rerun skips everything", async () => {
  const exp = await reduced();
  const first = await runExperiment(exp, quiet);
  assert.equal(first.skipped, 0);
  assert.ok(first.scored >= 6, `scored ${first.scored}`);
  const stored = await readCheckpointScores(exp.output);
  assert.deepEqual(stored, await direct(exp));
  const again = await runExperiment(exp, quiet);
  assert.deepEqual([again.scored, again.skipped], [0, first.scored]);
});

Deno.test("shard groups together score what one run scores", async () => {
  const exp = await reduced();
  const a = await runExperiment(exp, { ...quiet, shardGroup: { index: 0, count: 2 } });
  const b = await runExperiment(exp, { ...quiet, shardGroup: { index: 1, count: 2 } });
  assert.ok(a.scored > 0 && b.scored > 0);
  const whole = await runExperiment(exp, quiet);
  assert.deepEqual([whole.scored, whole.skipped], [0, a.scored + b.scored]);
  assert.deepEqual(await readCheckpointScores(exp.output), await direct(exp));
});

Deno.test("a job whose worker dies is retried and the run completes", async () => {
  const exp = await reduced();
  const reader = await openTokenReader(exp.data);
  const victim = makePlan(exp, reader.rows).jobs[1].id;
  await reader.close();
  const notices: string[] = [];
  const outcome = await runExperiment(exp, {
    ...quiet,
    ...withFault(`crash:${victim}:2`),
    log: (m) => notices.push(m),
  });
  assert.equal(outcome.interrupted, false);
  assert.equal(notices.filter((n) => n.includes(`${victim} failed`)).length, 2);
  assert.deepEqual(await readCheckpointScores(exp.output), await direct(exp));
});

Deno.test("a permanently failing job stops the run with a clear message and keeps finished shards", async () => {
  const exp = await reduced();
  const reader = await openTokenReader(exp.data);
  const jobs = makePlan(exp, reader.rows).jobs;
  await reader.close();
  const victim = jobs.at(-1)!.id;
  await assert.rejects(
    runExperiment(exp, { ...quiet, ...withFault(`throw:${victim}:99`) }),
    new RegExp(
      `job ${
        victim.replaceAll("/", "\\/")
      } .* failed 3 times on cpu#\\d; last error: injected fault`,
    ),
  );
  const kept = await shardFiles(exp.output);
  assert.ok(kept.length >= 1 && kept.length < jobs.length, `kept ${kept.length} of ${jobs.length}`);
  const resumed = await runExperiment(exp, quiet);
  assert.deepEqual([resumed.scored, resumed.skipped], [jobs.length - kept.length, kept.length]);
  assert.deepEqual(await readCheckpointScores(exp.output), await direct(exp));
});

Deno.test("a user error in a worker is not retried and reaches the caller as a UserError", async () => {
  const exp = await reduced();
  exp.suite.models[0].vocabSize = 300;
  const notices: string[] = [];
  const error = await runExperiment(exp, { ...quiet, log: (m) => notices.push(m) }).catch((e) => e);
  assert.ok(isUserError(error), String(error));
  assert.match(error.message, /300/);
  assert.deepEqual(notices.filter((n) => n.includes("retrying")), []);
});

Deno.test("a stopped signal ends the run with outcome interrupted, without exiting; a rerun scores all", async () => {
  const exp = await reduced();
  const controller = new AbortController();
  controller.abort("test stop");
  const notices: string[] = [];
  const outcome = await runExperiment(exp, {
    ...quiet,
    signal: controller.signal,
    log: (m) => notices.push(m),
  });
  assert.equal(outcome.interrupted, true);
  assert.equal(outcome.scored, 0);
  assert.ok(
    notices.includes("Stopping: finishing the shards in flight (test stop)…"),
    notices.join("\n"),
  );
  assert.ok(notices.some((n) => /^Interrupted: 0 of \d+ remaining shards done; rerun/.test(n)));
  const resumed = await runExperiment(exp, quiet);
  assert.equal(resumed.skipped, 0);
  assert.deepEqual(await readCheckpointScores(exp.output), await direct(exp));
});
