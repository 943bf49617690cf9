import assert from "node:assert/strict";
import { parseFixture } from "./fixtures/experiment.ts";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makePlan } from "../engine/plan/plan.ts";
import { makeManifest, openStore, writeJson } from "../engine/store/store.ts";
import type { CheckpointScores, Experiment, Job } from "../engine/types.ts";
import { loadTokenizer } from "../engine/data/tokenizer.ts";
import { escapeHtml } from "../reports/page/html.ts";
import { loadAnalysisInput, renderReport } from "../tasks/report.ts";
import { scanStore } from "../tasks/report_scan.ts";
import { analyze } from "../reports/analysis/analysis.ts";
import { signalHistograms } from "../reports/analysis/histograms.ts";
import { missingInRuns, readExperimentSnapshot } from "../engine/plan/run_folder.ts";
import { type ScoredCheckpoint, scoredFromScores } from "../engine/store/scored_checkpoint.ts";
import type { Summary } from "../reports/analysis/summary.ts";

const ROWS = 64;
const ROW_LENGTH = 70;

function experiment(dir: string): Experiment {
  return parseFixture(
    `name: render-test
suite:
  sequences_per_step: 16
  tokens_per_sequence: 64
  steps: [2, 4]
  models:
    - {name: small, parameters: 1000, path: "small-{step}.onnx"}
    - {name: big, parameters: 4000, path: "big-{step}.onnx"}
data: {format: raw, path: data.bin, row_length: ${ROW_LENGTH}, dtype: uint16}
target: {model: big, step: 4}
devices: [{device: cpu, workers: 2, threads: 1}]
batch_size: 8
shard_size: 32
analysis: {min_precision: 0.5, budgets: [0.1, 0.5], bootstrap: 20}
`,
    { dir, name: "render-test", output: dir },
  );
}

/** Row r is memorized by `big` when r % 4 == 0, by `small` when r % 8 == 0. */
function memorized(model: string, row: number): boolean {
  return row % (model === "big" ? 4 : 8) === 0;
}

async function makeRun(
  dir: string,
  skip: string | null,
  tokens = new Uint16Array(ROWS * ROW_LENGTH).map((_, i) => 1 + (i % 97)),
  tokenizer?: string,
): Promise<Experiment> {
  const exp = experiment(dir);
  if (tokenizer) exp.suite.tokenizer = tokenizer;
  await writeFile(exp.data.path, new Uint8Array(tokens.buffer));
  const plan = makePlan(exp, ROWS);
  const fingerprints = new Map(plan.jobs.map((j) => [j.path, `fp-${j.model}-${j.step}`]));
  const store = openStore(dir);
  await store.prepare(makeManifest(exp, "data-fp", fingerprints));
  for (const job of plan.jobs) {
    if (job.id === skip) continue;
    const n = job.rows.length;
    const prefix = Uint8Array.from(job.rows, (r) => (memorized(job.model, r) ? 32 : r % 7));
    await store.writeShard(job, {
      rows: job.rows,
      matches: prefix.slice(),
      prefix,
      nll: new Float32Array(n).fill(1),
    });
  }
  await writeJson(join(dir, "experiment.json"), exp);
  await writeFile(
    join(dir, "runs.jsonl"),
    `{"started":"2026-01-01T00:00:00.000Z","seconds":2,"rows":400}\n{"seconds":2,"rows":200}\n`,
  );
  return exp;
}

