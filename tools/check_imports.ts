/**
 * The import-direction check of `deno task check`: every relative import in
 * the product code (main.ts, cli/, tasks/, reports/, engine/) must point down
 * the order docs/architecture.md states, between the top folders and between
 * the folders of engine/, and no files may import each other in a loop
 * (inside one folder too; type-only imports count; a worker module started
 * by URL is not imported). Prints each import
 * against the order and each loop, and exits 1 when there is one.
 *
 * `deno run -R tools/check_imports.ts`
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Top-level layers, from the top down: an import may only point to its own layer or a lower one. */
const TOP: readonly (readonly string[])[] = [
  ["main.ts"],
  ["cli"],
  ["tasks"],
  ["reports/page"],
  ["reports/analysis"],
  ["engine"],
];

/** engine/'s layers, from the top down (a folder, or a shared file at the bottom). */
const ENGINE: readonly (readonly string[])[] = [
  ["engine/run", "engine/cluster", "engine/import"],
  ["engine/plan"],
  ["engine/store"],
  ["engine/config"],
  ["engine/model", "engine/data"],
  ["engine/os"],
  ["engine/errors.ts", "engine/types.ts", "engine/random.ts", "engine/rowset.ts"],
];

/** The unit (a folder or a file of `order`) `path` belongs to, and its layer. */
export function placeOf(
  path: string,
  order: readonly (readonly string[])[],
): { unit: string; layer: number } | null {
  for (let layer = 0; layer < order.length; layer++) {
    for (const unit of order[layer]) {
      if (path === unit || path.startsWith(unit + "/")) return { unit, layer };
    }
  }
  return null;
}

/** The violation of an import `from` → `to` (repository-relative paths), or null when allowed. */
export function violation(from: string, to: string): string | null {
  for (const order of [TOP, ENGINE]) {
    const a = placeOf(from, order);
    const b = placeOf(to, order);
    if (!a || !b || a.unit === b.unit) continue;
    if (a.layer >= b.layer) {
      return `${from} imports ${to}: ${a.unit} may not depend on ${b.unit} (docs/architecture.md)`;
    }
  }
  return null;
}

const SPECIFIER = /(?:from\s+|import\s*\(\s*|new URL\(\s*)["'](\.\.?\/[^"']+)["']/g;

function sourceFiles(root: string, dir: string, out: string[]): string[] {
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) sourceFiles(root, path, out);
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/**
 * The loops of an import graph (file → the files it imports): each strongly
 * connected component of more than one file, or a file importing itself, its
 * files sorted (Tarjan's algorithm).
 */
export function loops(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v), onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/** Every import against the order, and every loop of imports, in the repository at `root`. */
export function check(root: string): string[] {
  const files = ["main.ts"];
  for (const dir of ["cli", "tasks", "reports", "engine"]) sourceFiles(root, dir, files);
  const problems: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(join(root, file), "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(SPECIFIER)) {
      const target = relative(".", normalize(join(dirname(file), m[1])));
      // A worker started from a module's URL is not an import of it, and a file
      // naming itself is its own documentation's example.
      if (!m[0].startsWith("new URL") && target !== file) targets.push(target);
      const v = violation(file, target);
      if (v) problems.push(v);
    }
    graph.set(file, targets);
  }
  for (const loop of loops(graph)) {
    problems.push(`these files import each other: ${loop.join(", ")}`);
  }
  return problems;
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const problems = check(root);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`${problems.length} import(s) against the documented direction or in a loop.`);
    Deno.exit(1);
  }
  console.log("imports: every one points down the documented order, and none loops.");
}
