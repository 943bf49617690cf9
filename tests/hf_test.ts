import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../engine/model/model.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import type { MemorizationSettings } from "../engine/types.ts";

const FIXTURES = join(import.meta.dirname!, "fixtures", "hf");
const FOLDERS = ["neox-bin-f16", "neox-f32-safetensors", "neox-f16-sharded", "llama-bf16"];

interface ReferenceFile {
  context: number;
  continuation: number;
  suppressed: number[];
  rows: {
    tokens: number[];
    matches: number;
    prefix: number;
    tf_matches: number;
    nll: number;
  }[];
}

const reference = (dir: string): ReferenceFile =>
  JSON.parse(Deno.readTextFileSync(join(dir, "reference.json")));

for (const name of FOLDERS) {
  Deno.test(`the ${name} folder scores as PyTorch's reference forward, row by row, in both modes`, async () => {
    const dir = join(FIXTURES, name);
    const ref = reference(dir);
    const tokens = Int32Array.from(ref.rows.flatMap((r) => r.tokens));
    const model = await loadModel(dir, { device: "cpu", threads: 1 });
    try {
      for (const mode of ["extractable", "full"] as const) {
        const settings: MemorizationSettings = {
          offset: 0,
          context: ref.context,
          continuation: ref.continuation,
          mode,
          suppressedTokens: ref.suppressed,
        };
        const got = await scoreBatch(model, tokens, ref.rows.length, settings);
        ref.rows.forEach((r, i) => {
          const what = `${name} ${mode} row ${i}`;
          assert.equal(got.prefix[i], r.prefix, `${what}: prefix`);
          assert.equal(
            got.matches[i],
            mode === "full" ? r.matches : r.tf_matches,
            `${what}: matches`,
          );
          if (mode === "extractable" || r.prefix >= ref.continuation - 1) {
            assert.ok(
              Math.abs(got.nll[i] - r.nll) < 1e-3,
              `${what}: nll ${got.nll[i]} vs ${r.nll}`,
            );
          }
        });
      }
      const memorized = ref.rows.filter((r) => r.prefix === ref.continuation).length;
      assert.equal(memorized, 4);
    } finally {
      await model.release();
    }
  });
}
