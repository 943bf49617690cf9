/**
 * The embedded nano suite (experiments/nano.yaml, experiments/nano/): every checkpoint
 * loads in onnxruntime-node with the Optimum with-past interface, its parameter count
 * is the sum of its float16 initializers, its logits match the generator's PyTorch
 * model (with and without the KV cache), and the data file decodes to the corpus.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { loadExperiment } from "../engine/config/config.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { loadDuplicates } from "../engine/data/datasets.ts";
import { DataType, parseModel } from "../engine/model/onnx_proto.ts";
import { loadTokenizer } from "../engine/data/tokenizer.ts";
import { loadModel } from "../engine/model/model.ts";
import { scoreBatch } from "../engine/run/scoring.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const YAML = join(ROOT, "experiments", "nano.yaml");
const NANO = join(ROOT, "experiments", "nano");

interface Fixture {
  input_ids: number[][];
  logits_first8: number[][][];
  argmax: number[][];
  logsumexp: number[][];
  past_split: number;
}

function ioNames(layers: number): { inputs: string[]; outputs: string[] } {
  const inputs = ["input_ids", "attention_mask", "position_ids"];
  const outputs = ["logits"];
  for (let i = 0; i < layers; i++) {
    inputs.push(`past_key_values.${i}.key`, `past_key_values.${i}.value`);
    outputs.push(`present.${i}.key`, `present.${i}.value`);
  }
  return { inputs, outputs };
}

function int64(rows: number[][]): ort.Tensor {
  const flat = BigInt64Array.from(rows.flat(), (v) => BigInt(v));
  return new ort.Tensor("int64", flat, [rows.length, rows[0].length]);
}

async function run(
  session: ort.InferenceSession,
  config: { num_hidden_layers: number; num_attention_heads: number; hidden_size: number },
  ids: number[][],
  start: number,
  past: ort.Tensor[] | null,
): Promise<{ logits: ort.Tensor; present: ort.Tensor[] }> {
  const batch = ids.length;
  const seq = ids[0].length;
  const heads = config.num_attention_heads;
  const headDim = config.hidden_size / heads;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(ids),
    attention_mask: int64(ids.map(() => Array(start + seq).fill(1))),
    position_ids: int64(ids.map(() => Array.from({ length: seq }, (_, j) => start + j))),
  };
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const [k, kind] of ["key", "value"].entries()) {
      feeds[`past_key_values.${i}.${kind}`] = past?.[2 * i + k] ??
        new ort.Tensor("float32", new Float32Array(0), [batch, heads, 0, headDim]);
    }
  }
  const out = await session.run(feeds);
  const present = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    present.push(out[`present.${i}.key`], out[`present.${i}.value`]);
  }
  return { logits: out.logits, present };
}

Deno.test("nano.yaml describes five sizes spanning at least 30x, seven checkpoints each", async () => {
  const exp = await loadExperiment(YAML);
  assert.equal(exp.suite.models.length, 5);
  const params = exp.suite.models.map((m) => m.parameters);
  assert.ok(Math.max(...params) / Math.min(...params) >= 30, `span ${params}`);
  for (const m of exp.suite.models) {
    assert.deepEqual(m.checkpoints.map((c) => c.step), [23, 43, 63, 83, 103, 123, 143]);
  }
  assert.equal(exp.suite.endOfTextId, 0);
  assert.equal(exp.data.format, "megatron");
});

Deno.test("every checkpoint has the Optimum with-past interface and the declared parameter count", async () => {
  const exp = await loadExperiment(YAML);
  for (const m of exp.suite.models) {
    const dir = dirname(m.checkpoints[0].path);
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    assert.equal(config.model_type, "gpt_neox");
    assert.equal(config.vocab_size, m.vocabSize);
    const { inputs, outputs } = ioNames(config.num_hidden_layers);
    for (const c of m.checkpoints) {
      const bytes = await readFile(c.path);
      const model = parseModel(bytes);
      assert.deepEqual(model.graph.inputs.map((v) => v.name), inputs, c.path);
      assert.deepEqual(model.graph.outputs.map((v) => v.name), outputs, c.path);
      let half = 0;
      let other = 0;
      for (const t of model.graph.initializers) {
        const n = t.dims.reduce((a, b) => a * b, 1);
        if (t.dataType === DataType.FLOAT16) half += n;
        else other += n;
      }
      assert.equal(half, m.parameters, `${c.path}: float16 initializer elements`);
      assert.equal(other, 0, `${c.path}: initializers that are not parameters`);
      const session = await ort.InferenceSession.create(bytes);
      assert.deepEqual([...session.inputNames], inputs);
      assert.deepEqual([...session.outputNames], outputs);
      await session.release();
    }
  }
});

Deno.test("last checkpoints reproduce the PyTorch logits, with and without the KV cache", async () => {
  const exp = await loadExperiment(YAML);
  for (const m of exp.suite.models) {
    const last = m.checkpoints.at(-1)!;
    const dir = dirname(last.path);
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    const fx: Fixture = JSON.parse(await readFile(join(dir, "check.json"), "utf8"));
    const vocab = config.vocab_size;
    const session = await ort.InferenceSession.create(last.path);
    const seq = fx.input_ids[0].length;
    const full = await run(session, config, fx.input_ids, 0, null);
    assert.deepEqual(full.logits.dims, [fx.input_ids.length, seq, vocab]);
    const split = fx.past_split;
    const a = await run(session, config, fx.input_ids.map((r) => r.slice(0, split)), 0, null);
    assert.deepEqual(a.present[0].dims.slice(2), [
      split,
      config.hidden_size / config.num_attention_heads,
    ]);
    const b = await run(session, config, fx.input_ids.map((r) => r.slice(split)), split, a.present);
    assert.deepEqual(b.present[0].dims[2], seq);
    const full32 = full.logits.data as Float32Array;
    const a32 = a.logits.data as Float32Array;
    const b32 = b.logits.data as Float32Array;
    for (let r = 0; r < fx.input_ids.length; r++) {
      for (let p = 0; p < seq; p++) {
        const at = (r * seq + p) * vocab;
        const row = full32.subarray(at, at + vocab);
        for (let v = 0; v < 8; v++) {
          assert.ok(
            Math.abs(row[v] - fx.logits_first8[r][p][v]) < 1e-3,
            `${last.path} [${r},${p},${v}]`,
          );
        }
        let arg = 0;
        for (let v = 1; v < vocab; v++) if (row[v] > row[arg]) arg = v;
        assert.equal(arg, fx.argmax[r][p]);
        const cached = p < split
          ? a32.subarray((r * split + p) * vocab, (r * split + p + 1) * vocab)
          : b32.subarray(
            (r * (seq - split) + p - split) * vocab,
            (r * (seq - split) + p - split + 1) * vocab,
          );
        for (let v = 0; v < vocab; v++) assert.ok(Math.abs(cached[v] - row[v]) < 1e-4);
      }
    }
    await session.release();
  }
});

async function gunzipLines(path: string): Promise<string[]> {
  const text = new TextDecoder().decode(gunzipSync(await readFile(path)));
  return text.split("\n").filter((l) => l.length > 0);
}

Deno.test("the data file decodes to the corpus through tokenizer.json, and encoding round-trips", async () => {
  const exp = await loadExperiment(YAML);
  const tok = await loadTokenizer(exp.suite.tokenizer!);
  assert.equal(tok.vocabSize, exp.suite.models[0].vocabSize);
  const reader = await openTokenReader(exp.data);
  const n = reader.rows;
  const L = reader.rowLength;
  assert.equal(n, 143 * exp.suite.sequencesPerStep);
  assert.equal(L, exp.suite.tokensPerSequence + 1);
  const all = await reader.readWindow(Uint32Array.from({ length: n }, (_, i) => i), 0, L);
  await reader.close();
  // row i is chunk rowSource[i] of the stream; chunks overlap by one token (GPT-NeoX packing)
  const rowSource = await loadDuplicates(join(NANO, "data", "row_source.npy"));
  const stride = L - 1;
  const stream = new Int32Array(n * stride + 1);
  assert.deepEqual([...rowSource].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  for (let i = 0; i < n; i++) stream.set(all.subarray(i * L, (i + 1) * L), rowSource[i] * stride);
  for (let i = 0; i < n; i++) {
    const c = rowSource[i];
    assert.equal(stream[c * stride + stride], all[i * L + stride], "overlapping token differs");
  }
  const docs = new Map<number, string>();
  for (const line of await gunzipLines(join(NANO, "corpus", "documents.jsonl.gz"))) {
    const d = JSON.parse(line);
    docs.set(d.id, d.text);
  }
  const order = await loadDuplicates(join(NANO, "corpus", "stream_docs.npy"));
  const expected = new TextEncoder().encode(
    Array.from(order, (id) => docs.get(id)! + "<|endoftext|>").join(""),
  );
  const decoded = tok.decodeBytes(stream);
  assert.ok(decoded.length <= expected.length);
  assert.deepEqual(decoded, expected.subarray(0, decoded.length));
  assert.ok(tok.decode(stream.subarray(0, 400)).length > 100);
  // the encoder reproduces the generator's ids for the first documents of the stream
  let at = 0;
  for (const id of Array.from(order).slice(0, 20)) {
    const ids = tok.encode(docs.get(id)! + "<|endoftext|>");
    assert.deepEqual(Array.from(stream.subarray(at, at + ids.length)), ids);
    at += ids.length;
  }
});

Deno.test("duplicates metadata has one count per row and the generator found memorization in every size", async () => {
  const exp = await loadExperiment(YAML);
  const dups = await loadDuplicates(exp.data.duplicates!);
  assert.equal(dups.length, 143 * exp.suite.sequencesPerStep);
  assert.ok(dups.every((d) => d >= 1));
  assert.ok(dups.some((d) => d > 10));
  const ref = JSON.parse(await readFile(join(NANO, "reference.json"), "utf8"));
  for (const m of exp.suite.models) {
    const last = ref.models[m.name]["143"];
    assert.equal(last.rows_seen, dups.length);
    if (last.method.startsWith("not measured")) continue; // a --quick build
    assert.ok(last.memorized > 0, `${m.name}: no memorized rows`);
  }
});

Deno.test("the engine's scoring finds exactly the generator's memorized rows at every last checkpoint", async () => {
  const exp = await loadExperiment(YAML);
  const ref = JSON.parse(await readFile(join(NANO, "reference.json"), "utf8"));
  const { context, continuation, offset } = exp.memorization;
  const reader = await openTokenReader(exp.data);
  const rows = Uint32Array.from({ length: reader.rows }, (_, i) => i);
  const tokens = await reader.readWindow(rows, offset, context + continuation);
  await reader.close();
  const width = context + continuation;
  for (const m of exp.suite.models) {
    const last = m.checkpoints.at(-1)!;
    const expected: number[] = ref.models[m.name][String(last.step)].memorized_rows;
    const model = await loadModel(last.path, { device: "cpu", threads: 1, vocabSize: m.vocabSize });
    const found: number[] = [];
    for (let b = 0; b < rows.length; b += 256) {
      const n = Math.min(256, rows.length - b);
      const s = await scoreBatch(
        model,
        tokens.subarray(b * width, (b + n) * width),
        n,
        exp.memorization,
      );
      for (let i = 0; i < n; i++) if (s.prefix[i] === continuation) found.push(b + i);
    }
    await model.release();
    assert.deepEqual(found, expected, `${m.name} step ${last.step}`);
  }
});
