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
  DataType,
  encodeGraph,
  encodeModel,
  encodeTensor,
  fieldHeader,
} from "../engine/model/onnx_proto.ts";
import { archFromConfig } from "../engine/model/hf/config.ts";
import { decoderGraph, halfBytes, type WeightSource } from "../engine/model/hf/decoder.ts";

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
export interface Weight {
  name: string;
  dims: number[];
  /** Uniform in ±a·√3 (std a); 0 = zeros; null = ones. */
  std: number | null;
  /** Generated [in, out]: Hugging Face stores the transpose. */
  transposed: boolean;
}

/**
 * Writes a random-init GPT-NeoX into `dir` (HF layout: `config.json`,
 * `generation_config.json`, `onnx/model[_fp16].onnx` [+ `_data`]; a copy of
 * `config.json` beside the ONNX file for the engine).
 */
export async function writeNeox(dir: string, o: NeoxOptions): Promise<NeoxFiles> {
  const s = o.shape;
  const f16 = o.dtype === "float16";
  const T = f16 ? DataType.FLOAT16 : DataType.FLOAT;
  const { weights, graph: { nodes, initializers: small, inputs, outputs }, bytesOf } = neoxWeights(
    o,
  );

  const file = f16 ? "model_fp16.onnx" : "model.onnx";
  const onnxDir = join(dir, "onnx");
  await mkdir(onnxDir, { recursive: true });
  const path = join(onnxDir, file);
  const elem = f16 ? 2 : 4;
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

/**
 * The random weights of a model, in the order (and so with the values) that
 * {@link writeNeox} writes them: each as the graph uses it (matrices [in, out]),
 * its bytes generated on demand in `o.dtype`.
 */
export function neoxWeights(o: NeoxOptions) {
  const s = o.shape;
  const f16 = o.dtype === "float16";
  const weights: Weight[] = [];
  // The graph is the engine's GPT-NeoX (engine/model/hf/decoder.ts), the one a Hugging Face
  // folder gets; the weights are random, stored [in, out] so no Transpose is folded at load.
  const std = Math.sqrt(2 / (5 * s.d));
  const wang = 2 / s.layers / Math.sqrt(s.d);
  const source: WeightSource = (name, shape, use) => {
    const transposed = use === "matrix" || use === "unembedding";
    const dims = transposed ? [shape[1], shape[0]] : shape;
    const scale = /\.bias$/.test(name)
      ? 0
      : /norm\.weight$/.test(name)
      ? null
      : /attention\.dense|dense_4h_to_h/.test(name)
      ? wang
      : std;
    weights.push({ name, dims, std: scale, transposed });
    return name;
  };
  const spec = archFromConfig(hfConfig(s, o.dtype), "bench/neox.ts");
  const graph = decoderGraph(spec, source, o.dtype);
  const rand = gaussianish(o.seed ?? 1);
  const bytesOf = (w: Weight): Uint8Array => {
    const n = w.dims.reduce((a, b) => a * b, 1);
    const v = new Float32Array(n);
    if (w.std === null) v.fill(1);
    else if (w.std !== 0) { for (let i = 0; i < n; i++) v[i] = rand() * w.std; }
    return f16 ? halfBytes(v) : new Uint8Array(v.buffer);
  };
  return { weights, graph, bytesOf };
}

/**
 * Writes the same random model as {@link writeNeox} as a Hugging Face model
 * folder the way Pythia's step branches ship it: `config.json` and a float16
 * `pytorch_model.bin` saved by PyTorch itself (bench/pythia_folder.py, run with
 * BENCH_PYTHON, default /usr/bin/python3), legacy buffers included. The
 * weights pass through a raw file in `dir`, removed afterwards.
 */
export async function writeNeoxFolder(dir: string, o: NeoxOptions): Promise<NeoxFiles> {
  const { weights, bytesOf } = neoxWeights({ ...o, dtype: "float16" });
  await mkdir(dir, { recursive: true });
  const raw = join(dir, "weights.f16");
  const fd = openSync(raw, "w");
  const manifest: { name: string; dims: number[]; transposed: boolean }[] = [];
  let weightBytes = 0;
  try {
    for (const w of weights) {
      const bytes = bytesOf(w);
      writeSync(fd, bytes);
      weightBytes += bytes.length;
      manifest.push({ name: w.name, dims: w.dims, transposed: w.transposed });
    }
  } finally {
    closeSync(fd);
  }
  await writeFile(join(dir, "weights.json"), JSON.stringify(manifest));
  await writeFile(join(dir, "config.json"), JSON.stringify(hfConfig(o.shape, "float16"), null, 1));
  const python = Deno.env.get("BENCH_PYTHON") ?? "/usr/bin/python3";
  const script = new URL("./pythia_folder.py", import.meta.url).pathname;
  const out = await new Deno.Command(python, { args: [script, dir], stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${python} ${script} ${dir} failed (exit ${out.code})`);
  await Deno.remove(raw);
  await Deno.remove(join(dir, "weights.json"));
  return { path: dir, params: neoxParams(o.shape), weightBytes };
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

export { halfBytes };

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
export async function ensureNeox(
  dir: string,
  o: NeoxOptions,
  write: (dir: string, o: NeoxOptions) => Promise<NeoxFiles> = writeNeox,
): Promise<NeoxFiles> {
  const marker = join(dir, "neox.json");
  const key = JSON.stringify({ ...o, seed: o.seed ?? 1 });
  try {
    const saved = JSON.parse(await Deno.readTextFile(marker));
    if (JSON.stringify(saved.options) === key) return saved.files as NeoxFiles;
  } catch {
    // absent or unreadable: (re)build
  }
  const files = await write(dir, o);
  await writeFile(marker, JSON.stringify({ options: JSON.parse(key), files }));
  return files;
}
