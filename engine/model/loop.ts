/**
 * The greedy loop: a with-past (or merged) causal LM rewrapped so that one
 * session run does the prompt pass and any number of greedy steps, the KV
 * cache never leaving ONNX Runtime. The model's own nodes (copied byte for
 * byte) become the body of a Loop whose carried values are the input ids and
 * the cache; the body computes the attention mask, the positions (and the
 * merged model's `use_cache_branch`) from the cache's length, runs the score
 * head (engine/model/graph.ts) on its window, and feeds its last greedy id to
 * the next iteration. The initializers stay in the outer graph, where the body
 * reads them (every weight has one user and one copy; moved into the body they
 * were held twice over: +160 MB at Pythia-70M's shape), and so do the nodes
 * that only re-lay or re-type them (a model folder's Transposes and Casts of
 * float16 weights) and the head's weight slices, folded once.
 *
 * Iteration 0 runs over the fed ids with the head from `score_start`;
 * iterations 1… run one token each (the previous greedy id), with the head on
 * it. Targets are the concatenation: iteration 0's window, then one per step.
 * A trip count of 1 is one teacher-forced pass (mode `extractable`); 1 + (l −
 * 1) with a one-position window is free-running greedy generation (`full`).
 *
 * Why: with the cache fed and fetched through the JavaScript binding every
 * step, each step paid a copy of the whole cache out of ONNX Runtime (~12 ms
 * per step at Pythia-70M's shape, batch 64: a fifth of `full`'s time).
 *
 * Used on GPUs and for models that do not qualify for ./held_cache.ts; on the
 * CPU that module holds the cache once in JavaScript, fetching only each
 * step's new positions, where the Loop holds it three times (see there).
 *
 * @module
 */
import {
  concatBytes,
  DataType,
  encodeGraph,
  encodeNode,
  fieldHeader,
  type Graph,
  int64Tensor,
  type Model,
  type Node,
  node,
  splitModel,
  type Tensor,
  type ValueInfo,
} from "./onnx_proto.ts";
import { emptyUnembedding, findUnembedding, HEAD, scoreHead } from "./graph.ts";
import type { ModelInfo } from "./model_info.ts";

/** Inputs of the looped model besides the head's (`score_targets`, `score_suppress`, `score_start`). */
export const LOOP = {
  /** int64 [B, T]: the ids of iteration 0. */
  ids: "loop/input_ids",
  /** int64 []: iterations (1 = one pass; 1 + n = a pass then n greedy steps). */
  trips: "loop/trips",
} as const;

const zeroOf = (type: number) => new Uint8Array(type === DataType.FLOAT16 ? 2 : 4);

function scalarTensor(
  name: string,
  dataType: number,
  raw: Uint8Array,
  dims: number[] = [],
): Tensor {
  return { name, dims, dataType, raw };
}

/** Returns the looped model's bytes (see the module doc); `bytes` is the model as read. */
export function buildGreedyLoop(
  bytes: Uint8Array,
  model: Model,
  info: ModelInfo,
): Uint8Array {
  if (info.interface === "no-cache") throw new Error("the greedy loop needs a model with a cache");
  const opset = model.opsets.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version ?? 17;
  const split = splitModel(bytes);
  const loop: LoopParts = { info, opset, outer: [], outerInits: [] };
  // The body's nodes in topological order: its inputs prepared, the model's, then the head's.
  const body = preparedInputs(loop);
  const { modelNodes, hoistedBytes, post, head } = modelWithHead(loop, model.graph, split.nodes);
  post.push(
    // The next iteration's ids: the last position's greedy id.
    node("Slice", [l("argmax"), l("minus_one"), l("end"), l("one")], [l("next64")]),
    node("Identity", [l("cond_in")], [l("cond_out")]),
  );
  asIds(info, l("next64"), l("next_ids"), post);
  const bodyGraph = concatBytes(
    encodeGraph({ nodes: body }),
    ...modelNodes,
    encodeGraph({
      name: "greedy_step",
      nodes: post,
      inputs: [
        { name: l("iter"), elemType: DataType.INT64, dims: [] },
        { name: l("cond_in"), elemType: DataType.BOOL, dims: [] },
        { name: "input_ids", elemType: info.idsType, dims: ["batch", null] },
        ...info.pastNames.map((n) => pastDims(info, n)),
      ],
      outputs: [
        { name: l("cond_out"), elemType: DataType.BOOL, dims: [] },
        { name: l("next_ids"), elemType: info.idsType, dims: ["batch", null] },
        ...info.presentNames.map((n) => pastDims(info, n)),
        { name: l("argmax"), elemType: DataType.INT64, dims: null },
        { name: l("logprob"), elemType: DataType.FLOAT, dims: null },
      ],
    }),
  );
  addLoop(loop, bodyGraph);
  loop.outerInits.push(...head.initializers!);
  const outerGraph = concatBytes(
    ...split.name,
    ...split.initializers,
    ...hoistedBytes,
    encodeGraph({
      nodes: loop.outer,
      initializers: loop.outerInits,
      inputs: [
        { name: LOOP.ids, elemType: DataType.INT64, dims: ["batch", "length"] },
        { name: LOOP.trips, elemType: DataType.INT64, dims: [] },
        ...head.inputs!,
      ],
      outputs: [
        { name: HEAD.argmax, elemType: DataType.INT64, dims: null },
        { name: HEAD.logprob, elemType: DataType.FLOAT, dims: null },
      ],
    }),
  );
  return concatBytes(...split.model, encodeField(7, outerGraph));
}

