import assert from "node:assert/strict";
import {
  allFeatures,
  type FeatureChunk,
  featuresInMemory,
  type MaskedHit,
  personalIndex,
  personalKinds,
  readRowFeatures,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";
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
import {
  calibrationHistogram,
  calibrationOf,
  type ForecastFile,
  runForecast,
} from "../tasks/forecast.ts";
import { calibrationFigures, mostConfident } from "../reports/analysis/forecast_figures.ts";
import { intersectRanges, lowerBound } from "../engine/rowset.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { parse, stringify } from "yaml";
import { UserError } from "../engine/errors.ts";
import { computeFeatures } from "../tasks/features.ts";
import { analysisSettings, analyze } from "../reports/analysis/analysis.ts";
import { analysedFrom } from "../reports/analysis/checkpoints.ts";
import { crossFit } from "../reports/analysis/crossfit.ts";
import { featureColumns } from "../reports/analysis/feature_candidates.ts";
import {
  type Columns,
  crossFitLogistic,
  predictRow,
  PROBABILITY_BINS,
  probabilityFolded,
  runColumns,
  runsWithinBudget,
} from "../reports/analysis/combined.ts";

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

let featured: Promise<RowFeatures> | null = null;

/** The nano suite scored once, with its row features computed once (the features step). */
async function nanoWithFeatures(): Promise<
  { exp: Experiment; scores: CheckpointScores[]; features: RowFeatures }
> {
  const { exp, scores } = await nano();
  featured ??= (async () => {
    await computeFeatures(exp, { log: () => {} });
    return (await readRowFeatures(exp.output))!;
  })();
  return { exp, scores, features: await featured };
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

/** Realized precision and recall inside the expected intervals (`where` names the case). */
function assertInside(
  got: ReturnType<typeof realized>,
  expected: ReturnType<typeof predictionIntervals>,
  where: string,
): void {
  assert.ok(got.precision! >= expected.precision.lo, where);
  assert.ok(got.precision! <= expected.precision.hi, where);
  assert.ok(got.recall! >= expected.recall.lo, where);
  assert.ok(got.recall! <= expected.recall.hi, where);
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
      assertInside(got, expected, where);
      // The held-out expectation is below the optimistic in-sample value of the rule.
      assert.ok(choice.expected.precision.value < choice.inSample.precision, where);
      // The page's figures: the calibration's histogram of the chosen signal puts the chosen
      // threshold exactly at the rule's in-sample precision and recall.
      const calRun = (id: { model: string; step: number }) =>
        calibration.find((r) => r.model === id.model && r.step === id.step)!;
      const calTarget = calRun(exp.target!);
      const predictor = calRun(choice.predictor);
      const h = calibrationHistogram(predictor, calTarget, choice.signal, cal.seed);
      const figures = calibrationFigures(h, calTarget.memorized.length, 32, choice);
      assert.ok(Math.abs(figures.chosen.precision - choice.inSample.precision) < 1e-12, where);
      assert.ok(Math.abs(figures.chosen.recall - choice.inSample.recall) < 1e-12, where);
      const both = intersectRanges(predictor.scored, calTarget.scored).size;
      const d = figures.distribution;
      assert.equal(d.reduce((a, x) => a + x.memorized + x.notMemorized, 0), both);
      assert.ok(
        figures.curve.some((p) => p.threshold === choice.threshold || choice.threshold === null),
      );
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
    // The most confident flagged rows, decoded with the nano tokenizer, lowest NLL first.
    assert.equal(f.examples.length, Math.min(20, f.flagged));
    const flagged = csv.slice(1).map((l) => l.split(",").map(Number));
    assert.deepEqual(
      f.examples.map((x) => [x.row, x.value]),
      mostConfident(flagged.map((r) => r[0]), flagged.map((r) => r[1]), f.signal, 20)
        .map((x) => [x.row, x.value]),
    );
    for (const x of f.examples) {
      assert.equal(x.tokens.length, 64);
      assert.ok(x.context !== null && x.continuation !== null && x.continuation.length > 0);
    }
    assert.equal(
      (page.match(/<table class="flagged">[\s\S]*?<\/table>/)![0].match(/<tr>/g) ?? []).length,
      f.examples.length + 1, // and the header
    );
    assert.ok(page.includes('id="chart-forecast-distribution"'));
    assert.ok(page.includes('id="chart-forecast-pr"'));
    assert.equal(f.figures.signal, f.signal);

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
    // personal data: the kinds of each flagged row (from the run's row features), counted and led with
    const lines = csv.split("\n");
    assert.equal(lines[0], "index,signal,personal_kinds");
    const withKinds = lines.slice(1).filter((l) => l.split(",")[2] !== "");
    assert.ok(out.forecast.personal);
    assert.equal(out.forecast.personal.withPersonal, withKinds.length);
    const features = (await readRowFeatures(exp.output))!;
    for (const l of lines.slice(1)) {
      const [row, , kinds] = l.split(",");
      assert.equal(kinds, personalKinds(features, Number(row)).join(";"));
    }
    const page = await readFile(join(exp.output, "forecast", "forecast.html"), "utf8");
    assert.match(
      page,
      new RegExp(
        `Of ${out.forecast.flagged} flagged rows, ${out.forecast.personal.withPersonal}\\s+contain personal data`,
      ),
    );
  },
});

