import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadDuplicates, openTokenReader } from "../engine/data/datasets.ts";
import { loadModel } from "../engine/model/model.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import type { MemorizationSettings } from "../engine/types.ts";
import { type ReferenceRow, referenceScores, TIE } from "./reference.ts";
import { rng, tempDir, type TinyOptions, writeTinyLM } from "./tiny_lm.ts";

const BATCHES = [1, 7, 64];
const MODES = ["extractable", "full"] as const;

/** Rows whose reference generation had a top-2 margin below {@link TIE} (a genuine float tie). */
function tieRows(ref: ReferenceRow[]): Set<number> {
  const ties = new Set<number>();
  ref.forEach((r, i) => {
    if ([...r.margins, ...r.tfMargins].some((m) => m < TIE)) ties.add(i);
  });
  return ties;
}

/** Scores `rows` with the engine at each batch size and mode; asserts agreement with the reference. */
async function agree(
  path: string,
  tokens: Int32Array,
  rows: number,
  settings: Omit<MemorizationSettings, "mode">,
): Promise<{ memorized: number; ties: number[]; full: number[] }> {
  const { context: k, continuation: l } = settings;
  const ref = await referenceScores(path, tokens, rows, k, l, settings.suppressedTokens);
  const ties = tieRows(ref);
  if (ties.size) {
    console.log(`${path}: floating-point ties (top-2 margin < ${TIE}) in rows ${[...ties]}`);
  }
  const model = await loadModel(path, { device: "cpu", threads: 1 });
  try {
    for (const mode of MODES) {
      for (const batch of BATCHES) {
        for (let start = 0; start < rows; start += batch) {
          const n = Math.min(batch, rows - start);
          const w = k + l;
          const got = await scoreBatch(model, tokens.subarray(start * w, (start + n) * w), n, {
            ...settings,
            mode,
          });
          for (let i = 0; i < n; i++) {
            const r = ref[start + i];
            const where = `${path} row ${start + i} (${mode}, batch ${batch})`;
            if (ties.has(start + i)) continue;
            // full mode reports the (teacher-forced) NLL only where generation is teacher-forced.
            if (mode === "full" && r.prefix < l - 1) assert.ok(Number.isNaN(got.nll[i]), where);
            else {
              assert.ok(
                Math.abs(got.nll[i] - r.nll) < 1e-3,
                `${where}: nll ${got.nll[i]} vs ${r.nll}`,
              );
            }
            assert.equal(got.prefix[i], r.prefix, `${where}: prefix`);
            assert.equal(
              got.matches[i],
              mode === "full" ? r.matches : r.tfMatches,
              `${where}: matches`,
            );
          }
        }
      }
    }
  } finally {
    await model.release();
  }
  return {
    memorized: ref.filter((r) => r.prefix === l).length,
    ties: [...ties],
    full: ref.map((r) => r.matches),
  };
}

/**
 * Rows for a tiny model: a quarter memorized (continuation = its own greedy
 * output), a quarter the greedy output with one token changed (so free-running
 * generation matches l − 1 tokens while teacher forcing does not), half random.
 */
async function tinyRows(path: string, rows: number, k: number, l: number, vocab: number) {
  const r = rng(11);
  const tokens = Int32Array.from(
    { length: rows * (k + l) },
    () => 1 + Math.floor(((r() + 1) / 2) * (vocab - 1)),
  );
  const greedy = await referenceScores(path, tokens, rows, k, l, [0]);
  for (let b = 0; b < rows; b++) {
    if (b % 4 > 1) continue;
    for (let j = 0; j < l; j++) tokens[b * (k + l) + k + j] = greedy[b].generated[j];
    if (b % 4 === 1) {
      const at = b * (k + l) + k + (b % l);
      tokens[at] = tokens[at] === vocab - 1 ? 1 : tokens[at] + 1;
    }
  }
  return tokens;
}

