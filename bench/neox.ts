/**
 * A random-init GPT-NeoX (Pythia's architecture) written as an ONNX file in the
 * Optimum `text-generation-with-past` layout, with the project's own ONNX
 * writer, for benchmarks and agreement tests at real model sizes: rotary
 * embeddings on `rotary_pct` of each head's dims (rotate-half, base 10000),
 * parallel attention + MLP residual, LayerNorm (eps 1e-5), exact GELU, fused
 * QKV laid out per head, untied output embedding without bias; weights in
 * float32 or float16 (then logits and cache are float16 too, as Optimum's fp16
 * export), inline or in one external-data file (tensors 4 KiB-aligned). The
 * weights are generated and written one tensor at a time, so building a model
 * takes memory for its largest tensor only. The numerics match
 * tools/nano-suite/model.py (HF's GPTNeoXForCausalLM).
 *
 * @module
 */
import { seededRandom } from "../engine/random.ts";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type Attribute,
  DataType,
  encodeGraph,
  encodeModel,
  encodeTensor,
  fieldHeader,
  floatTensor,
  int64Tensor,
  type Node,
  node,
  type Tensor,
  type ValueInfo,
} from "../engine/model/onnx_proto.ts";

/** The shape of a GPT-NeoX model. */
export interface NeoxShape {
  layers: number;
  d: number;
  heads: number;
  vocab: number;
  /** MLP width (default 4 d). */
  intermediate?: number;
  /** Fraction of each head's dims that rotate (default 0.25). */
  rotaryPct?: number;
}

/** Pythia's shapes (docs/design.md, "Pythia facts"). */
export const PYTHIA: Record<string, NeoxShape> = {
  "70m": { layers: 6, d: 512, heads: 8, vocab: 50304 },
  "160m": { layers: 12, d: 768, heads: 12, vocab: 50304 },
  "410m": { layers: 24, d: 1024, heads: 16, vocab: 50304 },
  "1b": { layers: 16, d: 2048, heads: 8, vocab: 50304 },
  "1.4b": { layers: 24, d: 2048, heads: 16, vocab: 50304 },
  "2.8b": { layers: 32, d: 2560, heads: 32, vocab: 50304 },
  "6.9b": { layers: 32, d: 4096, heads: 32, vocab: 50432 },
  "12b": { layers: 36, d: 5120, heads: 40, vocab: 50688 },
};

/** Options of {@link writeNeox}. */
export interface NeoxOptions {
  shape: NeoxShape;
  dtype: "float32" | "float16";
  /** Weights in `<file>_data` beside the model instead of inline. */
  external: boolean;
  seed?: number;
}

/** What {@link writeNeox} wrote. */
export interface NeoxFiles {
  /** The ONNX file (`<dir>/onnx/model.onnx` or `model_fp16.onnx`). */
  path: string;
  /** Parameters (every initializer that is a weight). */
  params: number;
  /** Bytes of the weights (model file plus external data). */
  weightBytes: number;
}

/** Parameter count of a shape (embeddings, layers, final norm, unembedding). */
export function neoxParams(s: NeoxShape): number {
  const i = s.intermediate ?? 4 * s.d;
  const layer = s.d * 3 * s.d + 3 * s.d + s.d * s.d + s.d + s.d * i + i + i * s.d + s.d + 4 * s.d;
  return 2 * s.vocab * s.d + s.layers * layer + 2 * s.d;
}

/** A weight whose bytes are generated when written. */
interface Weight {
  name: string;
  dims: number[];
  /** Uniform in ±a·√3 (std a); 0 = zeros; null = ones. */
  std: number | null;
}

/**
 * Writes a random-init GPT-NeoX into `dir` (HF layout: `config.json`,
 * `generation_config.json`, `onnx/model[_fp16].onnx` [+ `_data`]; a copy of
 * `config.json` beside the ONNX file for the engine).
 */
