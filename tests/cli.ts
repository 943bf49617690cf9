/**
 * Runs the command line as a user would (`deno run -P=run main.ts ...`) for
 * the tests, and asserts the bad-input contract: exit 2, one `error:`
 * paragraph, no stack trace.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Exit status and output of one command-line run. */
export interface Result {
  code: number;
  stdout: string;
  /** stderr without Deno's own line about permission sets being experimental. */
  stderr: string;
}

/** The line Deno 2.9 prints on stderr whenever a permission set comes from deno.json. */
export const PERMISSION_SET_WARNING =
  "Warning Permissions in the config file is an experimental feature and may change in the future.";

/** `deno run -P=run main.ts ...args` in the project folder. */
export function cli(...args: string[]): Promise<Result> {
  return cliWith({}, ...args);
}

let installed: Promise<void> | undefined;

/**
 * `deno install` once per test process: in a fresh clone, the first `deno run`
 * sets up node_modules and prints an `Initialize <package>` line per package
 * on stderr, which is Deno's, not the command's.
 */
function install(): Promise<void> {
  installed ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["install"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) throw new Error(`deno install: ${new TextDecoder().decode(out.stderr)}`);
  })();
  return installed;
}

/** {@link cli} with extra environment variables (e.g. a `PATH` without Slurm). */
export async function cliWith(env: Record<string, string>, ...args: string[]): Promise<Result> {
  await install();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", "main.ts", ...args],
    cwd: ROOT,
    env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) =>
    new TextDecoder().decode(b).split("\n").filter((l) => l !== PERMISSION_SET_WARNING).join("\n");
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Asserts a bad-input exit: status 2, one `error:` paragraph, no stack trace. */
export function assertUserError(r: Result, pattern: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  const message = r.stderr.trim();
  assert.match(message, /^error: /, what);
  assert.match(message, pattern, what);
  assert.ok(!/\n\s*\n/.test(message), `${what}: more than one paragraph: ${message}`);
  assert.ok(!/^\s+at /m.test(message), `${what}: a stack trace: ${message}`);
  assert.equal(r.stdout.trim(), "", what);
}
