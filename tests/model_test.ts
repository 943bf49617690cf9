import assert from "node:assert/strict";
import { CPU_HELD_PROMPT_TOKENS, loadModel } from "../engine/model/model.ts";
import { readModelFile } from "../engine/model/model_file.ts";
import { DataType, encodeModel, parseModel } from "../engine/model/onnx_proto.ts";
import { parseDevice } from "../engine/model/providers.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import { buildTinyLM, rng, tempDir, writeTinyLM } from "./tiny_lm.ts";
import { referenceScores } from "./reference.ts";

const cpu = { device: "cpu", threads: 1 };
const settings = {
  offset: 0,
  context: 6,
  continuation: 6,
  mode: "full" as const,
  suppressedTokens: [0],
};

async function rejects(p: Promise<unknown>, ...patterns: RegExp[]) {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, "UserError", e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

Deno.test("onnx_proto round-trips a model's interface, nodes and initializers", () => {
  const { bytes } = buildTinyLM({ variant: "with-past", layers: 3 });
  const m = parseModel(bytes);
  assert.equal(m.opsets[0].version, 17);
  assert.equal(m.graph.inputs.filter((v) => v.name.startsWith("past_key_values")).length, 6);
  const again = parseModel(encodeModel(m));
  assert.deepEqual(again.graph.inputs, m.graph.inputs);
  assert.deepEqual(again.graph.outputs, m.graph.outputs);
  assert.deepEqual(again.graph.nodes, m.graph.nodes);
  assert.deepEqual(
    again.graph.initializers.map((t) => [t.name, t.dims, t.dataType, t.raw?.length]),
    m.graph.initializers.map((t) => [t.name, t.dims, t.dataType, t.raw?.length]),
  );
  const logits = m.graph.outputs.find((v) => v.name === "logits")!;
  assert.deepEqual(logits, {
    name: "logits",
    elemType: DataType.FLOAT,
    dims: ["batch", "seq", 37],
  });
});

Deno.test("the adapter detects each interface and reads the model's shape", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  // How greedy steps run on the CPU: the cache held once in JavaScript where the model takes
  // its positions and mask (engine/model/held_cache.ts), else the Loop (engine/model/loop.ts).
  const cases = [
    ["with-past", "with-past", true, "held"],
    ["with-past-no-positions", "with-past", false, "loop"],
    ["merged", "merged", true, "loop"],
    ["no-cache", "no-cache", false, "none"],
  ] as const;
  for (const [variant, iface, positions, stepMode] of cases) {
    const path = await writeTinyLM(`${dir}/${variant}`, "m.onnx", {
      variant,
      layers: 3,
      heads: 2,
      headDim: 5,
      vocab: 41,
    });
    const m = await loadModel(path, cpu);
    assert.equal(m.interface, iface);
    assert.equal(m.vocabSize, 41);
    assert.equal(m.hasPositionIds, positions);
    assert.equal(m.stepMode, stepMode);
    assert.equal(m.dtype, "float32");
    // 3 layers × (4 d² + 2·4 d²) + d·V, d = 10, times 2
    assert.equal(m.matmulFlopsPerToken, 2 * (3 * 12 * 100 + 10 * 41));
    // The unembedding (10 × 41) is found and runs only on the head's window.
    assert.equal(m.passFlops(9, 2), 2 * (3 * 12 * 100 * 9 + 10 * 41 * 2));
    if (iface !== "no-cache") assert.deepEqual([m.layers, m.heads, m.headDim], [3, 2, 5]);
    await m.release();
  }
});

