/**
 * Decoder graphs of the architectures in ./config.ts, written with the
 * project's ONNX writer in Optimum's `text-generation-with-past` layout
 * (`input_ids`, `attention_mask`, `position_ids`, `past_key_values.{i}.key|value`
 * → `logits`, `present.{i}.key|value`), so that the model adapter
 * (engine/model/model.ts) adds the same score head and greedy loop as to an
 * exported ONNX file.
 *
 * - GPT-NeoX (Pythia): LayerNorm, fused QKV laid out per head, rotate-half
 *   rotary on the first `rotaryDims` of each head, parallel or sequential
 *   residual, exact GELU, untied (or tied) unembedding.
 * - Llama: RMSNorm (in float32), rotate-half rotary over the whole head,
 *   grouped-query attention (the query heads of one key/value head attend as one
 *   [G·S, D] block, so the cache is never repeated), SwiGLU, optional biases,
 *   tied or untied unembedding.
 * - OLMo 2: Llama's attention and MLP with RMSNorm over the whole q and k
 *   projections (QK-norm) and norms after attention and after the MLP (on
 *   their outputs, before the residual add) instead of before them.
 * - GPT-2: learned absolute positions added to the embedding, LayerNorm, fused
 *   QKV (`c_attn`: q, k and v one after the other), Conv1D weights used as
 *   stored ([in, out]), the tanh approximation of GELU, tied unembedding.
 *
 * Weights come from a {@link WeightSource}, asked for each tensor by its
 * Hugging Face name and shape: the model folder's (external-data references
 * into the checkpoint, ./folder.ts) or the benchmark's random ones
 * (bench/neox.ts).
 *
 * @module
 */
import {
  type Attribute,
  DataType,
  floatTensor,
  int64Tensor,
  type Node,
  node,
  type Tensor,
  type ValueInfo,
} from "../onnx_proto.ts";
import type { ArchSpec, LlamaSpec, NeoxSpec } from "./config.ts";

/** How the graph uses a weight (the layout the source must provide). */
export type WeightUse =
  /** A linear layer's [out, in] matrix, provided as [in, out] (for `MatMul(x, w)`). */
  | "matrix"
  /** A GPT-2 Conv1D's [in, out] matrix, as stored (for `MatMul(x, w)`). */
  | "conv1d"
  /** Norm scales and biases, as stored. */
  | "vector"
  /** The [vocab, hidden] input embedding (or GPT-2's [positions, hidden] table), as stored. */
  | "embedding"
  /** The [vocab, hidden] output embedding, provided as [hidden, vocab]. */
  | "unembedding";

/**
 * Provides a weight: called once per use with its Hugging Face name and stored
 * shape, returns the name of a graph value holding it in the layout of `use`,
 * in the graph's element type. May add nodes (Cast, Transpose) through `add`.
 */
export type WeightSource = (
  name: string,
  shape: number[],
  use: WeightUse,
  add: (n: Node) => void,
) => string;