Deno.test("the most confident flagged rows: lowest NLL or highest score first, ties by row", () => {
  const rows = [3, 5, 8, 13];
  assert.deepEqual(mostConfident(rows, [0.5, 0.1, 0.1, 2], "nll", 3), [
    { row: 5, value: 0.1 },
    { row: 8, value: 0.1 },
    { row: 3, value: 0.5 },
  ]);
  assert.deepEqual(mostConfident(rows, [0.5, 0.9, 1, 0.9], "score", 2).map((x) => x.row), [8, 5]);
  assert.deepEqual(mostConfident(rows, [1, 1, 1, 1], "binary", 10).map((x) => x.row), rows);
});

Deno.test("calibration figures: the distribution per value and the cumulative precision–recall curve", () => {
  // score over l = 4: bins 0..4 are matches 4..0.
  const h = { pos: [3, 1, 0, 1, 0], neg: [1, 1, 0, 2, 6], thresholds: [1, 0.75, 0.5, 0.25, 0] };
  const expected = {
    precision: { value: 0.7, lo: 0, hi: 1 },
    recall: { value: 0.6, lo: 0, hi: 1 },
  };
  const f = calibrationFigures(h, 6, 4, { signal: "score", threshold: 0.75, bin: 1, expected });
  assert.deepEqual(f.distribution, [
    { value: 0, memorized: 0, notMemorized: 6 },
    { value: 0.25, memorized: 1, notMemorized: 2 },
    { value: 0.75, memorized: 1, notMemorized: 1 },
    { value: 1, memorized: 3, notMemorized: 1 },
  ]);
  assert.deepEqual(f.curve, [
    { threshold: 1, precision: 3 / 4, recall: 3 / 6 },
    { threshold: 0.75, precision: 4 / 6, recall: 4 / 6 },
    { threshold: 0.25, precision: 5 / 9, recall: 5 / 6 },
    { threshold: 0, precision: 5 / 15, recall: 5 / 6 },
  ]);
  assert.deepEqual(f.chosen, {
    threshold: 0.75,
    precision: 4 / 6,
    recall: 4 / 6,
    heldOutPrecision: 0.7,
    heldOutRecall: 0.6,
  });
  // NLL bins of 0.01 are shown in bins of 0.1.
  const nll = {
    pos: new Float64Array(1000),
    neg: new Float64Array(1000),
    thresholds: [] as number[],
  };
  nll.pos[3] = 2, nll.pos[9] = 1, nll.neg[10] = 4, nll.neg[257] = 1;
  for (let b = 0; b < 1000; b++) nll.thresholds.push(Number(((b + 1) * 0.01).toFixed(2)));
  const g = calibrationFigures(nll, 3, 32, { signal: "nll", threshold: 0.1, bin: 9, expected });
  assert.deepEqual(g.distribution, [
    { value: 0, memorized: 3, notMemorized: 0 },
    { value: 0.1, memorized: 0, notMemorized: 4 },
    { value: 2.5, memorized: 0, notMemorized: 1 },
  ]);
  assert.deepEqual(g.chosen.recall, 1);
});

