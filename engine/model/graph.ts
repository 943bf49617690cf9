/**
 * The score head: nodes appended to a causal language model's ONNX graph so
 * that a forward pass returns only small tensors (greedy token ids and the
 * log-probabilities of given target tokens) instead of full logits.
 *
 * The head keeps positions `[score_start, T)` only (L of them): of the hidden
 * state before the unembedding when that is a MatMul (so the vocabulary
 * projection runs on L positions, not T), else of `logits`. On the window's
 * logits [B, L, V] (float32 or float16, cast to float32) it adds `score_suppress` [V] (0, or −∞ at
 * suppressed ids) and takes ArgMax over the vocabulary (ties → the lowest id,
 * as ONNX ArgMax with `select_last_index = 0` specifies), and gathers
 * LogSoftmax of the unmasked logits at `score_targets` [B, L].
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
}

/** Finds `logits = MatMul(hidden, weight)` (through an output Cast); null for other shapes. */
export function findUnembedding(g: Graph, logits = "logits"): Unembedding | null {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const init = new Map(g.initializers.map((t) => [t.name, t]));
  let index = producer.get(logits);
  if (index !== undefined && g.nodes[index].opType === "Cast") {
    index = producer.get(g.nodes[index].inputs[0]);
  }
  if (index === undefined || g.nodes[index].opType !== "MatMul") return null;
  let name = g.nodes[index].inputs[1];
  for (let hops = 0; hops < 4; hops++) {
    const t = init.get(name);
    if (t) {
      return t.dims.length === 2
        ? { index, node: g.nodes[index], weightElements: t.dims[0] * t.dims[1] }
        : null;
    }
    const p = producer.get(name);
    const op = p === undefined ? "" : g.nodes[p].opType;
    if (!["Cast", "Transpose", "Identity", "DequantizeLinear"].includes(op)) return null;
    name = g.nodes[p!].inputs[0];
  }
  return null;
}

/**
 * The nodes, inputs and outputs of the score head. With `hidden` (the
 * unembedding's input), the window is cut from the hidden state before the
 * unembedding (whose input the caller rewires to {@link HIDDEN_WINDOW}), so
 * the vocabulary projection runs only on the window; otherwise from the logits.
 */
export function scoreHead(logits: string, logitsType: number, hidden?: string): Partial<Graph> {
  const p = (s: string) => `score_head/${s}`;
  const nodes = [
    hidden
      ? node("Slice", [hidden, HEAD.start, p("end"), p("axis")], [HIDDEN_WINDOW])
      : node("Slice", [logits, HEAD.start, p("end"), p("axis")], [p("window")]),
  ];
  let window = hidden ? logits : p("window");
  if (logitsType !== DataType.FLOAT) {
    nodes.push(node("Cast", [window], [p("window_f32")], [{ name: "to", i: DataType.FLOAT }]));
    window = p("window_f32");
  }
  nodes.push(
    node("Add", [window, HEAD.suppress], [p("masked")]),
    node("ArgMax", [p("masked")], [HEAD.argmax], [{ name: "axis", i: 2 }, {
      name: "keepdims",
      i: 0,
    }]),
    node("LogSoftmax", [window], [p("logsoftmax")], [{ name: "axis", i: 2 }]),
    node("Reshape", [HEAD.targets, p("target_shape")], [p("targets3")]),
    node("GatherElements", [p("logsoftmax"), p("targets3")], [HEAD.logprob], [{
      name: "axis",
      i: 2,
    }]),
  );
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
    int64Tensor(p("axis"), [1], [1]),
    int64Tensor(p("target_shape"), [3], [0, 0, 1]),
  ];
  return { nodes, inputs, outputs, initializers };
}

/** Name of the hidden-state window fed to the rewired unembedding. */
export const HIDDEN_WINDOW = "score_head/hidden_window";

/**
 * Returns the model bytes with the score head appended (the original bytes are
 * copied, never re-encoded), the unembedding rewired to the window when found.
 */
export function addScoreHead(bytes: Uint8Array, model: Model, logitsType: number): Uint8Array {
  const unembed = findUnembedding(model.graph);
  if (!unembed) return appendToGraph(bytes, scoreHead("logits", logitsType));
  const hidden = unembed.node.inputs[0];
  const rewired = { ...unembed.node, inputs: [HIDDEN_WINDOW, ...unembed.node.inputs.slice(1)] };
  const spliced = replaceGraphNode(bytes, unembed.index, rewired);
  return appendToGraph(spliced, scoreHead("logits", logitsType, hidden));
}
