import assert from "node:assert/strict";
import { PAPER_12B_CHECKPOINTS, PAPER_SIZES, PYTHIA_12B_PARAMETERS } from "./fixtures/paper.ts";
import { parseFixture, yamlValue } from "./fixtures/experiment.ts";
import type { CheckpointScores, Experiment } from "../engine/types.ts";
import { analyze, exampleRows } from "../reports/analysis/analysis.ts";
import { UserError } from "../engine/errors.ts";
import { bestWithin, type Candidate, recommend } from "../reports/analysis/recommend.ts";
import type { FittedLaw } from "../reports/analysis/families.ts";
import { linearLog } from "../reports/analysis/scaling.ts";
import { crossFit } from "../reports/analysis/crossfit.ts";
import { wilson } from "../reports/analysis/stats.ts";
import {
  correlationMatrix,
  distribution,
  pairMatrix,
  rateByDuplicates,
  rateByRow,
} from "../reports/analysis/figures.ts";
import { analysedFrom } from "../reports/analysis/checkpoints.ts";
import { scoredFromScores } from "../engine/store/scored_checkpoint.ts";
import { splitmix32 } from "../engine/random.ts";

/** An experiment for tests (through the real parser): the paper's settings unless overridden. */
function experiment(
  models: { name: string; parameters: number; steps: number[] }[],
  target: { model: string; step: number },
  over: Partial<Experiment["analysis"]> = {},
  suite: { sequencesPerStep: number; tokensPerSequence: number } = {
    sequencesPerStep: 1024,
    tokensPerSequence: 2048,
  },
): Experiment {
  const analysis = { budgets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3], bootstrap: 20, ...over };
  const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return parseFixture(
    `name: test
suite:
  sequences_per_step: ${suite.sequencesPerStep}
  tokens_per_sequence: ${suite.tokensPerSequence}
  models:
${
      models.map((m) =>
        `    - name: ${yamlValue(m.name)}\n      parameters: ${m.parameters}\n` +
        `      steps: ${yamlValue(m.steps)}\n      path: ${yamlValue(`/m/${m.name}/{step}.onnx`)}`
      ).join("\n")
    }
data: {format: raw, path: /tmp/data.bin, row_length: 2049}
target: {model: ${yamlValue(target.model)}, step: ${target.step}}
batch_size: 8
shard_size: 1024
output: /tmp/run
analysis:
${Object.entries(analysis).map(([k, v]) => `  ${snake(k)}: ${yamlValue(v)}`).join("\n")}
`,
    { dir: "/tmp" },
  );
}

// The paper's numbers, with each model named as the fixture's size token says (70M, …).
const PYTHIA = PAPER_SIZES.map((m) => ({ ...m, name: m.size.toUpperCase() }));

