/**
 * The file of the experiment's `features` step (tasks/features.ts writes it):
 * `features/<key>/rows.json` in the run folder, and its reader for the
 * report, export and forecast. The values and their helpers are in
 * row_features.ts (pure), re-exported here.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ifNotFound } from "../../os/fs_errors.ts";
import { FEATURES_VERSION, type RowFeatures } from "./row_features.ts";

export * from "./row_features.ts";

/**
 * The row features of a run folder's current settings (the newest rows.json
 * under `features/`), or null when the step has not finished.
 */
export async function readRowFeatures(runDir: string): Promise<RowFeatures | null> {
  const base = join(runDir, "features");
  let newest: { path: string; mtime: number } | null = null;
  try {
    for await (const e of Deno.readDir(base)) {
      if (!e.isDirectory) continue;
      const path = join(base, e.name, "rows.json");
      const st = await Deno.stat(path).catch(ifNotFound(null));
      const mtime = st?.mtime?.getTime() ?? 0;
      if (st && (!newest || mtime > newest.mtime)) newest = { path, mtime };
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!newest) return null;
  const f = JSON.parse(await readFile(newest.path, "utf8")) as RowFeatures;
  return f.version === FEATURES_VERSION ? f : null;
}
