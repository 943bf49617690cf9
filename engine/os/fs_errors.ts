/**
 * The errors a file or system call is expected to throw, so that a `catch`
 * handles only those and lets everything else (a bug, a full disk, a
 * permission problem) through.
 *
 * @module
 */

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
