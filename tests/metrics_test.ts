import assert from "node:assert/strict";
import {
  averagePrecision,
  bestAtPrecision,
  bootstrapConfusions,
  confusion,
  prCurve,
  rates,
} from "../reports/analysis/metrics.ts";
import { listBuilder, rangesBuilder } from "../engine/rowset.ts";
import { seededRandom } from "../engine/random.ts";
import { poisson, quantile, wilson } from "../reports/analysis/stats.ts";

function ranges(rows: number[]) {
  const b = rangesBuilder();
  for (const r of rows) b.add(r);
  return b.done();
}

function list(rows: number[]) {
  const b = listBuilder();
  for (const r of rows) b.add(r);
  return b.done();
}

Deno.test("confusion counts only rows both runs scored", () => {
  // Target scored rows 0..9 and memorized 1, 2, 3, 8; predictor scored 0..5 (a partial checkpoint).
  const tSeen = ranges([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const tMem = list([1, 2, 3, 8]);
  const pSeen = ranges([0, 1, 2, 3, 4, 5, 64]);
  const pMem = list([1, 4, 5, 64]); // 64 is outside the target's rows: ignored
  const c = confusion(pSeen, pMem, tSeen, tMem);
  assert.deepEqual(c, { tp: 1, fp: 2, fn: 2, tn: 1, n: 6 });
  const r = rates(c.tp, c.fp, c.fn);
  assert.equal(r.precision, 1 / 3);
  assert.equal(r.recall, 1 / 3);
  assert.equal(r.f1, 1 / 3);
});

Deno.test("rates are null when undefined", () => {
  const r = rates(0, 0, 5);
  assert.equal(r.precision, null);
  assert.equal(r.precisionCI, null);
  assert.equal(r.recall, 0);
});

Deno.test("Wilson interval matches hand-computed values", () => {
  // 8/10: center (0.8 + z²/20)/(1 + z²/10), half-width z/(1+z²/10)·sqrt(0.016 + z²/400).
  const ci = wilson(8, 10)!;
  assert.ok(Math.abs(ci.lo - 0.49016) < 1e-4, `lo ${ci.lo}`);
  assert.ok(Math.abs(ci.hi - 0.94332) < 1e-4, `hi ${ci.hi}`);
  const zero = wilson(0, 20)!;
  assert.equal(zero.lo, 0);
  assert.ok(Math.abs(zero.hi - 0.16113) < 1e-4, `hi ${zero.hi}`);
  assert.equal(wilson(0, 0), null);
});

Deno.test("precision–recall curve from a histogram", () => {
  // Bins strongest first: (pos, neg) = (3,0), (1,1), (0,0), (1,4).
  const { points, bins } = prCurve({
    pos: Float64Array.from([3, 1, 0, 1]),
    neg: Float64Array.from([0, 1, 0, 4]),
    thresholds: [1, 0.9, 0.8, 0],
  });
  assert.deepEqual(bins, [0, 1, 3]);
  assert.deepEqual(points, [
    { threshold: 1, precision: 1, recall: 0.6 },
    { threshold: 0.9, precision: 0.8, recall: 0.8 },
    { threshold: 0, precision: 0.5, recall: 1 },
  ]);
  assert.equal(bestAtPrecision(points, 0.75)?.threshold, 0.9);
  assert.equal(bestAtPrecision(points, 0.95)?.threshold, 1);
  assert.equal(bestAtPrecision(points, 1.01), null);
  assert.ok(Math.abs(averagePrecision(points)! - (0.6 + 0.2 * 0.8 + 0.2 * 0.5)) < 1e-12);
});

Deno.test("seeded PRNG is deterministic and Poisson draws have the right mean", () => {
  const a = seededRandom(7), b = seededRandom(7);
  for (let i = 0; i < 5; i++) assert.equal(a(), b());
  const r = seededRandom(1);
  for (const mean of [1, 4, 30, 5000]) {
    let s = 0, ss = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const k = poisson(mean, r);
      s += k;
      ss += k * k;
    }
    const m = s / n, v = ss / n - m * m;
    assert.ok(Math.abs(m - mean) < 5 * Math.sqrt(mean / n), `mean ${m} for ${mean}`);
    assert.ok(Math.abs(v / mean - 1) < 0.06, `variance ${v} for ${mean}`);
  }
  assert.equal(quantile([3, 1, 2, 4], 0.5), 2.5);
});

Deno.test("Poisson bootstrap pools patterns exactly and centers on the counts", () => {
  const size = 2000;
  const all = Array.from({ length: size }, (_, r) => r);
  const tSeen = ranges(all);
  const tMem = list(all.filter((r) => r % 10 === 0)); // 200 positives
  const aMem = list(all.filter((r) => r % 20 === 0 || r % 97 === 1)); // tp 100, fp ~21
  const bMem = list(all.filter((r) => r % 20 === 0 || r % 97 === 1)); // identical to a
  const a = { scored: tSeen, memorized: aMem }, b = { scored: tSeen, memorized: bMem };
  const exact = confusion(tSeen, aMem, tSeen, tMem);
  const random = seededRandom(3);
  const { counts, patterns } = bootstrapConfusions(
    [a, b],
    tSeen,
    tMem,
    400,
    (m) => poisson(m, random),
  );
  assert.equal(patterns, 3); // TP rows, FP rows, FN rows
  let tp = 0, fp = 0, fn = 0;
  for (let s = 0; s < 400; s++) {
    // identical classifiers get identical resampled counts
    for (let j = 0; j < 3; j++) assert.equal(counts[s * 6 + j], counts[s * 6 + 3 + j]);
    tp += counts[s * 6];
    fp += counts[s * 6 + 1];
    fn += counts[s * 6 + 2];
  }
  assert.ok(Math.abs(tp / 400 - exact.tp) < 3, `tp ${tp / 400} vs ${exact.tp}`);
  assert.ok(Math.abs(fp / 400 - exact.fp) < 1.5, `fp ${fp / 400} vs ${exact.fp}`);
  assert.ok(Math.abs(fn / 400 - exact.fn) < 3, `fn ${fn / 400} vs ${exact.fn}`);
});
