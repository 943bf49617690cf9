import assert from "node:assert/strict";
import { join } from "node:path";
import { isUserError } from "../engine/errors.ts";
import { parseFixture } from "./fixtures/experiment.ts";
import { modelFingerprints } from "../engine/model/fingerprint.ts";
import { archFromConfig } from "../engine/model/hf/config.ts";
import { decoderGraph } from "../engine/model/hf/decoder.ts";
import { hubCache, hubSnapshot } from "../engine/model/hf/hub.ts";
import { encodeModel, floatTensor, parseModel, type Tensor } from "../engine/model/onnx_proto.ts";
import { readHfFolder } from "../engine/model/hf/folder.ts";
import { buildGreedyLoop } from "../engine/model/loop.ts";
import { inspectModel } from "../engine/model/model_info.ts";
import { readStateDictPickle } from "../engine/model/hf/pickle.ts";
import { readCheckpointWeights } from "../engine/model/hf/weights.ts";
import { loadModel } from "../engine/model/model.ts";
import { scoreBatch } from "../engine/run/scoring.ts";
import type { MemorizationSettings } from "../engine/types.ts";

const FIXTURES = join(import.meta.dirname!, "fixtures", "hf");
const FOLDERS = [
  "neox-bin-f16",
  "neox-f32-safetensors",
  "neox-f16-sharded",
  "llama-bf16",
  "olmo2-f32-safetensors",
  "gpt2-f32-safetensors",
  "gpt2-f16-bin",
];

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

/** The settings a fixture's reference was computed with, in `mode`. */
const referenceSettings = (
  ref: ReferenceFile,
  mode: MemorizationSettings["mode"],
): MemorizationSettings => ({
  offset: 0,
  context: ref.context,
  continuation: ref.continuation,
  mode,
  suppressedTokens: ref.suppressed,
});

