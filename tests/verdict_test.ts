import assert from "node:assert/strict";
import { headline, headlineBudgets } from "../reports/analysis/verdict.ts";
import { EVIL_MODEL, fixtureSummary } from "./fixtures/report_summary.ts";

Deno.test("the headline says what the target memorized, the best pick per budget and recall 0.8's compute", () => {
  assert.deepEqual(headline(fixtureSummary()), {
    memorized: "The target nano-s5@143 memorized 229 of the 2,288 rows it scored (10%), with " +
      "2.81e+12 FLOPs of training compute.",
    predictors: `Best predictor, held out: within 10% of its compute, memorized by ${EVIL_MODEL}` +
      "@143: recall 0.600 at precision 0.930; within 30%, score ≥ 0.9 under nano-s3@143: recall " +
      "0.800 at precision 0.930.",
    computeForRecall: "Recall 0.8 at precision ≥ 0.9 needs 10% of its compute measured (nll < " +
      "2.5 under nano-s3@143, held-out precision 0.890); the binary law of sizes (final step) " +
      "expects 12% (95% 8.0% to 20%).",
  });
});

Deno.test("headline budgets: the smallest and largest with a pick and the one nearest their geometric mean", () => {
  const s = fixtureSummary();
  const pick = s.recommendations[1];
  s.recommendations = [0.001, 0.01, 0.03, 0.1, 0.3, 0.6, 1].map((f, i) => ({
    ...pick,
    budgetFraction: f,
    measured: i === 0 ? null : pick.measured,
  }));
  assert.deepEqual(headlineBudgets(s).map((r) => r.budgetFraction), [0.01, 0.1, 1]);
  s.recommendations = s.recommendations.slice(0, 3);
  assert.deepEqual(headlineBudgets(s).map((r) => r.budgetFraction), [0.01, 0.03]);
});

Deno.test("the headline says when the precision floor does not hold at the picks", () => {
  const s = fixtureSummary();
  s.recommendations[2].floorHolds = false;
  assert.match(
    headline(s).predictors,
    /recall 0\.800 at precision 0\.930 \(floor not assured\)\.$/,
  );
  s.recommendations[1].floorHolds = false;
  assert.match(
    headline(s).predictors,
    /\. None clears the floor 0\.9 with 95% confidence at these rows \(the budget table says why\)\.$/,
  );
});

Deno.test("without memorized rows or picks the headline says so", () => {
  const s = fixtureSummary();
  s.recommendations.forEach((r) => (r.measured = null));
  assert.equal(
    headline(s).predictors,
    "No predictor within 30% of its compute reaches precision 0.9 on held-out rows.",
  );
  s.target.memorized = 0;
  const h = headline(s);
  assert.match(h.memorized, /memorized none of the 2,288 rows it scored/);
  assert.equal(h.computeForRecall, null);
});

Deno.test("recall 0.8's line without a named pick, and without a measured predictor", () => {
  const s = fixtureSummary();
  const c = s.computeForRecall[1];
  c.measured.pick = null;
  assert.match(
    headline(s).computeForRecall!,
    /^Recall 0\.8 at precision ≥ 0\.9 needs 10% of its compute measured \(held-out precision 0\.890\);/,
  );
  c.measured.fraction = null;
  c.laws = [];
  assert.equal(
    headline(s).computeForRecall,
    "No measured predictor reaches recall 0.8 at precision ≥ 0.9; no fitted law reaches it " +
      "within what its family can spend.",
  );
});