/** A decoder graph's parts (the caller encodes the model). */
export interface DecoderGraph {
  nodes: Node[];
  /** Small constants (shapes, scalars, rotary frequencies). */
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** Hugging Face's tensor names of an architecture, per layer and global. */
export function tensorNames(spec: ArchSpec): string[] {
  const names: string[] = [];
  const w = (source: WeightSource) => decoderGraph(spec, source, "float32");
  w((name) => (names.push(name), name));
  return names;
}

/**
 * The decoder graph of `spec` computing in `dtype` (float16: logits and cache
 * in float16 too, as Optimum's fp16 export; the rotary tables and RMSNorm in
 * float32).
 */
export function decoderGraph(
  spec: ArchSpec,
  weight: WeightSource,
  dtype: "float32" | "float16" = "float32",
): DecoderGraph {
  return new DecoderBuilder(spec, weight, dtype).build();
}

/** Hugging Face's names of the global tensors of an architecture and the layers' prefix. */
function namesOf(spec: ArchSpec): { embed: string; layers: string; finalNorm: string } {
  if (spec.kind === "gpt_neox") {
    return {
      embed: "gpt_neox.embed_in.weight",
      layers: "gpt_neox.layers",
      finalNorm: "gpt_neox.final_layer_norm",
    };
  }
  if (spec.kind === "gpt2") {
    return {
      embed: "transformer.wte.weight",
      layers: "transformer.h",
      finalNorm: "transformer.ln_f",
    };
  }
  return { embed: "model.embed_tokens.weight", layers: "model.layers", finalNorm: "model.norm" };
}

/**
 * Writes one decoder graph: the nodes in order, the small constants (kept
 * once each), the inputs and outputs. {@link build} is the outline; each
 * method adds one part (the mask, the rotary tables, a norm, a layer's
 * attention or MLP, …).
 */
class DecoderBuilder {
  readonly nodes: Node[] = [];
  readonly small: Tensor[] = [];
  readonly inputs: ValueInfo[] = [
    { name: "input_ids", elemType: DataType.INT64, dims: ["batch_size", "sequence_length"] },
    {
      name: "attention_mask",
      elemType: DataType.INT64,
      dims: ["batch_size", "past_sequence_length + sequence_length"],
    },
    { name: "position_ids", elemType: DataType.INT64, dims: ["batch_size", "sequence_length"] },
  ];
  readonly outputs: ValueInfo[];
  readonly f16: boolean;
  /** The graph's element type. */
  readonly T: number;
  /** Head size, query heads, key/value heads, query heads per key/value head, rotary dims. */
  readonly D: number;
  readonly H: number;
  readonly KV: number;
  readonly G: number;
  readonly rot: number;
  /** The additive attention bias (causal and padding), set by {@link mask}. */
  bias = "";

  constructor(
    readonly spec: ArchSpec,
    readonly weight: WeightSource,
    dtype: "float32" | "float16",
  ) {
    this.f16 = dtype === "float16";
    this.T = this.f16 ? DataType.FLOAT16 : DataType.FLOAT;
    this.D = spec.headDim, this.H = spec.heads, this.KV = spec.kvHeads;
    this.G = this.H / this.KV;
    this.rot = spec.rotaryDims;
    this.outputs = [
      { name: "logits", elemType: this.T, dims: ["batch_size", "sequence_length", spec.vocab] },
    ];
  }

  build(): DecoderGraph {
    const spec = this.spec, names = namesOf(spec);
    this.constants();
    this.mask();
    if (this.rot) this.rotaryTables();
    let x = this.embed(names.embed);
    for (let i = 0; i < spec.layers; i++) {
      const p = `${names.layers}.${i}`;
      x = spec.kind === "gpt2" ? this.gpt2Layer(x, p, i) : this.layer(x, p, i, spec);
    }
    const final = this.norm(x, names.finalNorm);
    const unembedName = spec.tied
      ? names.embed
      : spec.kind === "gpt_neox"
      ? "embed_out.weight"
      : "lm_head.weight";
    const unembed = this.w(unembedName, [spec.vocab, spec.hidden], "unembedding");
    this.add("MatMul", [final, unembed], "logits");
    // Constants declared more than once (shared shapes) are kept once.
    const seen = new Set<string>();
    const initializers = this.small.filter((t) => !seen.has(t.name) && seen.add(t.name));
    return { nodes: this.nodes, initializers, inputs: this.inputs, outputs: this.outputs };
  }

  add(op: string, inputs: string[], out: string, attrs: Attribute[] = []): string {
    this.nodes.push(node(op, inputs, [out], attrs));
    return out;
  }

  i64(name: string, v: number[], dims = [v.length]): string {
    this.small.push(int64Tensor(name, dims, v));
    return name;
  }

  scalar(name: string, v: number, type = this.T): string {
    const t = floatTensor(name, [], [v]);
    this.small.push(
      type === DataType.FLOAT16 ? { ...t, dataType: type, raw: halfBytes(Float32Array.of(v)) } : t,
    );
    return name;
  }

  w(name: string, shape: number[], use: WeightUse): string {
    return this.weight(name, shape, use, (n) => this.nodes.push(n));
  }