Deno.test("the paper's confusion matrices reproduce its precision and recall to three decimals", () => {
  // 7 rows per step (Pythia: 1024), so step 143000 has seen 1,001,000 rows.
  const sps = 7;
  const n = 143000 * sps;
  const positives = Math.round(0.0162 * n); // 12B memorizes 1.62%
  const memorized = new Uint8Array(n);
  for (let j = 0; j < positives; j++) memorized[Math.floor((j * n) / positives)] = 1;
  const rows = Uint32Array.from({ length: n }, (_, i) => i);
  const scoresOf = (model: string, step: number, mem: Uint8Array): CheckpointScores => ({
    model,
    step,
    continuation: 32,
    rows: rows.subarray(0, mem.length),
    matches: mem.map((m, i) => (m ? 32 : i % 31)),
  });
  /** Memorization over the first `seen` rows with the given precision and recall there. */
  const memAll: number[] = [], negAll: number[] = [];
  for (let r = 0; r < n; r++) (memorized[r] ? memAll : negAll).push(r);
  const predictor = (seen: number, precision: number, recall: number) => {
    const memRows = memAll.filter((r) => r < seen);
    const negRows = negAll.filter((r) => r < seen);
    const tp = Math.round(recall * memRows.length);
    const fp = Math.round(tp / precision - tp);
    const mem = new Uint8Array(seen);
    for (let j = 0; j < tp; j++) mem[memRows[(j * 7919) % memRows.length]] = 1;
    for (let j = 0; j < fp; j++) mem[negRows[(j * 104729) % negRows.length]] = 1;
    return mem;
  };
  const scores = [scoresOf("12B", 143000, memorized)];
  for (const m of PYTHIA) {
    scores.push(scoresOf(m.name, 143000, predictor(n, m.precision, m.recall)));
  }
  for (const c of PAPER_12B_CHECKPOINTS) {
    scores.push(scoresOf("12B", c.step, predictor(c.step * sps, c.precision, c.recall)));
  }
  const exp = experiment(
    [
      ...PYTHIA.map((m) => ({ ...m, steps: [143000] })),
      {
        name: "12B",
        parameters: PYTHIA_12B_PARAMETERS,
        steps: [...PAPER_12B_CHECKPOINTS.map((c) => c.step), 143000],
      },
    ],
    { model: "12B", step: 143000 },
    { bootstrap: 10 },
    { sequencesPerStep: sps, tokensPerSequence: 2048 },
  );
  const s = analyze({ experiment: exp, scores });
  assert.equal(s.target.memorized, positives);
  assert.equal(s.target.rate.toFixed(4), "0.0162");
  for (const m of PYTHIA) {
    const row = s.predictors.find((p) => p.model === m.name)!;
    assert.equal(Number(row.precision!.toFixed(3)), m.precision, `${m.name} precision`);
    assert.equal(Number(row.recall!.toFixed(3)), m.recall, `${m.name} recall`);
    assert.equal(row.rowsCompared, n);
    assert.equal(row.coverage, 1);
    assert.equal(row.tp + row.fp + row.fn + row.tn, n);
    assert.ok(row.precisionCI!.lo < m.precision && m.precision < row.precisionCI!.hi);
    assert.equal(row.computeFraction, m.parameters / PYTHIA_12B_PARAMETERS);
    assert.equal(row.compute, 6 * m.parameters * 143000 * sps * 2048);
  }
  for (const c of PAPER_12B_CHECKPOINTS) {
    const row = s.predictors.find((p) => p.model === "12B" && p.step === c.step)!;
    assert.equal(Number(row.precision!.toFixed(3)), c.precision, `12B@${c.step} precision`);
    assert.equal(Number(row.recall!.toFixed(3)), c.recall, `12B@${c.step} recall`);
    assert.equal(row.rowsCompared, c.step * sps);
    assert.equal(row.coverage, c.step / 143000);
    assert.equal(row.final, false);
  }
  const sizes = s.scaling.find((f) => f.family === "sizes (final step)" && f.metric === "recall")!;
  assert.equal(sizes.points.length, 7);
  assert.ok(sizes.chosen !== null);
  assert.ok(sizes.looLargest !== null);
  const ckpts = s.scaling.find((f) => f.family === "checkpoints of 12B" && f.metric === "recall")!;
  assert.equal(ckpts.points.length, 6);
  // Budgets: 6.9B costs 57.9%, 12B@43000 30.1%, 2.8B 23.4% and 12B@23000 16.1% of 12B, so
  // the 30% budget picks 2.8B (recall .658 > .500 at precision ≥ 0.9).
  const r30 = s.recommendations.find((r) => r.budgetFraction === 0.3)!;
  assert.equal(r30.measured?.model, "2.8B");
  assert.ok(r30.floorHolds);
  const r01 = s.recommendations.find((r) => r.budgetFraction === 0.001)!;
  assert.equal(r01.measured, null);
  assert.equal(r01.floorHolds, false);
  assert.match(r01.note, /no measured predictor reaches precision 0.9/);
});

