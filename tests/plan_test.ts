import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { parseFixture } from "./fixtures/experiment.ts";
import { UserError } from "../engine/errors.ts";
import { formatFlops, formatPlan, jobId, makePlan } from "../engine/plan/plan.ts";
import { sampleRows, seenLimit, seenRows, selectRows } from "../engine/data/rows.ts";
import { xoshiro128 } from "../engine/random.ts";
import type { Experiment } from "../engine/types.ts";

const SUITE = `suite:
  sequences_per_step: 16
  tokens_per_sequence: 128
  steps: [23, 43, 143]
  models:
    - name: small
      parameters: 1000
      non_embedding_parameters: 400
      path: s/step{step}.onnx
    - name: big
      parameters: 5000
      non_embedding_parameters: 3000
      path: b/step{step}.onnx
data: {format: raw, path: d.bin, row_length: 129}
shard_size: 1000
`;

function experiment(extra = ""): Experiment {
  return parseFixture(SUITE + extra, { dir: "/tmp/plan", name: "exp" });
}

Deno.test("seen rows: all rows below the last step, capped at the data", () => {
  const exp = experiment();
  assert.equal(seenLimit(exp, 10_000), 143 * 16);
  assert.equal(seenLimit(exp, 1000), 1000);
  const rows = selectRows(exp, 10_000);
  assert.equal(rows.length, 2288);
  assert.equal(rows[0], 0);
  assert.equal(rows[2287], 2287);
  assert.equal(seenRows(rows, 23, 16).length, 368);
  assert.equal(seenRows(rows, 43, 16).length, 688);
  assert.equal(seenRows(rows, 1000, 16).length, 2288);
  assert.equal(seenRows(Uint32Array.of(3, 10, 367, 368, 900), 23, 16).length, 3);
});

Deno.test("range rows: within the data; a range or sample beyond it is an error at its line", () => {
  assert.deepEqual(Array.from(selectRows(experiment("rows: {range: [5, 9]}\n"), 100)), [
    5,
    6,
    7,
    8,
  ]);
  assert.equal(selectRows(experiment("rows: {range: [97, 100]}\n"), 100).length, 3);
  for (
    const [rows, pattern] of [
      [
        "rows: {range: [97, 200]}\n",
        /exp\.yaml:16:15: rows\.range \[97, 200\] goes beyond/,
      ],
      ["rows: {range: [100, 200]}\n", /the data, which has 100 rows .*END ≤ 100/],
      [
        "rows: {sample: 101}\n",
        /exp\.yaml:16:16: rows\.sample 101 is more than the 100/,
      ],
    ] as const
  ) {
    assert.throws(
      () => selectRows(experiment(rows), 100),
      (e: Error) => e instanceof UserError && pattern.test(e.message),
      rows,
    );
  }
  assert.equal(selectRows(experiment("rows: {sample: 100}\n"), 100).length, 100);
});

Deno.test("sampled rows: seeded, distinct, ascending, uniform, deterministic", () => {
  const exp = experiment("rows: {sample: 500, seed: 42}\n");
  const a = selectRows(exp, 10_000);
  assert.equal(a.length, 500);
  for (let i = 1; i < a.length; i++) assert.ok(a[i] > a[i - 1]);
  assert.ok(a[499] < 2288, "only seen rows are sampled");
  assert.deepEqual(selectRows(exp, 10_000), a);
  assert.notDeepEqual(selectRows(experiment("rows: {sample: 500, seed: 43}\n"), 10_000), a);
  // Pinned values: the same on every platform (32-bit integer math only).
  assert.deepEqual(Array.from(sampleRows(1000, 5, 1)), PINNED_SAMPLE);
  const first = xoshiro128(7);
  assert.deepEqual([first(), first(), first()], PINNED_XOSHIRO);
  // Uniform: half of the population sampled; each decile holds close to a tenth.
  const half = sampleRows(100_000, 50_000, 3);
  const deciles = new Array(10).fill(0);
  for (const r of half) deciles[Math.floor(r / 10_000)]++;
  for (const d of deciles) assert.ok(Math.abs(d - 5000) < 250, `decile count ${d}`);
  assert.deepEqual(Array.from(sampleRows(4, 10, 0)), [0, 1, 2, 3]);
});

const PINNED_SAMPLE = [336, 352, 469, 566, 886];
const PINNED_XOSHIRO = [1004282400, 2200021487, 1928073449]; // checked against an independent Python implementation