Deno.test({
  name:
    "the combined and data-only predictors on the nano suite: calibrated on one half of the rows, realized precision and recall on the other half fall inside the intervals at every budget",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp, scores, features } = await nanoWithFeatures();
    const f = allFeatures(features);
    const seed = 2023, l = exp.memorization.continuation;
    const settings = analysisSettings(exp);
    const isTarget = (s: CheckpointScores) =>
      s.model === exp.target!.model && s.step === exp.target!.step;
    const targetScores = scores.find(isTarget)!;
    const targetCompute = analysedFrom(scoredFromScores(targetScores), exp).compute;
    const rows = Array.from(targetScores.rows);
    const y = rows.map((_, i) => (targetScores.prefix![i] >= l ? 1 : 0));
    const at = rows.map((r) => lowerBound(f.rows, r));
    assert.ok(at.every((j, i) => f.rows[j] === rows[i]));
    const data = featureColumns(f, at);
    const index = new Map(rows.map((r, i) => [r, i]));
    const cheap = scores.filter((s) => !isTarget(s)).map((s) => {
      const a = analysedFrom(scoredFromScores(s), exp);
      const col = (v: ArrayLike<number>) => {
        const out = new Float64Array(rows.length).fill(NaN);
        for (let i = 0; i < s.rows.length; i++) {
          const j = index.get(s.rows[i]);
          if (j !== undefined) out[j] = v[i];
        }
        return out;
      };
      return {
        name: `${s.model}@${s.step}`,
        compute: a.compute,
        matches: col(s.matches),
        prefix: col(s.prefix!),
        nll: col(s.nll!),
      };
    }).filter((r) => r.compute < targetCompute);
    const halfOf = (i: number) => foldOf(rows[i], seed, 2);
    const cal = rows.map((_, i) => i).filter((i) => halfOf(i) === 0);
    const app = rows.map((_, i) => i).filter((i) => halfOf(i) === 1);
    const sub = (c: Columns, idx: number[]): Columns =>
      Object.fromEntries(
        Object.entries(c).map(([k, v]) => [k, Float64Array.from(idx, (i) => v[i])]),
      );
    const B = PROBABILITY_BINS;
    let checked = 0;
    for (const budget of [null, 0.01, 0.03, 0.1, 0.3, 0.6, 1]) {
      const used = budget === null ? [] : runsWithinBudget(cheap, budget * targetCompute)
        .map((i) => cheap[i]);
      const columns = { ...runColumns(used), ...data };
      const calColumns = sub(columns, cal), calY = cal.map((i) => y[i]);
      const calRows = cal.map((i) => rows[i]);
      const cf = crossFitLogistic(calColumns, calY, {
        folds: settings.folds,
        seed: settings.seed,
        rows: calRows,
      });
      const fit = crossFit(
        probabilityFolded(cf, calY, settings.folds),
        settings.minPrecision,
      );
      if (fit.inSample.bin === null) continue;
      // as `deno task forecast` flags rows: a row of fold k by the model and threshold of fold k,
      // both chosen on the calibration's other folds (what the held-out numbers measured)
      const appColumns = sub(columns, app);
      const flagged: number[] = [];
      app.forEach((i, k) => {
        const fold = foldOf(rows[i], settings.seed, settings.folds);
        const bin = fit.folds[fold].bin;
        const p = predictRow(cf.models[fold], appColumns, k);
        if (bin !== null && Math.floor((1 - p) * B) <= bin) flagged.push(rows[i]);
      });
      const memorized = new Set(app.filter((i) => y[i] === 1).map((i) => rows[i]));
      const expected = predictionIntervals({ counts: fit.heldOut }, flagged.length);
      const got = realized(flagged, memorized);
      const where = `budget ${budget} (${used.map((r) => r.name).join(" + ") || "data only"}): ` +
        `realized ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`;
      assertInside(got, expected, where);
      checked++;
    }
    assert.equal(checked, 7);
  },
});