Deno.test("a missing target is a user error naming the runs that exist", () => {
  const exp = experiment([{ name: "a", parameters: 10, steps: [1, 2] }], { model: "a", step: 2 });
  const scores: CheckpointScores[] = [
    { model: "a", step: 1, continuation: 4, rows: Uint32Array.of(0), matches: Uint8Array.of(4) },
  ];
  assert.throws(
    () => analyze({ experiment: exp, scores }),
    (e: Error) => e instanceof UserError && /target a@2/.test(e.message) && /a@1/.test(e.message),
  );
});

Deno.test("a target that memorizes nothing gives undefined recall and no recommendation", () => {
  const exp = experiment(
    [{ name: "s", parameters: 10, steps: [1] }, { name: "t", parameters: 1000, steps: [1] }],
    { model: "t", step: 1 },
  );
  const rows = Uint32Array.of(0, 1, 2);
  const s = analyze({
    experiment: exp,
    scores: [
      { model: "s", step: 1, continuation: 4, rows, matches: Uint8Array.of(4, 0, 0) },
      { model: "t", step: 1, continuation: 4, rows, matches: Uint8Array.of(1, 2, 3) },
    ],
  });
  const row = s.predictors.find((p) => p.model === "s")!;
  assert.deepEqual([row.tp, row.fp, row.fn, row.tn, row.precision, row.recall], [
    0,
    1,
    0,
    2,
    0,
    null,
  ]);
  assert.ok(s.recommendations.every((r) => r.measured === null && !r.floorHolds));
  assert.match(s.verdict, /memorizes 0 of 3 rows/);
  assert.match(s.verdict, /its best row matches 3 of 4 continuation tokens/);
});

Deno.test("partial checkpoints compare only the rows they have seen; signals and examples", () => {
  // 64 rows per step of 16 rows: step 2 has seen rows 0..31.
  const rows = Uint32Array.from({ length: 64 }, (_, i) => i);
  const tMatches = Uint8Array.from(rows, (r) => (r % 4 === 0 ? 32 : 3));
  const target: CheckpointScores = {
    model: "big",
    step: 4,
    continuation: 32,
    rows,
    matches: tMatches,
    prefix: tMatches.slice(),
    nll: Float32Array.from(rows, (r) => (r % 4 === 0 ? 0.1 : 2)),
  };
  const early: CheckpointScores = {
    model: "big",
    step: 2,
    continuation: 32,
    rows: rows.slice(0, 32),
    // memorizes rows 0 and 8 only; rows 4, 12, ... have prefix 20 (a near miss)
    matches: Uint8Array.from(
      rows.slice(0, 32),
      (r) => (r === 0 || r === 8 ? 32 : r % 4 === 0 ? 20 : 1),
    ),
    prefix: Uint8Array.from(
      rows.slice(0, 32),
      (r) => (r === 0 || r === 8 ? 32 : r % 4 === 0 ? 20 : 1),
    ),
    nll: Float32Array.from(rows.slice(0, 32), (r) => (r % 4 === 0 ? 0.5 : 3)),
  };
  const exp = experiment(
    [{ name: "big", parameters: 1000, steps: [2, 4] }],
    { model: "big", step: 4 },
    { bootstrap: 30, budgets: [0.5] },
    { sequencesPerStep: 16, tokensPerSequence: 10 },
  );
  const s = analyze({
    experiment: exp,
    scores: [target, early],
    exampleTokens: new Map([[0, Array.from({ length: 64 }, (_, i) => i)]]),
    decode: (t) => t.join(","),
    duplicates: Uint32Array.from(rows, (r) => (r < 32 ? 1 : 5)),
  });
  const row = s.predictors.find((p) => p.step === 2)!;
  assert.deepEqual([row.tp, row.fp, row.fn, row.tn], [2, 0, 6, 24]);
  assert.equal(row.rowsCompared, 32);
  assert.equal(row.coverage, 0.5);
  assert.equal(row.computeFraction, 0.5);
  assert.equal(row.final, false);
  // Coverage: it scored 8 of the target's 16 memorized rows and caught 2 of them.
  assert.equal(row.recall, 2 / 8);
  assert.equal(row.memorizedCoverage, 8 / 16);
  assert.equal(row.recallAll, 2 / 16);
  assert.equal(row.recallAll, row.recall! * row.memorizedCoverage);
  // Thresholding the prefix at 20 tokens catches all 8 target-memorized rows it has seen.
  const prefix = s.curves.find((c) => c.signal === "prefix")!;
  assert.equal(prefix.recallAtBinaryPrecision, 1);
  assert.deepEqual(prefix.best, { threshold: 20, precision: 1, recall: 1 });
  // NLL < 0.51 nats/token (the bin of 0.5) separates them as well.
  const nll = s.curves.find((c) => c.signal === "nll")!;
  assert.deepEqual(nll.best, { threshold: 0.51, precision: 1, recall: 1 });
  assert.equal(nll.averagePrecision, 1);
  // The score threshold catches the 8 memorized rows it scored: recall 8/16 over all the
  // target's memorized rows (the default), 1 over the rows it covered; held out as well.
  const rec = s.recommendations[0];
  assert.equal(rec.recallOver, "all");
  assert.equal(rec.measured?.signal, "score");
  assert.equal(rec.measured?.recall, 0.5);
  assert.equal(rec.measured?.inSample.recall, 0.5);
  assert.equal(rec.stability, 1);
  const covered = analyze({
    experiment: { ...exp, analysis: { ...exp.analysis, recallOver: "covered" } },
    scores: [target, early],
  });
  assert.equal(covered.recommendations[0].measured?.signal, "score");
  assert.equal(covered.recommendations[0].measured?.recall, 1);
  // Examples: the 16 target-memorized rows, least caught first.
  assert.deepEqual(
    exampleRows({ experiment: exp, scores: [target, early] }),
    s.examples.map((e) => e.row),
  );
  const e0 = s.examples.find((e) => e.row === 0)!;
  assert.deepEqual(e0.caughtBy, [{ model: "big", step: 2 }]);
  assert.equal(e0.context, Array.from({ length: 32 }, (_, i) => i).join(","));
  assert.equal(s.examples.find((e) => e.row !== 0)!.context, null);
  assert.deepEqual(s.rateByDuplicates![0].bins.map((b) => [b.min, b.max, b.rows]), [[1, 1, 32], [
    5,
    8,
    32,
  ]]);
  assert.deepEqual(s.distributions[0].counts[32], 2);
  assert.equal(s.correlations.checkpoints[0].rows, 32);
  assert.match(s.verdict, /memorizes 16 of 64 rows/);
});

