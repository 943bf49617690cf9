/**
 * Builds tiny causal language models from scratch with random weights
 * (embeddings + learned positions, attention layers with a KV cache, tanh
 * MLPs, an unembedding), exported with each interface the adapter supports.
 *
 * @module
 */
import { seededRandom } from "../engine/random.ts";
import {
  type Attribute,
  DataType,
  encodeModel,
  floatTensor,
  type Graph,
  int64Tensor,
  type Node,
  node,
  type Tensor,
  type ValueInfo,
} from "../engine/model/onnx_proto.ts";

/** Options of {@link buildTinyLM}. */
export interface TinyOptions {
  variant: "with-past" | "with-past-no-positions" | "merged" | "no-cache";
  layers?: number;
  heads?: number;
  headDim?: number;
  vocab?: number;
  seed?: number;
  /** Emit float16 logits (a Cast after the unembedding). */
  fp16Logits?: boolean;
  /** Take and return the KV cache as float16. */
  fp16Cache?: boolean;
  /** Add a bias after the unembedding (so it is not a bare MatMul). */
  unembedBias?: boolean;
  /** Store weights as external data files (returned in `files`). */
  external?: boolean;
  /**
   * Take `attention_mask` but apply only the causal mask (as an export that
   * assumes no padding would): masked cache slots are then attended to.
   */
  ignoreMask?: boolean;
  /** Scale of the random weights. */
  scale?: number;
}

/** The model bytes and, for external data, the files to write beside it. */
export interface TinyModel {
  bytes: Uint8Array;
  files: Map<string, Uint8Array>;
}

/** A seeded uniform random generator in [-1, 1) (engine/random.ts). */
export function rng(seed: number): () => number {
  const uniform = seededRandom(seed);
  return () => uniform() * 2 - 1;
}

