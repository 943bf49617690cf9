import assert from "node:assert/strict";
import {
  addCounts,
  addHashes,
  addWindows,
  buildWindowTable,
  countWindows,
  emptyWindowTable,
  hashLanes,
  hashWindow,
  queryCounts,
  scanAll,
  scanTokens,
  sharedArray,
  tableFromView,
  tableView,
  type Tokens,
  windowHash,
} from "../engine/data/features/window_counts.ts";
import { xoshiro128 } from "../engine/random.ts";
import { NANO_K, NANO_L, nanoRecords, nanoRows } from "./fixtures/nano_data.ts";

/** Brute force: per query, positions of any segment holding the same `width` tokens. */
function bruteForce(
  windows: Tokens,
  stride: number,
  width: number,
  segments: Tokens[],
): Uint32Array {
  const n = windows.length / stride;
  const out = new Uint32Array(n);
  for (let q = 0; q < n; q++) {
    for (const seg of segments) {
      for (let p = 0; p + width <= seg.length; p++) {
        let t = 0;
        while (t < width && seg[p + t] === windows[q * stride + t]) t++;
        if (t === width) out[q]++;
      }
    }
  }
  return out;
}

function rowsOf(tokens: Uint16Array, rowLength: number): Uint16Array[] {
  const out: Uint16Array[] = [];
  for (let r = 0; r * rowLength < tokens.length; r++) {
    out.push(tokens.subarray(r * rowLength, (r + 1) * rowLength));
  }
  return out;
}

/** Each row's scored window (offset 0, k + l tokens), back to back. */
function scoredWindows(tokens: Uint16Array, rowLength: number, width: number): Uint16Array {
  const rows = tokens.length / rowLength;
  const out = new Uint16Array(rows * width);
  for (let r = 0; r < rows; r++) {
    out.set(tokens.subarray(r * rowLength, r * rowLength + width), r * width);
  }
  return out;
}

Deno.test("the rolling hash at a position equals the hash of the window computed directly", () => {
  const h = windowHash(5, 7);
  const t = Uint32Array.from({ length: 40 }, (_, i) => (i * 7919) % 50000);
  const table = buildWindowTable(t.slice(20, 25), 5, 5, { seed: 7 });
  assert.equal(scanTokens(table, t), 1);
  const s = table.slot[0];
  assert.deepEqual(hashWindow(h, t, 20), [table.keys[4 * s], table.keys[4 * s + 1]]);
});

Deno.test("nano data: window and context counts over every position of every row equal brute force", async () => {
  const { rowLength, tokens } = await nanoRows();
  const segments = rowsOf(tokens, rowLength);
  const w = NANO_K + NANO_L;
  const windows = scoredWindows(tokens, rowLength, w);
  const full = countWindows(windows, w, w, () => segments);
  const context = countWindows(windows, w, NANO_K, () => segments);
  assert.deepEqual(full, bruteForce(windows, w, w, segments));
  assert.deepEqual(context, bruteForce(windows, w, NANO_K, segments));
  // real values: every row's own window counts once; some contexts repeat far more
  assert.equal(Math.min(...full), 1);
  assert.equal(full.reduce((a, v) => a + v, 0), 3698);
  assert.ok(Math.max(...context) > Math.max(...full));
});

Deno.test("nano data: counts over the unshuffled stream equal the generator's duplicates.npy", async () => {
  const { rows, rowLength, tokens } = await nanoRows();
  const { duplicates, rowSource } = await nanoRecords();
  // row i is stream tokens [64 c, 64 c + 65) for c = row_source[i]: rebuild the stream
  const stride = rowLength - 1;
  const stream = new Uint16Array(rows * stride + 1);
  for (let i = 0; i < rows; i++) {
    stream.set(tokens.subarray(i * rowLength, (i + 1) * rowLength), rowSource[i] * stride);
  }
  const w = NANO_K + NANO_L;
  const windows = scoredWindows(tokens, rowLength, w);
  const counts = countWindows(windows, w, w, () => [stream]);
  assert.deepEqual(counts, duplicates);
  assert.equal(counts.filter((c) => c >= 10).length, 601); // the generator's README
  assert.equal(counts.filter((c) => c === 1).length, 1468);
});

/** A stream of random tokens with planted copies of some windows. */
function plantedStream(length: number, seed: number) {
  const rnd = xoshiro128(seed);
  const stream = Uint16Array.from({ length }, () => rnd() % 50000);
  const planted: { at: number; copies: number }[] = [];
  for (let j = 0; j < 20; j++) {
    const at = (rnd() % (length / 2)) & ~63;
    const copies = 1 + (rnd() % 6);
    for (let c = 0; c < copies; c++) {
      const to = length / 2 + (rnd() % (length / 2 - 64));
      stream.copyWithin(to, at, at + 64);
    }
    planted.push({ at, copies });
  }
  return { stream, planted };
}