  /** The shapes and scalars every graph uses. */
  constants(): void {
    const { H, D, rot, f16 } = this;
    this.i64("zero", [0], []);
    this.i64("one", [1], []);
    this.i64("ax1", [1], []);
    this.i64("ax2", [2], []);
    this.i64("shape_col", [-1, 1]);
    this.i64("shape_mask", [0, 1, 1, -1]);
    if (rot) this.i64("shape_rot", [0, 1, -1, rot]);
    this.i64("shape_pos", [0, 0, 1]);
    this.i64("shape_model", [0, 0, H * D]);
    if (rot) this.i64("split_half", [rot / 2, rot / 2]);
    if (rot && rot < D) this.i64("split_rot", [rot, D - rot]);
    this.scalar("fzero", 0);
    this.scalar("fneg", f16 ? -65504 : -3.4e38);
    this.scalar("attn_scale", 1 / Math.sqrt(D));
    this.scalar("one_f", 1);
    if (rot) this.small.push(floatTensor("inv_freq", [rot / 2], this.spec.invFreq));
  }

  /** Causal + padding mask as an additive bias [B, 1, S, P + S] (tiled to [B, 1, G·S, P + S]). */
  mask(): void {
    const add = this.add.bind(this);
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
    add("Where", ["allowed", "fzero", "fneg"], "bias1");
    this.bias = this.G > 1
      ? add("Tile", ["bias1", this.i64("tile_groups", [1, 1, this.G, 1])], "bias")
      : "bias1";
  }

  /** Rotary tables from position_ids, in float32 (cast to the model's type, as HF does). */
  rotaryTables(): void {
    const add = this.add.bind(this);
    add("Cast", ["position_ids"], "pos_f", to(DataType.FLOAT));
    add("Reshape", ["pos_f", "shape_pos"], "pos3");
    add("Mul", ["pos3", "inv_freq"], "freqs");
    add("Concat", ["freqs", "freqs"], "emb", [{ name: "axis", i: -1 }]);
    add("Cos", ["emb"], "cos32");
    add("Sin", ["emb"], "sin32");
    for (const f of ["cos", "sin"]) {
      const src = this.f16 ? add("Cast", [`${f}32`], `${f}_t`, to(this.T)) : `${f}32`;
      add("Reshape", [src, "shape_rot"], f);
    }
  }

  /** The token embedding (plus GPT-2's learned positions). */
  embed(name: string): string {
    const spec = this.spec;
    const x = this.add("Gather", [
      this.w(name, [spec.vocab, spec.hidden], "embedding"),
      "input_ids",
    ], "x0");
    if (spec.kind !== "gpt2") return x;
    const wpe = this.w("transformer.wpe.weight", [spec.positions, spec.hidden], "embedding");
    this.add("Gather", [wpe, "position_ids"], "positions");
    return this.add("Add", [x, "positions"], "x0_pos");
  }

  linear(x: string, name: string, nIn: number, nOut: number, bias: boolean): string {
    const weight = this.spec.kind === "gpt2"
      ? this.w(`${name}.weight`, [nIn, nOut], "conv1d")
      : this.w(`${name}.weight`, [nOut, nIn], "matrix");
    const y = this.add("MatMul", [x, weight], `${name}/mm`);
    return bias ? this.add("Add", [y, this.w(`${name}.bias`, [nOut], "vector")], `${name}/out`) : y;
  }

  /** LayerNorm (GPT-NeoX, GPT-2) or RMSNorm (Llama, OLMo 2) over the last axis. */
  norm(x: string, name: string, width = this.spec.hidden): string {
    const spec = this.spec;
    if (spec.kind === "gpt_neox" || spec.kind === "gpt2") {
      return this.add(
        "LayerNormalization",
        [
          x,
          this.w(`${name}.weight`, [width], "vector"),
          this.w(`${name}.bias`, [width], "vector"),
        ],
        `${name}/out`,
        [{ name: "axis", i: -1 }, { name: "epsilon", f: spec.eps }],
      );
    }
    // RMSNorm in float32: x · 1/√(mean(x²) + eps), then the weight (in the model's type).
    const add = this.add.bind(this), f16 = this.f16;
    const x32 = f16 ? add("Cast", [x], `${name}/x32`, to(DataType.FLOAT)) : x;
    add("Mul", [x32, x32], `${name}/sq`);
    add("ReduceMean", [`${name}/sq`], `${name}/var`, [{ name: "axes", ints: [-1] }]);
    const eps = this.scalar(`${name}/eps`, spec.eps, DataType.FLOAT);
    add("Add", [`${name}/var`, eps], `${name}/var_eps`);
    add("Sqrt", [`${name}/var_eps`], `${name}/rms`);
    add("Div", [x32, `${name}/rms`], `${name}/normed32`);
    const normed = f16
      ? add("Cast", [`${name}/normed32`], `${name}/normed`, to(this.T))
      : `${name}/normed32`;
    return add("Mul", [normed, this.w(`${name}.weight`, [width], "vector")], `${name}/out`);
  }