/** Builds a tiny causal LM (defaults: 2 layers, 2 heads × 4, vocabulary 37). */
export function buildTinyLM(o: TinyOptions): TinyModel {
  const L = o.layers ?? 2, H = o.heads ?? 2, D = o.headDim ?? 4, V = o.vocab ?? 37;
  const d = H * D, maxPos = 256, scale = o.scale ?? 0.6;
  const rand = rng(o.seed ?? 1);
  const cache = o.variant !== "no-cache";
  const nodes: Node[] = [];
  const inits: Tensor[] = [];
  const files = new Map<string, Uint8Array>();
  const weight = (name: string, dims: number[], s = scale) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const t = floatTensor(name, dims, Array.from({ length: n }, () => rand() * s));
    if (o.external) {
      const loc = `weights/${name.replaceAll("/", "_")}.bin`;
      files.set(loc, t.raw!);
      inits.push({ ...t, raw: undefined, externalLocation: loc });
    } else inits.push(t);
    return name;
  };
  const add = (op: string, inputs: string[], out: string, attrs: Attribute[] = []) => {
    nodes.push(node(op, inputs, [out], attrs));
    return out;
  };
  const i64 = (name: string, dims: number[], v: number[]) => {
    inits.push(int64Tensor(name, dims, v));
    return name;
  };
  i64("zero", [], [0]);
  i64("one", [], [1]);
  i64("ax1", [], [1]);
  i64("shape_bshd", [4], [0, 0, H, D]);
  i64("shape_bsd", [3], [0, 0, d]);
  i64("shape_col", [2], [-1, 1]);
  i64("shape_mask", [4], [0, 1, 1, -1]);
  inits.push(floatTensor("fzero", [], [0]), floatTensor("fneg", [], [-1e9]));
  inits.push(floatTensor("attn_scale", [], [1 / Math.sqrt(D)]));

  const inputs: ValueInfo[] = [
    { name: "input_ids", elemType: DataType.INT64, dims: ["batch", "seq"] },
    { name: "attention_mask", elemType: DataType.INT64, dims: ["batch", "total"] },
  ];
  const hasPositions = o.variant === "with-past" || o.variant === "merged";
  if (hasPositions) {
    inputs.push({ name: "position_ids", elemType: DataType.INT64, dims: ["batch", "seq"] });
  }
  const outputs: ValueInfo[] = [{
    name: "logits",
    elemType: o.fp16Logits ? DataType.FLOAT16 : DataType.FLOAT,
    dims: ["batch", "seq", V],
  }];
  add("Shape", ["input_ids"], "ids_shape");
  add("Gather", ["ids_shape", "ax1"], "S");
  if (cache) {
    i64("ax2", [], [2]);
    add("Shape", ["past_key_values.0.key"], "past_shape");
    add("Gather", ["past_shape", "ax2"], "P");
  } else add("Identity", ["zero"], "P");
  add("Add", ["P", "S"], "T");
  add("Range", ["zero", "T", "one"], "key_idx");
  add("Range", ["P", "T", "one"], "query_idx");
  add("Reshape", ["query_idx", "shape_col"], "query_col");
  add("Greater", ["key_idx", "query_col"], "future");
  add("Not", ["future"], "causal");
  add("Cast", ["attention_mask"], "mask_bool", [{ name: "to", i: DataType.BOOL }]);
  add("Reshape", ["mask_bool", "shape_mask"], "mask4");
  add("And", ["causal", o.ignoreMask ? "causal" : "mask4"], "allowed");
  add("Where", ["allowed", "fzero", "fneg"], "bias");

  weight("emb", [V, d], 1);
  weight("pos", [maxPos, d], 0.3);
  add("Gather", ["emb", "input_ids"], "tok_emb");
  const positions = hasPositions ? "position_ids" : "query_idx";
  add("Gather", ["pos", positions], "pos_emb");
  let x = add("Add", ["tok_emb", "pos_emb"], "x0");
  for (let i = 0; i < L; i++) {
    const p = (s: string) => `l${i}/${s}`;
    const heads = (w: string) => {
      add("MatMul", [x, weight(p(w), [d, d])], p(`${w}_out`));
      add("Reshape", [p(`${w}_out`), "shape_bshd"], p(`${w}_bshd`));
      return add("Transpose", [p(`${w}_bshd`)], p(`${w}_h`), [{
        name: "perm",
        ints: [0, 2, 1, 3],
      }]);
    };
    const q = heads("wq");
    let k = heads("wk");
    let v = heads("wv");
    if (cache) {
      const cacheType = o.fp16Cache ? DataType.FLOAT16 : DataType.FLOAT;
      const kv = { key: k, value: v };
      for (const kind of ["key", "value"] as const) {
        const past = `past_key_values.${i}.${kind}`, present = `present.${i}.${kind}`;
        inputs.push({ name: past, elemType: cacheType, dims: ["batch", H, "past", D] });
        outputs.push({ name: present, elemType: cacheType, dims: ["batch", H, "total", D] });
        if (o.fp16Cache) {
          // The cache holds float16: attention always uses the rounded values.
          const to = (t: number) => [{ name: "to", i: t }];
          add("Cast", [past], p(`${kind}_past32`), to(DataType.FLOAT));
          add("Concat", [p(`${kind}_past32`), kv[kind]], p(`${kind}_all32`), [{
            name: "axis",
            i: 2,
          }]);
          add("Cast", [p(`${kind}_all32`)], present, to(DataType.FLOAT16));
          kv[kind] = add("Cast", [present], p(`${kind}_rounded`), to(DataType.FLOAT));
        } else kv[kind] = add("Concat", [past, kv[kind]], present, [{ name: "axis", i: 2 }]);
      }
      k = kv.key;
      v = kv.value;
    }
    add("Transpose", [k], p("kT"), [{ name: "perm", ints: [0, 1, 3, 2] }]);
    add("MatMul", [q, p("kT")], p("scores"));
    add("Mul", [p("scores"), "attn_scale"], p("scaled"));
    add("Add", [p("scaled"), "bias"], p("biased"));
    add("Softmax", [p("biased")], p("probs"), [{ name: "axis", i: -1 }]);
    add("MatMul", [p("probs"), v], p("ctx"));
    add("Transpose", [p("ctx")], p("ctx_t"), [{ name: "perm", ints: [0, 2, 1, 3] }]);
    add("Reshape", [p("ctx_t"), "shape_bsd"], p("ctx_m"));
    add("MatMul", [p("ctx_m"), weight(p("wo"), [d, d])], p("attn"));
    add("Add", [x, p("attn")], p("x1"));
    add("MatMul", [p("x1"), weight(p("w1"), [d, 4 * d])], p("h"));
    add("Tanh", [p("h")], p("ht"));
    add("MatMul", [p("ht"), weight(p("w2"), [4 * d, d], scale / 2)], p("mlp"));
    x = add("Add", [p("x1"), p("mlp")], p("x2"));
  }
  weight("unembed", [d, V], 1);
  const logits32 = o.fp16Logits ? "logits_f32" : "logits";
  if (o.unembedBias) {
    add("MatMul", [x, "unembed"], "unembedded");
    add("Add", ["unembedded", weight("unembed_bias", [V], 1)], logits32);
  } else add("MatMul", [x, "unembed"], logits32);
  if (o.fp16Logits) add("Cast", [logits32], "logits", [{ name: "to", i: DataType.FLOAT16 }]);
  if (o.variant === "merged") {
    inputs.push({ name: "use_cache_branch", elemType: DataType.BOOL, dims: [1] });
  }
  const graph: Graph = { name: "tiny", nodes, inputs, outputs, initializers: inits };
  const bytes = encodeModel({ irVersion: 8, opsets: [{ domain: "", version: 17 }], graph });
  return { bytes, files };
}

/** Writes a tiny model (and its external files, and optionally a config.json) into `dir`. */
export async function writeTinyLM(
  dir: string,
  name: string,
  o: TinyOptions,
  config?: Record<string, unknown>,
): Promise<string> {
  const { bytes, files } = buildTinyLM(o);
  await Deno.mkdir(dir, { recursive: true });
  for (const [loc, data] of files) {
    await Deno.mkdir(`${dir}/${loc.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeFile(`${dir}/${loc}`, data);
  }
  if (config) await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  await Deno.writeFile(`${dir}/${name}`, bytes);
  return `${dir}/${name}`;
}

/** A temporary folder removed when the `await using` scope ends. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "engine-test-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}
