/**
 * `deno task experiment` end to end on an experiment whose checkpoints are the
 * Hugging Face model folders of tests/fixtures/hf/ (every architecture: GPT-NeoX,
 * Llama, OLMo 2, GPT-2; no ONNX file anywhere):
 * scored, reported, the example rows decoded by the target folder's
 * tokenizer.json.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Summary } from "../reports/analysis/summary.ts";
import { cli } from "./cli.ts";

const FIXTURES = join(import.meta.dirname!, "fixtures", "hf");
const NANO_TOKENIZER = join(import.meta.dirname!, "..", "experiments", "nano", "tokenizer.json");

Deno.test("deno task experiment scores Hugging Face model folders and reports, examples decoded by the folder's tokenizer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hf_experiment_test" });
  try {
    // The target's folder, with a tokenizer.json beside its weights.
    const target = join(dir, "neox-bin-f16");
    await Deno.mkdir(target);
    for (const e of Deno.readDirSync(join(FIXTURES, "neox-bin-f16"))) {
      await Deno.copyFile(join(FIXTURES, "neox-bin-f16", e.name), join(target, e.name));
    }
    await Deno.copyFile(NANO_TOKENIZER, join(target, "tokenizer.json"));
    // The reference rows (k 8, l 8), twice: 18 rows of 16 uint16 tokens.
    const ref = JSON.parse(await Deno.readTextFile(join(target, "reference.json")));
    const rows: number[][] = ref.rows.map((r: { tokens: number[] }) => r.tokens);
    const tokens = Uint16Array.from([...rows, ...rows].flat());
    await Deno.writeFile(join(dir, "rows.bin"), new Uint8Array(tokens.buffer));
    const folder = (name: string) => JSON.stringify(join(FIXTURES, name));
    const yaml = `name: hf
suite:
  sequences_per_step: ${rows.length}
  tokens_per_sequence: 16
  models:
    - name: neox-f32
      parameters: 30000
      checkpoints: {1: ${folder("neox-f32-safetensors")}, 2: ${folder("neox-f32-safetensors")}}
    - name: neox-sharded
      parameters: 20000
      checkpoints: {1: ${folder("neox-f16-sharded")}, 2: ${folder("neox-f16-sharded")}}
    - name: llama
      parameters: 10000
      checkpoints: {1: ${folder("llama-bf16")}, 2: ${folder("llama-bf16")}}
    - name: olmo2
      parameters: 12000
      checkpoints: {1: ${folder("olmo2-f32-safetensors")}, 2: ${folder("olmo2-f32-safetensors")}}
    - name: gpt2
      parameters: 14000
      checkpoints: {1: ${folder("gpt2-f32-safetensors")}, 2: ${folder("gpt2-f16-bin")}}
    - name: neox-bin
      parameters: 40000
      checkpoints: {1: ${JSON.stringify(target)}, 2: ${JSON.stringify(target)}}
data: {format: raw, path: rows.bin, row_length: 16, dtype: uint16}
memorization: {offset: 0, context: 8, continuation: 8, mode: extractable, suppressed_tokens: [0]}
devices: [{device: cpu, workers: 1, threads: 1}]
batch_size: 8
shard_size: 9
output: out
`;
    const file = join(dir, "hf.yaml");
    await Deno.writeTextFile(file, yaml);
    const r = await cli("experiment", file);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, "out", "report.html")), r.stdout);
    const summary = JSON.parse(
      await Deno.readTextFile(join(dir, "out", "summary.json")),
    ) as Summary;
    assert.equal(summary.target.model, "neox-bin");
    // Every architecture's folders were scored and analysed (GPT-NeoX, Llama, OLMo 2, GPT-2).
    assert.deepEqual(
      [...new Set(summary.predictors.map((p) => p.model))].sort(),
      ["gpt2", "llama", "neox-bin", "neox-f32", "neox-sharded", "olmo2"],
    );
    assert.ok(summary.examples.length > 0, "the target memorized some rows");
    const tokenizer = JSON.parse(await Deno.readTextFile(NANO_TOKENIZER));
    const byId = new Map(Object.entries(tokenizer.model.vocab).map(([k, v]) => [v, k]));
    for (const x of summary.examples) {
      assert.equal(typeof x.context, "string", `row ${x.row} decoded`);
      assert.equal(typeof x.continuation, "string");
      // The first token's text (byte-level: ASCII letters map to themselves) opens the context.
      const first = byId.get(x.tokens[0]) as string;
      if (/^[A-Za-z]+$/.test(first)) assert.ok(x.context!.startsWith(first));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
