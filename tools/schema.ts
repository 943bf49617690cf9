/**
 * Writes the files generated from the experiment schema
 * (`schema/experiment.schema.json`, `docs/experiment-file.md`), or with
 * `--check` exits 1 naming each one that is not current.
 *
 *     deno task schema          # regenerate
 *     deno task schema --check  # what `deno task check` runs
 *
 * @module
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GENERATED, referenceText, schemaFileText } from "../engine/config/reference.ts";
import { ifNotFound } from "../engine/os/fs_errors.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const files: [string, string][] = [
  [GENERATED.schema, schemaFileText()],
  [GENERATED.doc, referenceText()],
];
if (Deno.args.includes("--check")) {
  const stale: string[] = [];
  for (const [path, text] of files) {
    const now = await readFile(join(root, path), "utf8").catch(ifNotFound(undefined));
    if (now !== text) stale.push(path);
  }
  if (stale.length > 0) {
    console.error(
      `error: ${stale.join(" and ")} ${stale.length > 1 ? "are" : "is"} not what ` +
        `engine/config/schema.ts gives: run deno task schema and commit the result.`,
    );
    Deno.exitCode = 1;
  }
} else {
  for (const [path, text] of files) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
    console.log(`wrote ${path}`);
  }
}
