import assert from "node:assert/strict";
import { hostname } from "node:os";
import { readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isUserError } from "../engine/errors.ts";
import { type LockHolder, lockRunFolder, withFolderLock } from "../engine/os/lock.ts";
import { bootTime, processState } from "../engine/os/process.ts";

const HOLDER = new URL("./fixtures/hold_lock.ts", import.meta.url);

function refusal(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(isUserError(e), String(e));
    assert.match((e as Error).message, pattern);
    return true;
  };
}

/** A pid that belonged to a process of this host that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  assert.equal(processState(child.pid), false);
  return child.pid;
}

async function plantLock(dir: string, name: string, holder: Partial<LockHolder>): Promise<string> {
  await Deno.mkdir(join(dir, "locks"), { recursive: true });
  const path = join(dir, "locks", name);
  const full: LockHolder = {
    pid: 1,
    host: hostname(),
    started: "2026-01-01T00:00:00.000Z",
    boot: bootTime(),
    purpose: "scoring",
    command: "main.ts experiment x.yaml",
    token: "planted",
    ...holder,
  };
  await writeFile(path, JSON.stringify(full));
  return path;
}

Deno.test("processState tells a running process from an exited one", async () => {
  assert.equal(processState(Deno.pid), true);
  assert.equal(processState(await deadPid()), false);
});

Deno.test("a second writer refuses, naming the holder; the lock is free again after release", async () => {
  const dir = await Deno.makeTempDir();
  const lock = await lockRunFolder(dir, { purpose: "scoring" });
  const held = JSON.parse(await readFile(lock.path, "utf8")) as LockHolder;
  assert.equal(held.pid, Deno.pid);
  assert.equal(held.host, hostname());
  assert.ok(!Number.isNaN(Date.parse(held.started)));
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "report" }),
    refusal(
      new RegExp(
        `^${dir} is in use: scoring by pid ${Deno.pid} on this host since ${held.started} ` +
          `\\(.+\\)\\. Rerun with --wait to start when it is done\\.$`,
      ),
    ),
  );
  await lock.release();
  assert.deepEqual(await readdir(join(dir, "locks")), []);
  await (await lockRunFolder(dir, { purpose: "report" })).release();
});

Deno.test("a lock of another process is refused until it is killed, then taken over with a note", async () => {
  const dir = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", HOLDER.pathname, dir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value).trim(), "locked");
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "scoring" }),
    refusal(new RegExp(`in use: scoring by pid ${child.pid} on this host .*hold_lock\\.ts ${dir}`)),
  );
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  const notes: string[] = [];
  const lock = await lockRunFolder(dir, { purpose: "scoring", log: (l) => notes.push(l) });
  assert.equal(notes.length, 1);
  assert.match(
    notes[0],
    new RegExp(
      `^Took over .*run\\.lock: its holder, pid ${child.pid} on this host \\(scoring since .*\\), is no longer running\\.$`,
    ),
  );
  await lock.release();
});

Deno.test("stale locks: a dead pid or an earlier boot of this host are taken over, another host's is not", async () => {
  const dir = await Deno.makeTempDir();
  const notes: string[] = [];
  await plantLock(dir, "run.lock", { pid: await deadPid() });
  await (await lockRunFolder(dir, { purpose: "scoring", log: (l) => notes.push(l) })).release();
  await plantLock(dir, "run.lock", { pid: Deno.pid, boot: bootTime() - 86_400_000 });
  await (await lockRunFolder(dir, { purpose: "scoring", log: (l) => notes.push(l) })).release();
  assert.equal(notes.filter((n) => n.startsWith("Took over")).length, 2);

  const path = await plantLock(dir, "run.lock", { pid: 4242, host: "node17.cluster" });
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "scoring" }),
    refusal(
      new RegExp(
        `by pid 4242 on node17\\.cluster .*If that process is known to be gone, delete ${path}\\.`,
      ),
    ),
  );
});

Deno.test("an unreadable lock file is waited on while fresh and removed when old", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "locks"));
  const path = join(dir, "locks", "run.lock");
  await writeFile(path, "");
  const old = new Date(Date.now() - 60_000);
  await utimes(path, old, old);
  const notes: string[] = [];
  await (await lockRunFolder(dir, { purpose: "scoring", log: (l) => notes.push(l) })).release();
  assert.deepEqual(notes, [`Removed the unreadable lock file ${path}.`]);
});

Deno.test("shard groups of one split share the folder; the exclusive lock and other splits do not", async () => {
  const dir = await Deno.makeTempDir();
  const g0 = await lockRunFolder(dir, { purpose: "scoring", group: { index: 0, count: 2 } });
  const g1 = await lockRunFolder(dir, { purpose: "scoring", group: { index: 1, count: 2 } });
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "report" }),
    refusal(/in use: scoring of shard group [01]\/2 by pid/),
  );
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "scoring", group: { index: 0, count: 2 } }),
    refusal(/in use: scoring of shard group 0\/2 by pid/),
  );
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "scoring", group: { index: 2, count: 3 } }),
    refusal(/in use: scoring of shard group [01]\/2 by pid/),
  );
  await g0.release();
  await g1.release();
  const whole = await lockRunFolder(dir, { purpose: "scoring" });
  await assert.rejects(
    () => lockRunFolder(dir, { purpose: "scoring", group: { index: 1, count: 2 } }),
    refusal(/in use: scoring by pid/),
  );
  await whole.release();
  // Nothing is left behind: the backed-off attempts removed their own files.
  assert.deepEqual(await readdir(join(dir, "locks")), []);
});

Deno.test("--wait starts once the holder is done", async () => {
  const dir = await Deno.makeTempDir();
  const first = await lockRunFolder(dir, { purpose: "scoring" });
  const notes: string[] = [];
  let acquired = false;
  const second = lockRunFolder(dir, {
    purpose: "report",
    wait: true,
    pollMs: 20,
    log: (l) => notes.push(l),
  }).then((l) => (acquired = true, l));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(acquired, false);
  await first.release();
  const lock = await second;
  assert.equal(notes.length, 1);
  assert.match(notes[0], /is in use: scoring by pid .* Waiting \(--wait\)…$/);
  assert.equal(JSON.parse(await readFile(lock.path, "utf8")).purpose, "report");
  await lock.release();
});

Deno.test("withFolderLock runs critical sections one at a time", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "count");
  await writeFile(file, "0");
  const bump = () =>
    withFolderLock(dir, "manifest", async () => {
      const n = Number(await readFile(file, "utf8"));
      await new Promise((r) => setTimeout(r, 5));
      await writeFile(file, String(n + 1));
    });
  await Promise.all(Array.from({ length: 8 }, bump));
  assert.equal(await readFile(file, "utf8"), "8");
});

Deno.test("a run folder that cannot be created is a user error naming it", async () => {
  const dir = await Deno.makeTempDir();
  await writeFile(join(dir, "file"), "");
  await assert.rejects(
    () => lockRunFolder(join(dir, "file", "run"), { purpose: "scoring" }),
    refusal(
      new RegExp(
        `^${dir}/file/run: cannot be written \\(a part of the path is a file, not a folder\\)`,
      ),
    ),
  );
});
