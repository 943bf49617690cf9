/**
 * Test helper: makes sure programs from Debian packages (Chromium, Slurm)
 * are there before a test uses them. When one is missing and this is root on
 * a system with apt-get, installs the packages (running `apt-get update` first
 * when the package lists are empty or stale); otherwise says, in one line,
 * what to install, and the caller skips its tests with that line. So every
 * test file installs what it needs itself and no test depends on another
 * having run first.
 *
 * @module
 */

/** Whether the programs are there, and if not, the one line to print when skipping. */
export type Availability = { ok: true } | { ok: false; line: string };

/** What a test file needs. */
export interface Needs {
  /** Who needs it, for the skip line, e.g. `tests/browser_test.ts (headless Chromium)`. */
  what: string;
  /** Programs that must be found: a name looked up on PATH, or an absolute path. */
  programs: string[];
  /** The Debian packages providing them. */
  packages: string[];
}

/** Output of one command; `code` 127 when it could not be started. */
export async function exec(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
      .output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** The programs of `programs` that are not found. */
export async function missingPrograms(programs: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const name of programs) {
    if (name.startsWith("/")) {
      const isFile = await Deno.stat(name).then((s) => s.isFile, () => false);
      if (!isFile) missing.push(name);
    } else if ((await exec("sh", ["-c", `command -v '${name}'`])).code !== 0) {
      missing.push(name);
    }
  }
  return missing;
}

/** The last lines of a failed command's stderr, on one line. */
function lastLines(text: string): string {
  return text.trim().split("\n").slice(-2).join(" ");
}

/**
 * Checks that `needs.programs` are found; when they are not and this is root
 * on a system with apt-get, installs `needs.packages` (waiting up to five
 * minutes for another apt-get to finish). Returns the skip line otherwise.
 */
export async function ensurePrograms(needs: Needs): Promise<Availability> {
  const install = `apt-get install -y ${needs.packages.join(" ")}`;
  const skip = (why: string): Availability => ({
    ok: false,
    line: `SKIPPED ${needs.what}: ${why}`,
  });
  if (Deno.build.os !== "linux") {
    return skip(`needs Debian's ${needs.packages.join(", ")}; this is ${Deno.build.os}`);
  }
  let missing = await missingPrograms(needs.programs);
  if (missing.length === 0) return { ok: true };
  const lacking = `${missing.join(", ")} not found`;
  if (Deno.uid() !== 0) {
    return skip(`${lacking}; install it as root with \`${install}\` (uid ${Deno.uid()} here)`);
  }
  if ((await exec("sh", ["-c", "command -v apt-get"])).code !== 0) {
    return skip(
      `${lacking} and there is no apt-get; install Debian's ${needs.packages.join(", ")}`,
    );
  }
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const wait = ["-o", "DPkg::Lock::Timeout=300"];
  const aptInstall = () =>
    exec("apt-get", [...wait, "install", "-y", "--no-install-recommends", ...needs.packages], env);
  let result = await aptInstall();
  if (result.code !== 0) {
    // A fresh machine has no package lists (E: Unable to locate package): fetch them once.
    const update = await exec("apt-get", [...wait, "update"], env);
    if (update.code !== 0) return skip(`apt-get update failed: ${lastLines(update.stderr)}`);
    result = await aptInstall();
  }
  if (result.code !== 0) return skip(`\`${install}\` failed: ${lastLines(result.stderr)}`);
  missing = await missingPrograms(needs.programs);
  if (missing.length > 0) return skip(`${missing.join(", ")} still not found after \`${install}\``);
  return { ok: true };
}
