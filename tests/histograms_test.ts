import assert from "node:assert/strict";
import {
  binOf,
  codeTable,
  foldOf,
  type Signal,
  signalHistograms,
  signalRowsMany,
} from "../reports/analysis/histograms.ts";
import type { ScoreChunk, ScoreSource } from "../engine/store/scored_checkpoint.ts";
import { ListCursor, RangesCursor, rangesOf } from "../engine/rowset.ts";
import { splitmix32 } from "../engine/random.ts";

const L = 32;

/** Three chunks of rows with gaps (some above 2^31), NaN and ±Infinity among the NLLs. */
function chunks(): ScoreChunk[] {
  const next = splitmix32(7);
  const starts = [5, 40_000, 2 ** 31 + 11];
  return starts.map((start) => {
    const rows: number[] = [];
    for (let r = start; rows.length < 3000; r += 1 + (next() % 3 === 0 ? 1 : 0)) rows.push(r);
    const n = rows.length;
    const matches = Uint8Array.from({ length: n }, () => next() % (L + 1));
    const prefix = Uint8Array.from(matches, (m) => Math.min(m, next() % (L + 1)));
    const specials = [NaN, Infinity, -Infinity, -0.5, 12.5, 9.995];
    const nll = Float32Array.from(
      { length: n },
      (_, i) => (i % 97 === 0 ? specials[(i / 97) % specials.length] : (next() % 1200) / 100),
    );
    return { rows: Uint32Array.from(rows), matches, prefix, nll };
  });
}

/** A source that reuses one buffer, as the store's do: a chunk is valid until the next call. */
function reusingSource(cs: ScoreChunk[]): ScoreSource {
  const max = Math.max(...cs.map((c) => c.rows.length));
  const rows = new Uint32Array(max), matches = new Uint8Array(max), prefix = new Uint8Array(max);
  const nll = new Float32Array(max);
  return {
    prefix: true,
    nll: true,
    chunks: cs.length,
    chunk(k) {
      const c = cs[k], n = c.rows.length;
      rows.set(c.rows), matches.set(c.matches), prefix.set(c.prefix!), nll.set(c.nll!);
      rows.fill(0, n), matches.fill(255, n), nll.fill(NaN, n);
      return {
        rows: rows.subarray(0, n),
        matches: matches.subarray(0, n),
        prefix: prefix.subarray(0, n),
        nll: nll.subarray(0, n),
      };
    },
  };
}

Deno.test("signalHistograms counts every row as binOf and foldOf say (folds, include, NaN, rows ≥ 2^31; the target's code table and without one)", () => {
  const cs = chunks();
  const all = cs.flatMap((c) => [...c.rows]);
  const memorized = Uint32Array.from(all.filter((r) => r % 5 === 1));
  // Rows up to 2^31 + 4000: too many for a code table (each row hashed as it comes);
  // up to 50,000: codes looked up in the table (rows above it were not scored by the target).
  const targets = [
    { scored: rangesOf([[0, 30_000], [41_000, 2 ** 31 + 4000]]), memorized },
    {
      scored: rangesOf([[0, 30_000], [41_000, 50_000]]),
      memorized: memorized.filter((r) => r < 50_000),
    },
  ];
  assert.equal(codeTable(targets[0], 5, 3), null);
  assert.equal(codeTable(targets[1], 5, 3)?.length, 50_000);
  for (const target of targets) {
    for (const folds of [1, 5, 7]) {
      for (const seed of [0, 3, 2 ** 40 + 3]) {
        for (const include of [undefined, (r: number) => r % 3 !== 0]) {
          const hs = signalHistograms(reusingSource(cs), L, target, { folds, seed, include });
          const seen = new RangesCursor(target.scored), mem = new ListCursor(target.memorized);
          const expected = hs.map((h) => ({
            pos: new Float64Array(h.bins),
            foldNeg: new Float64Array(h.bins * folds),
          }));
          let maxNll = 0;
          for (const c of cs) {
            for (let i = 0; i < c.rows.length; i++) {
              const r = c.rows[i];
              if (!seen.has(r) || (include && !include(r))) continue;
              const positive = mem.has(r), f = folds > 1 ? foldOf(r, seed, folds) : 0;
              hs.forEach((h, s) => {
                const b = binOf(h.signal, c, i, L);
                if (positive) expected[s].pos[b]++;
                else expected[s].foldNeg[f * h.bins + b]++;
              });
              if (Number.isFinite(c.nll![i])) maxNll = Math.max(maxNll, c.nll![i]);
            }
          }
          const where = `target up to ${
            target.scored.bounds.at(-1)
          }, folds ${folds}, seed ${seed}, include ${!!include}`;
          assert.deepEqual(hs.map((h) => h.signal), ["score", "prefix", "nll"]);
          hs.forEach((h, s) => {
            assert.deepEqual(h.pos, expected[s].pos, `${h.signal} pos, ${where}`);
            assert.deepEqual(h.foldNeg, expected[s].foldNeg, `${h.signal} foldNeg, ${where}`);
          });
          assert.equal(hs[2].thresholds.at(-1), Math.max(maxNll, 10), where);
        }
      }
    }
  }
});

Deno.test("signalRowsMany: a maxBin selection equals its keep function; chunks may reuse memory", () => {
  const cs = chunks();
  const wants: [Signal, number][] = [
    ["score", 4],
    ["prefix", 0],
    ["score", 40],
    ["nll", 150],
    ["nll", 999],
  ];
  const byMax = signalRowsMany(
    reusingSource(cs),
    L,
    wants.map(([signal, maxBin]) => ({ signal, maxBin })),
  );
  const byKeep = signalRowsMany(
    reusingSource(cs),
    L,
    wants.map(([signal, maxBin]) => ({ signal, keep: (b: number) => b <= maxBin })),
  );
  assert.deepEqual(byMax, byKeep);
  wants.forEach(([signal, maxBin], w) => {
    const rows = cs.flatMap((c) => [...c.rows].filter((_, i) => binOf(signal, c, i, L) <= maxBin));
    assert.deepEqual([...byMax[w]], rows, `${signal} ≤ ${maxBin}`);
  });
});
