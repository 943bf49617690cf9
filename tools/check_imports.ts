/**
 * The import-direction check of `deno task check`: every relative import in
 * the product code (main.ts, cli/, tasks/, reports/, engine/) must point down
 * the order docs/architecture.md states, between the top folders and between
 * the folders of engine/. Prints each import against the order and exits 1
 * when there is one.
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

/** Every import against the order in the repository at `root`. */
export function check(root: string): string[] {
  const files = ["main.ts"];
  for (const dir of ["cli", "tasks", "reports", "engine"]) sourceFiles(root, dir, files);
  const problems: string[] = [];
  for (const file of files) {
    const text = readFileSync(join(root, file), "utf8");
    for (const m of text.matchAll(SPECIFIER)) {
      const target = normalize(join(dirname(file), m[1]));
      const v = violation(file, relative(".", target));
      if (v) problems.push(v);
    }
  }
  return problems;
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const problems = check(root);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`${problems.length} import(s) against the documented direction.`);
    Deno.exit(1);
  }
  console.log("imports: every one points down the documented order.");
}