for (const name of FOLDERS) {
  Deno.test(`the ${name} folder scores as PyTorch's reference forward, row by row, in both modes`, async () => {
    const dir = join(FIXTURES, name);
    const ref = reference(dir);
    const tokens = Int32Array.from(ref.rows.flatMap((r) => r.tokens));
    const model = await loadModel(dir, { device: "cpu", threads: 1 });
    try {
      for (const mode of ["extractable", "full"] as const) {
        const settings = referenceSettings(ref, mode);
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

// ---------------------------------------------------------------- bad folders

/** A copy of a fixture folder in a temporary folder (removed by `using`). */
function copyFixture(name: string): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix: "hf_test_" });
  for (const e of Deno.readDirSync(join(FIXTURES, name))) {
    Deno.copyFileSync(join(FIXTURES, name, e.name), join(path, e.name));
  }
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Rewrites a safetensors file's header with `edit` (the payload is kept). */
function editSafetensors(path: string, edit: (h: Record<string, unknown>) => void): void {
  const bytes = Deno.readFileSync(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  edit(header);
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(bytes.subarray(8 + n), 8 + h.length);
  Deno.writeFileSync(path, out);
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const path = join(dir, "config.json");
  const c = JSON.parse(Deno.readTextFileSync(path));
  edit(c);
  Deno.writeTextFileSync(path, JSON.stringify(c));
}

/** Asserts that loading `dir` is a UserError (exit 2) whose message holds every part. */
async function rejects(dir: string, ...parts: string[]): Promise<void> {
  await assert.rejects(loadModel(dir, { device: "cpu", threads: 1 }), (e: Error) => {
    assert.ok(isUserError(e), `not a UserError: ${e.stack}`);
    for (const p of parts) assert.ok(e.message.includes(p), `"${p}" not in: ${e.message}`);
    return true;
  });
}

const ST = "model.safetensors";
const QKV = "gpt_neox.layers.1.attention.query_key_value.weight";

Deno.test("a tensor the architecture needs that is missing is exit 2 naming it", async () => {
  using tmp = copyFixture("neox-f32-safetensors");
  editSafetensors(join(tmp.path, ST), (h) => delete h[QKV]);
  await rejects(tmp.path, QKV, "missing", ST);
});

Deno.test("a tensor the architecture does not know is exit 2 naming the file and tensor", async () => {
  using tmp = copyFixture("neox-f32-safetensors");
  editSafetensors(join(tmp.path, ST), (h) => {
    h["gpt_neox.layers.1.attention.q_norm.weight"] = h["gpt_neox.final_layer_norm.weight"];
  });
  await rejects(tmp.path, join(tmp.path, ST), "gpt_neox.layers.1.attention.q_norm.weight");
});

Deno.test("a shape that contradicts config.json is exit 2 naming the tensor", async () => {
  using tmp = copyFixture("neox-f32-safetensors");
  editConfig(tmp.path, (c) => c.intermediate_size = 64);
  await rejects(tmp.path, "gpt_neox.layers.0.mlp.dense_h_to_4h.weight", "[128,32]", "config.json");
});

Deno.test("an unsupported dtype is exit 2 naming the file and tensor", async () => {
  using tmp = copyFixture("neox-f32-safetensors");
  editSafetensors(join(tmp.path, ST), (h) => {
    (h[QKV] as { dtype: string }).dtype = "I32";
  });
  await rejects(tmp.path, join(tmp.path, ST), QKV, "I32");
});

Deno.test("a safetensors header claiming bytes beyond the file's end is exit 2 naming the tensor", async () => {
  using tmp = copyFixture("neox-f32-safetensors");
  const path = join(tmp.path, ST);
  const size = Deno.statSync(path).size;
  Deno.truncateSync(path, size - 100);
  const last = "embed_out.weight"; // written last
  await rejects(tmp.path, path, last, "truncated");
});

Deno.test("an index naming an absent shard is exit 2 naming the index, the shard and a tensor", async () => {
  using tmp = copyFixture("neox-f16-sharded");
  Deno.removeSync(join(tmp.path, "model-00002-of-00002.safetensors"));
  await rejects(
    tmp.path,
    "model.safetensors.index.json",
    "model-00002-of-00002.safetensors",
    "gpt_neox.layers.1",
  );
});

Deno.test("a truncated pytorch_model.bin is exit 2 naming the file", async () => {
  using tmp = copyFixture("neox-bin-f16");
  const path = join(tmp.path, "pytorch_model.bin");
  Deno.truncateSync(path, Deno.statSync(path).size - 40);
  await rejects(tmp.path, path, "truncated");
});

Deno.test("a compressed entry of pytorch_model.bin is exit 2 naming the file and the entry", async () => {
  using tmp = copyFixture("neox-bin-f16");
  const path = join(tmp.path, "pytorch_model.bin");
  const bytes = Deno.readFileSync(path);
  const v = new DataView(bytes.buffer);
  // Mark the first storage's central directory entry as deflated (method 8).
  let marked = "";
  for (let i = bytes.length - 46; i >= 0 && !marked; i--) {
    if (v.getUint32(i, true) !== 0x02014b50) continue;
    const name = new TextDecoder().decode(
      bytes.subarray(i + 46, i + 46 + v.getUint16(i + 28, true)),
    );
    if (name.endsWith("/data/0")) {
      v.setUint16(i + 10, 8, true);
      marked = name;
    }
  }
  assert.ok(marked);
  Deno.writeFileSync(path, bytes);
  await rejects(tmp.path, path, marked, "compressed");
});

Deno.test("a pytorch_model.bin whose pickle holds a string that is not UTF-8 is exit 2 naming the file", async () => {
  using tmp = copyFixture("neox-bin-f16");
  const path = join(tmp.path, "pytorch_model.bin");
  const bytes = Deno.readFileSync(path);
  // The first state-dict key, a string of data.pkl, gets a byte UTF-8 never holds.
  const key = new TextEncoder().encode("gpt_neox.embed_in.weight");
  const at = bytes.findIndex((_, i) => key.every((b, j) => bytes[i + j] === b));
  assert.ok(at > 0);
  bytes[at] = 0xff;
  Deno.writeFileSync(path, bytes);
  await rejects(tmp.path, path, "data.pkl", "a string that is not UTF-8");
});

Deno.test("config.json values the builders do not implement are exit 2 naming config.json and the field", async () => {
  const cases: [string, (c: Record<string, unknown>) => void, string][] = [
    ["neox-f32-safetensors", (c) => c.model_type = "mistral", "model_type"],
    ["neox-f32-safetensors", (c) => c.hidden_act = "gelu_new", "hidden_act"],
    ["neox-f32-safetensors", (c) => c.rope_scaling = { type: "linear", factor: 2 }, "rope_scaling"],
    [
      "llama-bf16",
      (c) => c.rope_scaling = { rope_type: "yarn", factor: 2 },
      "rope_scaling.rope_type",
    ],
    ["llama-bf16", (c) => c.sliding_window = 4096, "sliding_window"],
    ["llama-bf16", (c) => c.hidden_act = "gelu", "hidden_act"],
    ["olmo2-f32-safetensors", (c) => c.mlp_bias = true, "mlp_bias"],
    ["olmo2-f32-safetensors", (c) => c.hidden_act = "gelu", "hidden_act"],
    ["gpt2-f32-safetensors", (c) => c.activation_function = "relu", "activation_function"],
    [
      "gpt2-f32-safetensors",
      (c) => c.scale_attn_by_inverse_layer_idx = true,
      "scale_attn_by_inverse_layer_idx",
    ],
    ["gpt2-f32-safetensors", (c) => c.add_cross_attention = true, "add_cross_attention"],
  ];
  for (const [name, edit, field] of cases) {
    using tmp = copyFixture(name);
    editConfig(tmp.path, edit);
    await rejects(tmp.path, join(tmp.path, "config.json"), field);
  }
});

Deno.test("the pickle reader refuses globals outside a state dict, never calling them", () => {
  // cos\nsystem\n (X'echo') R .  — what a malicious pickle would run.
  const evil = Uint8Array.from([
    0x80,
    0x02,
    ...new TextEncoder().encode("cos\nsystem\n"),
    0x58,
    4,
    0,
    0,
    0,
    ...new TextEncoder().encode("echo"),
    0x85,
    0x52,
    0x2e,
  ]);
  assert.throws(() => readStateDictPickle(evil), /global os\.system/);
});

Deno.test("the folder's tensors: legacy buffers dropped, offsets inside the file, views of one storage", () => {
  const dir = join(FIXTURES, "neox-bin-f16");
  const w = readCheckpointWeights(dir);
  assert.deepEqual(w.files, ["pytorch_model.bin"]);
  assert.equal(w.tensors.size, 4 + 2 * 12);
  assert.ok(![...w.tensors.keys()].some((n) => /attention\.(bias|masked_bias|rotary)/.test(n)));
  const size = Deno.statSync(join(dir, "pytorch_model.bin")).size;
  const refs = [...w.tensors.values()];
  for (const t of refs) assert.ok(t.offset + t.length <= size && t.dtype === "F16");
  // The tensors are views of one storage: each starts where the previous ends.
  for (let i = 1; i < refs.length; i++) {
    assert.equal(refs[i].offset, refs[i - 1].offset + refs[i - 1].length);
  }
});

// ---------------------------------------------------------------- the hub cache, fingerprints

/** A Hugging Face cache holding `fixture` as `org/name` at `revision` (files symlinked to blobs/). */
function hubCacheWith(root: string, fixture: string, revision: string, commit: string): void {
  const base = join(root, "hub", "models--org--name");
  const snap = join(base, "snapshots", commit);
  Deno.mkdirSync(snap, { recursive: true });
  Deno.mkdirSync(join(base, "blobs"), { recursive: true });
  Deno.mkdirSync(join(base, "refs"), { recursive: true });
  for (const e of Deno.readDirSync(join(FIXTURES, fixture))) {
    const blob = join(base, "blobs", `${commit.slice(0, 8)}-${e.name}`);
    Deno.copyFileSync(join(FIXTURES, fixture, e.name), blob);
    Deno.symlinkSync(`../../blobs/${commit.slice(0, 8)}-${e.name}`, join(snap, e.name));
  }
  Deno.writeTextFileSync(join(base, "refs", revision), commit);
}

Deno.test("a hub revision resolves through refs/ to its snapshot, whose symlinked files score as the folder", async () => {
  using tmp = copyFixture("neox-f16-sharded");
  const commit = "a".repeat(40);
  hubCacheWith(tmp.path, "neox-f16-sharded", "step23000", commit);
  const cache = hubCache((n) => ({ HF_HOME: tmp.path } as Record<string, string>)[n]);
  const snap = hubSnapshot("org/name", "step23000", cache);
  assert.equal(snap, join(tmp.path, "hub", "models--org--name", "snapshots", commit));
  assert.equal(hubSnapshot("org/name", commit, cache), snap);
  const ref = reference(join(FIXTURES, "neox-f16-sharded"));
  const model = await loadModel(snap, { device: "cpu", threads: 1 });
  try {
    const got = await scoreBatch(
      model,
      Int32Array.from(ref.rows.flatMap((r) => r.tokens)),
      ref.rows.length,
      referenceSettings(ref, "extractable"),
    );
    assert.deepEqual([...got.prefix], ref.rows.map((r) => r.prefix));
  } finally {
    await model.release();
  }
  assert.throws(
    () => hubSnapshot("org/name", "step1000", cache),
    (e: Error) =>
      isUserError(e) && e.message.includes("huggingface-cli download org/name --revision step1000"),
  );
});

Deno.test("a folder's fingerprint covers its weight files and config.json; identical files give identical weights", async () => {
  using a = copyFixture("neox-f16-sharded");
  using b = copyFixture("neox-f16-sharded");
  const fp = async (dir: string) => (await modelFingerprints([dir])).get(dir)!;
  const [fa, fb] = [await fp(a.path), await fp(b.path)];
  assert.deepEqual(fa, fb);
  editConfig(b.path, (c) => c.bos_token_id = 1);
  const fc = await fp(b.path);
  assert.equal(fc.weights, fa.weights);
  assert.notEqual(fc.fingerprint, fa.fingerprint);
  const shard = join(b.path, "model-00002-of-00002.safetensors");
  const bytes = Deno.readFileSync(shard);
  bytes[bytes.length - 1] ^= 1;
  Deno.writeFileSync(shard, bytes);
  assert.notEqual((await fp(b.path)).weights, fa.weights);
});

Deno.test("an experiment names checkpoints by hub repository and revision, resolved in the local cache; one not there is exit 2 with the download command", () => {
  using tmp = copyFixture("neox-f16-sharded");
  const commit = "b".repeat(40);
  hubCacheWith(tmp.path, "neox-f16-sharded", "step2", commit);
  const before = Deno.env.get("HF_HOME"), hubBefore = Deno.env.get("HF_HUB_CACHE");
  Deno.env.set("HF_HOME", tmp.path);
  Deno.env.delete("HF_HUB_CACHE");
  const yaml = (steps: string) =>
    `suite:\n  steps: ${steps}\n  models:\n    - name: m\n      parameters: 1000\n` +
    `      hub: {repo: org/name}\ndata: {format: megatron, path: d}\n`;
  try {
    const exp = parseFixture(yaml("[2]"));
    assert.deepEqual(exp.suite.models[0].checkpoints, [
      { step: 2, path: join(tmp.path, "hub", "models--org--name", "snapshots", commit) },
    ]);
    assert.throws(
      () => parseFixture(yaml("[2, 4]")),
      (e: Error) =>
        isUserError(e) && e.message.includes("model m step 4") &&
        e.message.includes("huggingface-cli download org/name --revision step4"),
    );
  } finally {
    before === undefined ? Deno.env.delete("HF_HOME") : Deno.env.set("HF_HOME", before);
    if (hubBefore !== undefined) Deno.env.set("HF_HUB_CACHE", hubBefore);
  }
});

/**
 * The same weights as a plain ONNX file: the decoder graph with every weight
 * read here, widened to float32 and inlined (what an export would write), and
 * `config.json` beside it.
 */
function exportAsOnnx(dir: string, out: string): string {
  const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
  const spec = archFromConfig(config, join(dir, "config.json"));
  const weights = readCheckpointWeights(dir);
  const inits: Tensor[] = [];
  const done = new Set<string>();
  const g = decoderGraph(spec, (name, shape, use) => {
    const key = `${name}|${use}`;
    if (done.has(key)) return key;
    done.add(key);
    const t = weights.tensors.get(name) ?? weights.tensors.get(name.replace(/^transformer\./, ""))!;
    const bytes = new Uint8Array(t.length);
    const fd = Deno.openSync(t.file);
    fd.seekSync(t.offset, Deno.SeekMode.Start);
    for (let got = 0; got < t.length;) got += fd.readSync(bytes.subarray(got))!;
    fd.close();
    const view = new DataView(bytes.buffer);
    const n = t.length / (t.dtype === "F32" ? 4 : 2);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      v[i] = t.dtype === "F32"
        ? view.getFloat32(4 * i, true)
        : t.dtype === "F16"
        ? view.getFloat16(2 * i, true)
        : new Float32Array(new Uint32Array([view.getUint16(2 * i, true) << 16]).buffer)[0];
    }
    const transpose = use === "matrix" || use === "unembedding";
    const [r, c] = shape;
    const values = transpose ? new Float32Array(n) : v;
    if (transpose) {
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) values[j * r + i] = v[i * c + j];
    }
    inits.push(floatTensor(key, transpose ? [c, r] : shape, values));
    return key;
  }, "float32");
  Deno.mkdirSync(join(out, "onnx"), { recursive: true });
  const path = join(out, "onnx", "model.onnx");
  Deno.writeFileSync(
    path,
    encodeModel({
      irVersion: 8,
      opsets: [{ domain: "", version: 17 }],
      graph: { ...g, name: spec.kind, initializers: [...g.initializers, ...inits] },
    }),
  );
  Deno.copyFileSync(join(dir, "config.json"), join(out, "onnx", "config.json"));
  return path;
}

for (const name of FOLDERS) {
  Deno.test(`the ${name} folder scores as the same weights exported as an ONNX file`, async () => {
    const dir = join(FIXTURES, name);
    const ref = reference(dir);
    const tokens = Int32Array.from(ref.rows.flatMap((r) => r.tokens));
    const out = Deno.makeTempDirSync({ prefix: "hf_onnx_" });
    const folder = await loadModel(dir, { device: "cpu", threads: 1 });
    const onnx = await loadModel(exportAsOnnx(dir, out), { device: "cpu", threads: 1 });
    try {
      for (const mode of ["extractable", "full"] as const) {
        const settings = referenceSettings(ref, mode);
        const a = await scoreBatch(folder, tokens, ref.rows.length, settings);
        const b = await scoreBatch(onnx, tokens, ref.rows.length, settings);
        assert.deepEqual([...a.prefix], [...b.prefix], `${name} ${mode}: prefix`);
        assert.deepEqual([...a.matches], [...b.matches], `${name} ${mode}: matches`);
        a.nll.forEach((x, i) =>
          assert.ok(
            Number.isNaN(x) ? Number.isNaN(b.nll[i]) : Math.abs(x - b.nll[i]) < 1e-4,
            `${name} ${mode} row ${i}: nll ${x} vs ${b.nll[i]}`,
          )
        );
      }
    } finally {
      await folder.release();
      await onnx.release();
      Deno.removeSync(out, { recursive: true });
    }
  });
}

Deno.test("the greedy loop folds a folder's weight Transposes and Casts in its outer graph, not its body", () => {
  const dir = join(FIXTURES, "neox-bin-f16");
  const hf = readHfFolder(dir);
  const model = parseModel(hf.bytes);
  const info = inspectModel(model, dir, hf.config);
  const looped = parseModel(buildGreedyLoop(hf.bytes, model, info)).graph;
  const loop = looped.nodes.find((n) => n.opType === "Loop")!;
  const body = loop.attributes.find((a) => a.name === "body")!.g!;
  const weights = new Set(looped.initializers.map((t) => t.name));
  const widening = (n: { opType: string; inputs: string[] }) =>
    (n.opType === "Transpose" || n.opType === "Cast") && weights.has(n.inputs[0]);
  // The float16 folder's 4 linear weights per layer and its unembedding are each transposed,
  // then widened (a Cast of the Transpose); its norms and biases widened alone.
  const transposes = (nodes: typeof looped.nodes) =>
    nodes.filter((n) => n.opType === "Transpose" && weights.has(n.inputs[0])).length;
  const widened = (nodes: typeof looped.nodes) =>
    nodes.filter((n) => n.opType === "Cast" && n.inputs[0].endsWith("/transposed")).length;
  assert.equal(transposes(looped.nodes), 4 * hf.spec.layers + 1);
  assert.equal(widened(looped.nodes), 4 * hf.spec.layers + 1);
  assert.ok(looped.nodes.filter(widening).length > 2 * (4 * hf.spec.layers + 1));
  assert.equal(transposes(body.nodes) + widened(body.nodes), 0);
  assert.deepEqual(body.nodes.filter(widening).map((n) => n.outputs[0]), []);
  // The head's weight slices follow them out (their input is the widened unembedding).
  assert.ok(looped.nodes.some((n) => n.opType === "Slice" && n.outputs[0].includes("weight")));
});

Deno.test("a GPT-2 window longer than config.json's n_positions is exit 2 naming the field", async () => {
  const dir = join(FIXTURES, "gpt2-f32-safetensors");
  const positions = JSON.parse(Deno.readTextFileSync(join(dir, "config.json"))).n_positions;
  const model = await loadModel(dir, { device: "cpu", threads: 1 });
  try {
    const settings = (context: number): MemorizationSettings => ({
      offset: 0,
      context,
      continuation: 8,
      mode: "full",
      suppressedTokens: [0],
    });
    // k + l − 1 = n_positions: the last position of the table is used, and scores.
    const fits = positions + 1 - 8;
    const ok = await scoreBatch(model, new Int32Array(fits + 8).fill(3), 1, settings(fits));
    assert.equal(ok.prefix.length, 1);
    await assert.rejects(
      scoreBatch(model, new Int32Array(fits + 9).fill(3), 1, settings(fits + 1)),
      (e: Error) => isUserError(e) && e.message.includes("n_positions") && e.message.includes(dir),
    );
  } finally {
    await model.release();
  }
});