/** A loop value's name. */
const l = (s: string) => `loop/${s}`;

/** The loop being built: the model's interface, its opset, the outer graph's nodes and constants. */
interface LoopParts {
  info: ModelInfo;
  opset: number;
  outer: Node[];
  outerInits: Tensor[];
}

/** `x` (int64) as the model's ids type, into `out`. */
function asIds(info: ModelInfo, x: string, out: string, into: Node[]): void {
  into.push(
    info.idsType === DataType.INT64
      ? node("Identity", [x], [out])
      : node("Cast", [x], [out], [{ name: "to", i: info.idsType }]),
  );
}

/** A cache tensor's value info. */
function pastDims(info: ModelInfo, name: string): ValueInfo {
  return { name, elemType: info.pastType, dims: ["batch", info.heads, null, info.headDim] };
}

/**
 * The body's first nodes: the model's inputs prepared from the carried ids
 * and cache (attention mask, positions, the merged model's branch), and the
 * head's window and targets for this iteration.
 */
function preparedInputs({ info, opset }: LoopParts): Node[] {
  const body: Node[] = [
    node("Shape", ["input_ids"], [l("ids_shape")]),
    node("Gather", [l("ids_shape"), l("i0")], [l("batch")]),
    node("Gather", [l("ids_shape"), l("i1")], [l("length")]),
    node("Shape", [info.pastNames[0]], [l("past_shape")]),
    node("Gather", [l("past_shape"), l("i2")], [l("past_length")]),
    node("Add", [l("past_length"), l("length")], [l("total")]),
  ];
  if (info.hasAttentionMask) {
    body.push(
      node("Concat", [l("batch"), l("total")], [l("mask_dims")], [{ name: "axis", i: 0 }]),
      node("ConstantOfShape", [l("mask_dims")], [l("mask64")], [{
        name: "value",
        t: int64Tensor(l("one_value"), [1], [1]),
      }]),
    );
    asIds(info, l("mask64"), "attention_mask", body);
  }
  if (info.hasPositionIds) {
    body.push(
      node("Reshape", [l("past_length"), l("scalar")], [l("from")]),
      node("Reshape", [l("total"), l("scalar")], [l("to")]),
      node("Range", [l("from"), l("to"), l("one_scalar")], [l("positions")]),
      node(
        "Unsqueeze",
        [l("positions"), ...(opset >= 13 ? [l("i0")] : [])],
        [l("positions_row")],
        opset >= 13 ? [] : [{ name: "axes", ints: [0] }],
      ),
      node("Concat", [l("batch"), l("one")], [l("expand_dims")], [{ name: "axis", i: 0 }]),
      node("Expand", [l("positions_row"), l("expand_dims")], [l("positions64")]),
    );
    asIds(info, l("positions64"), "position_ids", body);
  }
  if (info.interface === "merged") {
    body.push(node("Greater", [l("past_length"), l("zero")], ["use_cache_branch"]));
  }
  body.push(
    node("Equal", [l("iter"), l("zero_scalar")], [l("first")]),
    node("Where", [l("first"), HEAD.start, l("zero")], [l("start")]),
    node("Sub", [l("length"), l("start")], [l("window")]),
    node("Reshape", [l("iter"), l("one")], [l("iter1")]),
    node("Add", [l("window0"), l("iter1")], [l("after_first")]),
    node("Sub", [l("after_first"), l("one")], [l("step_offset")]),
    node("Where", [l("first"), l("zero"), l("step_offset")], [l("target_from")]),
    node("Add", [l("target_from"), l("window")], [l("target_to")]),
    node("Slice", [HEAD.targets, l("target_from"), l("target_to"), l("one")], [l("targets")]),
  );
  return body;
}

/**
 * The model's nodes in the body with the score head after them: its
 * unembedding becomes an empty tensor and the head projects its window; the
 * nodes that only prepare weights leave the body (`hoistedBytes`, for the
 * outer graph), and so do the head's window-free nodes unless the weight they
 * slice is computed in the body. `post`: the body's nodes after the model's.
 */
