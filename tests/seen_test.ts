import assert from "node:assert/strict";
import { seenFeatures } from "../engine/data/features/seen.ts";
import { xoshiro128 } from "../engine/random.ts";
import { NANO_K, NANO_L, NANO_PER_STEP, nanoRows } from "./fixtures/nano_data.ts";

Deno.test("a second epoch: each row's window comes back as the row the permutation put it at", () => {
  const rows = 200, width = 8, perStep = 16;
  const rnd = xoshiro128(5);
  const epoch1 = Uint32Array.from({ length: rows * width }, () => rnd() % 50000);
  // epoch 2: the first 100 rows of epoch 1 again, in the order perm
  const perm = Array.from({ length: 100 }, (_, i) => (i * 37) % 100);
  const data = new Uint32Array((rows + 100) * width);
  data.set(epoch1);
  perm.forEach((src, j) =>
    data.set(epoch1.subarray(src * width, (src + 1) * width), (rows + j) * width)
  );
  const f = seenFeatures(data, width, perStep);
  for (let r = 0; r < rows; r++) {
    const j = perm.indexOf(r);
    assert.equal(f.nextRow[r], j < 0 ? -1 : rows + j);
    assert.equal(f.nextStep[r], j < 0 ? -1 : Math.floor((rows + j) / perStep));
    assert.equal(f.rowCopies[r], j < 0 ? 1 : 2);
    assert.equal(f.firstRow[r], r);
  }
  assert.equal(f.nextRow[rows + 5], -1);
  assert.equal(f.firstRow[rows + 5], perm[5]);
  assert.equal(f.step[rows + 5], Math.floor(205 / 16));
});

Deno.test("rows numbered from an offset keep their global row and step", () => {
  const w = Uint16Array.of(1, 2, 3, 4, 1, 2);
  const f = seenFeatures(w, 2, 10, 95);
  assert.deepEqual(Array.from(f.step), [9, 9, 9]);
  assert.deepEqual(Array.from(f.nextRow), [97, -1, -1]);
  assert.deepEqual(Array.from(f.firstRow), [95, 96, 95]);
});

Deno.test("nano data (one epoch): steps of the training order; a few identical rows", async () => {
  const { rows, rowLength, tokens } = await nanoRows();
  const w = NANO_K + NANO_L;
  const windows = new Uint16Array(rows * w);
  for (let r = 0; r < rows; r++) {
    windows.set(tokens.subarray(r * rowLength, r * rowLength + w), r * w);
  }
  const f = seenFeatures(windows, w, NANO_PER_STEP);
  assert.equal(f.step[0], 0);
  assert.equal(f.step[rows - 1], 142);
  const repeated = f.rowCopies.filter((c) => c > 1).length;
  // brute force: rows whose window equals another row's
  let expected = 0;
  for (let a = 0; a < rows; a++) {
    for (let b = 0; b < rows; b++) {
      if (a !== b && windows.subarray(a * w, a * w + w).every((t, i) => t === windows[b * w + i])) {
        expected++;
        break;
      }
    }
  }
  assert.equal(repeated, expected);
  assert.equal(repeated, 379); // rows of the same document at the same alignment
  assert.equal(f.nextRow.filter((r) => r >= 0).length, 237);
  assert.equal(Math.max(...f.rowCopies), 4);
});