Deno.test("recommendations on a constructed case", () => {
  // Binary candidates over 1000 target-memorized rows, one fold (chosen and measured in sample).
  const c = (
    model: string,
    compute: number,
    precision: number,
    recall: number,
    index: number,
  ): Candidate => {
    const tp = recall * 1000, fp = Math.round(tp / precision - tp);
    const fit = crossFit({
      pos: [Float64Array.of(tp, 1000 - tp)],
      neg: [Float64Array.of(fp, 0)],
      positives: [1000],
      thresholds: [1, 0],
      fixed: true,
    }, 0.9);
    return {
      id: { model, step: 1 },
      signal: "binary",
      threshold: null,
      precision: tp / (tp + fp),
      precisionCI: wilson(tp, tp + fp),
      recall,
      recallCI: wilson(tp, 1000),
      compute,
      index,
      fit,
    };
  };
  const cands = [c("a", 1, 0.95, 0.2, 0), c("b", 10, 0.93, 0.4, 1), c("c", 30, 0.85, 0.7, 2)];
  assert.equal(bestWithin(cands, 5, 0.9)?.id.model, "a");
  assert.equal(bestWithin(cands, 50, 0.9)?.id.model, "b"); // c fails the precision bar
  assert.equal(bestWithin(cands, 50, 0.8)?.id.model, "c");
  assert.equal(bestWithin(cands, 0.5, 0.9), null);
  const opts = {
    minPrecision: 0.9,
    targetCompute: 100,
    positives: [1000],
    recallOver: "all" as const,
  };
  const recs = recommend(cands, [], null, { ...opts, budgets: [0.005, 0.02, 0.5] });
  assert.deepEqual(recs.map((r) => r.measured?.model ?? null), [null, "a", "b"]);
  // a: 200 of 211 (Wilson lower end 0.914), b: 400 of 430 (0.902) clear the floor.
  assert.deepEqual(recs.map((r) => r.floorHolds), [false, true, true]);
  assert.equal(recs[2].measured?.recall, 0.4);
  assert.deepEqual(recs[2].measured?.inSample, { precision: 400 / 430, recall: 0.4 });
  assert.equal(recs[2].budget, 50);
  // Fitted laws y = a + 0.2·log10(C/100); "small" can spend at most 10 FLOPs.
  const law = (family: string, a: number, limits: [number, number]): FittedLaw => ({
    family,
    metric: "recall",
    form: linearLog,
    params: [a, 0.2],
    boot: [[a - 0.1, 0.2], [a + 0.1, 0.2], [a, 0.2]],
    range: [1, limits[1]],
    limits,
  });
  const laws = [law("sizes", 0.6, [0.1, 100]), law("small", 0.9, [0.1, 10])];
  const fitted = recommend(cands, laws, null, { ...opts, budgets: [0.0005, 0.005, 0.5] })
    .map((r) => r.fitted);
  assert.equal(fitted[0], null); // 0.05 FLOPs: below both laws' limits
  assert.equal(fitted[1]?.family, "small"); // 0.9 + 0.2·log10(0.005) = 0.4398 > 0.1398
  assert.ok(Math.abs(fitted[1]!.expectedRecall - (0.9 + 0.2 * Math.log10(0.005))) < 1e-12);
  assert.equal(fitted[2]?.family, "sizes"); // 50 FLOPs: beyond what "small" can spend
  assert.ok(Math.abs(fitted[2]!.expectedRecall - (0.6 + 0.2 * Math.log10(0.5))) < 1e-12);
  // Type-7 quantiles of the three refits {y − 0.1, y + 0.1, y}: y − 0.095 and y + 0.095.
  assert.ok(Math.abs(fitted[2]!.interval.lo - (fitted[2]!.expectedRecall - 0.095)) < 1e-12);
  assert.ok(Math.abs(fitted[2]!.interval.hi - (fitted[2]!.expectedRecall + 0.095)) < 1e-12);
});

