import assert from "node:assert/strict";
import {
  featuresInMemory,
  type MaskedHit,
  personalIndex,
} from "../engine/data/features/row_features.ts";
import { seededRandom } from "../engine/random.ts";
import { scoredFromScores } from "../engine/store/scored_checkpoint.ts";
import type { AnalysisSettings } from "../engine/types.ts";
import type { AnalysedCheckpoint } from "../reports/analysis/checkpoints.ts";
import { inSample, PROBABILITY_BINS, sampleRates } from "../reports/analysis/combined.ts";
import { type FeatureFits, fitFeatureModels } from "../reports/analysis/feature_candidates.ts";
import { foldOf } from "../reports/analysis/histograms.ts";

const N = 40_000, L = 32;

/**
 * Synthetic rows 2i + 5 whose memorization grows with the log window count
 * and falls with compression; a cheap run scores every other row with a
 * noisy signal of the label; a few rows carry an e-mail address.
 */
function synthetic() {
  const rnd = seededRandom(7);
  const rows = Uint32Array.from({ length: N }, (_, i) => 2 * i + 5);
  const window = Uint32Array.from({ length: N }, () => 1 + Math.floor(-Math.log(rnd()) * 3));
  const compression = Float64Array.from({ length: N }, () => 0.4 + 0.6 * rnd());
  const y = Uint8Array.from({ length: N }, (_, i) => {
    const eta = -5 + 1.6 * Math.log(window[i]) - 2 * (compression[i] - 0.7);
    return rnd() < 1 / (1 + Math.exp(-eta)) ? 1 : 0;
  });
  const hits = new Map<number, MaskedHit[]>();
  for (let i = 0; i < N; i += 97) {
    hits.set(rows[i], [{ kind: "email", start: 0, end: 5, masked: "a***@b.org" }]);
  }
  const f = featuresInMemory(
    { version: 2, key: "s", of: "tokens", seconds: 1, shards: 1, tokens: N * 64 },
    {
      rows,
      window,
      context: Uint32Array.from(window, (w) => w + 1),
      step: Int32Array.from(rows, (r) => Math.floor(r / 1024)),
      nextStep: new Int32Array(N).fill(-1),
      rowCopies: new Uint32Array(N).fill(1),
      compression,
      distinct: Float64Array.from({ length: N }, () => rnd()),
    },
    personalIndex(hits),
    4096,
  );
  const run = (model: string, compute: number, keep: (i: number) => boolean, p: number[]) => {
    const idx = [...Array(N).keys()].filter(keep);
    const prefix = Uint8Array.from(idx, (i) => (y[i] && rnd() < p[0]) || rnd() < p[1] ? L : 3);
    const scored = scoredFromScores({
      model,
      step: 1,
      continuation: L,
      rows: Uint32Array.from(idx, (i) => rows[i]),
      matches: prefix,
      prefix,
      nll: Float32Array.from(idx, (i) => (y[i] ? 0.5 : 1.5) + rnd()),
    });
    return { ...scored, id: { model, step: 1 }, compute, parameters: 1 } as
      & typeof scored
      & AnalysedCheckpoint;
  };
  const target = run("target", 100, () => true, [1, 0]);
  const cheap = run("cheap", 10, (i) => i % 2 === 0, [0.5, 0.01]);
  return { f, target, cheap, memorized: y.reduce((a, v) => a + v, 0) };
}

const settings: AnalysisSettings = {
  minPrecision: 0.3,
  budgets: [0.5],
  bootstrap: 0,
  seed: 3,
  parameterCount: "total",
  folds: 5,
  recallOver: "all",
  recalls: [],
};

function fit(sampleRows?: number): FeatureFits {
  const { f, target, cheap } = synthetic();
  // recall's denominator per fold: the target's memorized rows of each fold
  const positives = new Array<number>(settings.folds).fill(0);
  for (const r of target.memorized) positives[foldOf(r, settings.seed, settings.folds)]++;
  return fitFeatureModels(f, [target, cheap], target, settings, positives, { sampleRows })!;
}

Deno.test("sample rates: every row under the cap; otherwise the rare class whole up to half the cap", () => {
  assert.deepEqual(sampleRates(1000, 50, 1000), { memorized: 1, other: 1 });
  const r = sampleRates(146_000_000, 2_400_000, 2_000_000);
  assert.ok(Math.abs(r.memorized - 1_000_000 / 2_400_000) < 1e-12);
  assert.ok(Math.abs(r.memorized * 2.4e6 + r.other * (146e6 - 2.4e6) - 2e6) < 1e-3);
  const q = sampleRates(1_000_000, 10_000, 100_000);
  assert.equal(q.memorized, 1);
  let kept = 0;
  for (let row = 0; row < 200_000; row++) if (inSample(row, false, q, 0)) kept++;
  assert.ok(Math.abs(kept / 200_000 - q.other) < 0.005, `${kept}`);
});

Deno.test("a capped sample: deterministic, every memorized row kept, weighted so the models stay calibrated and close to the full fit", () => {
  const full = fit();
  assert.equal(full.sample.rows, N);
  assert.deepEqual(full.sample.rates, { memorized: 1, other: 1 });
  const cap = 6000;
  const a = fit(cap), b = fit(cap);
  // deterministic: the same rows (by hash), the same models, thresholds and flagged rows
  const parts = (x: FeatureFits) =>
    [x.dataOnly, ...x.byBudget].map((m) => [m.models, m.fit, m.pos, m.neg, m.flagged, m.caught]);
  assert.deepEqual(parts(a), parts(b));
  assert.deepEqual(a.sample, b.sample);
  assert.ok(full.memorized < cap / 2);
  assert.equal(a.sample.rates.memorized, 1);
  assert.ok(Math.abs(a.sample.rows - cap) < 0.05 * cap, `${a.sample.rows} rows sampled`);
  for (const [x, y] of [[a.dataOnly, full.dataOnly], [a.byBudget[0], full.byBudget[0]]]) {
    assert.equal(x.signal, y.signal);
    // every model row is applied (and counted) whatever the sample
    const n = (h: Float64Array) => h.reduce((s, v) => s + v, 0);
    assert.equal(n(x.pos) + n(x.neg), N);
    assert.equal(n(x.pos), full.memorized);
    // coefficients (standardized scale) close to the full fit's
    x.models.forEach((m, k) => {
      m.beta.forEach((v, j) => {
        const d = Math.abs(v - y.models[k].beta[j]);
        assert.ok(
          d < 0.15,
          `${x.signal} fold ${k} coefficient ${j}: ${v} vs ${y.models[k].beta[j]}`,
        );
      });
    });
    // calibrated: the mean probability (from the bins) near the memorized share
    const mean = x.pos.reduce((s, v, bin) =>
      s + (v + x.neg[bin]) * (1 - (bin + 0.5) / PROBABILITY_BINS), 0) / N;
    assert.ok(Math.abs(mean / (full.memorized / N) - 1) < 0.05, `mean p ${mean}`);
    // the held-out recall at the floor close to the full fit's
    const recall = (c: { tp: number; fn: number }) =>
      c.tp / (c.tp + c.fn);
    assert.ok(
      Math.abs(recall(x.fit.heldOut) - recall(y.fit.heldOut)) < 0.03,
      `${x.signal}: ${recall(x.fit.heldOut)} vs ${recall(y.fit.heldOut)}`,
    );
  }
  assert.ok(a.byBudget[0].caught[0] <= a.byBudget[0].fit.heldOut.tp);
});
