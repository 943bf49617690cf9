/**
 * The local Hugging Face cache (`$HF_HOME/hub`, default
 * `~/.cache/huggingface/hub`): a repository's revision as the snapshot folder
 * `models--ORG--NAME/snapshots/<commit>/`, the commit read from
 * `models--ORG--NAME/refs/<revision>` (a branch or tag such as `step23000`) or
 * given as 40 hex digits. Nothing is ever downloaded: a revision not in the
 * cache is a UserError with the command that downloads it.
 *
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.ts";

/** The hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. */
export function hubCache(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): string {
  const explicit = env("HF_HUB_CACHE");
  if (explicit) return explicit;
  const home = env("HF_HOME") ??
    join(env("XDG_CACHE_HOME") ?? join(env("HOME") ?? "~", ".cache"), "huggingface");
  return join(home, "hub");
}

/**
 * The snapshot folder of `repo` (`ORG/NAME`) at `revision` in the cache `cache`.
 *
 * @example
 * ```ts ignore
 * hubSnapshot("EleutherAI/pythia-70m-deduped", "step23000", hubCache());
 * // → ~/.cache/huggingface/hub/models--EleutherAI--pythia-70m-deduped/snapshots/<commit>
 * ```
 */
export function hubSnapshot(repo: string, revision: string, cache: string): string {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo) || repo.includes("..")) {
    throw new UserError(`hub repository ${JSON.stringify(repo)} is not ORG/NAME.`);
  }
  if (!/^[\w.-]+$/.test(revision) || revision.includes("..")) {
    throw new UserError(
      `hub revision ${JSON.stringify(revision)} of ${repo} is not a branch, tag or commit.`,
    );
  }
  const base = join(cache, `models--${repo.replace("/", "--")}`);
  const download = `huggingface-cli download ${repo} --revision ${revision}`;
  let commit = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = join(base, "refs", revision);
    if (!existsSync(ref)) {
      throw new UserError(
        `${ref}: revision ${revision} of ${repo} is not in the Hugging Face cache (${cache}); ` +
          `download it first (\`${download}\`) or set HF_HOME.`,
      );
    }
    commit = readFileSync(ref, "utf8").trim();
    if (!/^[0-9a-f]{40}$/.test(commit)) {
      throw new UserError(
        `${ref}: holds ${JSON.stringify(commit.slice(0, 80))}, not a commit hash.`,
      );
    }
  }
  const snapshot = join(base, "snapshots", commit);
  if (!existsSync(join(snapshot, "config.json"))) {
    throw new UserError(
      `${snapshot}: the snapshot of ${repo} at ${revision} has no config.json; download it ` +
        `(\`${download}\`).`,
    );
  }
  return snapshot;
}
