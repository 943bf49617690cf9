import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parquetReadObjects } from "hyparquet";
import { loadExperiment } from "../engine/config/config.ts";
import { runExperiment } from "../tasks/score.ts";
import { scoreAndReport } from "../tasks/experiment.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";
import { scoredFromScores } from "../engine/store/scored_checkpoint.ts";
import type { CheckpointScores, Experiment } from "../engine/types.ts";
import { foldOf } from "../reports/analysis/histograms.ts";
import {
  chooseForecast,
  flagRows,
  parseForecastOptions,
  predictionIntervals,
  realized,
} from "../reports/analysis/forecast.ts";
import { calibrationOf, type ForecastFile, runForecast } from "../tasks/forecast.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { parse, stringify } from "yaml";
import { UserError } from "../engine/errors.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

let scored: Promise<{ exp: Experiment; scores: CheckpointScores[] }> | null = null;

/** The nano suite scored once into a temporary run folder. */
function nano(): Promise<{ exp: Experiment; scores: CheckpointScores[] }> {
  scored ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "forecast_test" });
    const exp = await loadExperiment(join(ROOT, "experiments", "nano.yaml"), {
      output: join(dir, "nano"),
    });
    await runExperiment(exp, {
      progress: false,
      log: () => {},
    });
    return { exp, scores: await readCheckpointScores(exp.output) };
  })();
  return scored;
}

/** The rows of a run whose fold (of two, by seeded hash) is `half`. */
function half(s: CheckpointScores, h: number, seed: number): CheckpointScores {
  const keep = [...s.rows.keys()].filter((i) => foldOf(s.rows[i], seed, 2) === h);
  return {
    ...s,
    rows: Uint32Array.from(keep, (i) => s.rows[i]),
    matches: Uint8Array.from(keep, (i) => s.matches[i]),
    prefix: Uint8Array.from(keep, (i) => s.prefix![i]),
    nll: Float32Array.from(keep, (i) => s.nll![i]),
  };
}

Deno.test({
  name:
    "forecast on the nano suite: calibrated on one half of the rows, realized precision and recall on the other half fall inside the intervals",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp, scores } = await nano();
    const seed = 2023;
    const calibration = scores.map((s) => scoredFromScores(half(s, 0, seed)));
    const applied = scores.map((s) => scoredFromScores(half(s, 1, seed)));
    const cal = calibrationOf(exp, calibration);
    const runOf = (id: { model: string; step: number }) =>
      applied.find((r) => r.model === id.model && r.step === id.step)!;
    const target = runOf(exp.target!);
    const memorized = new Set(target.memorized);
    const notTarget = (id: { model: string; step: number }) =>
      !(id.model === exp.target!.model && id.step === exp.target!.step);
    let rules = 0;
    for (const budget of [0.01, 0.03, 0.1, 0.3, 0.6, 1]) {
      const choice = chooseForecast(cal, notTarget, { budget });
      assert.ok(choice.computeFraction <= budget);
      const flagged = flagRows(runOf, choice);
      const expected = predictionIntervals(choice, flagged.rows.length);
      const got = realized(flagged.rows, memorized);
      const where = `budget ${budget}, ${choice.rule}: realized ${JSON.stringify(got)}, ` +
        `expected ${JSON.stringify(expected)}`;
      assert.ok(got.precision! >= expected.precision.lo, where);
      assert.ok(got.precision! <= expected.precision.hi, where);
      assert.ok(got.recall! >= expected.recall.lo, where);
      assert.ok(got.recall! <= expected.recall.hi, where);
      // The held-out expectation is below the optimistic in-sample value of the rule.
      assert.ok(choice.expected.precision.value < choice.inSample.precision, where);
      rules++;
    }
    assert.equal(rules, 6);
  },
});

