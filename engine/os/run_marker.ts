/**
 * Which folders are ours to write. Every folder the harness creates for its
 * output (a run folder, a forecast folder) carries a marker file,
 * {@link RUN_MARKER}; a command writes (and, for an import, replaces) files
 * only in a folder that is new, empty or marked, so `--output DIR` pointed at
 * a folder of the user's own (which may happen to hold a `summary.json` or a
 * `report.html`) is refused before anything in it is touched. Run folders
 * made before the marker existed are recognised by their `experiment.json`
 * or `manifest.json` and marked on their next use.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { writeAtomic, writeError } from "./atomic.ts";
import { fsProblem, fsReason } from "./fs_errors.ts";

/** The marker file of a folder the harness made (hidden: imports skip it). */
export const RUN_MARKER = ".memo-harness.json";

/** Entries of a run folder the harness may write before it claims the folder. */
const INTERNAL = new Set(["locks", "devices"]);

/** What a marked folder holds. */
export type FolderKind = "run" | "forecast";

/** The legacy files that identify a folder of each kind made before the marker existed. */
const LEGACY: Record<FolderKind, { file: string; keys: string[] }[]> = {
  run: [
    { file: "experiment.json", keys: ["name", "suite", "memorization", "output"] },
    { file: "manifest.json", keys: ["settingsHash", "checkpoints"] },
  ],
  forecast: [{ file: "forecast.json", keys: ["calibration", "predictor", "assumptions"] }],
};

/** The kind a folder's marker names, or null when it has none (or an unreadable one). */
async function markedKind(dir: string): Promise<FolderKind | null> {
  try {
    const text = await readFile(join(dir, RUN_MARKER), "utf8");
    if (text.length > 4096) return null;
    const kind = (JSON.parse(text) as { kind?: unknown })?.kind;
    return kind === "run" || kind === "forecast" ? kind : null;
  } catch (e) {
    if (unreadable(join(dir, RUN_MARKER), e)) return null;
    throw e;
  }
}

/** A file that is absent, not readable as the user can fix, or not JSON: no evidence of ours. */
function unreadable(path: string, e: unknown): boolean {
  return e instanceof SyntaxError || fsReason(path, e) !== null;
}

/** Whether `dir` holds a file this harness writes into a folder of `kind` (before markers). */
async function legacyFolder(dir: string, kind: FolderKind): Promise<boolean> {
  for (const { file, keys } of LEGACY[kind]) {
    const path = join(dir, file);
    try {
      const info = await stat(path);
      if (!info.isFile() || info.size > 64 << 20) continue;
      const value = JSON.parse(await readFile(path, "utf8"));
      if (value && typeof value === "object" && keys.every((k) => Object.hasOwn(value, k))) {
        return true;
      }
    } catch (e) {
      // not there, not readable or not JSON: not evidence of a folder of ours
      if (!unreadable(path, e)) throw e;
    }
  }
  return false;
}

/** Whether `dir` is a folder of `kind` the harness made: marked, or a legacy one. */
export async function isOurFolder(dir: string, kind: FolderKind): Promise<boolean> {
  return (await markedKind(dir)) === kind || await legacyFolder(dir, kind);
}

async function mark(dir: string, kind: FolderKind): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw writeError(dir, e);
  }
  const body = { kind, harness: "memo-forecast", created: new Date().toISOString() };
  await writeAtomic(join(dir, RUN_MARKER), JSON.stringify(body) + "\n");
}

/**
 * Makes `dir` an output folder of `kind` the harness may write: a folder that
 * does not exist yet is created, an empty one or one of ours is marked; a
 * folder holding anything else is refused (UserError naming a few of its
 * entries), as is a path that is a file. `option` names the command-line
 * option that chose it (`--output`), for the message.
 */
export async function claimOutputFolder(
  dir: string,
  kind: FolderKind,
  option = "--output",
): Promise<void> {
  let entries: string[] | null = null;
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) {
      throw new UserError(`${option} ${dir}: is a file, not a folder; give a new or empty folder`);
    }
    try {
      entries = await readdir(dir);
    } catch (e) {
      throw fsProblem(dir, e, "output folder");
    }
  }
  const marked = await markedKind(dir);
  if (entries !== null && marked !== kind) {
    // Entries the harness itself writes before a claim: the lock folder, `devices: auto`'s
    // kept choices (engine/run/devices.ts), a marker being written by a process starting beside.
    const foreign = entries.filter((n) =>
      !INTERNAL.has(n) && !(n.startsWith(`${RUN_MARKER}.`) && n.endsWith(".tmp"))
    );
    if (foreign.length > 0 && !(await legacyFolder(dir, kind))) {
      const shown = foreign.slice(0, 4).join(", ") + (foreign.length > 4 ? ", …" : "");
      throw new UserError(
        `${option} ${dir}: the folder already holds ${foreign.length} entr${
          foreign.length === 1 ? "y" : "ies"
        } (${shown}) and is not a ${kind} folder of this harness (no ${RUN_MARKER}${
          marked ? `; its marker says ${marked}` : ""
        }); nothing of yours is overwritten: give a new or empty folder`,
      );
    }
  }
  if (marked !== kind) await mark(dir, kind);
}

/**
 * Refuses a folder that is not a run folder of this harness (no marker, no
 * `experiment.json` or `manifest.json` of ours) before anything is written
 * into it, not even the lock: `deno task report ~/Documents` leaves nothing
 * behind.
 */
export async function assertRunFolder(dir: string): Promise<void> {
  if (!existsSync(dir)) {
    throw new UserError(`${dir}: no such run folder (run \`deno task experiment\` first)`);
  }
  if (!statSync(dir).isDirectory()) {
    throw new UserError(`${dir}: not a folder; give a run folder (runs/<name>)`);
  }
  if (await isOurFolder(dir, "run")) return;
  throw new UserError(
    `${dir}: not a run folder of this harness (no ${RUN_MARKER}, experiment.json or ` +
      "manifest.json); give the folder `deno task experiment` or `deno task import` wrote " +
      "(runs/<name>); nothing was written to it",
  );
}