Deno.test({
  name:
    "deno task forecast applies a combined rule: each row by its fold's model and threshold, exactly the held-out counts on the calibration's own rows",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp, scores, features } = await nanoWithFeatures();
    const f = allFeatures(features);
    const out = join(exp.output, "..", "forecast-combined");
    const lines: string[] = [];
    const r = await runForecast(exp.output, exp.output, {
      signal: "combined",
      budget: 1,
      output: out,
      log: (l) => lines.push(l),
    });
    const fc = r.forecast;
    assert.equal(fc.signal, "combined");
    assert.ok(fc.runs && fc.runs.length > 0, JSON.stringify(fc.runs));
    assert.ok(fc.computeFraction > 0 && fc.computeFraction <= 1);
    assert.match(
      fc.rule,
      /P\(memorized\) > [\d.]+ under the combined logistic model of row features/,
    );
    assert.ok(fc.assumptions.some((a) => /row features were computed from its own data/.test(a)));
    // Every fold's rule carries the model it was fitted as (on the other folds).
    const rules = fc.foldRules.filter((x) => x !== null);
    assert.equal(rules.length, 5);
    for (const rule of rules) {
      assert.ok(rule.model && rule.model.beta.length === rule.model.names.length + 1);
      assert.ok(rule.signal === "combined" || rule.signal === "data-only");
    }
    // Rebuilt here from the scores and features, independently of flagRows: a row of fold k is
    // flagged when its probability under fold k's model falls in a bin ≤ fold k's bin.
    const index = new Map(Array.from(f.rows, (row, i) => [row, i]));
    const col = (s: CheckpointScores, v: ArrayLike<number>) => {
      const c = new Float64Array(f.rows.length).fill(NaN);
      for (let i = 0; i < s.rows.length; i++) {
        const j = index.get(s.rows[i]);
        if (j !== undefined) c[j] = v[i];
      }
      return c;
    };
    const columns: Columns = featureColumns(f);
    for (const s of scores) {
      columns[`${s.model}@${s.step}.prefix`] = col(s, s.prefix!);
      columns[`${s.model}@${s.step}.matches`] = col(s, s.matches);
      columns[`${s.model}@${s.step}.nll`] = col(s, s.nll!);
    }
    const settings = analysisSettings(exp);
    const expected: number[] = [];
    f.rows.forEach((row, i) => {
      const rule = fc.foldRules[foldOf(row, settings.seed, settings.folds)];
      if (!rule) return;
      const p = predictRow(rule.model!, columns, i);
      if (Math.min(PROBABILITY_BINS - 1, Math.floor((1 - p) * PROBABILITY_BINS)) <= rule.bin) {
        expected.push(row);
      }
    });
    const csv = (await readFile(join(out, "flagged.csv"), "utf8")).trim().split("\n");
    assert.equal(csv[0], "index,signal,personal_kinds");
    const flagged = csv.slice(1).map((l) => Number(l.split(",")[0]));
    assert.deepEqual(flagged, expected);
    assert.equal(fc.flagged, flagged.length);
    // The run is the calibration itself: its flagged rows are exactly the ones the held-out
    // counts counted, so the realized precision and recall equal the held-out values.
    const target = scores.find((s) =>
      s.model === exp.target!.model && s.step === exp.target!.step
    )!;
    const l = exp.memorization.continuation;
    const memorized = new Set(
      Array.from(target.rows).filter((_, i) => target.prefix![i] >= l),
    );
    const got = realized(flagged, memorized);
    const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;
    assert.ok(close(got.precision!, fc.expected.calibration.precision.value), JSON.stringify(got));
    assert.ok(close(got.recall!, fc.expected.calibration.recall.value), JSON.stringify(got));
    assert.ok(fc.expected.calibration.precision.value >= 0.85);
    // The page shows the model's probability distribution on the calibration.
    assert.equal(fc.figures.signal, "combined");
    assert.ok(fc.figures.distribution.every((d) => d.value >= 0 && d.value <= 1));
    const page = await readFile(join(out, "forecast.html"), "utf8");
    assert.match(page, /out-of-fold probability of memorization/);
  },
});