Deno.test("figures: correlations on common rows, rate by row and by duplicates", () => {
  const mk = (model: string, rows: number[], matches: number[]): CheckpointScores => ({
    model,
    step: 1,
    continuation: 4,
    rows: Uint32Array.from(rows),
    matches: Uint8Array.from(matches),
  });
  const a = mk("a", [0, 1, 2, 3, 9], [0, 1, 2, 3, 4]);
  const b = mk("b", [0, 1, 2, 3], [0, 2, 4, 4]);
  const c = mk("c", [0, 1, 2, 3], [3, 2, 1, 0]);
  const m = correlationMatrix([a, b, c].map(scoredFromScores));
  assert.equal(m.rows, 4); // row 9 is not common
  assert.deepEqual(m.labels, ["a@1", "b@1", "c@1"]);
  // corr(0..3, [0, 2, 4, 4]) = 7 / sqrt(5 · 11) = 0.94387980744853…
  assert.ok(Math.abs(m.values[0][1]! - 0.9438798074485389) < 1e-12);
  assert.equal(m.values[0][2], -1);
  assert.equal(m.values[0][0], 1);
  assert.deepEqual(distribution(scoredFromScores(a)).counts, [1, 1, 1, 1, 1]);
  const dup = rateByDuplicates(
    scoredFromScores(a),
    Uint32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  );
  assert.deepEqual(dup.bins.map((x) => [x.min, x.max, x.rows, x.rate]), [
    [0, 0, 1, 0],
    [1, 1, 1, 0],
    [2, 2, 1, 0],
    [3, 4, 1, 0],
    [9, 16, 1, 1],
  ]);
});

