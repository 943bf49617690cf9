/**
 * The score head: nodes appended to a causal language model's ONNX graph so
 * that a forward pass returns only small tensors (greedy token ids and the
 * log-probabilities of given target tokens) instead of full logits.
 *
 * The head keeps positions `[score_start, T)` only (L of them): of the hidden
 * state before the unembedding when that is a MatMul (so the vocabulary
 * projection runs on L positions, not T), else of `logits`. On the window's
 * logits [B, L, V] (float32 or float16, cast to float32) it takes the greedy
 * id with `score_suppress` [V] (0, or −∞ at suppressed ids) added (ties → the
 * lowest id), and the log-softmax of the unmasked logits at `score_targets`
 * [B, L], never materializing more than the window's logits.
 *
 * @module
 */
import {
  appendToGraph,
  DataType,
  type Graph,
  int64Tensor,
  type Model,
  type Node,
  node,
  replaceGraphNode,
  type Tensor,
  type ValueInfo,
} from "./onnx_proto.ts";

/** Names of the score head's inputs and outputs. */
export const HEAD = {
  /** int64 [B, L]: tokens whose log-probability is returned (any valid id when unused). */
  targets: "score_targets",
  /** float32 [V]: added to the logits before ArgMax (−∞ at suppressed ids). */
  suppress: "score_suppress",
  /** int64 [1]: first position of the head's window. */
  start: "score_start",
  /** int64 [B, L]: greedy token at each position of the window. */
  argmax: "score_argmax",
  /** float32 [B, L, 1]: log-softmax of the logits at the target token. */
  logprob: "score_logprob",
} as const;

/** The names the head reads its window start and targets from and writes its outputs to. */
export interface HeadNames {
  targets: string;
  start: string;
  argmax: string;
  logprob: string;
}

/** Minimum default-domain opset the head needs (Slice with inputs, GatherElements). */
export const MIN_OPSET = 11;

/** The node computing the logits from the last hidden state with a weight (MatMul only). */
export interface Unembedding {
  /** Index of the MatMul in the graph's nodes. */
  index: number;
  node: Node;
  /** Elements of the weight matrix. */
  weightElements: number;
  /** Element type of the MatMul's inputs (the hidden state's). */
  elemType: number;
  /** The Cast between the MatMul and `logits`, if any. */
  cast?: Node;
}

/** Finds `logits = MatMul(hidden, weight)` (through an output Cast); null for other shapes. */
export function findUnembedding(g: Graph, logits = "logits"): Unembedding | null {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const init = new Map(g.initializers.map((t) => [t.name, t]));
  let index = producer.get(logits);
  let cast: Node | undefined;
  if (index !== undefined && g.nodes[index].opType === "Cast") {
    cast = g.nodes[index];
    index = producer.get(g.nodes[index].inputs[0]);
  }
  if (index === undefined || g.nodes[index].opType !== "MatMul") return null;
  let name = g.nodes[index].inputs[1];
  let elemType = 0;
  for (let hops = 0; hops < 4; hops++) {
    const t = init.get(name);
    if (t) {
      if (t.dims.length !== 2) return null;
      const n = g.nodes[index];
      return {
        index,
        node: n,
        weightElements: t.dims[0] * t.dims[1],
        elemType: elemType || t.dataType,
        cast,
      };
    }
    const p = producer.get(name);
    const op = p === undefined ? "" : g.nodes[p].opType;
    if (!["Cast", "Transpose", "Identity", "DequantizeLinear"].includes(op)) return null;
    if (!elemType && op === "Cast") {
      elemType = g.nodes[p!].attributes.find((a) => a.name === "to")?.i ?? 0;
    }
    if (!elemType && op === "DequantizeLinear") elemType = DataType.FLOAT;
    name = g.nodes[p!].inputs[0];
  }
  return null;
}

/** Reduce-op axes as an attribute (opset < 18) or an input (opset ≥ 18). */
function reduceAxes(axis: number, opset: number, p: (s: string) => string) {
  return opset >= 18
    ? { inputs: [p(`axes${axis}`)], attrs: [] }
    : { inputs: [], attrs: [{ name: "axes", ints: [axis] }] };
}

/**
 * The log-sum-exp of `x` over `axis` (keepdims) as ReduceMax(x) −
 * ReduceMax(LogSoftmax(x)): LogSoftmax's kernel is vectorized where
 * ReduceLogSumExp's is not (side by side on [32, 50304] float32 windows: 0.37
 * ms against 3.0 ms), and the maximum of a log-softmax is −log Σ exp(x − max).
 */
