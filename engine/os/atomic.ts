/**
 * Writes into a run folder that never leave a partial file: a file is written
 * under a temporary name beside it, synced and renamed over the target, and
 * on any failure (disk full above all) the temporary file is removed and the
 * error names the file being written. Temporary names carry the host and pid
 * of the writer (`<name>.<host>.<pid>.<random>.tmp`), so that the leftovers of
 * a killed run can be told apart from those of a live one and removed at the
 * next start ({@link removeLeftovers}).
 *
 * @module
 */
import { hostname } from "node:os";
import { mkdir, open, rename, stat, truncate, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { processAlive } from "./process.ts";
import { isNotFound } from "./fs_errors.ts";

const HOST = safeHost(hostname());

/** A file being written atomically: parts appended in turn, then committed (renamed) or aborted. */
export interface AtomicFile {
  /** The file's final path. */
  readonly path: string;
  /** Appends a part (on failure the temporary file is removed and the error names `path`). */
  write(part: Uint8Array | string): Promise<void>;
  /** fsync, close and rename over `path`. */
  commit(): Promise<void>;
  /** Closes and removes the temporary file (nothing is left behind). */
  abort(): Promise<void>;
}

/**
 * Opens `path` for an atomic write under a unique temporary name beside it:
 * memory is one part at a time (several files of a record can be written
 * side by side, each committed when whole).
 */
export async function openAtomic(path: string): Promise<AtomicFile> {
  const tmp = `${path}.${HOST}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (e) {
    // mkdir -p says EEXIST when a part of the path is a file.
    const code = (e as { code?: string }).code;
    throw writeError(path, code === "EEXIST" ? Object.assign(e as Error, { code: "ENOTDIR" }) : e);
  }
  const file = await open(tmp, "w").catch((e) => {
    throw writeError(path, e);
  });
  const abort = async () => {
    await file.close().catch(() => {});
    await unlink(tmp).catch(() => {});
  };
  const failed = async (e: unknown) => {
    await abort();
    return writeError(path, e);
  };
  const enc = new TextEncoder();
  return {
    path,
    async write(data) {
      const part = typeof data === "string" ? enc.encode(data) : data;
      try {
        for (let done = 0; done < part.length;) {
          done += (await file.write(part, done, part.length - done)).bytesWritten;
        }
      } catch (e) {
        throw await failed(e);
      }
    },
    async commit() {
      try {
        await file.sync();
        await file.close();
        await rename(tmp, path);
      } catch (e) {
        throw await failed(e);
      }
    },
    abort,
  };
}

/**
 * Writes a file atomically: a unique temporary name, fsync, rename; nothing
 * partial on failure. `data` may be streamed as parts (each written in turn,
 * so memory is one part: a column of 146M rows written in slices).
 */
export async function writeAtomic(
  path: string,
  data: Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const file = await openAtomic(path);
  try {
    if (typeof data === "string" || data instanceof Uint8Array) await file.write(data);
    else for await (const part of data) await file.write(part);
  } catch (e) {
    await file.abort();
    throw e;
  }
  await file.commit();
}

/** Appends one line to a file; on failure the file is cut back to its old length. */
export async function appendLine(path: string, line: string): Promise<void> {
  const before = await stat(path).then((s) => s.size, () => 0);
  try {
    const file = await open(path, "a");
    try {
      await file.writeFile(line.endsWith("\n") ? line : line + "\n");
      await file.sync();
    } finally {
      await file.close();
    }
  } catch (e) {
    await truncate(path, before).catch(() => {});
    throw writeError(path, e);
  }
}

/**
 * The error to show for a failed write of `path`: a UserError when the place
 * cannot be written at all (permissions, a read-only file system, outside the
 * folders Deno's permission set allows), otherwise an Error naming the file
 * and the cause (a full disk above all) that says what was kept.
 */
export function writeError(path: string, e: unknown): Error {
  if (e instanceof UserError) return e;
  if (e instanceof Deno.errors.NotCapable) {
    return new UserError(
      `${path}: cannot be written: the folder is outside those the permission set lets this ` +
        'program write (deno.json "permissions" → "run" → "write": ./runs and /tmp). Choose an ' +
        "output folder under runs/ or /tmp (--output or output: in the experiment file), or add " +
        "the folder to that list.",
    );
  }
  const code = (e as { code?: string }).code ?? "";
  if (code === "EACCES" || code === "EPERM" || code === "EROFS" || code === "ENOTDIR") {
    const why = code === "EROFS"
      ? "the file system is read-only"
      : code === "ENOTDIR"
      ? "a part of the path is a file, not a folder"
      : "permission denied";
    return new UserError(
      `${path}: cannot be written (${why}). Choose another output folder (--output or output: ` +
        "in the experiment file) or fix its permissions; earlier results are intact.",
    );
  }
  const why = code === "ENOSPC"
    ? "no space left on the device"
    : code === "EDQUOT"
    ? "disk quota exceeded"
    : (e as Error)?.message ?? String(e);
  return new Error(
    `writing ${path} failed: ${why}. Nothing partial was left behind and earlier results are ` +
      "intact; free space (or fix the cause) and rerun the same command to resume.",
    { cause: e },
  );
}

/** A temporary file of {@link writeAtomic}, with its writer when the name tells it. */
const TMP_NAME = /\.([A-Za-z0-9_-]+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes temporary files (`*.tmp`) left in a run folder by killed writers and
 * returns their paths. With `all` (the caller holds the folder's exclusive
 * lock) every one goes; otherwise only those written from this host by a
 * process that is no longer running.
 */
export async function removeLeftovers(dir: string, all: boolean): Promise<string[]> {
  const removed: string[] = [];
  const walk = async (d: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch (e) {
      if (isNotFound(e)) return; // removed meanwhile
      throw e;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory && depth < 4 && e.name !== "stale") await walk(path, depth + 1);
      else if (e.isFile && e.name.endsWith(".tmp")) {
        const m = TMP_NAME.exec(e.name);
        const mine = m !== null && m[1] === HOST;
        if (all || (mine && !processAlive(Number(m![2])))) {
          await unlink(path).then(() => removed.push(path), () => {});
        }
      }
    }
  };
  await walk(dir, 0);
  return removed;
}

/** The host name as it appears in temporary file names (letters, digits, `_` and `-`). */
function safeHost(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_") || "host";
}
