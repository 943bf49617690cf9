import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { readExperimentSnapshot } from "../engine/plan/run_folder.ts";
import { readManifest } from "../engine/store/store.ts";
import { scoreAndReport } from "../tasks/experiment.ts";
import type { Summary } from "../reports/analysis/summary.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SHAPE = { models: 2, steps: 2, rows: 256, shardSize: 64, batchSize: 32 };

Deno.test("deno task experiment scores, then renders the report from the whole store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pipeline_test" });
  try {
    const yaml = await writeReducedExperiment(dir, { ...SHAPE, output: join(dir, "out") });
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-P=run", "main.ts", "experiment", yaml],
      cwd: ROOT,
      env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const report = join(dir, "out", "report.html");
    assert.match(stdout, new RegExp(`^scored \\d+ jobs, 0 already done; report: ${report}$`, "m"));
    assert.ok(existsSync(report));
    const summary = JSON.parse(
      await readFile(join(dir, "out", "summary.json"), "utf8"),
    ) as Summary;
    assert.deepEqual(summary.run.missingShards, []);
    assert.equal(summary.target.model, "nano-s2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scoreAndReport: an interrupted run renders nothing; noReport scores only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pipeline_test" });
  try {
    const yaml = await writeReducedExperiment(dir, { ...SHAPE, output: join(dir, "out") });
    const exp = await loadExperiment(yaml);
    const stopped = new AbortController();
    stopped.abort("test");
    const quiet = { progress: false as const, log: () => {} };
    const interrupted = await scoreAndReport(exp, { ...quiet, signal: stopped.signal });
    assert.equal(interrupted.interrupted, true);
    assert.equal(interrupted.report, undefined);
    const scored = await scoreAndReport(exp, { ...quiet, noReport: true });
    assert.equal(scored.interrupted, false);
    assert.ok(scored.scored > 0);
    assert.equal(scored.report, undefined);
    assert.ok(!existsSync(join(dir, "out", "report.html")));
    const rendered = await scoreAndReport(exp, quiet);
    assert.deepEqual([rendered.scored, rendered.skipped], [0, scored.scored]);
    assert.equal(rendered.report, join(dir, "out", "report.html"));
    assert.ok(existsSync(rendered.report!));
    // The report got the run folder as the scoring left it: what the folder holds.
    assert.deepEqual(rendered.run?.manifest, await readManifest(exp.output));
    assert.deepEqual(
      JSON.parse(JSON.stringify(rendered.run?.experiment)),
      await readExperimentSnapshot(exp.output),
    );
    assert.equal(rendered.run?.plan?.jobs.length, scored.scored);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