Deno.test({
  name:
    "deno task forecast --signal combined without the run's row features: exit 2 naming the command that computes them",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp } = await nanoWithFeatures();
    const dir = await Deno.makeTempDir({ prefix: "forecast_nofeatures" });
    const file = await writeReducedExperiment(dir, {
      models: 2,
      steps: 2,
      rows: 256,
      shardSize: 128,
      batchSize: 64,
      output: join(dir, "cheap"),
    });
    const cheap = await loadExperiment(file);
    await runExperiment(cheap, { progress: false, log: () => {} }); // scores, no features step
    assert.equal(await readRowFeatures(cheap.output), null);
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-P=run",
        "main.ts",
        "forecast",
        exp.output,
        cheap.output,
        "--signal",
        "combined",
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 2, stderr);
    assert.match(stderr, /--signal combined needs the row features/);
    assert.ok(stderr.includes(cheap.output), stderr);
    assert.ok(stderr.includes(`deno task experiment ${file}`), stderr);
    assert.doesNotMatch(stderr, /\n\s+at /); // no stack trace
    // Without --signal the forecast uses the run's own signals, and says what features would add.
    const lines: string[] = [];
    const ok = await runForecast(exp.output, cheap.output, { log: (l) => lines.push(l) });
    assert.ok(!["combined", "data-only"].includes(ok.forecast.signal));
    // on the nano suite the row features alone beat nano-s1/s2's signals: the note says so
    assert.ok(
      lines.some((l) =>
        /^Note: with row features the (data-only|combined) rule .* would be chosen/.test(l) &&
        l.includes(`deno task experiment ${file}`)
      ),
      lines.join("\n"),
    );
    assert.equal(ok.forecast.warnings, undefined);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "the data-only and combined models are candidates: recommendations, frontier and compute-for-recall choose them held out (nano suite)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp, scores, features } = await nanoWithFeatures();
    const s = analyze({ experiment: exp, scores, features, run: { seconds: 10 } });
    const p = s.features!.predictors!;
    const isModel = (signal: string) => signal === "combined" || signal === "data-only";
    let models = 0;
    s.recommendations.forEach((rec, i) => {
      const b = p.budgets[i];
      const m = rec.measured;
      // the features table's "recommended" is the recommendation itself
      assert.equal(b.recommended?.recall ?? null, m?.recall ?? null);
      if (!m) return;
      assert.ok(m.compute <= rec.budget * (1 + 1e-12));
      // no law is fitted to the models
      if (isModel(m.signal)) {
        models++;
        assert.equal(rec.fitted, null);
        assert.ok(m.runs !== undefined);
        if (m.signal === "data-only") assert.equal(m.compute, 0);
        else {
          assert.ok(m.runs!.length > 0);
          const runs = m.runs!.map((r) => `${r.model}@${r.step}`);
          const combinedAt = p.budgets.find((x) =>
            x.runs.map((r) => `${r.model}@${r.step}`).join() === runs.join()
          );
          assert.ok(combinedAt, runs.join());
          assert.equal(m.compute, combinedAt.compute);
        }
      }
    });
    assert.ok(models > 0, "on the nano suite some budget picks a model over the row features");
    // The frontier starts at compute 0 with the data-only model alone: its own held-out value.
    const first = s.frontier[0];
    assert.equal(first.budget, 0);
    assert.equal(first.measured?.signal, "data-only");
    assert.equal(first.measured?.recall, p.budgets[0].dataOnly.recall);
    // Compute for a recall the data-only model reaches is 0; its pick names it.
    const reached = s.computeForRecall.filter((c) => c.recall <= first.measured!.recall);
    for (const c of reached) {
      assert.equal(c.measured.fraction, 0);
      assert.equal(c.measured.pick?.signal, "data-only");
    }
    // The features' cost beside the scoring's, both seconds.
    const cost = s.features!.cost;
    assert.equal(cost.scoringSeconds, 10);
    assert.equal(cost.shareOfScoring, features.seconds / 10);
    for (const b of p.budgets) {
      if (b.runs.length === 0) continue;
      assert.ok(b.cost && b.cost.scoringSeconds > 0 && b.cost.scoringSeconds < 10);
      assert.ok(
        Math.abs(
          b.cost.featureShare - features.seconds / (features.seconds + b.cost.scoringSeconds),
        ) < 1e-12,
      );
    }
    assert.match(s.verdict, /logistic model of row features/);
  },
});

