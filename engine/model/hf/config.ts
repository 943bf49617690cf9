/**
 * A Hugging Face `config.json` read into the architecture the graph builders
 * implement: GPT-NeoX (Pythia), Llama, OLMo 2 or GPT-2. A `model_type`, activation or setting
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

/**
 * Llama: RMSNorm, rotate-half RoPE over the whole head, GQA, SwiGLU. OLMo 2
 * (`olmo2`) is Llama with QK-norm (RMSNorm over the whole q and k projections)
 * and its norms after attention and the MLP instead of before.
 */
export interface LlamaSpec extends BaseSpec {
  kind: "llama" | "olmo2";
  attentionBias: boolean;
  mlpBias: boolean;
}

/**
 * GPT-2: learned absolute positions (no rotary: `rotaryDims` 0), LayerNorm
 * before attention and MLP, fused QKV `c_attn` (q, k, v one after the other),
 * Conv1D weights stored [in, out], biases everywhere, the tanh approximation of
 * GELU, tied unembedding.
 */
export interface Gpt2Spec extends BaseSpec {
  kind: "gpt2";
  /** Rows of the position table `wpe` (`n_positions`): the longest sequence. */
  positions: number;
}

/** An architecture the graph builders implement. */
export type ArchSpec = NeoxSpec | LlamaSpec | Gpt2Spec;

/** Reads an architecture from a parsed `config.json` (`path` names it in errors). */
export function archFromConfig(config: unknown, path: string): ArchSpec {
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new UserError(`${path}: not a JSON object.`);
  }
  const f = new ConfigFields(config as Record<string, unknown>, path);
  const type = f.c.model_type;
  if (type === "gpt_neox") return neoxSpec(f);
  if (type === "llama") return llamaSpec(f);
  if (type === "gpt2") return gpt2Spec(f);
  if (type === "olmo2") {
    // OLMo 2's MLP has no biases; its attention may (attention_bias), as Llama's.
    f.only("mlp_bias", [false], false);
    return { ...llamaSpec(f), kind: "olmo2" };
  }
  throw f.fail(
    "model_type",
    `is ${JSON.stringify(type)}, which is not implemented (supported: "gpt_neox", "llama", ` +
      `"olmo2", "gpt2"); ` +
      "export the model to ONNX with Optimum instead.",
  );
}

/** Typed, checked reads of `config.json`'s fields; every error names the file and the field. */
class ConfigFields {
  constructor(readonly c: Record<string, unknown>, readonly path: string) {}

  fail(field: string, what: string): UserError {
    return new UserError(`${this.path}: ${field} ${what}`);
  }

  int(field: string, fallback?: number): number {
    const v = this.c[field] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw this.fail(field, `is ${JSON.stringify(this.c[field])}; expected a positive integer.`);
    }
    return v;
  }

  num(field: string, fallback?: number): number {
    const v = this.c[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw this.fail(field, `is ${JSON.stringify(this.c[field])}; expected a positive number.`);
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.c[field] ?? fallback;
    if (typeof v !== "boolean") {
      throw this.fail(field, `is ${JSON.stringify(v)}; expected true or false.`);
    }
    return v;
  }

  /** The field is one of `allowed` (or absent, read as `fallback`). */
  only(field: string, allowed: unknown[], fallback: unknown): void {
    const v = this.c[field] ?? fallback;
    if (!allowed.includes(v)) {
      throw this.fail(
        field,
        `is ${JSON.stringify(v)}, which is not implemented (supported: ${
          allowed.map((a) => JSON.stringify(a)).join(", ")
        }); scoring it would compute a different model.`,
      );
    }
  }

  /** The field is absent (or null / false): a feature the builders do not implement. */
  absent(field: string): void {
    const v = this.c[field];
    if (v !== undefined && v !== null && v !== false) {
      throw this.fail(
        field,
        `is ${JSON.stringify(v)}, which is not implemented; scoring it would compute a ` +
          "different model.",
      );
    }
  }

  /** The sizes every architecture has. */
  base(): { vocab: number; hidden: number; layers: number; heads: number } {
    return {
      vocab: this.int("vocab_size"),
      hidden: this.int("hidden_size"),
      layers: this.int("num_hidden_layers"),
      heads: this.int("num_attention_heads"),
    };
  }
}