function logSumExp(x: string, axis: number, opset: number, out: string, p: (s: string) => string) {
  const ax = reduceAxes(axis, opset, (s) => `score_head/${s}`);
  return [
    node("ReduceMax", [x, ...ax.inputs], [p("max")], ax.attrs),
    node("LogSoftmax", [x], [p("log_softmax")], [{ name: "axis", i: axis }]),
    node("ReduceMax", [p("log_softmax"), ...ax.inputs], [p("neg_log_sum")], ax.attrs),
    node("Sub", [p("max"), p("neg_log_sum")], [out]),
  ];
}

/**
 * The suppressed ArgMax of `x` over `axis` (keepdims): TopK with K = `k`
 * (1 + the number of suppressed ids, or fewer where the axis is shorter; ties
 * to the lower id), the suppression mask added to those K candidates only, the
 * first best. Returns the best masked value (`value`) and its id (`id`), with
 * `offset` (an int64 initializer, or null) added to the ids.
 */
function suppressedArgMax(
  x: string,
  k: string,
  axis: number,
  offset: string | null,
  out: { value: string; id: string },
  p: (s: string) => string,
): Node[] {
  const ax = [{ name: "axis", i: axis }];
  const ids = offset ? p("top_ids_global") : p("top_ids");
  return [
    node("TopK", [x, k], [p("top_values"), p("top_ids")], ax),
    ...(offset ? [node("Add", [p("top_ids"), offset], [ids])] : []),
    node("Gather", [HEAD.suppress, ids], [p("top_mask")]),
    node("Add", [p("top_values"), p("top_mask")], [p("top_masked")]),
    node("ArgMax", [p("top_masked")], [p("pick")], ax),
    node("GatherElements", [p("top_masked"), p("pick")], [out.value], ax),
    node("GatherElements", [ids, p("pick")], [out.id], ax),
  ];
}

/** Columns of the vocabulary projection computed at once (see {@link scoreHead}). */
export const VOCAB_CHUNK = 4096;

/**
 * The nodes, inputs and outputs of the score head. With `unembed` (the
 * unembedding MatMul), the window is cut from the hidden state before it (the
 * graph's own unembedding is rewired to an empty tensor by the caller) and the
 * vocabulary projection runs in the head over the whole window at once ([B·L,
 * hidden]: the projection's weights are read once per pass, whatever the batch
 * size), in chunks of {@link VOCAB_CHUNK} vocabulary columns: each chunk's
 * logits are reduced to its log-sum-exp, its best unsuppressed id and the
 * target's logit (where the target falls in it), and freed before the next, so
 * the largest head tensor is [B·L, VOCAB_CHUNK] whatever the vocabulary. The
 * chunks' weight slices are constants (folded into initializers when the
 * session is created). The chunks are then combined: the log-sum-exp of their
 * log-sum-exps, the first best (ties → the lowest id, as chunks are in id
 * order). Otherwise the window is cut from the logits.
 */
export function scoreHead(
  logits: string,
  logitsType: number,
  unembed?: Unembedding & { vocab: number },
  opset = 17,
  io: HeadNames = HEAD,
  outerNodes?: Node[],
): Partial<Graph> {
  const nodes: Node[] = [];
  const h: HeadParts = {
    nodes,
    outer: outerNodes ?? nodes,
    initializers: [
      int64Tensor(p("end"), [1], [2 ** 40]),
      int64Tensor(p("zero"), [1], [0]),
      int64Tensor(p("axis"), [1], [1]),
      int64Tensor(p("axes1"), [1], [1]),
      int64Tensor(p("axes2"), [1], [2]),
      int64Tensor(p("one"), [1], [1]),
      int64Tensor(p("target_shape"), [3], [0, 0, 1]),
      int64Tensor(p("argmax_shape2"), [2], [0, 0]),
    ],
    logitsType,
    opset,
    io,
  };
  h.outer.push(...suppressionK());
  if (!unembed) headOverLogits(h, logits);
  else headOverHidden(h, unembed);
  const inputs: ValueInfo[] = [
    { name: HEAD.targets, elemType: DataType.INT64, dims: ["score_batch", "score_len"] },
    { name: HEAD.suppress, elemType: DataType.FLOAT, dims: ["score_vocab"] },
    { name: HEAD.start, elemType: DataType.INT64, dims: [1] },
  ];
  const outputs: ValueInfo[] = [
    { name: HEAD.argmax, elemType: DataType.INT64, dims: null },
    { name: HEAD.logprob, elemType: DataType.FLOAT, dims: null },
  ];
  return { nodes, inputs, outputs, initializers: h.initializers };
}

