/**
 * The fields of an experiment file as one tree, read from the JSON Schema that
 * zod derives from {@link experimentSchema} (descriptions are its metadata):
 * what is valid at a path, the keys allowed in a mapping, and the flat list of
 * every field with its default and example that `docs/experiment-file.md` is
 * written from.
 *
 * @module
 */
import { z } from "zod";
import { experimentSchema } from "./schema.ts";

/** A path into the YAML document: map keys and sequence indices. */
export type YamlPath = (string | number)[];

/** The part of a JSON Schema (draft-07) node this module reads. */
export interface SchemaNode {
  type?: string;
  description?: string;
  title?: string;
  default?: unknown;
  examples?: unknown[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode | SchemaNode[];
  additionalProperties?: SchemaNode | boolean;
  anyOf?: SchemaNode[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  pattern?: string;
}

/** The JSON Schema of experiment files (draft-07, input side: defaults are not required). */
export function experimentJsonSchema(): SchemaNode & { $schema: string } {
  return z.toJSONSchema(experimentSchema, { target: "draft-7", io: "input" }) as
    & SchemaNode
    & { $schema: string };
}

const ROOT: SchemaNode = experimentJsonSchema();

/** The schema nodes a path may denote (several where a union leaves it open). */
export function nodesAt(path: YamlPath, root: SchemaNode = ROOT): SchemaNode[] {
  let nodes = [root];
  for (const seg of path) {
    const next: SchemaNode[] = [];
    for (const node of nodes.flatMap(alternatives)) {
      if (typeof seg === "number") {
        if (Array.isArray(node.items)) {
          if (node.items[seg]) next.push(node.items[seg]);
        } else if (node.items) next.push(node.items);
      } else if (node.properties?.[seg]) next.push(node.properties[seg]);
      else if (typeof node.additionalProperties === "object") {
        next.push(node.additionalProperties);
      }
    }
    nodes = next;
  }
  return nodes;
}

/** A node and, for a union, each of its options. */
function alternatives(node: SchemaNode): SchemaNode[] {
  return node.anyOf ? [node, ...node.anyOf.flatMap(alternatives)] : [node];
}

/** What is valid at a path (its description), or undefined for a path outside the schema. */
export function validAt(path: YamlPath): string | undefined {
  // A union's description covers its options; a tuple's element has its own.
  for (let cut = path.length; cut >= 0; cut--) {
    const described = nodesAt(path.slice(0, cut)).find((n) => n.description);
    if (described) return described.description;
    if (cut === path.length) continue;
    break;
  }
  return undefined;
}

/** The keys allowed in the mapping at `path`, in schema order. */
export function validKeys(path: YamlPath): string[] {
  const keys = new Set<string>();
  for (const node of nodesAt(path).flatMap(alternatives)) {
    for (const key of Object.keys(node.properties ?? {})) keys.add(key);
  }
  return [...keys];
}

/** A concrete path as text: `suite.models[2].name`. */
export function formatPath(path: YamlPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += (out === "" ? "" : ".") + seg;
  }
  return out === "" ? "the top level" : out;
}

/** One field of the experiment file, for the reference documentation. */
export interface FieldDoc {
  /** Path pattern: `suite.models[].name`, `suite.models[].checkpoints.STEP`. */
  path: string;
  /** What is valid (the schema's description). */
  description: string;
  /** The type and bounds in words, e.g. `integer 1 … 256`. */
  type: string;
  /** Whether the field must be written (no default). */
  required: boolean;
  /** The default when the field is left out, if it has one. */
  default?: unknown;
  /** An example value. */
  example?: unknown;
}

/** Every field of the schema in document order (mappings before their keys). */
export function fieldDocs(root: SchemaNode = ROOT): FieldDoc[] {
  const out: FieldDoc[] = [];
  const walk = (node: SchemaNode, path: string, required: boolean) => {
    if (path !== "") {
      out.push({
        path,
        description: node.description ?? "",
        type: typeText(node),
        required,
        ...(node.default !== undefined ? { default: node.default } : {}),
        ...(node.examples?.length ? { example: node.examples[0] } : {}),
      });
    }
    const seen = new Set<string>();
    for (const alt of alternatives(node)) {
      for (const [key, child] of Object.entries(alt.properties ?? {})) {
        const childPath = path === "" ? key : `${path}.${key}`;
        if (seen.has(childPath)) continue;
        seen.add(childPath);
        walk(child, childPath, (alt.required ?? []).includes(key) && !node.anyOf);
      }
      const items = alt.items;
      if (items && !Array.isArray(items) && (items.properties || items.anyOf)) {
        for (const [key, child] of Object.entries(items.properties ?? {})) {
          walk(child, `${path}[].${key}`, (items.required ?? []).includes(key));
        }
      }
    }
  };
  walk(root, "", true);
  return out;
}

/** The type and bounds of a node in words. */
export function typeText(node: SchemaNode): string {
  if (node.anyOf) return node.anyOf.map(typeText).join(" or ");
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum) return node.enum.map((v) => String(v)).join(" | ");
  const range = (lo?: number, hi?: number, loOpen = false) =>
    lo !== undefined && hi !== undefined
      ? ` ${loOpen ? "(" : "["}${num(lo)}, ${num(hi)}]`
      : lo !== undefined
      ? ` ≥ ${num(lo)}`
      : "";
  switch (node.type) {
    case "integer":
      return `integer${range(node.minimum, node.maximum)}`;
    case "number":
      return `number${
        range(
          node.exclusiveMinimum ?? node.minimum,
          node.maximum,
          node.exclusiveMinimum !== undefined,
        )
      }`;
    case "string":
      return node.pattern ? `string matching ${node.pattern}` : "string";
    case "array":
      if (Array.isArray(node.items)) return `[${node.items.map(typeText).join(", ")}]`;
      return `list of ${node.items ? typeText(node.items) : "values"}` +
        (node.maxItems !== undefined ? ` (${node.minItems ?? 0} to ${num(node.maxItems)})` : "");
    case "object":
      if (typeof node.additionalProperties === "object") {
        return `mapping STEP → ${typeText(node.additionalProperties)}`;
      }
      return node.properties ? `{${Object.keys(node.properties).join(", ")}}` : "mapping";
  }
  return "value";
}

function num(n: number): string {
  if (n === 2 ** 32) return "2^32";
  if (n === 2 ** 32 - 1) return "2^32 − 1";
  if (n === Number.MAX_SAFE_INTEGER) return "2^53 − 1";
  if (n >= 1e15) return n.toExponential().replace("e+", "e");
  return String(n);
}