Deno.test("planted duplicates: exact counts, in partitions and shards, equal brute force", () => {
  const { stream } = plantedStream(40000, 3);
  // queries: windows at every 64th position of the first half, 64 tokens, context 32
  const n = 300;
  const windows = new Uint16Array(n * 64);
  for (let q = 0; q < n; q++) windows.set(stream.subarray(q * 64, q * 64 + 64), q * 64);
  const shards = [stream.subarray(0, 15000), stream.subarray(15000, 28000), stream.subarray(28000)];
  for (const width of [64, 32]) {
    const expected = bruteForce(windows, 64, width, shards);
    assert.ok(expected.some((c) => c >= 3), "some planted window occurs at least three times");
    assert.deepEqual(countWindows(windows, 64, width, () => shards), expected);
    assert.deepEqual(countWindows(windows, 64, width, () => shards, { passes: 4 }), expected);
    assert.deepEqual(countWindows(windows, 64, width, () => shards, { verify: false }), expected);
    // one counts array per shard, summed
    const table = buildWindowTable(windows, 64, width);
    const total = table.newCounts();
    for (const s of shards) {
      const c = table.newCounts();
      scanTokens(table, s, 0, s.length, c);
      addCounts(total, c);
    }
    assert.deepEqual(queryCounts(table, total), expected);
    assert.equal(table.rejected, 0);
  }
  // both widths in one scan with shared token maps
  const tw = buildWindowTable(windows, 64, 64), tc = buildWindowTable(windows, 64, 32);
  for (const s of shards) scanAll([tw, tc], s);
  assert.deepEqual(queryCounts(tw), bruteForce(windows, 64, 64, shards));
  assert.deepEqual(queryCounts(tc), bruteForce(windows, 64, 32, shards));
});

Deno.test("a table filled in pieces (the features step's chunks) counts as one built whole", () => {
  const { stream } = plantedStream(40000, 3);
  const n = 300;
  const windows = new Uint16Array(n * 64);
  for (let q = 0; q < n; q++) windows.set(stream.subarray(q * 64, q * 64 + 64), q * 64);
  // a copied window: two queries share a slot
  windows.copyWithin(64 * 7, 64 * 3, 64 * 4);
  for (const width of [64, 32]) {
    const whole = buildWindowTable(windows, 64, width, { verify: false });
    const pieces = emptyWindowTable(width, n);
    for (const [a, b] of [[0, 1], [1, 128], [128, 300]]) {
      addWindows(pieces, windows.subarray(a * 64, b * 64), 64, a);
    }
    assert.deepEqual(pieces.slot, whole.slot);
    assert.equal(pieces.distinct, n - 1);
    assert.equal(pieces.slot[7], pieces.slot[3]);
    scanTokens(pieces, stream);
    assert.deepEqual(queryCounts(pieces), bruteForce(windows, 64, width, [stream]));
    assert.equal(pieces.tokens, null);
  }
  assert.throws(() => addWindows(emptyWindowTable(64, 2), windows.subarray(0, 3 * 64), 64, 0));
});

Deno.test("a shared table filled from kept hash lanes, scanned over its view into shared counts, counts as one built from windows", () => {
  const { stream } = plantedStream(40000, 5);
  const n = 300;
  const windows = stream.slice(0, n * 64);
  windows.copyWithin(64 * 9, 64 * 2, 64 * 3);
  for (const width of [64, 32]) {
    const direct = emptyWindowTable(width, n);
    addWindows(direct, windows, 64, 0);
    const shared = emptyWindowTable(width, n, { shared: true });
    assert.ok(shared.keys.buffer instanceof SharedArrayBuffer);
    for (const [a, b] of [[0, 100], [100, 300]]) {
      const { lo, hi } = hashLanes(shared.hash, windows.subarray(a * 64, b * 64), 64);
      addHashes(shared, lo, hi, a);
    }
    assert.deepEqual(Array.from(shared.slot), Array.from(direct.slot));
    const counts = sharedArray(Uint32Array, shared.mask + 1, true);
    // two "threads": the two halves of the stream, atomically into one array
    const view = tableFromView(tableView(shared));
    for (const half of [stream.subarray(0, 20000), stream.subarray(20000)]) {
      scanAll([view], half, 0, half.length, [counts]);
    }
    const want = bruteForce(windows, 64, width, [
      stream.subarray(0, 20000),
      stream.subarray(20000),
    ]);
    assert.deepEqual(queryCounts(shared, counts), want);
  }
});

Deno.test("a partition holds only its share of the queries, and the passes cover them all", () => {
  const { stream } = plantedStream(20000, 9);
  const windows = stream.slice(0, 64 * 200);
  let covered = 0;
  for (let p = 0; p < 8; p++) {
    const t = buildWindowTable(windows, 64, 64, { partition: { index: p, of: 8 } });
    const mine = t.slot.filter((s) => s >= 0).length;
    assert.ok(mine > 5 && mine < 50, `partition ${p} holds ${mine} of 200`);
    covered += mine;
  }
  assert.equal(covered, 200);
  assert.throws(
    () => buildWindowTable(windows, 64, 64, { partition: { index: 0, of: 3 } }),
    /power of two/,
  );
});

Deno.test("verification rejects a hash match whose tokens differ", () => {
  const windows = Uint16Array.of(9, 9, 9, 9);
  const table = buildWindowTable(windows, 4, 4);
  // a collision: the key is the hash of 9 9 9 9, the kept tokens now say 1 2 3 4
  windows.set([1, 2, 3, 4]);
  assert.equal(scanTokens(table, Uint16Array.of(9, 9, 9, 9)), 0);
  assert.equal(table.rejected, 1);
});