Deno.test("plan: jobs per model, step and shard, largest model first", () => {
  const exp = experiment();
  const plan = makePlan(exp, 10_000);
  assert.equal(plan.shards, 3);
  assert.equal(plan.selectedRows, 2288);
  assert.deepEqual(plan.rowsPerCheckpoint, [
    { model: "small", step: 23, rows: 368 },
    { model: "small", step: 43, rows: 688 },
    { model: "small", step: 143, rows: 2288 },
    { model: "big", step: 23, rows: 368 },
    { model: "big", step: 43, rows: 688 },
    { model: "big", step: 143, rows: 2288 },
  ]);
  assert.deepEqual(plan.jobs.map((j) => [j.id, j.rows.length]), [
    ["big/step143/shard00000", 1000],
    ["big/step143/shard00001", 1000],
    ["big/step143/shard00002", 288],
    ["big/step43/shard00000", 688],
    ["big/step23/shard00000", 368],
    ["small/step143/shard00000", 1000],
    ["small/step143/shard00001", 1000],
    ["small/step143/shard00002", 288],
    ["small/step43/shard00000", 688],
    ["small/step23/shard00000", 368],
  ]);
  const job = plan.jobs[1];
  assert.equal(job.rows[0], 1000);
  assert.equal(job.path, "/tmp/plan/b/step143.onnx");
  assert.equal(job.shard, 1);
  assert.equal(job.flops, 2 * 5000 * 64 * 1000);
  assert.equal(plan.scoringFlops, 2 * 64 * (5000 + 1000) * (368 + 688 + 2288));
  assert.deepEqual(plan.trainingFlops[5], {
    model: "big",
    step: 143,
    flops: 6 * 5000 * 143 * 16 * 128,
  });
  assert.equal(plan.finished.length, 0);
  assert.equal(plan.pendingFlops, plan.scoringFlops);
  assert.equal(jobId("m", 7, 12), "m/step7/shard00012");
});

Deno.test("plan: resume state, full mode, non-embedding compute, sampled rows", () => {
  const done = new Set(["big/step143/shard00000", "small/step23/shard00000", "other/x"]);
  const plan = makePlan(experiment(), 10_000, { done });
  assert.deepEqual(plan.finished, ["big/step143/shard00000", "small/step23/shard00000"]);
  assert.equal(plan.pendingFlops, plan.scoringFlops - 2 * 64 * (5000 * 1000 + 1000 * 368));
  const text = formatPlan(plan, ["data file is missing"]);
  assert.match(text, /^note: data file is missing\n/);
  assert.match(text, /resume: 2 of 10 jobs finished; 8 to run/);
  assert.match(text, /big\s+143\s+2,288\s+3\s+1\.46 GFLOP\s+8\.79 GFLOP \(target\)/);
  const full = makePlan(experiment("memorization: {mode: full}\n"), 10_000);
  assert.equal(full.jobs[0].flops, 2 * 5000 * (32 + 64) * 1000);
  assert.match(formatPlan(full), /mode full: ≈ 2·N·\(k\+2l\) per row, an upper bound/);
  const ne = makePlan(experiment("analysis: {parameter_count: non-embedding}\n"), 10_000);
  assert.equal(ne.trainingFlops[0].flops, 6 * 400 * 23 * 16 * 128);
  const sampled = makePlan(experiment("rows: {sample: 100, seed: 1}\n"), 10_000);
  assert.equal(sampled.shards, 1);
  assert.equal(
    sampled.jobs.reduce((a, j) => a + j.rows.length, 0),
    100 + 100 + 2 * (
          seenRows(sampled.jobs[0].rows, 43, 16).length +
          seenRows(sampled.jobs[0].rows, 23, 16).length
        ),
  );
});

Deno.test("formatFlops uses SI units with three significant digits", () => {
  assert.equal(formatFlops(999), "999 FLOP");
  assert.equal(formatFlops(1.2e15), "1.20 PFLOP");
  assert.equal(formatFlops(123.4e18), "123 EFLOP");
  assert.equal(formatFlops(2.13e22), "21.3 ZFLOP");
});

Deno.test("pythia-deduped: the paper-scale plan", async () => {
  const file = fileURLToPath(new URL("../experiments/pythia-deduped.yaml", import.meta.url));
  const exp = await loadExperiment(file);
  assert.equal(exp.suite.models.length, 8);
  assert.deepEqual(exp.target, { model: "pythia-12b-deduped", step: 143000 });
  assert.equal(exp.devices.length, 8);
  const plan = makePlan(exp, 146_432_000);
  assert.equal(plan.rowsPerCheckpoint.length, 56);
  assert.deepEqual(plan.rowsPerCheckpoint.slice(49).map((c) => c.rows), [
    23_552_000,
    44_032_000,
    64_512_000,
    84_992_000,
    105_472_000,
    125_952_000,
    146_432_000,
  ]);
  assert.equal(plan.shards, 147);
  assert.equal(plan.jobs.length, 8 * (24 + 45 + 65 + 85 + 106 + 126 + 147));
  assert.equal(plan.jobs[0].id, "pythia-12b-deduped/step143000/shard00000");
  assert.equal(plan.trainingFlops[55].flops, 6 * 11_846_072_320 * 143_000 * 1024 * 2048);
  assert.match(
    formatPlan(plan),
    /pythia-12b-deduped\s+143000\s+146,432,000\s+147\s+222 EFLOP\s+21\.3 ZFLOP \(target\)/,
  );
});
