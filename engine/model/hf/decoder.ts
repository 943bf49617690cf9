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
import type { ArchSpec } from "./config.ts";

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
  const f16 = dtype === "float16";
  const T = f16 ? DataType.FLOAT16 : DataType.FLOAT;
  const D = spec.headDim, H = spec.heads, KV = spec.kvHeads, G = H / KV;
  const rot = spec.rotaryDims;
  const nodes: Node[] = [];
  const small: Tensor[] = [];
  const add = (op: string, inputs: string[], out: string, attrs: Attribute[] = []) => {
    nodes.push(node(op, inputs, [out], attrs));
    return out;
  };
  const push = (n: Node) => nodes.push(n);
  const i64 = (name: string, v: number[], dims = [v.length]) => {
    small.push(int64Tensor(name, dims, v));
    return name;
  };
  const scalar = (name: string, v: number, type = T) => {
    const t = floatTensor(name, [], [v]);
    small.push(
      type === DataType.FLOAT16 ? { ...t, dataType: type, raw: halfBytes(Float32Array.of(v)) } : t,
    );
    return name;
  };
  const to = (t: number): Attribute[] => [{ name: "to", i: t }];
  const w = (name: string, shape: number[], use: WeightUse) => weight(name, shape, use, push);

  i64("zero", [0], []);
  i64("one", [1], []);
  i64("ax1", [1], []);
  i64("ax2", [2], []);
  i64("shape_col", [-1, 1]);
  i64("shape_mask", [0, 1, 1, -1]);
  if (rot) i64("shape_rot", [0, 1, -1, rot]);
  i64("shape_pos", [0, 0, 1]);
  i64("shape_model", [0, 0, H * D]);
  if (rot) i64("split_half", [rot / 2, rot / 2]);
  if (rot && rot < D) i64("split_rot", [rot, D - rot]);
  scalar("fzero", 0);
  scalar("fneg", f16 ? -65504 : -3.4e38);
  scalar("attn_scale", 1 / Math.sqrt(D));
  scalar("one_f", 1);
  if (rot) small.push(floatTensor("inv_freq", [rot / 2], spec.invFreq));

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
    { name: "logits", elemType: T, dims: ["batch_size", "sequence_length", spec.vocab] },
  ];
  // Causal + padding mask as an additive bias [B, 1, S, P + S] (tiled to [B, 1, G·S, P + S]).
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
  const bias = G > 1 ? add("Tile", ["bias1", i64("tile_groups", [1, 1, G, 1])], "bias") : "bias1";
  // Rotary tables from position_ids, in float32 (cast to the model's type, as HF does).
  if (rot) {
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
  }

  const neox = spec.kind === "gpt_neox", gpt2 = spec.kind === "gpt2";
  const linear = (x: string, name: string, nIn: number, nOut: number, bias: boolean) => {
    const weight = gpt2
      ? w(`${name}.weight`, [nIn, nOut], "conv1d")
      : w(`${name}.weight`, [nOut, nIn], "matrix");
    const y = add("MatMul", [x, weight], `${name}/mm`);
    return bias ? add("Add", [y, w(`${name}.bias`, [nOut], "vector")], `${name}/out`) : y;
  };
  const olmo2 = spec.kind === "olmo2";
  const norm = (x: string, name: string, width = spec.hidden) => {
    if (spec.kind === "gpt_neox" || spec.kind === "gpt2") {
      return add(
        "LayerNormalization",
        [
          x,
          w(`${name}.weight`, [width], "vector"),
          w(`${name}.bias`, [width], "vector"),
        ],
        `${name}/out`,
        [{ name: "axis", i: -1 }, { name: "epsilon", f: spec.eps }],
      );
    }
    // RMSNorm in float32: x · 1/√(mean(x²) + eps), then the weight (in the model's type).
    const x32 = f16 ? add("Cast", [x], `${name}/x32`, to(DataType.FLOAT)) : x;
    add("Mul", [x32, x32], `${name}/sq`);
    add("ReduceMean", [`${name}/sq`], `${name}/var`, [{ name: "axes", ints: [-1] }]);
    add("Add", [`${name}/var`, scalar(`${name}/eps`, spec.eps, DataType.FLOAT)], `${name}/var_eps`);
    add("Sqrt", [`${name}/var_eps`], `${name}/rms`);
    add("Div", [x32, `${name}/rms`], `${name}/normed32`);
    const normed = f16
      ? add("Cast", [`${name}/normed32`], `${name}/normed`, to(T))
      : `${name}/normed32`;
    return add("Mul", [normed, w(`${name}.weight`, [width], "vector")], `${name}/out`);
  };
  const split = (x: string, sizes: string, outs: string[], axis = 3) => {
    nodes.push(node("Split", [x, sizes], outs, [{ name: "axis", i: axis }]));
    return outs;
  };
  const rotary = (x: string, p: string) => {
    const [xr, xp] = rot < D ? split(x, "split_rot", [`${p}_r`, `${p}_p`]) : [x, ""];
    const [x1, x2] = split(xr, "split_half", [`${p}_1`, `${p}_2`]);
    add("Neg", [x2], `${p}_n2`);
    add("Concat", [`${p}_n2`, x1], `${p}_rh`, [{ name: "axis", i: 3 }]);
    add("Mul", [xr, "cos"], `${p}_c`);
    add("Mul", [`${p}_rh`, "sin"], `${p}_s`);
    const rotated = add("Add", [`${p}_c`, `${p}_s`], `${p}_rot`);
    return xp ? add("Concat", [rotated, xp], `${p}_out`, [{ name: "axis", i: 3 }]) : rotated;
  };
  /** [B, S, heads·D] → [B, heads, S, D]. */
  const heads = (x: string, n: number, p: string) => {
    add("Reshape", [x, i64(`shape_${n}_heads`, [0, 0, n, D])], `${p}4`);
    return add("Transpose", [`${p}4`], `${p}T`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
  };

  /** Attention over [B, heads, S, D] q, k, v: the cache's Concat, scores, softmax, context [B, S, H·D]. */
  const attend = (i: number, p: string, q: string, k: string, v: string) => {
    const kAll = `present.${i}.key`, vAll = `present.${i}.value`;
    for (const kind of ["key", "value"]) {
      inputs.push({
        name: `past_key_values.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", KV, "past_sequence_length", D],
      });
      outputs.push({
        name: `present.${i}.${kind}`,
        elemType: T,
        dims: ["batch_size", KV, "past_sequence_length + sequence_length", D],
      });
    }
    add("Concat", [`past_key_values.${i}.key`, k], kAll, [{ name: "axis", i: 2 }]);
    add("Concat", [`past_key_values.${i}.value`, v], vAll, [{ name: "axis", i: 2 }]);
    let qs = add("Mul", [q, "attn_scale"], `${p}/qs`);
    // Grouped-query attention: the G query heads of a key/value head as one [G·S, D] block.
    if (G > 1) qs = add("Reshape", [qs, i64("shape_groups", [0, KV, -1, D])], `${p}/qg`);
    add("Transpose", [kAll], `${p}/kT`, [{ name: "perm", ints: [0, 1, 3, 2] }]);
    add("MatMul", [qs, `${p}/kT`], `${p}/scores`);
    add("Add", [`${p}/scores`, bias], `${p}/biased`);
    add("Softmax", [`${p}/biased`], `${p}/probs`, [{ name: "axis", i: -1 }]);
    let ctx = add("MatMul", [`${p}/probs`, vAll], `${p}/ctx`);
    if (G > 1) ctx = add("Reshape", [ctx, i64("shape_ungroup", [0, H, -1, D])], `${p}/ctx_h`);
    add("Transpose", [ctx], `${p}/ctxT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
    return add("Reshape", [`${p}/ctxT`, "shape_model"], `${p}/ctx3`);
  };
  /** The tanh approximation of GELU (GPT-2's `gelu_new`): x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))). */
  const geluTanh = (x: string, p: string) => {
    add("Mul", [x, x], `${p}/x2`);
    add("Mul", [`${p}/x2`, x], `${p}/x3`);
    add("Mul", [`${p}/x3`, scalar("gelu_cubic", 0.044715)], `${p}/cx3`);
    add("Add", [x, `${p}/cx3`], `${p}/inner`);
    add("Mul", [`${p}/inner`, scalar("gelu_scale", Math.sqrt(2 / Math.PI))], `${p}/scaled`);
    add("Tanh", [`${p}/scaled`], `${p}/tanh`);
    add("Add", [`${p}/tanh`, "one_f"], `${p}/one_tanh`);
    add("Mul", [x, `${p}/one_tanh`], `${p}/x_one_tanh`);
    return add("Mul", [`${p}/x_one_tanh`, scalar("half", 0.5)], `${p}/gelu`);
  };
  /** One GPT-2 block: x + attn(ln_1 x), then + mlp(ln_2 ·). */
  const gpt2Layer = (x: string, p: string, i: number) => {
    const h = norm(x, `${p}.ln_1`);
    const qkv = linear(h, `${p}.attn.c_attn`, spec.hidden, 3 * H * D, true);
    i64("split_qkv_model", [H * D, H * D, H * D]);
    const [q, k, v] = split(qkv, "split_qkv_model", [`${p}/q`, `${p}/k`, `${p}/v`], 2);
    const ctx = attend(
      i,
      p,
      heads(q, H, `${p}/q_heads`),
      heads(k, H, `${p}/k_heads`),
      heads(v, H, `${p}/v_heads`),
    );
    const attn = linear(ctx, `${p}.attn.c_proj`, H * D, spec.hidden, true);
    const res = add("Add", [x, attn], `${p}/res1`);
    const up = linear(
      norm(res, `${p}.ln_2`),
      `${p}.mlp.c_fc`,
      spec.hidden,
      spec.intermediate,
      true,
    );
    const mlp = linear(geluTanh(up, p), `${p}.mlp.c_proj`, spec.intermediate, spec.hidden, true);
    return add("Add", [res, mlp], `${p}/out`);
  };

  const embedName = neox
    ? "gpt_neox.embed_in.weight"
    : gpt2
    ? "transformer.wte.weight"
    : "model.embed_tokens.weight";
  const prefix = neox ? "gpt_neox.layers" : gpt2 ? "transformer.h" : "model.layers";
  let x = add("Gather", [w(embedName, [spec.vocab, spec.hidden], "embedding"), "input_ids"], "x0");
  if (spec.kind === "gpt2") {
    const wpe = w("transformer.wpe.weight", [spec.positions, spec.hidden], "embedding");
    add("Gather", [wpe, "position_ids"], "positions");
    x = add("Add", [x, "positions"], "x0_pos");
  }
  for (let i = 0; i < spec.layers; i++) {
    const p = `${prefix}.${i}`;
    if (spec.kind === "gpt2") {
      x = gpt2Layer(x, p, i);
      continue;
    }
    // OLMo 2 normalizes after attention and the MLP instead of before.
    const h = olmo2 ? x : norm(x, `${p}.input_layernorm`);
    let q: string, k: string, v: string;
    if (spec.kind === "gpt_neox") {
      const qkv = linear(
        h,
        `${p}.attention.query_key_value`,
        spec.hidden,
        3 * H * D,
        spec.attentionBias,
      );
      add("Reshape", [qkv, i64("shape_qkv_heads", [0, 0, H, 3 * D])], `${p}/qkv4`);
      add("Transpose", [`${p}/qkv4`], `${p}/qkvT`, [{ name: "perm", ints: [0, 2, 1, 3] }]);
      i64("split_qkv", [D, D, D]);
      [q, k, v] = split(`${p}/qkvT`, "split_qkv", [`${p}/q`, `${p}/k`, `${p}/v`]);
    } else {
      const a = `${p}.self_attn`, b = spec.attentionBias;
      // OLMo 2's QK-norm: RMSNorm over the whole q and k projections, before the heads.
      const qk = (x: string, n: string, width: number) =>
        olmo2 ? norm(x, `${a}.${n}_norm`, width) : x;
      q = heads(qk(linear(h, `${a}.q_proj`, spec.hidden, H * D, b), "q", H * D), H, `${p}/q_heads`);
      k = heads(
        qk(linear(h, `${a}.k_proj`, spec.hidden, KV * D, b), "k", KV * D),
        KV,
        `${p}/k_heads`,
      );
      v = heads(linear(h, `${a}.v_proj`, spec.hidden, KV * D, b), KV, `${p}/v_heads`);
    }
    attend(i, p, rotary(q, `${p}/q_rot`), rotary(k, `${p}/k_rot`), v);
    let attn: string, mlpIn: string;
    if (spec.kind === "gpt_neox") {
      attn = linear(`${p}/ctx3`, `${p}.attention.dense`, H * D, spec.hidden, spec.attentionBias);
      if (spec.parallelResidual) mlpIn = x;
      else mlpIn = add("Add", [x, attn], `${p}/res1`);
    } else {
      attn = linear(`${p}/ctx3`, `${p}.self_attn.o_proj`, H * D, spec.hidden, spec.attentionBias);
      if (olmo2) attn = norm(attn, `${p}.post_attention_layernorm`);
      mlpIn = add("Add", [x, attn], `${p}/res1`);
    }
    const h2 = olmo2 ? mlpIn : norm(mlpIn, `${p}.post_attention_layernorm`);
    let mlp: string;
    if (spec.kind === "gpt_neox") {
      const up = linear(h2, `${p}.mlp.dense_h_to_4h`, spec.hidden, spec.intermediate, true);
      add("Div", [up, scalar("sqrt2", Math.SQRT2)], `${p}/gelu_a`);
      add("Erf", [`${p}/gelu_a`], `${p}/gelu_b`);
      add("Add", [`${p}/gelu_b`, "one_f"], `${p}/gelu_c`);
      add("Mul", [up, `${p}/gelu_c`], `${p}/gelu_d`);
      add("Mul", [`${p}/gelu_d`, scalar("half", 0.5)], `${p}/gelu`);
      mlp = linear(`${p}/gelu`, `${p}.mlp.dense_4h_to_h`, spec.intermediate, spec.hidden, true);
    } else {
      const m = `${p}.mlp`, b = spec.mlpBias;
      const gate = linear(h2, `${m}.gate_proj`, spec.hidden, spec.intermediate, b);
      add("Sigmoid", [gate], `${p}/gate_sig`);
      add("Mul", [gate, `${p}/gate_sig`], `${p}/silu`);
      add(
        "Mul",
        [`${p}/silu`, linear(h2, `${m}.up_proj`, spec.hidden, spec.intermediate, b)],
        `${p}/glu`,
      );
      mlp = linear(`${p}/glu`, `${m}.down_proj`, spec.intermediate, spec.hidden, b);
      if (olmo2) mlp = norm(mlp, `${p}.post_feedforward_layernorm`);
    }
    if (spec.kind === "gpt_neox" && spec.parallelResidual) {
      add("Add", [x, attn], `${p}/res1`);
      x = add("Add", [`${p}/res1`, mlp], `${p}/out`);
    } else x = add("Add", [mlpIn, mlp], `${p}/out`);
  }
  const final = norm(
    x,
    neox ? "gpt_neox.final_layer_norm" : gpt2 ? "transformer.ln_f" : "model.norm",
  );
  const unembedName = spec.tied ? embedName : neox ? "embed_out.weight" : "lm_head.weight";
  add("MatMul", [final, w(unembedName, [spec.vocab, spec.hidden], "unembedding")], "logits");
  // Constants declared more than once (shared shapes) are kept once.
  const seen = new Set<string>();
  const initializers = small.filter((t) => !seen.has(t.name) && seen.add(t.name));
  return { nodes, initializers, inputs, outputs };
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
