/**
 * One writer per run folder. Scoring, the report and imports take
 * `<run>/locks/run.lock` (exclusive); a shard group (`--shard-group I/N`, e.g.
 * a Slurm array task) takes `<run>/locks/group-I-of-N.lock`, which excludes the
 * exclusive lock, the same group and groups of another split, but not the other
 * groups of its split: those write disjoint shards. A lock file is created with
 * `O_EXCL` (atomic on local file systems and on NFSv3+, Lustre and GPFS) and
 * records the holder's pid, host, start time and command.
 *
 * A second process refuses with a message naming the holder, or with `wait`
 * polls until the folder is free. A lock of a process of this host that no
 * longer runs (killed, or the host rebooted since) is taken over with a note;
 * one of another host cannot be checked, so the message says which file to
 * delete when that process is known to be gone. Both orders of "create mine,
 * then look for a conflicting one" are safe: when two conflicting takers race,
 * at least one backs off.
 *
 * @module
 */
import { assertRunFolder, claimOutputFolder } from "./run_marker.ts";
import { hostname } from "node:os";
import { mkdir, open, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../errors.ts";
import { removeLeftovers, writeError } from "./atomic.ts";
import { bootTime, processState } from "./process.ts";
import { ifNotFound, isNotFound } from "./fs_errors.ts";

/** Who holds a lock (the lock file's JSON). */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** When the holder's host booted (ms since the epoch), to tell a pid of an earlier boot. */
  boot: number;
  /** What the holder does: `scoring`, `report`, `import`. */
  purpose: string;
  /** The holder's command line. */
  command: string;
  /** `I/N` for a shard group's lock. */
  group?: string;
  /** Random id of this taking of the lock. */
  token: string;
}

/** Options of {@link lockRunFolder}. */
export interface LockOptions {
  /** What the lock is taken for (shown to a process that finds it held). */
  purpose: string;
  /** Take the shared lock of shard group `index` of `count` instead of the exclusive one. */
  group?: { index: number; count: number };
  /** Wait until the folder is free instead of refusing. */
  wait?: boolean;
  /** Notes (a stale lock taken over, waiting). */
  log?: (line: string) => void;
  /** Poll interval while waiting (default 2000 ms). */
  pollMs?: number;
  /** Stops waiting (the promise then rejects with the abort reason); a free folder is still taken. */
  signal?: AbortSignal;
  /**
   * {@link claimRunFolder} only: `output` (default) when the command makes or
   * adds to the folder (it must be new, empty or a run folder of ours:
   * engine/os/run_marker.ts), `existing` when it reads one (report, export,
   * forecast: it must be a run folder already; nothing is written otherwise).
   */
  folder?: "output" | "existing";
}

/** A lock held on a run folder. */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock file (only if it is still this lock's). */
  release(): Promise<void>;
}

const LOCKS = "locks";
const EXCLUSIVE = "run.lock";
const TAKEOVER = "takeover.lock";
const GROUP = /^group-(\d+)-of-(\d+)\.lock$/;
const UNREADABLE_AFTER_MS = 10_000;

/** Takes the run folder's lock for writing (creating the folder); see the module doc. */
export async function lockRunFolder(dir: string, opts: LockOptions): Promise<RunLock> {
  const locks = join(dir, LOCKS);
  try {
    await mkdir(locks, { recursive: true });
  } catch (e) {
    throw writeError(dir, e);
  }
  const name = opts.group ? `group-${opts.group.index}-of-${opts.group.count}.lock` : EXCLUSIVE;
  const holder: LockHolder = {
    pid: Deno.pid,
    host: hostname(),
    started: new Date().toISOString(),
    boot: bootTime(),
    purpose: opts.purpose,
    command: commandLine(),
    ...(opts.group ? { group: `${opts.group.index}/${opts.group.count}` } : {}),
    token: crypto.randomUUID(),
  };
  const log = opts.log ?? (() => {});
  let waiting = false;
  for (;;) {
    const conflict = await tryLock(locks, name, holder, opts.group, log);
    if (conflict === null) break;
    const message = busyMessage(dir, join(locks, conflict.file), conflict.holder);
    if (!opts.wait) throw new UserError(`${message} Rerun with --wait to start when it is done.`);
    opts.signal?.throwIfAborted();
    if (!waiting) log(`${message} Waiting (--wait)…`);
    waiting = true;
    await sleep((opts.pollMs ?? 2000) * (0.75 + Math.random() / 2), opts.signal);
  }
  const path = join(locks, name);
  const onUnload = () => {
    try {
      const now = JSON.parse(Deno.readTextFileSync(path)) as LockHolder;
      if (now.token === holder.token) Deno.removeSync(path);
    } catch (e) {
      // already gone (or replaced by a torn write of another holder's)
      if (!isNotFound(e) && !(e instanceof SyntaxError)) throw e;
    }
  };
  globalThis.addEventListener("unload", onUnload);
  return {
    path,
    holder,
    async release() {
      globalThis.removeEventListener("unload", onUnload);
      const now = await readHolder(path);
      if (now !== "missing" && now !== "unreadable" && now.token === holder.token) {
        await unlink(path).catch(ifNotFound(undefined));
      }
    },
  };
}