Deno.test("float16, external data and a biased unembedding score exactly like the reference", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const cases = [{ fp16Logits: true, fp16Cache: true }, { external: true }, { unembedBias: true }];
  for (const o of cases) {
    const path = await writeTinyLM(`${dir}/${Object.keys(o)[0]}`, "model.onnx", {
      variant: "with-past",
      seed: 7,
      ...o,
    });
    const m = await loadModel(path, cpu);
    if ("fp16Logits" in o) assert.equal(m.dtype, "float16");
    // A biased unembedding is not windowed: the head then cuts the logits instead.
    const windowed = !("unembedBias" in o);
    assert.equal(m.passFlops(11, 1) < m.matmulFlopsPerToken * 11, windowed);
    const tokens = Int32Array.from({ length: 16 * 12 }, (_, i) => (i * 7 + 3) % 37);
    const got = await scoreBatch(m, tokens, 16, settings);
    const ref = await referenceScores(path, tokens, 16, 6, 6, [0]);
    assert.ok(ref.some((r) => r.matches > r.prefix), "some rows match after the first mismatch");
    assert.deepEqual(Array.from(got.matches), ref.map((r) => r.matches));
    assert.deepEqual(Array.from(got.prefix), ref.map((r) => r.prefix));
    ref.forEach((r, i) =>
      assert.ok(
        r.prefix < 5 ? Number.isNaN(got.nll[i]) : Math.abs(r.nll - got.nll[i]) < 2e-3,
        `nll ${r.nll} ${got.nll[i]} (prefix ${r.prefix})`,
      )
    );
    await m.release();
  }
});

Deno.test("full mode with the cache held once scores as the greedy Loop, batch after batch", async () => {
  await using tmp = await tempDir();
  const path = await writeTinyLM(tmp.path, "m.onnx", {
    variant: "with-past",
    layers: 3,
    heads: 2,
    headDim: 5,
    vocab: 41,
    seed: 11,
  });
  const held = await loadModel(path, cpu);
  const loop = await loadModel(path, { ...cpu, loop: true });
  assert.deepEqual([held.stepMode, loop.stepMode], ["held", "loop"]);
  const steps = 7, k = 9, n = 1 + steps;
  const random = rng(5);
  const suppress = new Float32Array(41);
  suppress[0] = -Infinity;
  // A large batch, a smaller one (its buffers are a prefix of the first's, refilled), a large one
  // again, and prompts of 100 tokens, two rows per part of the prompt pass (CPU_HELD_PROMPT_TOKENS).
  assert.equal(Math.floor(CPU_HELD_PROMPT_TOKENS / 100), 2);
  for (const [batch, length] of [[40, k], [7, k], [40, k], [3, 100]]) {
    const ids = BigInt64Array.from(
      { length: batch * length },
      () => BigInt(1 + (random() + 1) * 20 | 0),
    );
    const targets = BigInt64Array.from(
      { length: batch * n },
      () => BigInt((random() + 1) * 20 | 0),
    );
    const req = { ids, batch, length, start: length - 1, targets, suppress, steps };
    const [a, b] = [await held.forward(req), await loop.forward(req)];
    assert.deepEqual(a.argmax, b.argmax, `greedy ids, batch ${batch}, ${length} tokens`);
    for (let i = 0; i < a.logprob.length; i++) {
      assert.ok(Math.abs(a.logprob[i] - b.logprob[i]) < 1e-5, `${a.logprob[i]} ${b.logprob[i]}`);
    }
    assert.ok(new Set(a.argmax).size > 3, "the steps generate more than one token");
  }
  await held.release();
  await loop.release();
});

Deno.test("a model that ignores its attention mask over the cache runs with the Loop, scoring exactly", async () => {
  await using tmp = await tempDir();
  const path = await writeTinyLM(tmp.path, "m.onnx", {
    variant: "with-past",
    ignoreMask: true,
    seed: 3,
  });
  const m = await loadModel(path, cpu);
  // Held in JavaScript, the unwritten slots would be attended to: the probe at load sees it.
  assert.equal(m.stepMode, "loop");
  const tokens = Int32Array.from({ length: 16 * 12 }, (_, i) => (i * 5 + 2) % 37);
  const got = await scoreBatch(m, tokens, 16, settings);
  const ref = await referenceScores(path, tokens, 16, 6, 6, [0]);
  assert.deepEqual(Array.from(got.matches), ref.map((r) => r.matches));
  assert.deepEqual(Array.from(got.prefix), ref.map((r) => r.prefix));
  await m.release();
});

