import assert from "node:assert/strict";
import {
  computeForRecall,
  invertLaw,
  measuredComputeForRecall,
} from "../reports/analysis/compute_for_recall.ts";
import type { FittedLaw } from "../reports/analysis/families.ts";
import { linearLog, saturatingPower } from "../reports/analysis/scaling.ts";

const close = (a: number | null, b: number, tol = 1e-7) =>
  assert.ok(a !== null && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} ≉ ${b}`);

/** A law over C0 = 100 FLOPs that may be evaluated from 0.1 to 1000 FLOPs (x in [−3, 1]). */
function law(
  form: FittedLaw["form"],
  params: number[],
  boot: number[][] = [],
  metric: "recall" | "precision" = "recall",
): FittedLaw {
  return { family: "f", metric, form, params, boot, range: [1, 1000], limits: [0.1, 1000] };
}

Deno.test("invertLaw: linear-log and saturating-power against the closed forms", () => {
  const lin = { recall: { form: linearLog, params: [0.6, 0.2] } };
  close(invertLaw(lin, 0.5, 0.9, -3, 1), -0.5); // (0.5 − 0.6) / 0.2
  close(invertLaw(lin, 0.8, 0.9, -3, 1), 1); // exactly at the upper limit
  assert.equal(invertLaw(lin, 0.9, 0.9, -3, 1), null); // x = 1.5: beyond
  assert.equal(invertLaw(lin, 0.5, 0.9, -0.2, 1), -0.2); // reached at the lower limit already
  // 1 − y = 0.3·10^(−0.5x): y = 0.8 ⇔ x = −2·log10(0.2 / 0.3)
  const sat = { recall: { form: saturatingPower, params: [0.3, 0.5] } };
  close(invertLaw(sat, 0.8, 0.9, -3, 1), -2 * Math.log10(0.2 / 0.3));
});

Deno.test("invertLaw: the precision law must stay at the floor", () => {
  // precision 0.85 + 0.05x reaches 0.9 only from x = 1 on
  const rising = {
    recall: { form: linearLog, params: [0.6, 0.2] },
    precision: { form: linearLog, params: [0.85, 0.05] },
  };
  close(invertLaw(rising, 0.5, 0.9, -3, 2), 1);
  // precision 0.95 − 0.05x holds the floor up to x = 1: recall 0.5 at x = −0.5 qualifies
  const falling = {
    recall: { form: linearLog, params: [0.6, 0.2] },
    precision: { form: linearLog, params: [0.95, -0.05] },
  };
  close(invertLaw(falling, 0.5, 0.9, -3, 2), -0.5);
  assert.equal(invertLaw(falling, 0.85, 0.9, -3, 2), null); // recall 0.85 needs x = 1.25
});

Deno.test("computeForRecall: point, bootstrap interval and refits that never reach R", () => {
  const c = computeForRecall(
    law(linearLog, [0.6, 0.2], [[0.5, 0.2], [0.7, 0.2], [0.6, 0.2]]),
    null,
    0.6,
    0.9,
    100,
  );
  close(c.compute, 100); // x = 0
  // inversions x = 0.5, −0.5, 0; type-7 quantiles −0.475 and 0.475
  close(c.lo, 100 * Math.pow(10, -0.475));
  close(c.hi, 100 * Math.pow(10, 0.475));
  assert.equal(c.reached, 1);
  const d = computeForRecall(
    law(linearLog, [0.6, 0.2], [[0.5, 0.2], [-1, 0.2], [0.6, 0.2]]),
    null,
    0.6,
    0.9,
    100,
  );
  assert.equal(d.hi, null); // one refit of three never reaches 0.6 below 1000 FLOPs
  assert.ok(Math.abs(d.reached! - 2 / 3) < 1e-12);
  const none = computeForRecall(law(linearLog, [0.6, 0.2]), null, 0.95, 0.9, 100);
  assert.deepEqual(none, { compute: null, lo: null, hi: null, reached: null });
  // a precision law pairs with the recall refit of the same resample
  const withPrec = computeForRecall(
    { ...law(linearLog, [0.6, 0.2], [[0.6, 0.2], [0.6, 0.2]]), resampleOf: [0, 1] },
    {
      ...law(linearLog, [0.85, 0.05], [[0.9, 0.05], [0.85, 0.05]], "precision"),
      resampleOf: [0, 1],
    },
    0.5,
    0.9,
    100,
  );
  close(withPrec.compute, 1000); // the precision law reaches 0.9 at x = 1
  // resample 0: precision 0.9 + 0.05x holds from x = 0; resample 1: from x = 1
  close(withPrec.lo, 100 * Math.pow(10, 0.025));
  close(withPrec.hi, 100 * Math.pow(10, 0.975));
});

Deno.test("measuredComputeForRecall: first budget reaching R, interval from the recall interval", () => {
  const steps = [
    { budget: 1, recall: 0.3, recallLo: 0.2, recallHi: 0.55 },
    { budget: 3, recall: 0.52, recallLo: 0.45, recallHi: 0.6 },
    { budget: 10, recall: 0.7, recallLo: 0.6, recallHi: 0.8 },
  ];
  assert.deepEqual(measuredComputeForRecall(steps, 0.5), { compute: 3, lo: 1, hi: 10 });
  assert.deepEqual(measuredComputeForRecall(steps, 0.8), { compute: null, lo: 10, hi: null });
});