  split(x: string, sizes: string, outs: string[], axis = 3): string[] {
    this.nodes.push(node("Split", [x, sizes], outs, [{ name: "axis", i: axis }]));
    return outs;
  }

  /** Rotate-half rotary embedding of the first `rot` dims of each head. */
  rotary(x: string, p: string): string {
    const add = this.add.bind(this), { rot, D } = this;
    const [xr, xp] = rot < D ? this.split(x, "split_rot", [`${p}_r`, `${p}_p`]) : [x, ""];
    const [x1, x2] = this.split(xr, "split_half", [`${p}_1`, `${p}_2`]);
    add("Neg", [x2], `${p}_n2`);
    add("Concat", [`${p}_n2`, x1], `${p}_rh`, [{ name: "axis", i: 3 }]);
    add("Mul", [xr, "cos"], `${p}_c`);
    add("Mul", [`${p}_rh`, "sin"], `${p}_s`);
    const rotated = add("Add", [`${p}_c`, `${p}_s`], `${p}_rot`);
    return xp ? add("Concat", [rotated, xp], `${p}_out`, [{ name: "axis", i: 3 }]) : rotated;
  }

  /** [B, S, heads·D] → [B, heads, S, D]. */
  heads(x: string, n: number, p: string): string {
    this.add("Reshape", [x, this.i64(`shape_${n}_heads`, [0, 0, n, this.D])], `${p}4`);
    return this.add("Transpose", [`${p}4`], `${p}T`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
  }

  /** Attention over [B, heads, S, D] q, k, v: the cache's Concat, scores, softmax, context [B, S, H·D]. */
  attend(i: number, p: string, q: string, k: string, v: string): string {
    const add = this.add.bind(this), { T, KV, D, G, H } = this;
    const kAll = `present.${i}.key`, vAll = `present.${i}.value`;
    for (const kind of ["key", "value"]) {
      this.inputs.push({
        name: `past_key_values.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", KV, "past_sequence_length", D],
      });
      this.outputs.push({
        name: `present.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", KV, "past_sequence_length + sequence_length", D],
      });
    }
    add("Concat", [`past_key_values.${i}.key`, k], kAll, [{ name: "axis", i: 2 }]);
    add("Concat", [`past_key_values.${i}.value`, v], vAll, [{ name: "axis", i: 2 }]);
    let qs = add("Mul", [q, "attn_scale"], `${p}/qs`);
    // Grouped-query attention: the G query heads of a key/value head as one [G·S, D] block.
    if (G > 1) qs = add("Reshape", [qs, this.i64("shape_groups", [0, KV, -1, D])], `${p}/qg`);
    add("Transpose", [kAll], `${p}/kT`, [{ name: "perm", ints: [0, 1, 3, 2] }]);
    add("MatMul", [qs, `${p}/kT`], `${p}/scores`);
    add("Add", [`${p}/scores`, this.bias], `${p}/biased`);
    add("Softmax", [`${p}/biased`], `${p}/probs`, [{ name: "axis", i: -1 }]);
    let ctx = add("MatMul", [`${p}/probs`, vAll], `${p}/ctx`);
    if (G > 1) ctx = add("Reshape", [ctx, this.i64("shape_ungroup", [0, H, -1, D])], `${p}/ctx_h`);
    add("Transpose", [ctx], `${p}/ctxT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
    return add("Reshape", [`${p}/ctxT`, "shape_model"], `${p}/ctx3`);
  }

  /** The tanh approximation of GELU (GPT-2's `gelu_new`): x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))). */
  geluTanh(x: string, p: string): string {
    const add = this.add.bind(this);
    add("Mul", [x, x], `${p}/x2`);
    add("Mul", [`${p}/x2`, x], `${p}/x3`);
    add("Mul", [`${p}/x3`, this.scalar("gelu_cubic", 0.044715)], `${p}/cx3`);
    add("Add", [x, `${p}/cx3`], `${p}/inner`);
    add("Mul", [`${p}/inner`, this.scalar("gelu_scale", Math.sqrt(2 / Math.PI))], `${p}/scaled`);
    add("Tanh", [`${p}/scaled`], `${p}/tanh`);
    add("Add", [`${p}/tanh`, "one_f"], `${p}/one_tanh`);
    add("Mul", [x, `${p}/one_tanh`], `${p}/x_one_tanh`);
    return add("Mul", [`${p}/x_one_tanh`, this.scalar("half", 0.5)], `${p}/gelu`);
  }

  /** Exact GELU (GPT-NeoX): x/2 · (1 + erf(x / √2)). */
  geluErf(x: string, p: string): string {
    const add = this.add.bind(this);
    add("Div", [x, this.scalar("sqrt2", Math.SQRT2)], `${p}/gelu_a`);
    add("Erf", [`${p}/gelu_a`], `${p}/gelu_b`);
    add("Add", [`${p}/gelu_b`, "one_f"], `${p}/gelu_c`);
    add("Mul", [x, `${p}/gelu_c`], `${p}/gelu_d`);
    return add("Mul", [`${p}/gelu_d`, this.scalar("half", 0.5)], `${p}/gelu`);
  }

  /** One GPT-2 block: x + attn(ln_1 x), then + mlp(ln_2 ·). */
  gpt2Layer(x: string, p: string, i: number): string {
    const { spec, H, D } = this;
    const h = this.norm(x, `${p}.ln_1`);
    const qkv = this.linear(h, `${p}.attn.c_attn`, spec.hidden, 3 * H * D, true);
    this.i64("split_qkv_model", [H * D, H * D, H * D]);
    const [q, k, v] = this.split(qkv, "split_qkv_model", [`${p}/q`, `${p}/k`, `${p}/v`], 2);
    const ctx = this.attend(
      i,
      p,
      this.heads(q, H, `${p}/q_heads`),
      this.heads(k, H, `${p}/k_heads`),
      this.heads(v, H, `${p}/v_heads`),
    );
    const attn = this.linear(ctx, `${p}.attn.c_proj`, H * D, spec.hidden, true);
    const res = this.add("Add", [x, attn], `${p}/res1`);
    const up = this.linear(
      this.norm(res, `${p}.ln_2`),
      `${p}.mlp.c_fc`,
      spec.hidden,
      spec.intermediate,
      true,
    );
    const mlp = this.linear(
      this.geluTanh(up, p),
      `${p}.mlp.c_proj`,
      spec.intermediate,
      spec.hidden,
      true,
    );
    return this.add("Add", [res, mlp], `${p}/out`);
  }

  /**
   * One GPT-NeoX, Llama or OLMo 2 block: the attention (rotary q and k), its
   * output projection, the MLP and the residual adds (GPT-NeoX's parallel
   * residual adds both to x; OLMo 2 normalizes after attention and the MLP
   * instead of before).
   */
  layer(x: string, p: string, i: number, spec: NeoxSpec | LlamaSpec): string {
    const olmo2 = spec.kind === "olmo2";
    const h = olmo2 ? x : this.norm(x, `${p}.input_layernorm`);
    const [q, k, v] = spec.kind === "gpt_neox"
      ? this.fusedQkv(h, p, spec)
      : this.projectedQkv(h, p, spec);
    this.attend(i, p, this.rotary(q, `${p}/q_rot`), this.rotary(k, `${p}/k_rot`), v);
    const { attn, mlpIn } = this.attentionOut(x, p, spec);
    const h2 = olmo2 ? mlpIn : this.norm(mlpIn, `${p}.post_attention_layernorm`);
    const mlp = spec.kind === "gpt_neox" ? this.neoxMlp(h2, p) : this.gatedMlp(h2, p, spec);
    if (spec.kind === "gpt_neox" && spec.parallelResidual) {
      this.add("Add", [x, attn], `${p}/res1`);
      return this.add("Add", [`${p}/res1`, mlp], `${p}/out`);
    }
    return this.add("Add", [mlpIn, mlp], `${p}/out`);
  }

  /** GPT-NeoX's fused QKV, laid out per head: q, k, v as [B, H, S, D]. */
  fusedQkv(h: string, p: string, spec: NeoxSpec): string[] {
    const { H, D } = this;
    const qkv = this.linear(
      h,
      `${p}.attention.query_key_value`,
      spec.hidden,
      3 * H * D,
      spec.attentionBias,
    );
    this.add("Reshape", [qkv, this.i64("shape_qkv_heads", [0, 0, H, 3 * D])], `${p}/qkv4`);
    this.add("Transpose", [`${p}/qkv4`], `${p}/qkvT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
    this.i64("split_qkv", [D, D, D]);
    return this.split(`${p}/qkvT`, "split_qkv", [`${p}/q`, `${p}/k`, `${p}/v`]);
  }

  /** Llama's (and OLMo 2's, with QK-norm) separate q, k, v projections as heads. */
  projectedQkv(h: string, p: string, spec: LlamaSpec): string[] {
    const { H, KV, D } = this;
    const a = `${p}.self_attn`, b = spec.attentionBias, olmo2 = spec.kind === "olmo2";
    // OLMo 2's QK-norm: RMSNorm over the whole q and k projections, before the heads.
    const qk = (x: string, n: string, width: number) =>
      olmo2 ? this.norm(x, `${a}.${n}_norm`, width) : x;
    const q = this.heads(
      qk(this.linear(h, `${a}.q_proj`, spec.hidden, H * D, b), "q", H * D),
      H,
      `${p}/q_heads`,
    );
    const k = this.heads(
      qk(this.linear(h, `${a}.k_proj`, spec.hidden, KV * D, b), "k", KV * D),
      KV,
      `${p}/k_heads`,
    );
    const v = this.heads(this.linear(h, `${a}.v_proj`, spec.hidden, KV * D, b), KV, `${p}/v_heads`);
    return [q, k, v];
  }

  /** The attention's output projection and the MLP's input (the first residual add, or x). */
  attentionOut(x: string, p: string, spec: NeoxSpec | LlamaSpec): { attn: string; mlpIn: string } {
    const { H, D } = this;
    if (spec.kind === "gpt_neox") {
      const attn = this.linear(
        `${p}/ctx3`,
        `${p}.attention.dense`,
        H * D,
        spec.hidden,
        spec.attentionBias,
      );
      const mlpIn = spec.parallelResidual ? x : this.add("Add", [x, attn], `${p}/res1`);
      return { attn, mlpIn };
    }
    let attn = this.linear(
      `${p}/ctx3`,
      `${p}.self_attn.o_proj`,
      H * D,
      spec.hidden,
      spec.attentionBias,
    );
    if (spec.kind === "olmo2") attn = this.norm(attn, `${p}.post_attention_layernorm`);
    return { attn, mlpIn: this.add("Add", [x, attn], `${p}/res1`) };
  }

  /** GPT-NeoX's MLP: dense_h_to_4h, exact GELU, dense_4h_to_h. */
  neoxMlp(h: string, p: string): string {
    const spec = this.spec;
    const up = this.linear(h, `${p}.mlp.dense_h_to_4h`, spec.hidden, spec.intermediate, true);
    const gelu = this.geluErf(up, p);
    return this.linear(gelu, `${p}.mlp.dense_4h_to_h`, spec.intermediate, spec.hidden, true);
  }

  /** Llama's SwiGLU MLP (OLMo 2: its output normalized). */
  gatedMlp(h: string, p: string, spec: LlamaSpec): string {
    const m = `${p}.mlp`, b = spec.mlpBias;
    const gate = this.linear(h, `${m}.gate_proj`, spec.hidden, spec.intermediate, b);
    this.add("Sigmoid", [gate], `${p}/gate_sig`);
    this.add("Mul", [gate, `${p}/gate_sig`], `${p}/silu`);
    const up = this.linear(h, `${m}.up_proj`, spec.hidden, spec.intermediate, b);
    this.add("Mul", [`${p}/silu`, up], `${p}/glu`);
    const mlp = this.linear(`${p}/glu`, `${m}.down_proj`, spec.intermediate, spec.hidden, b);
    return spec.kind === "olmo2" ? this.norm(mlp, `${p}.post_feedforward_layernorm`) : mlp;
  }
}

/** A Cast node's `to` attribute. */
function to(t: number): Attribute[] {
  return [{ name: "to", i: t }];
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
