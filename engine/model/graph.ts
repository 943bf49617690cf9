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

/**
 * The score head's reductions of window logits `window` (float32, vocabulary
 * on the last axis `axis`) with targets `targets` of the same rank and size 1
 * on that axis: the target's log-probability (its logit minus
 * ReduceLogSumExp) and the suppressed ArgMax (TopK with K = `k`, 1 + the
 * number of suppressed ids, ties to the lower id; the suppression mask added
 * to those K candidates only; the first best). No other tensor of the
 * window's size is made.
 */
function reductions(
  window: string,
  targets: string,
  axis: number,
  opset: number,
  out: { argmax: string; logprob: string },
  p: (s: string) => string,
): Node[] {
  const axes = opset >= 18
    ? { inputs: [p(`axes${axis}`)], attrs: [] }
    : { inputs: [], attrs: [{ name: "axes", ints: [axis] }] };
  const ax = [{ name: "axis", i: axis }];
  return [
    node("ReduceLogSumExp", [window, ...axes.inputs], [p("lse")], axes.attrs),
    node("GatherElements", [window, targets], [p("target_logit")], ax),
    node("Sub", [p("target_logit"), p("lse")], [out.logprob]),
    node("TopK", [window, "score_head/k"], [p("top_values"), p("top_ids")], ax),
    node("Gather", [HEAD.suppress, p("top_ids")], [p("top_mask")]),
    node("Add", [p("top_values"), p("top_mask")], [p("top_masked")]),
    node("ArgMax", [p("top_masked")], [p("pick")], ax),
    node("GatherElements", [p("top_ids"), p("pick")], [p("argmax_k")], ax),
    node("Reshape", [p("argmax_k"), `score_head/argmax_shape${axis}`], [out.argmax]),
  ];
}

/**
 * The nodes, inputs and outputs of the score head. With `unembed` (the
 * unembedding MatMul), the window is cut from the hidden state before it (the
 * graph's own unembedding is rewired to an empty window by the caller) and the
 * vocabulary projection and reductions run in the head: for windows of at
 * least {@link SCAN_FROM} positions inside a Scan, one batch row at a time, so
 * the largest head tensor is one row's [L, V] logits whatever the batch size;
 * for shorter windows (greedy steps) on the whole batch at once, so the
 * projection's weights are read once per step. Otherwise the window is cut
 * from the logits.
 */
