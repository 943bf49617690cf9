import assert from "node:assert/strict";
import { parseFault } from "./fixtures/faults.ts";
import { orderJobs, pickJob, type PoolOptions, runPool, slotLabels } from "../engine/run/pool.ts";
import type { Job, RowScores } from "../engine/types.ts";

const fakeWorker = new URL("./fixtures/pool_worker.ts", import.meta.url);

function job(model: string, shard: number, rows: number[], flops = rows.length): Job {
  const id = `${model}/step1/shard${String(shard).padStart(5, "0")}`;
  return {
    id,
    model,
    step: 1,
    path: `/x/${model}.onnx`,
    shard,
    rows: Uint32Array.from(rows),
    flops,
  };
}

function jobs(): Job[] {
  const out: Job[] = [];
  for (const m of ["a", "b", "c"]) {
    for (let k = 0; k < 4; k++) {
      out.push(job(m, k, Array.from({ length: 20 }, (_, i) => 20 * k + i)));
    }
  }
  return out;
}

function options(list: Job[], results: Map<string, RowScores>): PoolOptions {
  return {
    slots: [{ device: "cpu", threads: 1 }, { device: "cpu", threads: 1 }],
    jobs: list,
    workerUrl: fakeWorker,
    task: (j) => ({
      id: j.id,
      path: j.path,
      data: { format: "raw", path: "/dev/null" },
      rows: j.rows,
      memorization: {
        offset: 0,
        context: 4,
        continuation: 4,
        mode: "extractable",
        suppressedTokens: [0],
      },
      batchSize: 7,
    }),
    onResult: (j, s) => {
      results.set(j.id, {
        ...s,
        matches: s.matches.slice(),
        prefix: s.prefix.slice(),
        nll: s.nll.slice(),
      });
      return Promise.resolve();
    },
  };
}

function assertFakeScores(j: Job, s: RowScores) {
  assert.deepEqual([...s.rows], [...j.rows]);
  assert.deepEqual([...s.matches], [...j.rows].map((r) => r % 33));
  assert.deepEqual([...s.prefix], [...j.rows].map((r) => r % 17));
  assert.deepEqual([...s.nll], [...j.rows].map((r) => Math.fround(r / 8)));
}

Deno.test("slotLabels numbers repeated devices only", () => {
  assert.deepEqual(
    slotLabels([{ device: "cpu", threads: 1 }, { device: "cpu", threads: 1 }, {
      device: "cuda:0",
      threads: 1,
    }]),
    ["cpu#0", "cpu#1", "cuda:0"],
  );
});

Deno.test("orderJobs puts the checkpoint with most work first, largest job first", () => {
  const list = [job("a", 0, [1]), job("b", 0, [1, 2]), job("b", 1, [3, 4, 5]), job("a", 1, [2, 3])];
  assert.deepEqual(orderJobs(list).map((j) => j.id), [
    "b/step1/shard00001",
    "b/step1/shard00000",
    "a/step1/shard00001",
    "a/step1/shard00000",
  ]);
});

Deno.test("pickJob prefers the loaded model, then a model no other slot holds", () => {
  const list = [job("a", 0, [1]), job("a", 1, [2]), job("b", 0, [1]), job("c", 0, [1])];
  assert.equal(pickJob(list, 0, ["/x/b.onnx", null], new Map()), 2);
  assert.equal(pickJob(list, 1, [null, "/x/c.onnx"], new Map()), 3);
  assert.equal(pickJob(list, 1, ["/x/a.onnx", null], new Map()), 2);
  // A job that failed on slot 0 goes elsewhere, unless slot 0 is the only slot.
  const avoid = new Map([["a/step1/shard00000", 0]]);
  assert.equal(pickJob(list, 0, [null, null], avoid), 1);
  assert.equal(pickJob(list, 0, [null], avoid), 0);
  assert.equal(pickJob([], 0, [null], avoid), -1);
});

Deno.test("runPool scores every job on two slots", async () => {
  const list = jobs();
  const results = new Map<string, RowScores>();
  const run = runPool(options(list, results));
  const outcome = await run.done;
  assert.equal(outcome.interrupted, false);
  assert.deepEqual(outcome.done.toSorted(), list.map((j) => j.id).toSorted());
  for (const j of list) assertFakeScores(j, results.get(j.id)!);
  assert.equal(run.rowsDone(), 240);
  assert.equal(run.status().reduce((a, s) => a + s.rows, 0), 240);
});

Deno.test("a job whose worker dies is retried and the run completes", async () => {
  const list = jobs();
  const results = new Map<string, RowScores>();
  const notices: string[] = [];
  const outcome = await runPool({
    ...options(list, results),
    workerOptions: parseFault("crash:b/step1/shard00002:2"),
    onNotice: (m) => notices.push(m),
  }).done;
  assert.equal(outcome.done.length, list.length);
  for (const j of list) assertFakeScores(j, results.get(j.id)!);
  assert.equal(notices.length, 2);
  assert.match(notices[0], /b\/step1\/shard00002 failed on cpu#\d \(try 1\): .*exited/);
});

Deno.test("a job that keeps failing stops the run with its error; finished jobs are kept", async () => {
  const list = jobs();
  const results = new Map<string, RowScores>();
  await assert.rejects(
    runPool({ ...options(list, results), workerOptions: parseFault("throw:c/step1/shard00001:99") })
      .done,
    /job c\/step1\/shard00001 \(\/x\/c\.onnx\) failed 3 times on cpu#\d; last error: injected fault/,
  );
  assert.ok(results.size > 0 && !results.has("c/step1/shard00001"));
  for (const [id, s] of results) assertFakeScores(list.find((j) => j.id === id)!, s);
});

Deno.test("an aborted pool finishes the jobs in flight and reports the rest pending", async () => {
  const list = jobs();
  const results = new Map<string, RowScores>();
  const controller = new AbortController();
  const opts = options(list, results);
  const outcome = await runPool({
    ...opts,
    signal: controller.signal,
    onResult: async (j, s) => {
      await opts.onResult(j, s);
      controller.abort();
    },
  }).done;
  assert.equal(outcome.interrupted, true);
  assert.ok(outcome.done.length >= 1 && outcome.done.length <= 3, `done ${outcome.done.length}`);
  assert.equal(results.size, outcome.done.length);
});

Deno.test("jobs still in flight after the grace period are dropped at a batch boundary", async () => {
  const list = jobs();
  const results = new Map<string, RowScores>();
  const controller = new AbortController();
  const opts = options(list, results);
  const run = runPool({
    ...opts,
    task: (j) => ({ ...opts.task(j), batchSize: 1 }),
    signal: controller.signal,
    graceMs: 100,
  });
  const started = () => run.status().every((s) => s.job !== null && s.jobDone > 0);
  while (!started()) await new Promise((r) => setTimeout(r, 10));
  controller.abort();
  const outcome = await run.done;
  assert.equal(outcome.interrupted, true);
  assert.deepEqual(outcome.done, []);
  assert.equal(outcome.dropped.length, 2);
  assert.equal(results.size, 0);
});
