/**
 * Reads the YAML text of an experiment file into plain values while keeping
 * where every node is (`file:line:column`), so that any later check can name
 * the line of the field it refuses. YAML aliases are bounded: all aliases
 * together may add at most {@link LIMITS.aliasNodes} nodes, and an alias bomb
 * is refused at the alias that crosses the bound.
 *
 * @module
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node } from "yaml";
import { UserError } from "../errors.ts";
import { LIMITS } from "./schema.ts";
import type { YamlPath } from "./fields.ts";

/** A parsed YAML document: its plain value and the position of any path in it. */
export interface YamlText {
  /** The document as plain JavaScript values (aliases expanded). */
  value: unknown;
  /** `file:line:column` of the node at `path`, or of its key when `atKey`. */
  where(path: YamlPath, atKey?: boolean): string;
}

/** Parses YAML text named `display` in messages; a syntax error is a {@link UserError}. */
export function readYaml(text: string, display: string): YamlText {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${display}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    if (/call stack/i.test(e.message)) throw tooDeep(text, e.pos[0], at);
    const hint = e.code === "DUPLICATE_KEY"
      ? "each key may appear once per mapping; remove or merge the repeated key"
      : "fix the YAML syntax (indentation with spaces, `key: value`, lists as `- item` " +
        "or `[a, b]`)";
    throw new UserError(`${at(e.pos[0])}: YAML syntax error: ${e.message}; ${hint}.`);
  }
  checkDepth(doc, text, at);
  checkAliases(doc, at);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: -1 });
  } catch (e) {
    // checkAliases refuses what toJS could refuse; this names the file all the same.
    throw new UserError(`${at(0)}: the YAML cannot be read: ${(e as Error).message}.`);
  }
  return { value, where: (path, atKey = false) => at(locate(doc, path, atKey)) };
}

/**
 * The error for nesting deeper than {@link LIMITS.depth} levels, at the line's
 * first opening bracket (where the parser gave up depends on the machine's stack).
 */
function tooDeep(text: string, offset: number, at: (offset: number) => string): UserError {
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  const open = text.slice(lineStart, offset + 1).search(/[[{]/);
  return new UserError(
    `${at(open >= 0 ? lineStart + open : offset)}: the YAML nests too deeply here (more than ` +
      `${LIMITS.depth} lists or mappings inside each other): an experiment file nests a few ` +
      `levels; see docs/experiment-file.md.`,
  );
}

/** Refuses nesting deeper than {@link LIMITS.depth}, without recursion (before anything recurses). */
function checkDepth(doc: Document, text: string, at: (offset: number) => string): void {
  const stack: [unknown, number][] = [[doc.contents, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth >= LIMITS.depth) throw tooDeep(text, rangeStart(node) ?? 0, at);
    for (const item of node.items) {
      if (isPair(item)) stack.push([item.key, depth + 1], [item.value, depth + 1]);
      else stack.push([item, depth + 1]);
    }
  }
}

/**
 * Refuses aliases that expand the document by more than {@link LIMITS.aliasNodes}
 * nodes in total (a "billion laughs" bomb), at the alias that crosses the
 * bound, and aliases to an anchor not defined before them.
 */
function checkAliases(doc: Document, at: (offset: number) => string): void {
  const size = new Map<unknown, number>();
  const sizeOf = (node: unknown): number => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      return target ? sizeOf(target) : 1;
    }
    const known = size.get(node);
    if (known !== undefined) return known;
    let n = 1;
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items) {
        n += isPair(item) ? sizeOf(item.key) + sizeOf(item.value) : sizeOf(item);
      }
    }
    size.set(node, n);
    return n;
  };
  let added = 0;
  const visit = (node: unknown): void => {
    if (isAlias(node)) {
      const start = node.range?.[0] ?? 0;
      const target = node.resolve(doc);
      if (!target) {
        throw new UserError(
          `${at(start)}: YAML alias *${node.source} has no anchor &${node.source} before it: ` +
            `define the anchor first or write the value out.`,
        );
      }
      added += sizeOf(target);
      if (added > LIMITS.aliasNodes) {
        throw new UserError(
          `${at(start)}: YAML alias *${node.source} takes the document past ` +
            `${LIMITS.aliasNodes} nodes added by aliases (an alias bomb?): write the values ` +
            `out or use fewer aliases.`,
        );
      }
      return;
    }
    if (isMap(node) || isSeq(node)) {
      for (const item of node.items) {
        if (isPair(item)) {
          visit(item.key);
          visit(item.value);
        } else visit(item);
      }
    }
  };
  visit(doc.contents);
}

/** Byte offset of the node at `path` (or of its nearest existing ancestor). */
function locate(doc: Document, path: YamlPath, atKey: boolean): number {
  let node: unknown = doc.contents;
  let pos = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc) ?? node;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyPos = rangeStart(pair.key) ?? pos;
      if (atKey && i === path.length - 1) return keyPos;
      node = pair.value;
      pos = rangeStart(node) ?? keyPos;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      pos = rangeStart(node) ?? pos;
    } else break;
  }
  return pos;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null)?.range;
  return range ? range[0] : undefined;
}
