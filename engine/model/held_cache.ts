/**
 * The cache held once: a with-past model rewritten so that the greedy steps of
 * mode `full` run one session run each over a KV cache that lives in
 * JavaScript, in one preallocated buffer per cache tensor, written in place.
 *
 * Each buffer has the model's own layout, [batch, heads, capacity, head size],
 * with room for every position a row's generation caches (the prompt and all
 * greedy steps but the last). A step is fed the whole buffer as
 * `past_key_values.*` (onnxruntime-node wraps a CPU feed's memory without
 * copying it) with an attention mask that allows the slots already written and
 * masks the rest, and the token's position in `position_ids`: the masked slots
 * get a softmax weight of exactly 0, so the step attends to the same keys and
 * values as with a cache of just those positions. The model's Concat of past
 * and new positions stays as it is, but its result (`present.*`) is no longer
 * an output, so ONNX Runtime frees it after the layer that reads it; the graph
 * outputs the new positions' keys and values instead (the Concat's second
 * input, `held/new.*`), which JavaScript copies into their slots (a few
 * hundred KB per step).
 *
 * Why: the greedy Loop (./loop.ts) carries the cache as a loop-carried value,
 * and ONNX Runtime cannot update one in place: an iteration's input (the past)
 * and output (the present) are both alive until it ends, and the Loop copies
 * the last iteration's values to its outputs, so the cache was held three
 * times at the end of a batch (~300 MB at Pythia-70M's shape and batch 64).
 * Here it is held once, plus one layer's temporaries. An earlier version fed a
 * positions-first buffer's prefix and transposed it in the graph: that added a
 * copy of the whole cache per step (rows/s 0.79–0.87× the Loop's).
 *
 * The model qualifies when it takes `attention_mask` and `position_ids` (so a
 * slot's position and visibility are the feeds', not the buffer's length) and
 * each `present.*` is the Concat of its `past_key_values.*` and the new
 * positions on the positions axis, as Optimum's exports and the engine's own
 * graphs (./hf/decoder.ts) are; otherwise the Loop is used. Whether the model
 * honours the mask over the slots is checked at load by a probe (model.ts
 * `masksUnwrittenSlots`): an export that applies only the causal mask runs
 * with the Loop too.
 *
 * @module
 */
import {
  concatBytes,
  DataType,
  encodeGraph,
  fieldHeader,
  type Graph,
  type Node,
  node,
  splitModel,
  type ValueInfo,
} from "./onnx_proto.ts";
import type { ModelInfo } from "./model_info.ts";

/** The rewritten model's outputs of new positions, per cache tensor (in `pastNames` order). */
export const HELD = {
  /** [batch, heads, length, head size]: the fed ids' keys or values. */
  fresh: (i: number) => `held/new.${i}`,
} as const;

/**
 * The model (`bytes` as read, `graph` its parse) rewritten as the module doc
 * says, or null when it does not qualify. Its nodes keep their order and
 * indices (the Identities naming the new positions come after them).
 */
export function withHeldCache(bytes: Uint8Array, graph: Graph, info: ModelInfo): Uint8Array | null {
  if (
    info.interface !== "with-past" || !info.hasAttentionMask || !info.hasPositionIds ||
    info.pastType !== DataType.FLOAT
  ) return null;
  const fresh = newPositions(graph, info);
  if (!fresh) return null;
  const present = new Set(info.presentNames);
  const pastInfo = info.pastNames.map((n) => graph.inputs.find((v) => v.name === n)!);
  const outputs: ValueInfo[] = [
    ...graph.outputs.filter((v) => !present.has(v.name)),
    ...pastInfo.map((v, i) => ({
      name: HELD.fresh(i),
      elemType: info.pastType,
      dims: v.dims && [v.dims[0], v.dims[1], null, v.dims[3]],
    })),
  ];
  const named: Node[] = fresh.map((x, i) => node("Identity", [x], [HELD.fresh(i)]));
  const split = splitModel(bytes);
  const g = concatBytes(
    ...split.name,
    ...split.nodes,
    encodeGraph({ nodes: named }),
    ...split.initializers,
    encodeGraph({ inputs: graph.inputs, outputs }),
  );
  return concatBytes(...split.model, fieldHeader(7, g.length), g);
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