/**
 * Takes a run folder for writing ({@link lockRunFolder}) and removes the
 * temporary files that killed writers left in it: every one under the
 * exclusive lock, only those of dead processes of this host under a shard
 * group's lock (other groups may be writing). Says how many it removed.
 */
export async function claimRunFolder(dir: string, opts: LockOptions): Promise<RunLock> {
  if (opts.folder === "existing") await assertRunFolder(dir);
  else await claimOutputFolder(dir, "run");
  const lock = await lockRunFolder(dir, opts);
  try {
    const removed = await removeLeftovers(dir, opts.group === undefined);
    if (removed.length > 0) {
      opts.log?.(
        `Removed ${removed.length} leftover temporary file${removed.length > 1 ? "s" : ""} ` +
          `of an interrupted run in ${dir}.`,
      );
    }
  } catch (e) {
    await lock.release();
    throw e;
  }
  return lock;
}

/**
 * Runs `fn` holding `<run>/locks/<name>.lock`, waiting for it when held (a
 * short critical section, e.g. shard groups updating the manifest one at a time).
 */
export async function withFolderLock<T>(
  dir: string,
  name: string,
  fn: () => Promise<T>,
  log?: (line: string) => void,
): Promise<T> {
  const locks = join(dir, LOCKS);
  try {
    await mkdir(locks, { recursive: true });
  } catch (e) {
    throw writeError(dir, e);
  }
  const path = join(locks, `${name}.lock`);
  const holder: LockHolder = {
    pid: Deno.pid,
    host: hostname(),
    started: new Date().toISOString(),
    boot: bootTime(),
    purpose: name,
    command: commandLine(),
    token: crypto.randomUUID(),
  };
  while ((await claim(locks, `${name}.lock`, holder, log ?? (() => {}))) !== null) {
    await sleep(50 + Math.random() * 100);
  }
  try {
    return await fn();
  } finally {
    const now = await readHolder(path);
    if (now !== "missing" && now !== "unreadable" && now.token === holder.token) {
      await unlink(path).catch(ifNotFound(undefined));
    }
  }
}

type Conflict = { file: string; holder: LockHolder };

/** One attempt: null when the lock is now ours, else what holds the folder. */
async function tryLock(
  locks: string,
  name: string,
  me: LockHolder,
  group: LockOptions["group"],
  log: (line: string) => void,
): Promise<Conflict | null> {
  const own = await claim(locks, name, me, log);
  if (own) return own;
  // Ours now: back off if a conflicting lock exists (it may have been created meanwhile).
  for (const file of await readdir(locks)) {
    if (file === name) continue;
    const m = GROUP.exec(file);
    const conflicting = file === EXCLUSIVE ||
      (m !== null && (!group || Number(m[2]) !== group.count));
    if (!conflicting) continue;
    const other = await liveHolder(locks, file, log);
    if (other) {
      await unlinkIfMine(join(locks, name), me.token);
      return { file, holder: other };
    }
  }
  return null;
}

/**
 * Creates `name` exclusively with `me`; when it exists, takes it over if its
 * holder is gone, else returns the holder.
 */
