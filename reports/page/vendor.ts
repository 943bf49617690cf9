/**
 * The JavaScript the report inlines so it renders offline: Vega's browser
 * build and Vega's CSP-compliant expression interpreter (so the page needs no
 * `unsafe-eval`), both read from node_modules at render time. Vega-Lite is
 * compiled away before (reports/page/charts.ts), so its runtime is not shipped.
 *
 * @module
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ifNotFound, isNotFound } from "../../engine/os/fs_errors.ts";

/** The inline scripts of a report. */
export interface VendorScripts {
  /** `vega.min.js`: defines the global `vega`. */
  vega: string;
  /** The interpreter, rewritten to define the global `vegaInterpreter`. */
  interpreter: string;
}

const NODE_MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));

let cached: Promise<VendorScripts> | null = null;

/** Reads (once per process) the scripts the page inlines. */
export function vendorScripts(nodeModules: string = NODE_MODULES): Promise<VendorScripts> {
  if (nodeModules !== NODE_MODULES) return loadVendor(nodeModules);
  cached ??= loadVendor(nodeModules);
  return cached;
}

async function loadVendor(nodeModules: string): Promise<VendorScripts> {
  const vegaPath = join(nodeModules, "vega", "build", "vega.min.js");
  const vega = await readOrExplain(vegaPath);
  const interpreterPath = await findInterpreter(nodeModules);
  const interpreter = wrapInterpreter(await readOrExplain(interpreterPath), interpreterPath);
  return { vega, interpreter };
}

async function readOrExplain(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new Error(
      `cannot read ${path} (${(e as Error).message}): the report inlines it; ` +
        "install the pinned dependencies (npx -y deno@2.9.6 install) and retry",
    );
  }
}

async function findInterpreter(nodeModules: string): Promise<string> {
  const rel = join("node_modules", "vega-interpreter", "build", "vega-interpreter.js");
  const direct = join(nodeModules, "vega-interpreter", "build", "vega-interpreter.js");
  try {
    await readFile(direct);
    return direct;
  } catch (e) {
    if (!isNotFound(e)) throw e; // not hoisted: look in Deno's package folder
  }
  const entries = await readdir(join(nodeModules, ".deno")).catch(ifNotFound([] as string[]));
  const dir = entries.filter((e) => e.startsWith("vega-interpreter@")).sort().pop();
  if (!dir) {
    throw new Error(
      `vega-interpreter (a dependency of vega-embed) is missing under ${nodeModules}: ` +
        "install the pinned dependencies (npx -y deno@2.9.6 install) and retry",
    );
  }
  return join(nodeModules, ".deno", dir, rel);
}

/**
 * Rewrites the interpreter's ES module build into a classic script: its one
 * import (from vega-util) is taken from the global `vega`, its export becomes
 * the global `vegaInterpreter`.
 */
export function wrapInterpreter(source: string, where = "vega-interpreter.js"): string {
  const importRe = /^import\s*\{([^}]*)\}\s*from\s*['"]vega-util['"];?\s*$/m;
  const exportRe = /^export\s*\{\s*(\w+)\s+as\s+expressionInterpreter\s*\};?\s*$/m;
  const imp = source.match(importRe);
  const exp = source.match(exportRe);
  const otherImports = source.replace(importRe, "").replace(exportRe, "").match(
    /^(import|export)\s/m,
  );
  if (!imp || !exp || otherImports) {
    throw new Error(
      `${where}: unexpected module shape (expected one import from vega-util and one ` +
        "export of expressionInterpreter); update reports/page/vendor.ts for this version",
    );
  }
  const names = imp[1].split(",").map((s) => s.trim()).filter(Boolean);
  const body = source
    .replace(importRe, `const { ${names.join(", ")} } = vega;`)
    .replace(exportRe, `globalThis.vegaInterpreter = ${exp[1]};`)
    .replace(/^\/\/# sourceMappingURL=.*$/m, "");
  return `(function () {\n"use strict";\n${body}\n})();`;
}