Deno.test("bad models fail with a message naming the file and what was expected", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  await rejects(loadModel(`${dir}/absent.onnx`, cpu), /absent\.onnx/, /cannot read/);
  await Deno.writeTextFile(`${dir}/junk.onnx`, "not a model at all");
  await rejects(loadModel(`${dir}/junk.onnx`, cpu), /junk\.onnx/);

  const good = await writeTinyLM(`${dir}/ext`, "m.onnx", { variant: "with-past", external: true });
  await Deno.remove(`${dir}/ext/weights/emb.bin`);
  await rejects(loadModel(good, cpu), /ext\/m\.onnx/, /weights\/emb\.bin is missing/);

  const heads = await writeTinyLM(`${dir}/heads`, "m.onnx", { variant: "with-past" }, {
    num_attention_heads: 4,
  });
  await rejects(loadModel(heads, cpu), /heads\/m\.onnx/, /declares 4 attention heads/, /have 2/);

  const vocab = await writeTinyLM(`${dir}/vocab`, "m.onnx", { variant: "no-cache" });
  await rejects(loadModel(vocab, { ...cpu, vocabSize: 50 }), /vocab_size 50/, /37 entries/);

  // wrong inputs: rename input_ids
  const m = parseModel(buildTinyLM({ variant: "no-cache" }).bytes);
  m.graph.inputs[0].name = "tokens";
  await Deno.writeFile(`${dir}/wrong.onnx`, encodeModel(m));
  await rejects(loadModel(`${dir}/wrong.onnx`, cpu), /wrong\.onnx/, /no input_ids input/, /tokens/);

  const ok = await loadModel(vocab, cpu);
  const tokens = new Int32Array(12).fill(5);
  tokens[7] = 40;
  await rejects(
    scoreBatch(ok, tokens, 1, settings),
    /vocab\/m\.onnx/,
    /token id 40/,
    /vocabulary of 37/,
  );
  await ok.release();
});

Deno.test("device strings: invalid ones and unavailable providers are clear errors", async () => {
  assert.deepEqual(parseDevice("cuda:1").id, 1);
  assert.throws(() => parseDevice("gpu0"), /use cpu, cuda:N or webgpu:N/);
  assert.throws(() => parseDevice("cpu:1"), /not valid/);
  await using tmp = await tempDir();
  const dir = tmp.path;
  const path = await writeTinyLM(dir, "m.onnx", { variant: "no-cache" });
  // No CUDA binaries are installed on CPU-only machines: loading must fail, never fall back.
  const cuda = await loadModel(path, { device: "cuda:0", threads: 1 }).then(
    (m) => m.release().then(() => null),
    (e: Error) => e,
  );
  if (cuda) {
    assert.match(cuda.message, /cuda:0 execution provider is unavailable|ONNXRUNTIME_NODE_INSTALL/);
  }
});

Deno.test("the loader keeps weights out of JavaScript and reads them from the file in place", async () => {
  await using tmp = await tempDir();
  const path = await writeTinyLM(tmp.path, "m.onnx", {
    variant: "with-past",
    heads: 4,
    headDim: 16,
  });
  const file = await Deno.readFile(path);
  const read = readModelFile(path);
  // Every weight of ≥ 4 KiB became a reference into the file itself; the graph is copied.
  assert.ok(read.bytes.length < file.length / 10, `${read.bytes.length} of ${file.length} bytes`);
  const refs = parseModel(read.bytes).graph.initializers.filter((t) => t.externalLocation);
  assert.ok(refs.length > 0 && refs.every((t) => t.externalLocation === "m.onnx"));
  for (const t of refs) {
    const orig = parseModel(file).graph.initializers.find((o) => o.name === t.name)!;
    assert.deepEqual(
      file.subarray(t.externalOffset!, t.externalOffset! + t.externalLength!),
      orig.raw,
    );
  }
});