/** GPT-NeoX (Pythia): partial rotary, parallel or sequential residual, exact GELU. */
function neoxSpec(f: ConfigFields): NeoxSpec {
  f.only("hidden_act", ["gelu"], undefined);
  f.absent("rope_scaling");
  f.only("attention_dropout", [0, 0.0], 0);
  const base = f.base();
  const { hidden, heads } = base;
  if (hidden % heads) throw f.fail("hidden_size", `${hidden} is not a multiple of ${heads} heads.`);
  const headDim = hidden / heads;
  const pct = f.num("rotary_pct", 1);
  if (pct > 1) throw f.fail("rotary_pct", `is ${pct}; expected at most 1.`);
  const rotaryDims = Math.floor(headDim * pct);
  if (rotaryDims % 2) throw f.fail("rotary_pct", `gives ${rotaryDims} rotary dims, an odd number.`);
  return {
    kind: "gpt_neox",
    ...base,
    kvHeads: heads,
    headDim,
    intermediate: f.int("intermediate_size", 4 * hidden),
    rotaryDims,
    invFreq: inverseFrequencies(rotaryDims, f.num("rotary_emb_base", 10000)),
    eps: f.num("layer_norm_eps", 1e-5),
    tied: f.bool("tie_word_embeddings", false),
    parallelResidual: f.bool("use_parallel_residual", true),
    attentionBias: f.bool("attention_bias", true),
  };
}

/** Llama: grouped-query attention, full rotary (optionally llama3-scaled), SwiGLU, RMSNorm. */
function llamaSpec(f: ConfigFields): LlamaSpec {
  f.only("hidden_act", ["silu"], "silu");
  f.absent("sliding_window");
  f.absent("use_sliding_window");
  const base = f.base();
  const { hidden, heads } = base;
  const kvHeads = f.int("num_key_value_heads", heads);
  if (heads % kvHeads) {
    throw f.fail("num_key_value_heads", `${kvHeads} does not divide ${heads} attention heads.`);
  }
  const headDim = f.c.head_dim === undefined || f.c.head_dim === null
    ? hidden / heads
    : f.int("head_dim");
  if (!Number.isInteger(headDim) || headDim % 2) {
    throw f.fail("head_dim", `is ${headDim}; expected an even integer.`);
  }
  return {
    kind: "llama",
    ...base,
    kvHeads,
    headDim,
    intermediate: f.int("intermediate_size"),
    rotaryDims: headDim,
    invFreq: llamaFrequencies(f, headDim),
    eps: f.num("rms_norm_eps", 1e-6),
    tied: f.bool("tie_word_embeddings", false),
    attentionBias: f.bool("attention_bias", false),
    mlpBias: f.bool("mlp_bias", false),
  };
}

/**
 * GPT-2 (`n_embd`, `n_layer`, `n_head`, `n_inner`, `n_positions`): what
 * transformers' GPT2LMHeadModel computes in float32. `reorder_and_upcast_attn`
 * only changes float16 rounding, so either value computes the same here.
 */
function gpt2Spec(f: ConfigFields): Gpt2Spec {
  f.only("activation_function", ["gelu_new", "gelu_pytorch_tanh"], "gelu_new");
  f.only("scale_attn_weights", [true], true);
  f.only("scale_attn_by_inverse_layer_idx", [false], false);
  f.absent("add_cross_attention");
  const hidden = f.int("n_embd"), heads = f.int("n_head");
  if (hidden % heads) throw f.fail("n_embd", `${hidden} is not a multiple of ${heads} heads.`);
  const inner = f.c.n_inner === undefined || f.c.n_inner === null ? 4 * hidden : f.int("n_inner");
  return {
    kind: "gpt2",
    vocab: f.int("vocab_size"),
    hidden,
    layers: f.int("n_layer"),
    heads,
    kvHeads: heads,
    headDim: hidden / heads,
    intermediate: inner,
    rotaryDims: 0,
    invFreq: [],
    eps: f.num("layer_norm_epsilon", 1e-5),
    tied: f.bool("tie_word_embeddings", true),
    positions: f.int("n_positions", 1024),
  };
}

/** Llama's rotary frequencies from `rope_theta`, scaled when `rope_scaling` is of type llama3. */
function llamaFrequencies(f: ConfigFields, headDim: number): number[] {
  const invFreq = inverseFrequencies(headDim, f.num("rope_theta", 10000));
  const scaling = f.c.rope_scaling;
  if (scaling === undefined || scaling === null) return invFreq;
  if (typeof scaling !== "object") throw f.fail("rope_scaling", "is not an object.");
  const s = scaling as Record<string, unknown>;
  const kind = s.rope_type ?? s.type;
  if (kind === "llama3") return llama3Scaling(invFreq, s, f.path);
  if (kind === "default") return invFreq;
  throw f.fail(
    "rope_scaling.rope_type",
    `is ${JSON.stringify(kind)}, which is not implemented (supported: "llama3", ` +
      `"default"); scoring it would compute a different model.`,
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
