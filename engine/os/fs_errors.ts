/**
 * The errors a file or system call is expected to throw, so that a `catch`
 * handles only those and lets everything else (a bug, a full disk, a
 * permission problem) through; and, for input the user named, those errors
 * as messages the user can act on ({@link fsProblem}): a missing file, a
 * dangling symbolic link, a symlink loop, a file or folder without read
 * permission, a path through a file are bad input (exit 2), never a crash;
 * other errors (an I/O error of the disk) stay what they are (exit 1).
 *
 * @module
 */
import { lstatSync } from "node:fs";
import { UserError } from "../errors.ts";

/** Whether `e` says a path does not exist (Deno's `NotFound`, or Node's `ENOENT` from node:fs). */
export function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound || (e as { code?: unknown } | null)?.code === "ENOENT";
}

/** Whether `e` is Deno's refusal of a permission this process was not granted. */
export function isNotPermitted(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

/**
 * A `.catch` handler: `fallback` when the path does not exist, the error
 * itself otherwise: `await readFile(path).catch(ifNotFound(null))`.
 */
export function ifNotFound<T>(fallback: T): (e: unknown) => T {
  return (e) => {
    if (isNotFound(e)) return fallback;
    throw e;
  };
}

const WHY: Record<string, string> = {
  EACCES: "is not readable (permission denied)",
  EPERM: "is not readable (operation not permitted)",
  ELOOP: "is a loop of symbolic links",
  ENOTDIR: "has a part that is not a folder",
  EISDIR: "is a folder, not a file",
  ENAMETOOLONG: "is a path too long for the file system",
};

/** What is wrong with `path` for a user-fixable error code, or null for other errors. */
export function fsReason(path: string, e: unknown): string | null {
  if (isNotFound(e)) {
    try {
      if (lstatSync(path).isSymbolicLink()) return "is a symbolic link to nothing (dangling)";
    } catch (inner) {
      if (!isNotFound(inner)) throw inner;
    }
    return "does not exist";
  }
  const code = (e as { code?: string } | null)?.code;
  return code !== undefined && Object.hasOwn(WHY, code) ? WHY[code] : null;
}

/**
 * A {@link UserError} naming `path` (the `what` it should be) for an error
 * the user can fix; `e` itself (as an Error) otherwise.
 */
export function fsProblem(path: string, e: unknown, what: string): Error {
  if (e instanceof UserError) return e;
  const why = fsReason(path, e);
  if (why === null) return e instanceof Error ? e : new Error(String(e));
  return new UserError(`${path}: the ${what} ${why}`);
}