/** A score-head value's name. */
const p = (s: string) => `score_head/${s}`;

/** What the head's parts add to: its nodes, the nodes for the outer graph, constants. */
interface HeadParts {
  nodes: Node[];
  /**
   * Nodes that depend on no per-pass value: the greedy loop's outer graph
   * (kept outside its body), else `nodes` itself.
   */
  outer: Node[];
  initializers: Tensor[];
  logitsType: number;
  opset: number;
  io: HeadNames;
}

/** K of the suppressed ArgMax: 1 + the number of suppressed ids. */
function suppressionK(): Node[] {
  return [
    node("IsInf", [HEAD.suppress], [p("is_suppressed")], [{ name: "detect_positive", i: 0 }]),
    node("Cast", [p("is_suppressed")], [p("suppressed01")], [{ name: "to", i: DataType.INT64 }]),
    node("ReduceSum", [p("suppressed01")], [p("suppressed_count")]),
    node("Add", [p("suppressed_count"), p("one")], [p("k")]),
  ];
}

/** `x` as float32 (a Cast added to `into` unless it is float32 already). */
function toFloat(x: string, type: number, into: Node[]): string {
  if (type === DataType.FLOAT) return x;
  into.push(node("Cast", [x], [`${x}_f32`], [{ name: "to", i: DataType.FLOAT }]));
  return `${x}_f32`;
}

/** The head over the model's logits: the window cut from them, then the reductions. */
function headOverLogits(h: HeadParts, logits: string): void {
  const { nodes, io } = h;
  nodes.push(node("Slice", [logits, io.start, p("end"), p("axis")], [p("window")]));
  const window = toFloat(p("window"), h.logitsType, nodes);
  nodes.push(node("Reshape", [io.targets, p("target_shape")], [p("targets3")]));
  nodes.push(
    ...logSumExp(window, 2, h.opset, p("lse"), p),
    node("GatherElements", [window, p("targets3")], [p("target_logit")], [{
      name: "axis",
      i: 2,
    }]),
    node("Sub", [p("target_logit"), p("lse")], [io.logprob]),
    ...suppressedArgMax(window, p("k"), 2, null, { value: p("best"), id: p("best_id") }, p),
    node("Reshape", [p("best_id"), p("argmax_shape2")], [io.argmax]),
  );
}

/**
 * The head over the hidden state: the window flattened to [B·L, hidden], the
 * vocabulary projected chunk by chunk (each reduced and freed before the
 * next), the chunks combined.
 */
function headOverHidden(h: HeadParts, unembed: Unembedding & { vocab: number }): void {
  flattenWindow(h, unembed);
  const parts = {
    lse: [] as string[],
    target: [] as string[],
    best: [] as string[],
    id: [] as string[],
  };
  const chunks = Math.ceil(unembed.vocab / VOCAB_CHUNK);
  for (let c = 0; c < chunks; c++) {
    const q = vocabChunk(h, unembed, c);
    parts.lse.push(q("lse"));
    parts.target.push(q("target"));
    parts.best.push(q("best"));
    parts.id.push(q("best_id"));
  }
  h.initializers.push(
    int64Tensor(p("axis_last"), [1], [-1]),
    floatScalar(p("minus_inf"), -Infinity),
  );
  combineChunks(h, parts);
}

/** The hidden window as [B·L, hidden] and the targets as [B·L, 1]. */
function flattenWindow(h: HeadParts, unembed: Unembedding): void {
  h.nodes.push(
    node("Slice", [
      unembed.node.inputs[0],
      h.io.start,
      p("end"),
      p("axis"),
    ], [HIDDEN_WINDOW]),
    node("Shape", [HIDDEN_WINDOW], [p("window_shape")]),
    node("Slice", [p("window_shape"), p("zero"), p("two"), p("zero")], [p("bl")]),
    node("Gather", [p("window_shape"), p("two")], [p("hidden_size")]),
    node("Concat", [p("minus_one"), p("hidden_size")], [p("flat_dims")], [
      { name: "axis", i: 0 },
    ]),
    node("Reshape", [HIDDEN_WINDOW, p("flat_dims")], [p("hidden_flat")]),
    node("Concat", [p("one"), p("hidden_size")], [p("row_dims")], [{ name: "axis", i: 0 }]),
    node("Reshape", [h.io.targets, p("col_shape")], [p("targets_col")]),
    node("Cast", [p("k")], [p("k_f32")], [{ name: "to", i: DataType.FLOAT }]),
  );
  h.initializers.push(
    int64Tensor(p("two"), [1], [2]),
    int64Tensor(p("minus_one"), [1], [-1]),
    int64Tensor(p("col_shape"), [2], [-1, 1]),
  );
}