function modelWithHead(
  loop: LoopParts,
  g: Model["graph"],
  modelBytes: Uint8Array[],
): { modelNodes: Uint8Array[]; hoistedBytes: Uint8Array[]; post: Node[]; head: Partial<Graph> } {
  const { info, opset } = loop;
  const unembed = findUnembedding(g);
  // The head's nodes that depend on no window (the suppression count, the weight slices).
  const headPre: Node[] = [];
  const io = {
    targets: l("targets"),
    start: l("start"),
    argmax: l("argmax"),
    logprob: l("logprob"),
  };
  const head = scoreHead(
    "logits",
    info.logitsType,
    unembed ? { ...unembed, vocab: info.vocabSize } : undefined,
    opset,
    io,
    headPre,
  );
  let nodes = modelBytes;
  if (unembed) {
    const empty = emptyUnembedding(unembed, info.vocabSize);
    nodes = nodes.slice();
    nodes[unembed.index] = concatBytes(...empty.nodes.map((n) => encodeField(1, encodeNode(n))));
    loop.outerInits.push(...empty.initializers);
  }
  // The model's nodes that only prepare weights (a Transpose or Cast of an initializer)
  // move to the outer graph, where ONNX Runtime folds them once, as it does the head's
  // weight slices (and the suppression count), unless the weight is computed from the
  // model's inputs (then they follow it in the body).
  const hoisted = weightPreparation(g);
  const hoistedBytes = nodes.filter((_, i) => hoisted.nodes.has(i));
  const post: Node[] = [];
  if (!unembed || hoisted.constants.has(unembed.node.inputs[1])) loop.outer.push(...headPre);
  else post.push(...headPre);
  post.push(...head.nodes!);
  return {
    modelNodes: nodes.filter((_, i) => !hoisted.nodes.has(i)),
    hoistedBytes,
    post,
    head,
  };
}

/** The outer graph's nodes around the body: initial ids and an empty cache, then the Loop. */
function addLoop({ info, outer, outerInits }: LoopParts, bodyGraph: Uint8Array): void {
  outer.push(
    node("Shape", [LOOP.ids], [l("outer_shape")]),
    node("Gather", [l("outer_shape"), l("i0")], [l("outer_batch")]),
    node("Gather", [l("outer_shape"), l("i1")], [l("outer_length")]),
    node("Sub", [l("outer_length"), HEAD.start], [l("window0")]),
    node("Concat", [l("outer_batch"), l("cache_dims")], [l("empty_cache_dims")], [{
      name: "axis",
      i: 0,
    }]),
    node("ConstantOfShape", [l("empty_cache_dims")], [l("empty_cache")], [{
      name: "value",
      t: { name: l("cache_zero"), dims: [1], dataType: info.pastType, raw: zeroOf(info.pastType) },
    }]),
  );
  asIds(info, LOOP.ids, l("ids0"), outer);
  outer.push({
    opType: "Loop",
    name: "greedy_loop",
    inputs: [LOOP.trips, l("cond"), l("ids0"), ...info.pastNames.map(() => l("empty_cache"))],
    outputs: [
      l("final_ids"),
      ...info.pastNames.map((_, i) => l(`final_cache_${i}`)),
      HEAD.argmax,
      HEAD.logprob,
    ],
    attributes: [{ name: "body", graphBytes: bodyGraph }],
  });
  outerInits.push(
    int64Tensor(l("i0"), [1], [0]),
    int64Tensor(l("i1"), [1], [1]),
    int64Tensor(l("i2"), [1], [2]),
    int64Tensor(l("zero"), [1], [0]),
    int64Tensor(l("one"), [1], [1]),
    int64Tensor(l("minus_one"), [1], [-1]),
    int64Tensor(l("end"), [1], [2 ** 40]),
    int64Tensor(l("scalar"), [0], []),
    int64Tensor(l("zero_scalar"), [], [0]),
    int64Tensor(l("one_scalar"), [], [1]),
    int64Tensor(l("cache_dims"), [3], [info.heads, 0, info.headDim]),
    scalarTensor(l("cond"), DataType.BOOL, Uint8Array.of(1)),
  );
}

/** Ops that only re-lay or re-type a constant (folded when the session is created). */
const WEIGHT_OPS = new Set(["Transpose", "Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze"]);

/**
 * The model's nodes (indices, in order) whose inputs are all initializers or
 * outputs of such nodes and whose ops only re-lay or re-type them: the
 * Transpose and Cast of a Hugging Face folder's float16 weights
 * (engine/model/hf/folder.ts). Left in the Loop's body, ONNX Runtime folds
 * them there too but holds ~180 MB more for the session's life: Pythia-70M's
 * float16 `pytorch_model.bin`, measured side by side on loading alone, 386 MB
 * of anonymous memory after loading with them in the body against 221 moved
 * out (the float32 ONNX file, which has none: 203–206), peak RSS 567–610 MB
 * against 472. `constants` also holds their outputs.
 */
function weightPreparation(g: Model["graph"]): { nodes: Set<number>; constants: Set<string> } {
  const constants = new Set(g.initializers.map((t) => t.name));
  const nodes = new Set<number>();
  g.nodes.forEach((n, i) => {
    if (!WEIGHT_OPS.has(n.opType) || n.inputs.length === 0) return;
    if (!n.inputs.every((x) => x === "" || constants.has(x))) return;
    nodes.add(i);
    for (const o of n.outputs) constants.add(o);
  });
  return { nodes, constants };
}

function encodeField(no: number, payload: Uint8Array): Uint8Array {
  return concatBytes(fieldHeader(no, payload.length), payload);
}
