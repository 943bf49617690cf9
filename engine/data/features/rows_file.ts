/**
 * The file of the experiment's `features` step (tasks/features.ts writes it):
 * `features/<key>/rows.json` in the run folder, the row features of the
 * selected rows, and its reader for the report, export and forecast.
 * Personal data is kept masked only.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ifNotFound } from "../../os/fs_errors.ts";
import type { PersonalKind } from "./personal.ts";

/** Version of `rows.json` (bumped when its meaning changes). */
export const FEATURES_VERSION = 1;

/** A masked personal-data hit of a row's decoded window (never the raw value). */
export interface MaskedHit {
  /** Kind of personal data. */
  kind: PersonalKind;
  /** Span [start, end) in the decoded window (UTF-16 code units). */
  start: number;
  /** End of the span. */
  end: number;
  /** The value masked by `redact` (never the raw value). */
  masked: string;
}

/** `features/<key>/rows.json`: the row features of the selected rows, rows ascending. */
export interface RowFeatures {
  /** {@link FEATURES_VERSION} of the writer. */
  version: number;
  /** The settings key (the folder name under `features/`). */
  key: string;
  /** The rows (the experiment's selection, ascending). */
  rows: number[];
  /** Occurrences of the scored window (context + continuation) at any position of the data. */
  window: number[];
  /** Occurrences of the context alone. */
  context: number[];
  /** Training step of the row (row / sequences_per_step). */
  step: number[];
  /** Step of the next selected row with the identical window (−1: none). */
  nextStep: number[];
  /** Selected rows with the identical window (1: the row only). */
  rowCopies: number[];
  /** Compressed / raw size of the window (text when decoded, else token bytes). */
  compression: number[];
  /** Distinct tokens / tokens of the window. */
  distinct: number[];
  /** What was compressed and searched for personal data. */
  of: "text" | "tokens";
  /** Per row with personal data (row as a string key): its masked hits. */
  personal: Record<string, MaskedHit[]>;
  /** Measured cost of the step, all shards and the assembly (seconds of wall time). */
  seconds: number;
  /** Data shards scanned. */
  shards: number;
  /** Tokens scanned over all shards. */
  tokens: number;
}

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

/** Per row of the data (index = row; 0 for rows not selected): the computed window count. */
export function computedDuplicates(f: RowFeatures): Uint32Array {
  const out = new Uint32Array((f.rows[f.rows.length - 1] ?? -1) + 1);
  f.rows.forEach((r, i) => out[r] = f.window[i]);
  return out;
}