/**
 * Vocabulary chunk `c`: its projection, log-sum-exp, the target's logit where
 * the target falls in it (else −∞) and its best unsuppressed id. Returns the
 * chunk's value names.
 */
function vocabChunk(
  h: HeadParts,
  unembed: Unembedding & { vocab: number },
  c: number,
): (s: string) => string {
  const { nodes } = h;
  const q = (s: string) => `score_head/chunk${c}/${s}`;
  const from = c * VOCAB_CHUNK, size = Math.min(VOCAB_CHUNK, unembed.vocab - from);
  h.initializers.push(
    int64Tensor(q("from"), [1], [from]),
    int64Tensor(q("to"), [1], [from + size]),
    int64Tensor(q("size"), [1], [size]),
    floatScalar(q("size_f32"), size),
  );
  // Chunk c's projection waits for chunk c − 1's reductions (a shape taken from
  // them), so one chunk's logits are alive at a time: ONNX Runtime would
  // otherwise run every chunk's MatMul first.
  let hidden = p("hidden_flat");
  if (c > 0) {
    const prev = (s: string) => `score_head/chunk${c - 1}/${s}`;
    nodes.push(
      node("Add", [prev("lse"), prev("target")], [q("after_a")]),
      node("Add", [q("after_a"), prev("best")], [q("after")]),
      node("Shape", [q("after")], [q("after_shape")]),
      node("Mul", [q("after_shape"), p("row_dims")], [q("hidden_dims")]),
      node("Reshape", [p("hidden_flat"), q("hidden_dims")], [q("hidden")]),
    );
    hidden = q("hidden");
  }
  h.outer.push(
    node("Slice", [unembed.node.inputs[1], q("from"), q("to"), p("axis_last")], [q("weight")]),
  );
  nodes.push(
    { ...unembed.node, name: q("unembed"), inputs: [hidden, q("weight")], outputs: [q("mm")] },
  );
  let x = q("mm");
  if (unembed.cast) {
    nodes.push({ ...unembed.cast, name: q("cast"), inputs: [x], outputs: [q("logits")] });
    x = q("logits");
  }
  x = toFloat(x, h.logitsType, nodes);
  nodes.push(
    ...logSumExp(x, 1, h.opset, q("lse"), q),
    // The target's logit where it falls in this chunk, else −∞.
    node("Sub", [p("targets_col"), q("from")], [q("local")]),
    node("Less", [q("local"), p("zero")], [q("below")]),
    node("Less", [q("local"), q("size")], [q("not_above")]),
    node("Not", [q("below")], [q("not_below")]),
    node("And", [q("not_below"), q("not_above")], [q("inside")]),
    node("Where", [q("inside"), q("local"), p("zero")], [q("local_safe")]),
    node("GatherElements", [x, q("local_safe")], [q("gathered")], [{ name: "axis", i: 1 }]),
    node("Where", [q("inside"), q("gathered"), p("minus_inf")], [q("target")]),
    node("Min", [p("k_f32"), q("size_f32")], [q("k_f32")]),
    node("Cast", [q("k_f32")], [q("k")], [{ name: "to", i: DataType.INT64 }]),
    ...suppressedArgMax(x, q("k"), 1, q("from"), { value: q("best"), id: q("best_id") }, q),
  );
  return q;
}

/**
 * The chunks combined: the log-sum-exp of their log-sum-exps, the target's
 * logit, the first best (ties → the lowest id, as chunks are in id order).
 */