export async function writeNeox(dir: string, o: NeoxOptions): Promise<NeoxFiles> {
  const s = o.shape;
  const inter = s.intermediate ?? 4 * s.d;
  const D = s.d / s.heads;
  const rot = Math.floor(D * (s.rotaryPct ?? 0.25));
  const f16 = o.dtype === "float16";
  const T = f16 ? DataType.FLOAT16 : DataType.FLOAT;
  const nodes: Node[] = [];
  const small: Tensor[] = [];
  const weights: Weight[] = [];
  const add = (op: string, inputs: string[], out: string, attrs: Attribute[] = []) => {
    nodes.push(node(op, inputs, [out], attrs));
    return out;
  };
  const i64 = (name: string, v: number[], dims = [v.length]) => {
    small.push(int64Tensor(name, dims, v));
    return name;
  };
  const scalar = (name: string, v: number) => {
    const t = floatTensor(name, [], [v]);
    small.push(f16 ? { ...t, dataType: T, raw: halfBytes(new Float32Array([v])) } : t);
    return name;
  };
  const weight = (name: string, dims: number[], std: number | null) => {
    weights.push({ name, dims, std });
    return name;
  };
  const to = (t: number): Attribute[] => [{ name: "to", i: t }];

  i64("zero", [0], []);
  i64("one", [1], []);
  i64("ax1", [1], []);
  i64("ax2", [2], []);
  i64("shape_col", [-1, 1]);
  i64("shape_mask", [0, 1, 1, -1]);
  i64("shape_heads", [0, 0, s.heads, 3 * D]);
  i64("shape_rot", [0, 1, -1, rot]);
  i64("shape_pos", [0, 0, 1]);
  i64("shape_model", [0, 0, s.d]);
  i64("split_qkv", [D, D, D]);
  i64("split_rot", [rot, D - rot]);
  i64("split_half", [rot / 2, rot / 2]);
  scalar("fzero", 0);
  scalar("fneg", f16 ? -65504 : -3.4e38);
  scalar("attn_scale", 1 / Math.sqrt(D));
  scalar("half", 0.5);
  scalar("sqrt2", Math.SQRT2);
  small.push(floatTensor(
    "inv_freq",
    [rot / 2],
    Array.from({ length: rot / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / rot)),
  ));

  const inputs: ValueInfo[] = [
    { name: "input_ids", elemType: DataType.INT64, dims: ["batch_size", "sequence_length"] },
    {
      name: "attention_mask",
      elemType: DataType.INT64,
      dims: ["batch_size", "past_sequence_length + sequence_length"],
    },
    { name: "position_ids", elemType: DataType.INT64, dims: ["batch_size", "sequence_length"] },
  ];
  const outputs: ValueInfo[] = [
    { name: "logits", elemType: T, dims: ["batch_size", "sequence_length", s.vocab] },
  ];
  // Causal + padding mask as an additive bias [B, 1, S, P + S].
  add("Shape", ["input_ids"], "ids_shape");
  add("Gather", ["ids_shape", "ax1"], "S");
  add("Shape", ["past_key_values.0.key"], "past_shape");
  add("Gather", ["past_shape", "ax2"], "P");
  add("Add", ["P", "S"], "total");
  add("Range", ["zero", "total", "one"], "key_idx");
  add("Range", ["P", "total", "one"], "query_idx");
  add("Reshape", ["query_idx", "shape_col"], "query_col");
  add("Greater", ["key_idx", "query_col"], "future");
  add("Not", ["future"], "causal");
  add("Cast", ["attention_mask"], "mask_bool", to(DataType.BOOL));
  add("Reshape", ["mask_bool", "shape_mask"], "mask4");
  add("And", ["causal", "mask4"], "allowed");
  add("Where", ["allowed", "fzero", "fneg"], "bias");
  // Rotary tables from position_ids, in float32 (cast to the model's type, as HF does).
  add("Cast", ["position_ids"], "pos_f", to(DataType.FLOAT));
  add("Reshape", ["pos_f", "shape_pos"], "pos3");
  add("Mul", ["pos3", "inv_freq"], "freqs");
  add("Concat", ["freqs", "freqs"], "emb", [{ name: "axis", i: -1 }]);
  add("Cos", ["emb"], "cos32");
  add("Sin", ["emb"], "sin32");
  for (const f of ["cos", "sin"]) {
    const src = f16 ? add("Cast", [`${f}32`], `${f}_t`, to(T)) : `${f}32`;
    add("Reshape", [src, "shape_rot"], f);
  }

  const std = Math.sqrt(2 / (5 * s.d));
  const wang = 2 / s.layers / Math.sqrt(s.d);
  const linear = (x: string, name: string, nIn: number, nOut: number, w = std, bias = true) => {
    const y = add("MatMul", [x, weight(`${name}.weight`, [nIn, nOut], w)], `${name}/mm`);
    return bias ? add("Add", [y, weight(`${name}.bias`, [nOut], 0)], `${name}/out`) : y;
  };
  const norm = (x: string, name: string) =>
    add(
      "LayerNormalization",
      [x, weight(`${name}.weight`, [s.d], null), weight(`${name}.bias`, [s.d], 0)],
      `${name}/out`,
      [{ name: "axis", i: -1 }, { name: "epsilon", f: 1e-5 }],
    );
  const split = (x: string, sizes: string, outs: string[]) => {
    nodes.push(node("Split", [x, sizes], outs, [{ name: "axis", i: 3 }]));
    return outs;
  };
  const rotary = (x: string, p: string) => {
    const [xr, xp] = split(x, "split_rot", [`${p}_r`, `${p}_p`]);
    const [x1, x2] = split(xr, "split_half", [`${p}_1`, `${p}_2`]);
    add("Neg", [x2], `${p}_n2`);
    add("Concat", [`${p}_n2`, x1], `${p}_rh`, [{ name: "axis", i: 3 }]);
    add("Mul", [xr, "cos"], `${p}_c`);
    add("Mul", [`${p}_rh`, "sin"], `${p}_s`);
    add("Add", [`${p}_c`, `${p}_s`], `${p}_rot`);
    return add("Concat", [`${p}_rot`, xp], `${p}_out`, [{ name: "axis", i: 3 }]);
  };

  let x = add("Gather", [weight("embed_in.weight", [s.vocab, s.d], std), "input_ids"], "x0");
  for (let i = 0; i < s.layers; i++) {
    const p = `layers.${i}`;
    const h = norm(x, `${p}.input_layernorm`);
    const qkv = linear(h, `${p}.attention.query_key_value`, s.d, 3 * s.d);
    add("Reshape", [qkv, "shape_heads"], `${p}/qkv4`);
    add("Transpose", [`${p}/qkv4`], `${p}/qkvT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
    const [q, k, v] = split(`${p}/qkvT`, "split_qkv", [`${p}/q`, `${p}/k`, `${p}/v`]);
    const kAll = `present.${i}.key`, vAll = `present.${i}.value`;
    for (const kind of ["key", "value"]) {
      inputs.push({
        name: `past_key_values.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", s.heads, "past_sequence_length", D],
      });
      outputs.push({
        name: `present.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", s.heads, "past_sequence_length + sequence_length", D],
      });
    }
    add("Concat", [`past_key_values.${i}.key`, rotary(k, `${p}/k`)], kAll, [{
      name: "axis",
      i: 2,
    }]);
    add("Concat", [`past_key_values.${i}.value`, v], vAll, [{ name: "axis", i: 2 }]);
    add("Mul", [rotary(q, `${p}/q`), "attn_scale"], `${p}/qs`);
    add("Transpose", [kAll], `${p}/kT`, [{ name: "perm", ints: [0, 1, 3, 2] }]);
    add("MatMul", [`${p}/qs`, `${p}/kT`], `${p}/scores`);
    add("Add", [`${p}/scores`, "bias"], `${p}/biased`);
    add("Softmax", [`${p}/biased`], `${p}/probs`, [{ name: "axis", i: -1 }]);
    add("MatMul", [`${p}/probs`, vAll], `${p}/ctx`);
    add("Transpose", [`${p}/ctx`], `${p}/ctxT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
    add("Reshape", [`${p}/ctxT`, "shape_model"], `${p}/ctx3`);
    const attn = linear(`${p}/ctx3`, `${p}.attention.dense`, s.d, s.d, wang);
    const h2 = norm(x, `${p}.post_attention_layernorm`);
    const up = linear(h2, `${p}.mlp.dense_h_to_4h`, s.d, inter);
    add("Div", [up, "sqrt2"], `${p}/gelu_a`);
    add("Erf", [`${p}/gelu_a`], `${p}/gelu_b`);
    add("Add", [`${p}/gelu_b`, "one_f"], `${p}/gelu_c`);
    add("Mul", [up, `${p}/gelu_c`], `${p}/gelu_d`);
    add("Mul", [`${p}/gelu_d`, "half"], `${p}/gelu`);
    const mlp = linear(`${p}/gelu`, `${p}.mlp.dense_4h_to_h`, inter, s.d, wang);
    add("Add", [x, attn], `${p}/res1`);
    x = add("Add", [`${p}/res1`, mlp], `${p}/out`);
  }
  scalar("one_f", 1);
  const final = norm(x, "final_layer_norm");
  add("MatMul", [final, weight("embed_out.weight", [s.d, s.vocab], std)], "logits");

  const file = f16 ? "model_fp16.onnx" : "model.onnx";
  const onnxDir = join(dir, "onnx");
  await mkdir(onnxDir, { recursive: true });
  const path = join(onnxDir, file);
  const elem = f16 ? 2 : 4;
  const rand = gaussianish(o.seed ?? 1);
  const bytesOf = (w: Weight): Uint8Array => {
    const n = w.dims.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (w.std === null) v.fill(1);
    else if (w.std !== 0) { for (let i = 0; i < n; i++) v[i] = rand() * w.std; }
    return f16 ? halfBytes(v) : new Uint8Array(v.buffer);
  };
  let weightBytes = 0;
  const graphInits: Uint8Array[] = [];
  if (o.external) {
    const data = openSync(`${path}_data`, "w");
    let offset = 0;
    try {
      for (const w of weights) {
        const raw = bytesOf(w);
        const pad = (4096 - (offset % 4096)) % 4096;
        if (pad) writeSync(data, new Uint8Array(pad));
        offset += pad;
        writeSync(data, raw);
        graphInits.push(encodeTensor({
          name: w.name,
          dims: w.dims,
          dataType: T,
          externalLocation: `${file}_data`,
          externalOffset: offset,
          externalLength: raw.length,
        }));
        offset += raw.length;
        weightBytes += raw.length;
      }
    } finally {
      closeSync(data);
    }
  }
  const graph = encodeGraph({ name: "gpt_neox", nodes, inputs, outputs, initializers: small });
  const inline = o.external ? [] : weights;
  const tensorHead = inline.map((w) => {
    const head = encodeTensor({ name: w.name, dims: w.dims, dataType: T });
    const raw = w.dims.reduce((a, b) => a * b, elem);
    return { head, raw, rawHead: fieldHeader(9, raw) };
  });
  const tensorLen = (t: (typeof tensorHead)[0]) => t.head.length + t.rawHead.length + t.raw;
  const extLen = graphInits.reduce((n, t) => n + fieldHeader(5, t.length).length + t.length, 0);
  const graphLen = graph.length + extLen +
    tensorHead.reduce((n, t) => n + fieldHeader(5, tensorLen(t)).length + tensorLen(t), 0);
  const empty = encodeModel({
    irVersion: 8,
    opsets: [{ domain: "", version: 17 }],
    graph: { name: "", nodes: [], inputs: [], outputs: [], initializers: [] },
  });
  // An empty graph encodes as its tag and a zero length at the end: replace them.
  if (empty.at(-2) !== 0x3a || empty.at(-1) !== 0) throw new Error("unexpected model header");
  const fd = openSync(path, "w");
  try {
    writeSync(fd, empty.subarray(0, -2));
    writeSync(fd, fieldHeader(7, graphLen));
    writeSync(fd, graph);
    for (const t of graphInits) {
      writeSync(fd, fieldHeader(5, t.length));
      writeSync(fd, t);
    }
    inline.forEach((w, i) => {
      const t = tensorHead[i];
      writeSync(fd, fieldHeader(5, tensorLen(t)));
      writeSync(fd, t.head);
      writeSync(fd, t.rawHead);
      const raw = bytesOf(w);
      writeSync(fd, raw);
      weightBytes += raw.length;
    });
  } finally {
    closeSync(fd);
  }
  const config = JSON.stringify(hfConfig(s, o.dtype), null, 1);
  await writeFile(join(dir, "config.json"), config);
  await writeFile(join(onnxDir, "config.json"), config);
  await writeFile(
    join(dir, "generation_config.json"),
    JSON.stringify({ bos_token_id: 0, eos_token_id: null, do_sample: false }),
  );
  return { path, params: neoxParams(s), weightBytes };
}

/** Hugging Face's GPTNeoXConfig fields for a shape (what transformers.js reads). */
export function hfConfig(s: NeoxShape, dtype: string): Record<string, unknown> {
  return {
    architectures: ["GPTNeoXForCausalLM"],
    model_type: "gpt_neox",
    vocab_size: s.vocab,
    hidden_size: s.d,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    intermediate_size: s.intermediate ?? 4 * s.d,
    rotary_pct: s.rotaryPct ?? 0.25,
    rotary_emb_base: 10000,
    max_position_embeddings: 2048,
    use_parallel_residual: true,
    layer_norm_eps: 1e-5,
    hidden_act: "gelu",
    tie_word_embeddings: false,
    bos_token_id: 0,
    eos_token_id: 0,
    torch_dtype: dtype,
  };
}

/** float32 values as IEEE half bits (round to nearest even), little-endian bytes. */
export function halfBytes(v: Float32Array): Uint8Array {
  const out = new Uint16Array(v.length);
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  for (let i = 0; i < v.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1), halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && (h & 1))) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    out[i] = sign | h;
  }
  return new Uint8Array(out.buffer);
}

/** A seeded generator of values with mean 0 and standard deviation 1 (uniform in ±√3). */
export function gaussianish(seed: number): () => number {
  const uniform = seededRandom(seed);
  return () => (uniform() * 2 - 1) * Math.sqrt(3);
}

/**
 * {@link writeNeox} unless `dir` already holds the same model (a marker written
 * last records the options), so a bench never rewrites a model another
 * process may be reading.
 */
export async function ensureNeox(dir: string, o: NeoxOptions): Promise<NeoxFiles> {
  const marker = join(dir, "neox.json");
  const key = JSON.stringify({ ...o, seed: o.seed ?? 1 });
  try {
    const saved = JSON.parse(await Deno.readTextFile(marker));
    if (JSON.stringify(saved.options) === key) return saved.files as NeoxFiles;
  } catch {
    // absent or unreadable: (re)build
  }
  const files = await writeNeox(dir, o);
  await writeFile(marker, JSON.stringify({ options: JSON.parse(key), files }));
  return files;
}
