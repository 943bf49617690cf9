import assert from "node:assert/strict";
import {
  crossFit,
  type FoldedSignal,
  precisionOf,
  recallOf,
  selectHeldOut,
} from "../reports/analysis/crossfit.ts";
import { seededRandom } from "../engine/random.ts";
import { foldOf as foldOfRow } from "../reports/analysis/histograms.ts";

const f64 = (v: number[]) => Float64Array.from(v);
const foldOf = (row: number, folds: number, seed: number) => foldOfRow(row, seed, folds);

Deno.test("foldOf: seeded, balanced, the same for every run", () => {
  const counts = new Array(5).fill(0);
  for (let r = 0; r < 100000; r++) counts[foldOf(r, 5, 0)]++;
  for (const c of counts) assert.ok(Math.abs(c - 20000) < 600, `fold size ${c}`);
  assert.equal(foldOf(123456, 5, 0), foldOf(123456, 5, 0));
  let moved = 0;
  for (let r = 0; r < 1000; r++) if (foldOf(r, 5, 0) !== foldOf(r, 5, 1)) moved++;
  assert.ok(moved > 700 && moved < 900, `${moved} of 1000 rows change fold with the seed`);
  assert.equal(foldOf(2 ** 40 + 7, 2, 3) < 2, true); // rows beyond 2^32 hash too
});

Deno.test("crossFit: each fold's threshold is chosen on the other folds (hand-computed)", () => {
  // Two folds, three bins; fold 0 has one target-memorized row the predictor never scored.
  const s: FoldedSignal = {
    pos: [f64([3, 1, 0]), f64([2, 2, 1])],
    neg: [f64([0, 1, 2]), f64([0, 2, 3])],
    positives: [5, 5],
    thresholds: [3, 2, 1],
    fixed: false,
  };
  const fit = crossFit(s, 0.8);
  // Fold 0 trains on fold 1: cumulative precision 1, 4/6, 5/10 → bin 0; on fold 0: tp 3, fp 0.
  assert.deepEqual(fit.folds[0], {
    bin: 0,
    train: { tp: 2, fp: 0, fn: 3 },
    test: { tp: 3, fp: 0, fn: 2 },
  });
  // Fold 1 trains on fold 0: precision 1, 4/5 = 0.8 → bin 1; on fold 1: tp 4, fp 2.
  assert.deepEqual(fit.folds[1], {
    bin: 1,
    train: { tp: 4, fp: 1, fn: 1 },
    test: { tp: 4, fp: 2, fn: 1 },
  });
  assert.deepEqual(fit.heldOut, { tp: 7, fp: 2, fn: 3 });
  // All rows: precision 1, 8/11 → bin 0 only, recall 5/10.
  assert.deepEqual(fit.inSample, { bin: 0, counts: { tp: 5, fp: 0, fn: 5 } });
  // A binary predictor has no choice: held out = in sample.
  const bin = crossFit({
    ...s,
    pos: s.pos.map((p) => p.slice(0, 2)),
    neg: s.neg.map((n) => n.slice(0, 2)),
    thresholds: [1, 0],
    fixed: true,
  }, 0.8);
  assert.deepEqual(bin.heldOut, bin.inSample.counts);
  assert.deepEqual(bin.heldOut, { tp: 5, fp: 0, fn: 5 });
});

/** Binary predictors as folded two-bin signals from per-row flags. */
function folded(truth: boolean[], flags: boolean[], folds: number, seed: number): FoldedSignal {
  const s: FoldedSignal = {
    pos: Array.from({ length: folds }, () => new Float64Array(2)),
    neg: Array.from({ length: folds }, () => new Float64Array(2)),
    positives: new Array(folds).fill(0),
    thresholds: [1, 0],
    fixed: true,
  };
  truth.forEach((t, i) => {
    const f = foldOf(i, folds, seed);
    (t ? s.pos : s.neg)[f][flags[i] ? 0 : 1]++;
    if (t) s.positives[f]++;
  });
  return s;
}