function combineChunks(
  h: HeadParts,
  parts: { lse: string[]; target: string[]; best: string[]; id: string[] },
): void {
  const ax1 = reduceAxes(1, h.opset, p);
  const cat = (xs: string[], out: string) => node("Concat", xs, [out], [{ name: "axis", i: 1 }]);
  h.nodes.push(
    cat(parts.lse, p("chunk_lse")),
    cat(parts.target, p("chunk_target")),
    cat(parts.best, p("chunk_best")),
    cat(parts.id, p("chunk_id")),
    node("ReduceLogSumExp", [p("chunk_lse"), ...ax1.inputs], [p("lse")], ax1.attrs),
    node("ReduceMax", [p("chunk_target"), ...ax1.inputs], [p("target_logit")], ax1.attrs),
    node("Sub", [p("target_logit"), p("lse")], [p("logprob_col")]),
    node("ArgMax", [p("chunk_best")], [p("best_chunk")], [{ name: "axis", i: 1 }]),
    node("GatherElements", [p("chunk_id"), p("best_chunk")], [p("argmax_col")], [
      { name: "axis", i: 1 },
    ]),
    node("Concat", [p("bl"), p("one")], [p("logprob_shape")], [{ name: "axis", i: 0 }]),
    node("Reshape", [p("logprob_col"), p("logprob_shape")], [h.io.logprob]),
    node("Reshape", [p("argmax_col"), p("bl")], [h.io.argmax]),
  );
}

function floatScalar(name: string, value: number): Tensor {
  return {
    name,
    dims: [],
    dataType: DataType.FLOAT,
    raw: new Uint8Array(Float32Array.of(value).buffer),
  };
}

/** Name of the hidden-state window the head projects. */
export const HIDDEN_WINDOW = "score_head/hidden_window";

/**
 * The nodes that stand in the model's graph for its unembedding MatMul (in its
 * place, in topological order): an empty [batch, 0, vocab] tensor of its type
 * under its output name, so that the unembedding's weight is used by the head
 * alone (a second user made ONNX Runtime keep a second copy of it: +103 MB at
 * Pythia-70M's shape), and the graph's own logits cost nothing.
 */
export function emptyUnembedding(
  unembed: Unembedding,
  vocab: number,
): { nodes: Node[]; initializers: Tensor[] } {
  const p = (s: string) => `score_head/empty_logits/${s}`;
  const zero = new Uint8Array(unembed.elemType === DataType.FLOAT16 ? 2 : 4);
  return {
    nodes: [
      node("Shape", [unembed.node.inputs[0]], [p("hidden_shape")]),
      node("Gather", [p("hidden_shape"), p("axis0")], [p("batch")]),
      node("Concat", [p("batch"), p("zero_vocab")], [p("shape")], [{ name: "axis", i: 0 }]),
      node("ConstantOfShape", [p("shape")], [unembed.node.outputs[0]], [{
        name: "value",
        t: { name: p("value"), dims: [1], dataType: unembed.elemType, raw: zero },
      }]),
    ],
    initializers: [
      int64Tensor(p("axis0"), [1], [0]),
      int64Tensor(p("zero_vocab"), [2], [0, vocab]),
    ],
  };
}

/*
 * Why a float16 unembedding on the CPU is not replaced by the head's projection:
 * ONNX Runtime's CPU has no float16 MatMul; it runs float16 nodes in float32
 * between casts it inserts, drops each inserted cast to float16 that a cast back
 * to float32 follows, and runs an "isolated" float16 node (the final LayerNorm,
 * whose consumer is the unembedding) in float32 too. Which values get rounded to
 * float16 therefore depends on the graph around the unembedding: windowing the
 * hidden state in float16 changed near-tied greedy tokens against the plain model
 * (2 rows of 64 at Pythia-70M's shape; 6 when the logits also skipped their
 * rounding). So on the CPU such a model keeps its own unembedding and the head
 * cuts its window from the model's logits (the vocabulary projection then runs
 * on every position of a pass; scoring makes passes of at most
 * `CPU_FLOAT16_PASS_TOKENS` tokens, engine/model/model.ts). On GPUs float16 runs
 * natively and the head projects as for float32.
 */

/**
 * Returns the model bytes with the score head appended (the original bytes are
 * copied, never re-encoded). When the unembedding is found, the graph's own
 * MatMul is replaced by {@link emptyUnembedding}.
 */
export function addScoreHead(
  bytes: Uint8Array,
  model: Model,
  logitsType: number,
  vocab: number,
  onCpu = false,
): Uint8Array {
  const opset = model.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 17;
  const found = findUnembedding(model.graph);
  // A float16 unembedding on the CPU keeps the model's own logits (see the comment above).
  const unembed = onCpu && found?.elemType === DataType.FLOAT16 ? null : found;
  if (!unembed) {
    return appendToGraph(bytes, scoreHead("logits", logitsType, undefined, opset));
  }
  const empty = emptyUnembedding(unembed, vocab);
  const spliced = replaceGraphNode(bytes, unembed.index, empty.nodes);
  const head = scoreHead("logits", logitsType, { ...unembed, vocab }, opset);
  head.initializers!.push(...empty.initializers);
  return appendToGraph(spliced, head);
}