Deno.test({
  name:
    "forecast's own path with row features (calibrationOf, chooseForecast, flagRows): calibrated on one half, the combined, data-only and best rules' realized precision and recall on the other half fall inside the intervals",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { exp, scores, features: f } = await nanoWithFeatures();
    const seed = 2023;
    const all = allFeatures(f);
    const halfFeatures = (h: number): RowFeatures => {
      const keep = Array.from(all.rows, (r, i) => ({ r, i })).filter(({ r }) =>
        foldOf(r, seed, 2) === h
      ).map(({ i }) => i);
      const pick = {} as Record<keyof FeatureChunk, unknown>;
      for (const [name, a] of Object.entries(all)) {
        const c = a.slice(0, keep.length);
        keep.forEach((i, j) => (c[j] = a[i]));
        pick[name as keyof FeatureChunk] = c;
      }
      const hits = new Map<number, MaskedHit[]>();
      for (const r of f.personal.rows) {
        if (foldOf(r, seed, 2) === h) hits.set(r, f.personal.hits(r));
      }
      // small chunks: the forecast's walk crosses chunk boundaries
      return featuresInMemory(f, pick as FeatureChunk, personalIndex(hits), 97);
    };
    const calibration = scores.map((s) => scoredFromScores(half(s, 0, seed)));
    const applied = scores.map((s) => scoredFromScores(half(s, 1, seed)));
    const cal = calibrationOf(exp, calibration, undefined, halfFeatures(0));
    const runOf = (id: { model: string; step: number }) =>
      applied.find((r) => r.model === id.model && r.step === id.step)!;
    const memorized = new Set(runOf(exp.target!).memorized);
    const notTarget = (id: { model: string; step: number }) =>
      !(id.model === exp.target!.model && id.step === exp.target!.step);
    const run = halfFeatures(1);
    let checked = 0;
    // data-only, combined, and the choice among every candidate (no --signal)
    for (const signal of ["data-only", "combined", null] as const) {
      for (const budget of [0.01, 0.03, 0.1, 0.3, 0.6, 1]) {
        if (signal === "data-only" && budget > 0.01) break; // one data-only model at every budget
        const opts = signal ? { budget, signal } : { budget };
        const choice = chooseForecast(cal, notTarget, opts, true);
        if (signal) assert.equal(choice.signal, signal);
        assert.ok(choice.computeFraction <= budget);
        const flagged = flagRows(runOf, choice, run);
        assert.ok(flagged.rows.every((r) => foldOf(r, seed, 2) === 1));
        const expected = predictionIntervals(choice, flagged.rows.length);
        const got = realized(flagged.rows, memorized);
        const where = `${signal} at budget ${budget}, ${choice.rule}: realized ` +
          `${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`;
        assertInside(got, expected, where);
        checked++;
      }
    }
    assert.equal(checked, 13);
  },
});