Deno.test("engine = reference on tiny models of every interface (both modes, batch 1, 7, 64)", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const variants: TinyOptions["variant"][] = [
    "with-past",
    "with-past-no-positions",
    "merged",
    "no-cache",
  ];
  const k = 10, l = 12, rows = 64;
  for (const variant of variants) {
    const path = await writeTinyLM(`${dir}/${variant}`, "m.onnx", { variant, seed: 5, vocab: 37 });
    const tokens = await tinyRows(path, rows, k, l, 37);
    const got = await agree(path, tokens, rows, {
      offset: 0,
      context: k,
      continuation: l,
      suppressedTokens: [0],
    });
    // Every other quarter is memorized by construction; perturbed rows match l − 1 when free-running.
    assert.ok(got.memorized >= 16, `${variant}: ${got.memorized} memorized rows`);
    const perturbed = got.full.filter((m, b) => b % 4 === 1 && m === l - 1).length;
    assert.ok(perturbed >= 12, `${variant}: ${perturbed} perturbed rows with l − 1 matches`);
  }
});

Deno.test("suppressed tokens are never generated", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const path = await writeTinyLM(dir, "m.onnx", { variant: "with-past", seed: 9 });
  const k = 6, l = 8, rows = 16;
  const tokens = Int32Array.from({ length: rows * (k + l) }, (_, i) => (i * 5) % 37);
  // Suppress the reference's most frequent greedy token: the engine must then agree with
  // a reference that suppresses it too.
  const plain = await referenceScores(path, tokens, rows, k, l, []);
  const counts = new Map<number, number>();
  for (const r of plain) for (const g of r.generated) counts.set(g, (counts.get(g) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0][0];
  const got = await agree(path, tokens, rows, {
    offset: 0,
    context: k,
    continuation: l,
    suppressedTokens: [top],
  });
  assert.equal(got.ties.length, 0);
});

const NANO = new URL("../experiments/nano/", import.meta.url).pathname;

/** Tokens [0, k + l) of the picked rows of the nano suite's data. */
async function nanoRows(picks: number[], k: number, l: number): Promise<Int32Array> {
  const reader = await openTokenReader({ format: "megatron", path: `${NANO}data/train` });
  try {
    return await reader.readWindow(Uint32Array.from(picks), 0, k + l);
  } finally {
    await reader.close();
  }
}

/** 32 of the most duplicated rows (likely memorized) and 32 evenly spaced ones. */
async function nanoPicks(): Promise<number[]> {
  const counts = await loadDuplicates(`${NANO}data/duplicates.npy`);
  const order = [...counts.keys()].sort((a, b) => counts[b] - counts[a] || a - b);
  const picks = new Set(order.slice(0, 32));
  for (let i = 0; picks.size < 64; i++) picks.add((i * 35 + (i % 7)) % counts.length);
  return [...picks].sort((a, b) => a - b);
}

const nanoModels = existsSync(`${NANO}data/train.bin`) && existsSync(`${NANO}data/duplicates.npy`)
  ? [...Deno.readDirSync(NANO)].filter((e) => /^s\d+$/.test(e.name))
    .map((e) => `${NANO}${e.name}/step143.onnx`).filter((p) => existsSync(p)).sort()
  : [];

Deno.test({
  name:
    "engine = reference on the nano suite's last checkpoints (64 rows, both modes, batch 1, 7, 64)",
  ignore: nanoModels.length === 0,
  fn: async () => {
    const k = 32, l = 32;
    const rows = await nanoPicks();
    const tokens = await nanoRows(rows, k, l);
    for (const path of nanoModels) {
      const got = await agree(path, tokens, rows.length, {
        offset: 0,
        context: k,
        continuation: l,
        suppressedTokens: [0],
      });
      const hist = new Map<number, number>();
      for (const m of got.full) hist.set(m, (hist.get(m) ?? 0) + 1);
      console.log(
        `${path.slice(NANO.length)}: ${got.memorized}/64 memorized, ties in rows [${got.ties}], ` +
          `free-running matches ${JSON.stringify([...hist].sort((a, b) => a[0] - b[0]))}`,
      );
    }
  },
});
