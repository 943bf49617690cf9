import assert from "node:assert/strict";
import { neoxParams, PYTHIA, writeNeox } from "../bench/neox.ts";
import { writeMegatron } from "../bench/megatron.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadModel } from "../engine/model/model.ts";
import { type BatchScores, scoreBatch } from "../engine/run/scoring.ts";
import type { MemorizationSettings } from "../engine/types.ts";
import { referenceScores, TIE } from "./reference.ts";
import { tempDir } from "./tiny_lm.ts";

const K = 32, L = 32, W = K + L;
const settings = (mode: MemorizationSettings["mode"]): MemorizationSettings => ({
  offset: 0,
  context: K,
  continuation: L,
  mode,
  suppressedTokens: [0],
});

/** Scores rows with the engine in both modes (batch 2 then the rest, so two batch shapes run). */
async function engine(path: string, tokens: Int32Array, rows: number) {
  const model = await loadModel(path, { device: "cpu", threads: 2 });
  const out: Record<string, BatchScores> = {};
  try {
    for (const mode of ["extractable", "full"] as const) {
      const a = await scoreBatch(model, tokens.subarray(0, 2 * W), 2, settings(mode));
      const b = await scoreBatch(model, tokens.subarray(2 * W), rows - 2, settings(mode));
      const cat = <T extends Uint8Array | Float32Array>(x: T, y: T) => [...x, ...y];
      out[mode] = {
        matches: Uint8Array.from(cat(a.matches, b.matches)),
        prefix: Uint8Array.from(cat(a.prefix, b.prefix)),
        nll: Float32Array.from(cat(a.nll, b.nll)),
      };
    }
  } finally {
    await model.release();
  }
  return out;
}

Deno.test("engine = reference on a random-init Pythia-70M-shape GPT-NeoX (fp32, fp16; inline, external data)", async () => {
  await using tmp = await tempDir();
  const data = writeMegatron(`${tmp.path}/data`, { rows: 4, vocab: PYTHIA["70m"].vocab, seed: 3 });
  const reader = await openTokenReader({ format: "megatron", path: data });
  const random = await reader.readWindow(Uint32Array.of(0, 1), 0, W);
  await reader.close();
  for (const dtype of ["float32", "float16"] as const) {
    const files = [];
    for (const external of [false, true]) {
      const dir = `${tmp.path}/${dtype}-${external ? "external" : "inline"}`;
      files.push(await writeNeox(dir, { shape: PYTHIA["70m"], dtype, external, seed: 5 }));
    }
    assert.equal(files[0].params, 70_426_624);
    // Reference (no cache, full logits, free-running) on two random rows.
    const ref = await referenceScores(files[0].path, random, 2, K, L, [0], 2);
    for (const r of ref) {
      assert.ok(Math.min(...r.margins) > TIE, `${dtype}: a floating-point tie in the reference`);
    }
    // Rows: 0, 1 random; 2 = row 0's context + its greedy output (memorized); 3 = the same
    // with continuation token 7 changed (free-running matches 31, prefix 7); 4 = row 1's own.
    const tokens = new Int32Array(5 * W);
    tokens.set(random);
    const plant = (row: number, from: number, change?: number) => {
      tokens.set(random.subarray(from * W, from * W + K), row * W);
      tokens.set(ref[from].generated, row * W + K);
      if (change !== undefined) {
        tokens[row * W + K + change] = 1 + (tokens[row * W + K + change] % 50000);
      }
    };
    plant(2, 0);
    plant(3, 0, 7);
    plant(4, 1);
    const expected = {
      matches: [ref[0].matches, ref[1].matches, L, L - 1, L],
      prefix: [ref[0].prefix, ref[1].prefix, L, 7, L],
    };
    const [inline, external] = [
      await engine(files[0].path, tokens, 5),
      await engine(files[1].path, tokens, 5),
    ];
    // External data and inline weights are the same model: identical scores.
    assert.deepEqual(external, inline);
    const full = inline.full, ext = inline.extractable;
    assert.deepEqual([...full.matches], expected.matches, `${dtype}: full-mode matches`);
    assert.deepEqual([...full.prefix], expected.prefix, `${dtype}: prefixes`);
    assert.deepEqual([...ext.prefix], expected.prefix, `${dtype}: extractable prefixes`);
    assert.deepEqual([...ext.matches].slice(0, 2), ref.map((r) => r.tfMatches));
    const memorized = (s: BatchScores) => [...s.prefix].flatMap((p, i) => (p === L ? [i] : []));
    assert.deepEqual(memorized(ext), [2, 4]);
    assert.deepEqual(memorized(full), [2, 4]);
    const tol = dtype === "float16" ? 2e-2 : 2e-3;
    ref.forEach((r, i) =>
      assert.ok(Math.abs(ext.nll[i] - r.nll) < tol, `nll ${ext.nll[i]} ${r.nll}`)
    );
    console.log(`${dtype}: reference matches ${ref.map((r) => r.matches)}, nll ${[...ext.nll]}`);
  }
});

Deno.test("the generator's shapes have Pythia's parameter counts", () => {
  const counts = Object.fromEntries(Object.entries(PYTHIA).map(([k, s]) => [k, neoxParams(s)]));
  assert.deepEqual(counts, {
    "70m": 70_426_624,
    "160m": 162_322_944,
    "410m": 405_334_016,
    "1b": 1_011_781_632,
    "1.4b": 1_414_647_808,
    "2.8b": 2_775_208_960,
    "6.9b": 6_857_302_016,
    "12b": 11_846_072_320,
  });
});