export function scoreHead(
  logits: string,
  logitsType: number,
  unembed?: Unembedding,
  opset = 17,
): Partial<Graph> {
  const p = (s: string) => `score_head/${s}`;
  const nodes: Node[] = [
    node("IsInf", [HEAD.suppress], [p("is_suppressed")], [{ name: "detect_positive", i: 0 }]),
    node("Cast", [p("is_suppressed")], [p("suppressed01")], [{ name: "to", i: DataType.INT64 }]),
    node("ReduceSum", [p("suppressed01")], [p("suppressed_count")]),
    node("Add", [p("suppressed_count"), p("one")], [p("k")]),
  ];
  const toFloat = (x: string, type: number, into: Node[]) => {
    if (type === DataType.FLOAT) return x;
    into.push(node("Cast", [x], [`${x}_f32`], [{ name: "to", i: DataType.FLOAT }]));
    return `${x}_f32`;
  };
  if (!unembed) {
    nodes.push(node("Slice", [logits, HEAD.start, p("end"), p("axis")], [p("window")]));
    const window = toFloat(p("window"), logitsType, nodes);
    nodes.push(node("Reshape", [HEAD.targets, p("target_shape")], [p("targets3")]));
    nodes.push(
      ...reductions(window, p("targets3"), 2, opset, HEAD, (s) => p(s)),
    );
  } else {
    // The unembedding (and its output Cast) on a hidden window `hidden`, in a subgraph.
    const project = (hidden: string, q: (s: string) => string, into: Node[]) => {
      into.push({
        ...unembed.node,
        name: q("unembed"),
        inputs: [hidden, unembed.node.inputs[1]],
        outputs: [q("mm")],
      });
      let out = q("mm");
      if (unembed.cast) {
        into.push({ ...unembed.cast, name: q("cast"), inputs: [out], outputs: [q("logits")] });
        out = q("logits");
      }
      return toFloat(out, logitsType, into);
    };
    const r = (s: string) => `score_head/row/${s}`;
    const row: Node[] = [];
    const rowWindow = project(r("hidden"), r, row);
    row.push(node("Reshape", [r("targets"), p("col_shape")], [r("targets2")]));
    row.push(...reductions(rowWindow, r("targets2"), 1, opset, {
      argmax: r("argmax"),
      logprob: r("logprob"),
    }, r));
    const scan = (s: string) => `score_head/scan/${s}`;
    const scanBranch: Graph = {
      name: "score_head_scan",
      nodes: [
        node("Scan", [HIDDEN_WINDOW, HEAD.targets], [scan("argmax"), scan("logprob")], [
          { name: "num_scan_inputs", i: 2 },
          {
            name: "body",
            g: {
              name: "score_head_row",
              nodes: row,
              inputs: [
                { name: r("hidden"), elemType: unembed.elemType, dims: ["score_len", null] },
                { name: r("targets"), elemType: DataType.INT64, dims: ["score_len"] },
              ],
              outputs: [
                { name: r("argmax"), elemType: DataType.INT64, dims: null },
                { name: r("logprob"), elemType: DataType.FLOAT, dims: null },
              ],
              initializers: [],
            },
          },
        ]),
      ],
      inputs: [],
      outputs: [
        { name: scan("argmax"), elemType: DataType.INT64, dims: null },
        { name: scan("logprob"), elemType: DataType.FLOAT, dims: null },
      ],
      initializers: [],
    };
    const all = (s: string) => `score_head/batched/${s}`;
    const batched: Node[] = [];
    const window = project(HIDDEN_WINDOW, all, batched);
    batched.push(node("Reshape", [HEAD.targets, p("target_shape")], [all("targets3")]));
    batched.push(...reductions(window, all("targets3"), 2, opset, {
      argmax: all("argmax"),
      logprob: all("logprob"),
    }, all));
    const batchedBranch: Graph = {
      name: "score_head_batched",
      nodes: batched,
      inputs: [],
      outputs: [
        { name: all("argmax"), elemType: DataType.INT64, dims: null },
        { name: all("logprob"), elemType: DataType.FLOAT, dims: null },
      ],
      initializers: [],
    };
    nodes.push(
      node("Slice", [unembed.node.inputs[0], HEAD.start, p("end"), p("axis")], [HIDDEN_WINDOW]),
      node("Shape", [HIDDEN_WINDOW], [p("window_shape")]),
      node("Gather", [p("window_shape"), p("one_scalar")], [p("window_len")]),
      node("Less", [p("scan_below"), p("window_len")], [p("use_scan")]),
      node("If", [p("use_scan")], [HEAD.argmax, HEAD.logprob], [
        { name: "then_branch", g: scanBranch },
        { name: "else_branch", g: batchedBranch },
      ]),
    );
  }
  const inputs: ValueInfo[] = [
    { name: HEAD.targets, elemType: DataType.INT64, dims: ["score_batch", "score_len"] },
    { name: HEAD.suppress, elemType: DataType.FLOAT, dims: ["score_vocab"] },
    { name: HEAD.start, elemType: DataType.INT64, dims: [1] },
  ];
  const outputs: ValueInfo[] = [
    { name: HEAD.argmax, elemType: DataType.INT64, dims: null },
    { name: HEAD.logprob, elemType: DataType.FLOAT, dims: null },
  ];
  const initializers = [
    int64Tensor(p("end"), [1], [2 ** 40]),
    int64Tensor(p("zero"), [1], [0]),
    int64Tensor(p("axis"), [1], [1]),
    int64Tensor(p("axes1"), [1], [1]),
    int64Tensor(p("axes2"), [1], [2]),
    int64Tensor(p("one"), [1], [1]),
    int64Tensor(p("one_scalar"), [], [1]),
    int64Tensor(p("scan_below"), [], [SCAN_FROM - 1]),
    int64Tensor(p("target_shape"), [3], [0, 0, 1]),
    int64Tensor(p("col_shape"), [2], [-1, 1]),
    int64Tensor(p("argmax_shape1"), [1], [-1]),
    int64Tensor(p("argmax_shape2"), [2], [0, 0]),
  ];
  return { nodes, inputs, outputs, initializers };
}

/** Windows of at least this many positions are projected one batch row at a time. */
export const SCAN_FROM = 8;

/** Name of the hidden-state window the head projects. */
export const HIDDEN_WINDOW = "score_head/hidden_window";

/**
 * Returns the model bytes with the score head appended (the original bytes are
 * copied, never re-encoded). When the unembedding is found, the graph's own
 * MatMul is replaced by an empty [B, 0, V] tensor of its type, so that the
 * unembedding's weight is used by the head alone (a second user made ONNX
 * Runtime keep a second copy of it: +103 MB at Pythia-70M's shape).
 */
export function addScoreHead(
  bytes: Uint8Array,
  model: Model,
  logitsType: number,
  vocab: number,
): Uint8Array {
  const opset = model.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 17;
  const unembed = findUnembedding(model.graph);
  if (!unembed) return appendToGraph(bytes, scoreHead("logits", logitsType, undefined, opset));
  const p = (s: string) => `score_head/empty_logits/${s}`;
  const zero = new Uint8Array(unembed.elemType === DataType.FLOAT16 ? 2 : 4);
  const empty = node("ConstantOfShape", [p("shape")], [unembed.node.outputs[0]], [{
    name: "value",
    t: { name: p("value"), dims: [1], dataType: unembed.elemType, raw: zero },
  }]);
  const spliced = replaceGraphNode(bytes, unembed.index, empty);
  const head = scoreHead("logits", logitsType, unembed, opset);
  head.nodes!.push(
    node("Shape", [unembed.node.inputs[0]], [p("hidden_shape")]),
    node("Gather", [p("hidden_shape"), p("axis0")], [p("batch")]),
    node("Concat", [p("batch"), p("zero_vocab")], [p("shape")], [{ name: "axis", i: 0 }]),
  );
  head.initializers!.push(
    int64Tensor(p("axis0"), [1], [0]),
    int64Tensor(p("zero_vocab"), [2], [0, vocab]),
  );
  return appendToGraph(spliced, head);
}
