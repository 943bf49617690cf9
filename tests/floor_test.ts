import assert from "node:assert/strict";
import { floorGap, trialsOf } from "../reports/analysis/floor.ts";
import { wilson } from "../reports/analysis/stats.ts";

Deno.test("trialsOf recovers the count behind a Wilson interval from its proportion and lower end", () => {
  for (const [tp, n] of [[94, 103], [1, 1], [20, 20], [9, 10], [900, 1000], [5, 7], [380, 382]]) {
    assert.equal(trialsOf(tp / n, wilson(tp, n)!.lo), n, `${tp}/${n}`);
  }
  assert.equal(trialsOf(0, 0), null);
});

Deno.test("the floor gap is null when the interval's lower end clears the floor", () => {
  assert.equal(floorGap({ precision: 0.95, precisionCI: wilson(950, 1000) }, 0.9), null);
});

Deno.test("a precision above the floor with a wide interval: how many flagged rows would clear it", () => {
  const ci = wilson(94, 103)!; // 0.913 [0.842, 0.953]
  const gap = floorGap({ precision: 94 / 103, precisionCI: ci }, 0.9)!;
  assert.equal(gap.flagged, 103);
  // The smallest count whose lower end at this precision reaches 0.9.
  const p = 94 / 103;
  assert.ok(wilson(p * gap.needed!, gap.needed!)!.lo >= 0.9);
  assert.ok(wilson(p * (gap.needed! - 1), gap.needed! - 1)!.lo < 0.9);
  assert.equal(gap.needed, 2171);
  assert.equal(
    gap.sentence,
    "The 95% interval over its 103 flagged rows reaches down to 0.842, further than the margin " +
      "of 0.013 above 0.9; about 2,200 flagged rows (21× the rows scored) at this precision " +
      "would make it hold.",
  );
  // All flagged rows right: the lower end is n / (n + z²), so n ≥ z² · 0.9 / 0.1 = 34.6.
  assert.equal(floorGap({ precision: 1, precisionCI: wilson(20, 20) }, 0.9)!.needed, 35);
});

Deno.test("a held-out precision below the floor: more rows would not help", () => {
  const gap = floorGap(
    { precision: 96 / 108, precisionCI: wilson(96, 108), inSample: { precision: 0.914 } },
    0.9,
  )!;
  assert.equal(gap.needed, null);
  assert.equal(gap.flagged, 108);
  assert.equal(
    gap.sentence,
    "Its held-out precision 0.889 (0.914 on the rows that chose it) is itself below 0.9, so " +
      "more rows would not make the floor hold; a lower floor or a better predictor would.",
  );
  assert.match(
    floorGap({ precision: 0.9, precisionCI: wilson(90, 100) }, 0.9)!.sentence,
    /equals the floor 0.9/,
  );
});