Deno.test("renderReport renders a run folder from its stored scores, naming missing shards", async () => {
  const dir = await Deno.makeTempDir({ prefix: "render-test-" });
  try {
    await makeRun(dir, "small/step4/shard00001");
    const lines: string[] = [];
    const out = await renderReport(dir, { log: (l) => lines.push(l) });
    assert.equal(out.html, join(dir, "report.html"));
    assert.ok(lines.some((l) => l.startsWith(`Rendered ${out.html} in `)), lines.join("\n"));

    const summary = JSON.parse(await readFile(out.summary, "utf8")) as Summary;
    assert.deepEqual(summary.run.missingShards, ["small/step4/shard00001"]);
    assert.deepEqual(summary.target, {
      model: "big",
      step: 4,
      rowsScored: 64,
      memorized: 16,
      rate: 0.25,
      compute: 6 * 4000 * 4 * 16 * 64,
    });
    assert.equal(summary.run.seconds, 4);
    assert.equal(summary.run.rowsPerSecond, 150);
    assert.equal(summary.run.startedAt, "2026-01-01T00:00:00.000Z");
    assert.deepEqual(summary.run.devices, ["2 workers on cpu, 1 thread each"]);
    assert.deepEqual(summary.run.data, { path: join(dir, "data.bin"), fingerprint: "data-fp" });
    assert.equal(
      summary.run.models.find((m) => m.name === "small" && m.step === 2)?.fingerprint,
      "fp-small-2",
    );
    // No tokenizer: the examples carry the row's tokens from the data file.
    assert.ok(summary.examples.length > 0);
    for (const x of summary.examples) {
      assert.equal(x.row % 4, 0);
      assert.deepEqual(
        x.tokens,
        Array.from({ length: 64 }, (_, i) => 1 + ((x.row * ROW_LENGTH + i) % 97)),
      );
      assert.equal(x.context, null);
    }
    const html = await readFile(out.html, "utf8");
    assert.match(html, /class="banner"[\s\S]*small\/step4\/shard00001/);
    const csv = (await readFile(out.csv, "utf8")).trim().split("\r\n");
    assert.equal(csv.length, 1 + summary.predictors.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples are decoded with the suite's tokenizer and escaped in the page", async () => {
  const dir = await Deno.makeTempDir({ prefix: "render-test-" });
  try {
    const path = new URL("../experiments/nano/tokenizer.json", import.meta.url).pathname;
    const tokenizer = await loadTokenizer(path);
    const planted = `<img src=x onerror="window.__pwned=1"> <script>alert(1)</script> `;
    const ids = tokenizer.encode(planted.repeat(20)).slice(0, ROW_LENGTH);
    assert.equal(ids.length, ROW_LENGTH);
    const tokens = new Uint16Array(ROWS * ROW_LENGTH).map((_, i) => ids[i % ROW_LENGTH]);
    await makeRun(dir, null, tokens, path);
    const out = await renderReport(dir, { log: () => {} });
    const summary = JSON.parse(await readFile(out.summary, "utf8")) as Summary;
    assert.deepEqual(summary.run.missingShards, []);
    const x = summary.examples[0];
    assert.equal(x.context, tokenizer.decode(ids.slice(0, 32)));
    assert.equal(x.continuation, tokenizer.decode(ids.slice(32, 64)));
    assert.ok(x.context!.includes("<img src=x"));
    const html = await readFile(out.html, "utf8");
    assert.ok(html.includes(escapeHtml(x.context!)));
    assert.ok(!html.includes(x.context!));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renderReport says what to do when the folder is not a run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "render-test-" });
  try {
    await assert.rejects(
      renderReport(dir, { log: () => {} }),
      (e: Error) => e.name === "UserError" && /experiment\.json: not found/.test(e.message),
    );
    // An experiment snapshot but nothing scored yet: a user error too (exit 2), not a failure.
    await writeJson(join(dir, "experiment.json"), experiment(dir));
    await assert.rejects(
      renderReport(dir, { log: () => {} }),
      (e: Error) =>
        e.name === "UserError" && /manifest\.json not found.*experiment/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("missingInRuns finds jobs whose rows are not all stored", () => {
  const job = (id: string, rows: number[]): Job => ({
    id,
    model: "m",
    step: 1,
    path: "/m.onnx",
    shard: 0,
    rows: Uint32Array.from(rows),
    flops: 0,
  });
  const scores: CheckpointScores[] = [{
    model: "m",
    step: 1,
    continuation: 32,
    rows: Uint32Array.from([0, 1, 2, 5, 6, 7]),
    matches: new Uint8Array(6),
  }];
  const jobs = [
    job("a", [0, 1, 2]),
    job("b", [3, 4]),
    job("c", [5, 6, 7]),
    job("d", [2, 3, 5]),
    { ...job("e", [0]), model: "other" },
  ];
  assert.deepEqual(missingInRuns(jobs, scores.map(scoredFromScores)).map((j) => j.id), [
    "b",
    "d",
    "e",
  ]);
});

Deno.test("the report counts each run's histograms while it reads the store: the analysis makes no pass of its own for them, and its summary is the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "render-test-" });
  try {
    await makeRun(dir, null);
    const input = await loadAnalysisInput(dir);
    const runs = input.runs!;
    const counted = input.histograms!;
    assert.deepEqual(counted.target, { model: "big", step: 4 });
    // The target is read first, the checkpoints come back in the manifest's order.
    assert.deepEqual(runs.map((r) => `${r.model}@${r.step}`), [
      "small@2",
      "small@4",
      "big@2",
      "big@4",
    ]);
    const target = runs.find((r) => r.model === "big" && r.step === 4)!;
    const others = runs.filter((r) => r !== target);
    assert.equal(counted.bySource.size, others.length);
    for (const r of others) {
      assert.deepEqual(
        counted.bySource.get(r.source!),
        signalHistograms(r.source!, r.continuation, target, {
          folds: counted.folds,
          seed: counted.seed,
        }),
        `${r.model}@${r.step}`,
      );
    }
    // The same analysis with and without them: the chunks it reads differ by one pass per run.
    const reads = { n: 0 };
    const counting = (r: ScoredCheckpoint): ScoredCheckpoint => ({
      ...r,
      source: { ...r.source!, chunk: (k) => (reads.n++, r.source!.chunk(k)) },
    });
    const withCounted = runs.map(counting);
    const bySource = new Map(
      withCounted.map((r, i) => [r.source!, counted.bySource.get(runs[i].source!)!]),
    );
    const ahead = analyze({ ...input, runs: withCounted, histograms: { ...counted, bySource } });
    const readAhead = reads.n;
    reads.n = 0;
    const alone = analyze({ ...input, runs: runs.map(counting), histograms: undefined });
    const chunksPerPass = others.reduce((n, r) => n + r.source!.chunks, 0);
    assert.equal(reads.n - readAhead, chunksPerPass);
    assert.deepEqual(ahead, alone);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the report's pass over the store on reader threads gives the same runs and histograms as on one thread, and a corrupt shard a reader thread meets is exit 2 naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "render-test-" });
  try {
    await makeRun(dir, null);
    const one = await loadAnalysisInput(dir, undefined, undefined, undefined, 0);
    const threads = await loadAnalysisInput(dir, undefined, undefined, undefined, 2);
    const sets = (input: typeof one) =>
      input.runs!.map((r) => ({
        id: `${r.model}@${r.step}`,
        scored: r.scored,
        memorized: r.memorized,
        matchCounts: r.matchCounts,
        chunks: r.source!.chunks,
        histograms: input.histograms!.bySource.get(r.source!) ?? null,
      }));
    assert.deepEqual(sets(threads), sets(one));
    // Every checkpoint but the target was read by a reader thread.
    const exp = await readExperimentSnapshot(dir);
    assert.equal((await scanStore(dir, exp, undefined, undefined, 2)).offloaded, 3);
    assert.equal((await scanStore(dir, exp, undefined, undefined, 0)).offloaded, 0);
    assert.equal(threads.histograms!.bySource.size, 3);
    assert.deepEqual(analyze(threads), analyze(one));
    // The whole report: correlations computed on their own thread, the same summary.
    const summaryWith = async (n: number) => {
      await renderReport(dir, { threads: n, progress: false, log: () => {} });
      return JSON.parse(await readFile(join(dir, "summary.json"), "utf8")) as Summary;
    };
    const alone = await summaryWith(0), apart = await summaryWith(2);
    assert.ok(alone.correlations.models.labels.length > 0);
    assert.deepEqual(apart, alone);
    // A flipped byte in the payload of a shard that is not the target's (so read by a reader thread).
    const path = join(dir, "scores", "small", "step4", "shard00001.bin");
    const bytes = await readFile(path);
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(path, bytes);
    await assert.rejects(
      () => loadAnalysisInput(dir, undefined, undefined, undefined, 2),
      (e: Error) =>
        e.name === "UserError" && e.message.includes(path) &&
        /is corrupt \(checksum/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