Deno.test({
  name:
    "deno task forecast writes flagged.parquet, flagged.csv, forecast.json and a page; bad options exit 2",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp } = await nano();
    const out = join(exp.output, "..", "forecast-out");
    const cli = async (...args: string[]) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-P=run", "main.ts", "forecast", ...args],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
    };
    const ok = await cli(exp.output, exp.output, "--budget", "0.3", "--output", out);
    assert.equal(ok.code, 0, ok.stderr);
    const f = JSON.parse(await readFile(join(out, "forecast.json"), "utf8")) as ForecastFile;
    assert.ok(f.computeFraction <= 0.3);
    assert.equal(f.expected.recallOver, "all");
    assert.equal(f.foldRules.length, 5);
    for (const key of ["precision", "recall"] as const) {
      const v = f.expected[key];
      assert.ok(v.lo <= v.value && v.value <= v.hi, key);
    }
    const csv = (await readFile(join(out, "flagged.csv"), "utf8")).trim().split("\n");
    assert.equal(csv[0], "index,signal");
    assert.equal(csv.length - 1, f.flagged);
    const buf = await readFile(join(out, "flagged.parquet"));
    const rows = await parquetReadObjects({ file: new Uint8Array(buf).buffer });
    assert.deepEqual(
      rows.map((r) => `${r.index},${r.signal}`),
      csv.slice(1),
    );
    const page = await readFile(join(out, "forecast.html"), "utf8");
    assert.match(page, /are predicted to be memorized/);

    const bad = await cli(exp.output, exp.output, "--predictor", "nano-s9@1", "--output", out);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--predictor nano-s9@1: .*available: .*nano-s3@143/);
    const budget = await cli(exp.output, exp.output, "--budget", "2");
    assert.equal(budget.code, 2);
    assert.match(budget.stderr, /--budget 2: expected a fraction/);
    // A calibration without a trained target is refused, naming the file.
    const snapshot = JSON.parse(await readFile(join(exp.output, "experiment.json"), "utf8"));
    delete snapshot.target;
    const noTarget = join(exp.output, "..", "no-target");
    await Deno.mkdir(noTarget, { recursive: true });
    await writeFile(join(noTarget, "experiment.json"), JSON.stringify(snapshot));
    await Deno.copyFile(join(exp.output, "manifest.json"), join(noTarget, "manifest.json"));
    const none = await cli(noTarget, exp.output);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no trained target/);
  },
});

Deno.test("forecast options: MODEL@STEP, signals, budgets in (0, 1]", () => {
  assert.deepEqual(
    parseForecastOptions({ predictor: "nano-s3@143", signal: "nll", budget: "0.3" }),
    {
      predictor: { model: "nano-s3", step: 143 },
      signal: "nll",
      budget: 0.3,
    },
  );
  assert.throws(() => parseForecastOptions({ predictor: "nano-s3" }), UserError);
  assert.throws(() => parseForecastOptions({ signal: "loss" }), /binary, score, prefix, nll/);
  assert.throws(() => parseForecastOptions({ budget: "0" }), UserError);
});

Deno.test({
  name:
    "a run without a trained target scores, reports its runs, and takes a forecast from a calibration run",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp: calibration } = await nano();
    const dir = await Deno.makeTempDir({ prefix: "forecast_none" });
    const file = await writeReducedExperiment(dir, {
      models: 2,
      steps: 2,
      rows: 384,
      shardSize: 128,
      batchSize: 64,
      output: join(dir, "cheap"),
    });
    const doc = parse(await readFile(file, "utf8"));
    doc.target = "none";
    await writeFile(file, stringify(doc));
    const exp = await loadExperiment(file);
    assert.equal(exp.target, undefined);
    await scoreAndReport(exp, { progress: false, log: () => {} });
    const summary = JSON.parse(await readFile(join(exp.output, "summary.json"), "utf8"));
    assert.equal(summary.kind, "runs");
    assert.deepEqual(
      summary.runs.map((r: { model: string; step: number }) => `${r.model}@${r.step}`),
      ["nano-s1@123", "nano-s1@143", "nano-s2@123", "nano-s2@143"],
    );
    assert.ok(summary.runs.every((r: { rowsScored: number }) => r.rowsScored > 0));
    assert.match(await readFile(join(exp.output, "report.html"), "utf8"), /deno task forecast/);
    const out = await runForecast(calibration.output, exp.output, { log: () => {} });
    assert.ok(["nano-s1", "nano-s2"].includes(out.forecast.predictor.model));
    assert.equal(out.forecast.run.experiment, exp.name);
    const csv = (await readFile(join(exp.output, "forecast", "flagged.csv"), "utf8")).trim();
    assert.equal(csv.split("\n").length - 1, out.forecast.flagged);
  },
});
