/**
 * A Hugging Face `config.json` read into the architecture the graph builders
 * implement: GPT-NeoX (Pythia) or Llama. A `model_type`, activation or setting
 * the builders do not implement is a UserError naming `config.json` and the
 * field, never a silently different model.
 *
 * @module
 */
import { UserError } from "../../errors.ts";

/** The parts both architectures share. */
interface BaseSpec {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (grouped-query attention; = heads without it). */
  kvHeads: number;
  headDim: number;
  intermediate: number;
  /** Rotary dims per head (even; rotate-half over the first `rotaryDims`). */
  rotaryDims: number;
  /** Inverse frequencies of the rotary dims' pairs, `rotaryDims / 2` of them. */
  invFreq: number[];
  eps: number;
  /** The unembedding is the input embedding. */
  tied: boolean;
}

/** GPT-NeoX: LayerNorm, fused per-head QKV, partial rotary, exact GELU. */
export interface NeoxSpec extends BaseSpec {
  kind: "gpt_neox";
  /** x + attn(ln1 x) + mlp(ln2 x) instead of sequential residuals. */
  parallelResidual: boolean;
  attentionBias: boolean;
}

/** Llama: RMSNorm, rotate-half RoPE over the whole head, GQA, SwiGLU. */
export interface LlamaSpec extends BaseSpec {
  kind: "llama";
  attentionBias: boolean;
  mlpBias: boolean;
}

/** An architecture the graph builders implement. */
export type ArchSpec = NeoxSpec | LlamaSpec;

/** Reads an architecture from a parsed `config.json` (`path` names it in errors). */
export function archFromConfig(config: unknown, path: string): ArchSpec {
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new UserError(`${path}: not a JSON object.`);
  }
  const c = config as Record<string, unknown>;
  const fail = (field: string, what: string) => new UserError(`${path}: ${field} ${what}`);
  const int = (field: string, fallback?: number): number => {
    const v = c[field] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw fail(field, `is ${JSON.stringify(c[field])}; expected a positive integer.`);
    }
    return v;
  };
  const num = (field: string, fallback?: number): number => {
    const v = c[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw fail(field, `is ${JSON.stringify(c[field])}; expected a positive number.`);
    }
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = c[field] ?? fallback;
    if (typeof v !== "boolean") {
      throw fail(field, `is ${JSON.stringify(v)}; expected true or false.`);
    }
    return v;
  };
  const only = (field: string, allowed: unknown[], fallback: unknown) => {
    const v = c[field] ?? fallback;
    if (!allowed.includes(v)) {
      throw fail(
        field,
        `is ${JSON.stringify(v)}, which is not implemented (supported: ${
          allowed.map((a) => JSON.stringify(a)).join(", ")
        }); scoring it would compute a different model.`,
      );
    }
  };
  const absent = (field: string) => {
    if (c[field] !== undefined && c[field] !== null && c[field] !== false) {
      throw fail(
        field,
        `is ${JSON.stringify(c[field])}, which is not implemented; scoring it would compute a ` +
          "different model.",
      );
    }
  };
  const type = c.model_type;
  const hidden = int("hidden_size");
  const heads = int("num_attention_heads");
  const base = {
    vocab: int("vocab_size"),
    hidden,
    layers: int("num_hidden_layers"),
    heads,
  };
  if (type === "gpt_neox") {
    only("hidden_act", ["gelu"], undefined);
    absent("rope_scaling");
    only("attention_dropout", [0, 0.0], 0);
    if (hidden % heads) throw fail("hidden_size", `${hidden} is not a multiple of ${heads} heads.`);
    const headDim = hidden / heads;
    const pct = num("rotary_pct", 1);
    if (pct > 1) throw fail("rotary_pct", `is ${pct}; expected at most 1.`);
    const rotaryDims = Math.floor(headDim * pct);
    if (rotaryDims % 2) throw fail("rotary_pct", `gives ${rotaryDims} rotary dims, an odd number.`);
    const theta = num("rotary_emb_base", 10000);
    return {
      kind: "gpt_neox",
      ...base,
      kvHeads: heads,
      headDim,
      intermediate: int("intermediate_size", 4 * hidden),
      rotaryDims,
      invFreq: inverseFrequencies(rotaryDims, theta),
      eps: num("layer_norm_eps", 1e-5),
      tied: bool("tie_word_embeddings", false),
      parallelResidual: bool("use_parallel_residual", true),
      attentionBias: bool("attention_bias", true),
    };
  }
  if (type === "llama") {
    only("hidden_act", ["silu"], "silu");
    absent("sliding_window");
    absent("use_sliding_window");
    const kvHeads = int("num_key_value_heads", heads);
    if (heads % kvHeads) {
      throw fail("num_key_value_heads", `${kvHeads} does not divide ${heads} attention heads.`);
    }
    const headDim = c.head_dim === undefined || c.head_dim === null
      ? hidden / heads
      : int("head_dim");
    if (!Number.isInteger(headDim) || headDim % 2) {
      throw fail("head_dim", `is ${headDim}; expected an even integer.`);
    }
    const theta = num("rope_theta", 10000);
    let invFreq = inverseFrequencies(headDim, theta);
    const scaling = c.rope_scaling;
    if (scaling !== undefined && scaling !== null) {
      if (typeof scaling !== "object") throw fail("rope_scaling", "is not an object.");
      const s = scaling as Record<string, unknown>;
      const kind = s.rope_type ?? s.type;
      if (kind === "llama3") invFreq = llama3Scaling(invFreq, s, path);
      else if (kind !== "default") {
        throw fail(
          "rope_scaling.rope_type",
          `is ${JSON.stringify(kind)}, which is not implemented (supported: "llama3", ` +
            `"default"); scoring it would compute a different model.`,
        );
      }
    }
    return {
      kind: "llama",
      ...base,
      kvHeads,
      headDim,
      intermediate: int("intermediate_size"),
      rotaryDims: headDim,
      invFreq,
      eps: num("rms_norm_eps", 1e-6),
      tied: bool("tie_word_embeddings", false),
      attentionBias: bool("attention_bias", false),
      mlpBias: bool("mlp_bias", false),
    };
  }
  throw fail(
    "model_type",
    `is ${JSON.stringify(type)}, which is not implemented (supported: "gpt_neox", "llama"); ` +
      "export the model to ONNX with Optimum instead.",
  );
}

/** 1 / θ^(2i / dims) for i < dims / 2, computed in float64 then rounded to float32 (as torch). */
function inverseFrequencies(dims: number, theta: number): number[] {
  return Array.from({ length: dims / 2 }, (_, i) => 1 / theta ** ((2 * i) / dims));
}

/** Llama 3's frequency-dependent scaling of the inverse frequencies (transformers' `_compute_llama3_parameters`). */
function llama3Scaling(inv: number[], s: Record<string, unknown>, path: string): number[] {
  const field = (k: string) => {
    const v = s[k];
    if (typeof v !== "number" || !(v > 0)) {
      throw new UserError(
        `${path}: rope_scaling.${k} is ${JSON.stringify(v)}; expected a positive number.`,
      );
    }
    return v;
  };
  const factor = field("factor");
  const low = field("low_freq_factor");
  const high = field("high_freq_factor");
  const original = field("original_max_position_embeddings");
  const lowWavelen = original / low, highWavelen = original / high;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / factor;
    const smooth = (original / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