Deno.test("selecting the best of 20 equally good predictors: in-sample recall is optimistic, held-out recall matches a fresh sample", () => {
  // Every candidate catches each memorized row with probability 0.5 (true recall 0.5,
  // precision ≈ 0.98): the in-sample maximum over 20 is biased upwards, the held-out
  // value of "pick the best" is not, and equals what the pick achieves on fresh rows.
  const random = seededRandom(1);
  const rows = 600, candidates = 20, replications = 120;
  const draw = () => {
    const truth = Array.from({ length: rows }, () => random() < 0.3);
    const flags = Array.from(
      { length: candidates },
      () => truth.map((t) => (t ? random() < 0.5 : random() < 0.01)),
    );
    return { truth, flags };
  };
  let inSample = 0, heldOut = 0, fresh = 0;
  for (let rep = 0; rep < replications; rep++) {
    const cal = draw(), next = draw();
    const signals = cal.flags.map((f) => folded(cal.truth, f, 5, rep));
    const sel = selectHeldOut(
      signals.map((s) => ({ compute: 1, fit: crossFit(s, 0.8) })),
      1,
      0.8,
      signals[0].positives,
    );
    inSample += recallOf(sel.inSample!);
    heldOut += recallOf(sel.heldOut);
    const f = next.flags[sel.pick!];
    const tp = next.truth.filter((t, i) => t && f[i]).length;
    fresh += tp / next.truth.filter((t) => t).length;
  }
  inSample /= replications;
  heldOut /= replications;
  fresh /= replications;
  assert.ok(inSample > 0.56, `in-sample ${inSample}`); // ≈ 0.5 + 1.9 standard deviations
  assert.ok(heldOut < inSample - 0.05, `held out ${heldOut} vs in sample ${inSample}`);
  assert.ok(Math.abs(heldOut - 0.5) < 0.01, `held out ${heldOut}`);
  assert.ok(Math.abs(heldOut - fresh) < 0.015, `held out ${heldOut} vs fresh ${fresh}`);
});

Deno.test("a threshold on an uninformative signal: in-sample precision meets the floor, held-out and fresh do not", () => {
  // The target memorizes 88% of rows whatever the signal: no threshold truly reaches 0.9.
  const random = seededRandom(5);
  const rows = 500, bins = 30, replications = 200;
  const draw = () =>
    Array.from({ length: rows }, () => ({ bin: Math.floor(random() * bins), t: random() < 0.88 }));
  let inSample = 0, heldOut = 0, fresh = 0, n = 0;
  for (let rep = 0; rep < replications; rep++) {
    const cal = draw();
    const s: FoldedSignal = {
      pos: Array.from({ length: 5 }, () => new Float64Array(bins)),
      neg: Array.from({ length: 5 }, () => new Float64Array(bins)),
      positives: new Array(5).fill(0),
      thresholds: Array.from({ length: bins }, (_, b) => b),
      fixed: false,
    };
    cal.forEach((r, i) => {
      const f = foldOf(i, 5, rep);
      (r.t ? s.pos : s.neg)[f][r.bin]++;
      if (r.t) s.positives[f]++;
    });
    const fit = crossFit(s, 0.9);
    if (fit.inSample.bin === null) continue;
    n++;
    inSample += precisionOf(fit.inSample.counts);
    heldOut += precisionOf(fit.heldOut);
    const next = draw().filter((r) => r.bin <= fit.inSample.bin!);
    fresh += next.filter((r) => r.t).length / next.length;
  }
  assert.ok(n > 100, `${n} replications found a threshold`);
  assert.ok(inSample / n >= 0.9, `in-sample precision ${inSample / n}`);
  assert.ok(Math.abs(heldOut / n - 0.88) < 0.015, `held-out precision ${heldOut / n}`);
  assert.ok(Math.abs(fresh / n - 0.88) < 0.015, `fresh precision ${fresh / n}`);
});

Deno.test("selectHeldOut: budget, ties to the cheaper candidate, folds with no qualifying choice", () => {
  const s = (pos: number[][], neg: number[][]): FoldedSignal => ({
    pos: pos.map(f64),
    neg: neg.map(f64),
    positives: [4, 4],
    thresholds: [1, 0],
    fixed: true,
  });
  const a = crossFit(s([[2, 2], [2, 2]], [[0, 5], [0, 5]]), 0.9); // recall 0.5, precision 1
  const b = crossFit(s([[4, 0], [3, 1]], [[0, 5], [1, 4]]), 0.9); // fold 1 precision 0.75
  const cands = [{ compute: 1, fit: a }, { compute: 10, fit: b }];
  const small = selectHeldOut(cands, 5, 0.9, [4, 4]);
  assert.equal(small.pick, 0);
  assert.deepEqual(small.heldOut, { tp: 4, fp: 0, fn: 4 });
  const big = selectHeldOut(cands, 10, 0.9, [4, 4]);
  // All rows: b has precision 7/8 < 0.9 → a. Fold 0 trains on fold 1 (b: 3/4) → a;
  // fold 1 trains on fold 0 (b: 4/4, recall 1) → b, measured on fold 1: tp 3, fp 1.
  assert.equal(big.pick, 0);
  assert.deepEqual(big.foldPicks, [0, 1]);
  assert.deepEqual(big.heldOut, { tp: 5, fp: 1, fn: 3 });
  assert.equal(big.agreement, 0.5);
  const none = selectHeldOut(cands, 0.5, 0.9, [4, 4]);
  assert.deepEqual(none, {
    pick: null,
    inSample: null,
    foldPicks: [null, null],
    heldOut: { tp: 0, fp: 0, fn: 8 },
    agreement: 0,
  });
});