Deno.test("figures: rate by row buckets and the pairwise matrix", () => {
  const exp = experiment(
    [{ name: "p", parameters: 10, steps: [1] }, { name: "t", parameters: 100, steps: [1] }],
    { model: "t", step: 1 },
  );
  const rows = Uint32Array.from({ length: 100 }, (_, i) => i);
  const t = analysedFrom(
    scoredFromScores({
      model: "t",
      step: 1,
      continuation: 4,
      rows,
      matches: Uint8Array.from(rows, (r) => (r % 2 ? 4 : 0)),
    }),
    exp,
  );
  const p = analysedFrom(
    scoredFromScores({
      model: "p",
      step: 1,
      continuation: 4,
      rows: rows.subarray(0, 40),
      matches: Uint8Array.from({ length: 40 }, () => 4),
    }),
    exp,
  );
  assert.deepEqual(rateByRow(t, 100).buckets, [
    { start: 0, end: 32, rows: 32, rate: 0.5 },
    { start: 32, end: 64, rows: 32, rate: 0.5 },
    { start: 64, end: 96, rows: 32, rate: 0.5 },
    { start: 96, end: 100, rows: 4, rate: 0.5 },
  ]);
  assert.deepEqual(rateByRow(p, 100).buckets.map((b) => [b.rows, b.rate]), [[32, 1], [8, 1]]);
  const m = pairMatrix([p, t]);
  assert.deepEqual(m.labels, ["p@1", "t@1"]);
  assert.deepEqual(m.precision, [[1, 0.5], [1, 1]]);
  assert.deepEqual(m.recall, [[1, 1], [0.5, 1]]);
});

Deno.test("figures: correlations read from sources of many chunks with gaps equal the sums over the common rows", () => {
  const next = splitmix32(7);
  const l = 8;
  // Each run: rows 0..4999 with random gaps, cut into chunks of random sizes (runs of
  // consecutive rows and single rows alike).
  const runs = ["a", "b", "c"].map((model) => {
    const rows: number[] = [];
    for (let r = 0; r < 5000; r++) if (next() % 10 !== 0) rows.push(r);
    const matches = rows.map(() => next() % (l + 1));
    const cuts = [0];
    while (cuts[cuts.length - 1] < rows.length) {
      cuts.push(Math.min(rows.length, cuts[cuts.length - 1] + 1 + (next() % 700)));
    }
    const chunks = cuts.slice(1).map((end, k) => ({
      rows: Uint32Array.from(rows.slice(cuts[k], end)),
      matches: Uint8Array.from(matches.slice(cuts[k], end)),
    }));
    const source = {
      prefix: false,
      nll: false,
      chunks: chunks.length,
      chunk: (k: number) => chunks[k],
    };
    const scored = scoredFromScores({
      model,
      step: 1,
      continuation: l,
      rows: Uint32Array.from(rows),
      matches: Uint8Array.from(matches),
    });
    return { run: { ...scored, source }, byRow: new Map(rows.map((r, i) => [r, matches[i]])) };
  });
  const m = correlationMatrix(runs.map((r) => r.run));
  const common = [...runs[0].byRow.keys()].filter((r) => runs.every((x) => x.byRow.has(r)));
  assert.equal(m.rows, common.length);
  const pearson = (x: number[], y: number[]) => {
    const n = x.length,
      mx = x.reduce((s, v) => s + v, 0) / n,
      my = y.reduce((s, v) => s + v, 0) / n;
    let sxy = 0, sxx = 0, syy = 0;
    for (let i = 0; i < n; i++) {
      sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) ** 2, syy += (y[i] - my) ** 2;
    }
    return sxy / Math.sqrt(sxx * syy);
  };
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const x = common.map((r) => runs[i].byRow.get(r)!),
        y = common.map((r) => runs[j].byRow.get(r)!);
      assert.ok(Math.abs(m.values[i][j]! - pearson(x, y)) < 1e-9, `${i},${j}`);
    }
  }
});
