/**
 * The cache held once: a with-past model rewritten so that greedy steps run
 * one session run each over a KV cache that lives in JavaScript, in one
 * preallocated buffer per cache tensor, written in place.
 *
 * Each cache tensor is stored positions first, [P_max, batch, heads, head
 * size], so the first P positions are one contiguous prefix: the session is
 * fed that prefix as a view (onnxruntime-node wraps a CPU feed's buffer
 * without copying it), and a Transpose in the graph gives the model its
 * `past_key_values.*` as it expects them. The model's own Concat of past and
 * new positions stays as it is, but its result (`present.*`) is no longer an
 * output: ONNX Runtime frees it after the layer that reads it. The graph
 * outputs only the new positions' keys and values (the Concat's second
 * input, transposed to positions first), which JavaScript writes into the
 * buffers after the positions already there. The scores are those of the
 * model's own nodes on the same values.
 *
 * Why: the greedy Loop (./loop.ts) carries the cache as a loop-carried value,
 * and ONNX Runtime cannot update one in place: an iteration's input (the past)
 * and output (the present) are both alive until it ends, and the Loop copies
 * the last iteration's values to its outputs, so the cache was held three
 * times at the end of a batch (~300 MB at Pythia-70M's shape and batch 64).
 * Here it is held once, plus one layer's temporaries.
 *
 * @module
 */
import {
  concatBytes,
  encodeGraph,
  fieldHeader,
  type Graph,
  type Node,
  node,
  parseModel,
  splitModel,
  type ValueInfo,
} from "./onnx_proto.ts";
import type { ModelInfo } from "./model_info.ts";

/** The rewritten model's cache inputs and outputs, per cache tensor (in `pastNames` order). */
export const JS_CACHE = {
  /** [P, batch, heads, head size]: the cache of the P positions before the fed ids. */
  past: (i: number) => `js_cache/past.${i}`,
  /** [length, batch, heads, head size]: the fed ids' keys or values. */
  fresh: (i: number) => `js_cache/new.${i}`,
} as const;

/**
 * The model (`bytes`, as read: one graph field) rewritten as the module doc says,
 * or null when a `present.*` output is not the model's Concat of its
 * `past_key_values.*` input and the new positions on the positions axis (then
 * the greedy Loop is used).
 */
export function withJsCache(bytes: Uint8Array, info: ModelInfo): Uint8Array | null {
  if (info.interface !== "with-past") return null;
  const g = parseModel(bytes).graph;
  const fresh = newPositions(g, info);
  if (!fresh) return null;
  const toHeads = [{ name: "perm", ints: [1, 2, 0, 3] }];
  const toPositions = [{ name: "perm", ints: [2, 0, 1, 3] }];
  const pre: Node[] = info.pastNames.map((name, i) =>
    node("Transpose", [JS_CACHE.past(i)], [name], toHeads)
  );
  const post: Node[] = fresh.map((x, i) =>
    node("Transpose", [x], [JS_CACHE.fresh(i)], toPositions)
  );
  const past = new Set(info.pastNames), present = new Set(info.presentNames);
  const cacheInfo = (name: string, dims: ValueInfo["dims"]): ValueInfo => ({
    name,
    elemType: info.pastType,
    dims: dims && [null, dims[0], dims[1], dims[3]],
  });
  const pastInfo = info.pastNames.map((n) => g.inputs.find((v) => v.name === n)!);
  const inputs = [
    ...g.inputs.filter((v) => !past.has(v.name)),
    ...pastInfo.map((v, i) => cacheInfo(JS_CACHE.past(i), v.dims)),
  ];
  const outputs = [
    ...g.outputs.filter((v) => !present.has(v.name)),
    ...pastInfo.map((v, i) => cacheInfo(JS_CACHE.fresh(i), v.dims)),
  ];
  const split = splitModel(bytes);
  const graph = concatBytes(
    ...split.name,
    encodeNodes(pre),
    ...split.nodes,
    encodeNodes(post),
    ...split.initializers,
    encodeNodes([], inputs, outputs),
  );
  return concatBytes(...split.model, fieldHeader(7, graph.length), graph);
}

/** Each `present.*` output's new positions (the Concat's second input), or null. */
function newPositions(g: Graph, info: ModelInfo): string[] | null {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const out: string[] = [];
  for (const [i, name] of info.presentNames.entries()) {
    const p = producer.get(name);
    const axis = p?.attributes.find((a) => a.name === "axis")?.i;
    if (
      !p || p.opType !== "Concat" || p.inputs.length !== 2 || p.inputs[0] !== info.pastNames[i] ||
      (axis !== 2 && axis !== -2)
    ) return null;
    out.push(p.inputs[1]);
  }
  return out;
}

/** Graph fields (nodes, inputs, outputs) as bytes to splice into a graph's. */
function encodeNodes(nodes: Node[], inputs: ValueInfo[] = [], outputs: ValueInfo[] = []) {
  return encodeGraph({ nodes, inputs, outputs });
}
