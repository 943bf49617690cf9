import assert from "node:assert/strict";
import { choose, cpuCandidates } from "../bench/devices.ts";

Deno.test("device trial candidates split the cores into workers × threads", () => {
  assert.deepEqual(
    cpuCandidates(6).map((c) => [c.workers, c.threads]),
    [[1, 6], [2, 3], [3, 2], [6, 1]],
  );
  assert.deepEqual(cpuCandidates(1).map((c) => [c.workers, c.threads]), [[1, 1]]);
});

Deno.test("the device choice is the fastest, or fewer workers within 5% of it, with the reason", () => {
  const c = (workers: number, rowsPerS: number) => ({
    device: "cpu",
    workers,
    threads: 4 / workers,
    rowsPerS,
  });
  const clear = choose([c(1, 40), c(2, 50), c(4, 45)]);
  assert.equal(clear.best.workers, 2);
  assert.match(clear.why, /2 × 2 \(50\.0 rows\/s\) is the fastest; the others: 1 × 4 \(40\.0/);
  const close = choose([c(1, 48.5), c(2, 50), c(4, 49)]);
  assert.equal(close.best.workers, 1);
  assert.match(close.why, /1 × 4 \(48\.5 rows\/s\) is within 5% of the fastest, 2 × 2 \(50\.0/);
});