async function claim(
  locks: string,
  name: string,
  me: LockHolder,
  log: (line: string) => void,
): Promise<Conflict | null> {
  const path = join(locks, name);
  for (;;) {
    if (await createExclusive(path, JSON.stringify(me, null, 2) + "\n")) return null;
    const other = await liveHolder(locks, name, log);
    if (other) return { file: name, holder: other };
    // Gone (taken over or released): try again.
  }
}

/** The live holder of a lock file, or null after removing a stale one (with a note). */
async function liveHolder(
  locks: string,
  file: string,
  log: (line: string) => void,
): Promise<LockHolder | null> {
  const path = join(locks, file);
  const seen = await readHolder(path);
  if (seen === "missing") return null;
  if (seen === "unreadable") {
    // Being written this instant, or its writer died right after creating it.
    const age = await stat(path).then((s) => Date.now() - (s.mtime?.getTime() ?? 0), () => 0);
    if (age < UNREADABLE_AFTER_MS) {
      await sleep(100);
      const again = await readHolder(path);
      return again === "missing" || again === "unreadable" ? null : liveHolder(locks, file, log);
    }
    if (await removeStale(locks, path, null)) log(`Removed the unreadable lock file ${path}.`);
    return null;
  }
  if (!isStale(seen)) return seen;
  if (await removeStale(locks, path, seen.token)) {
    log(
      `Took over ${path}: its holder, pid ${seen.pid} on this host (${seen.purpose} since ` +
        `${seen.started}), is no longer running.`,
    );
  }
  return null;
}

/** A holder of this host whose process is gone (or whose pid is of an earlier boot). */
function isStale(h: LockHolder): boolean {
  if (h.host !== hostname()) return false;
  if (h.boot && Math.abs(h.boot - bootTime()) > 5000) return true;
  return processState(h.pid) === false;
}

/**
 * Removes a stale lock file under `takeover.lock`, so that two processes that
 * both judged it stale cannot remove a fresh lock taken in between. Returns
 * whether this call removed it.
 */
async function removeStale(locks: string, path: string, token: string | null): Promise<boolean> {
  const guard = join(locks, TAKEOVER);
  for (let i = 0;; i++) {
    if (await createExclusive(guard, `${Deno.pid}\n`)) break;
    const age = await stat(guard).then((s) => Date.now() - (s.mtime?.getTime() ?? 0), () => 0);
    if (age > 30_000) await unlink(guard).catch(ifNotFound(undefined));
    await sleep(50 + 10 * Math.min(i, 20));
  }
  try {
    const now = await readHolder(path);
    const same = token === null ? now === "unreadable" : now !== "missing" &&
      now !== "unreadable" && now.token === token;
    if (!same) return false;
    await unlink(path);
    return true;
  } finally {
    await unlink(guard).catch(ifNotFound(undefined));
  }
}

async function createExclusive(path: string, text: string): Promise<boolean> {
  let file;
  try {
    file = await open(path, "wx");
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return false;
    throw writeError(path, e);
  }
  try {
    await file.writeFile(text);
    await file.sync();
  } catch (e) {
    await file.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw writeError(path, e);
  }
  await file.close();
  return true;
}

async function readHolder(path: string): Promise<LockHolder | "missing" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    return (e as { code?: string }).code === "ENOENT" ? "missing" : "unreadable";
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    return typeof h?.pid === "number" && typeof h.host === "string" && typeof h.token === "string"
      ? h
      : "unreadable";
  } catch (e) {
    if (e instanceof SyntaxError) return "unreadable";
    throw e;
  }
}

async function unlinkIfMine(path: string, token: string): Promise<void> {
  const now = await readHolder(path);
  if (now !== "missing" && now !== "unreadable" && now.token === token) {
    await unlink(path).catch(ifNotFound(undefined));
  }
}

function busyMessage(dir: string, path: string, h: LockHolder): string {
  const what = h.group ? `${h.purpose} of shard group ${h.group}` : h.purpose;
  const here = h.host === hostname();
  return `${dir} is in use: ${what} by pid ${h.pid} on ${here ? "this host" : h.host} since ` +
    `${h.started} (${h.command}).` +
    (here ? "" : ` If that process is known to be gone, delete ${path}.`);
}

function commandLine(): string {
  const main = Deno.mainModule.replace(/^file:\/\//, "").replace(/^.*\//, "");
  return [main, ...Deno.args].join(" ");
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
