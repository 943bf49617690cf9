import assert from "node:assert/strict";
import { hostname } from "node:os";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isUserError } from "../engine/errors.ts";
import { appendLine, removeLeftovers, writeAtomic } from "../engine/os/atomic.ts";

const HOST = hostname().replace(/[^A-Za-z0-9_-]/g, "_");

async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("writeAtomic replaces a file whole and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "sub", "a.json");
  await writeAtomic(path, "one");
  await writeAtomic(path, new TextEncoder().encode("two"));
  assert.equal(await readFile(path, "utf8"), "two");
  assert.deepEqual(await readdir(join(dir, "sub")), ["a.json"]);
});

Deno.test("a write that cannot happen names the file, removes its temporary file, keeps the old one", async () => {
  const dir = await Deno.makeTempDir();
  await writeFile(join(dir, "blocker"), "");
  await assert.rejects(() => writeAtomic(join(dir, "blocker", "x.bin"), "x"), (e) => {
    assert.ok(isUserError(e));
    assert.match(
      (e as Error).message,
      new RegExp(`^${dir}/blocker/x\\.bin: cannot be written \\(a part of the path is a file`),
    );
    return true;
  });
  // A folder in the way of the rename: the temporary file is written, then removed.
  const target = join(dir, "taken");
  await Deno.mkdir(join(target, "inside"), { recursive: true });
  await assert.rejects(() => writeAtomic(target, "x"), (e) => {
    assert.match((e as Error).message, new RegExp(`^writing ${target} failed: .*Nothing partial`));
    return true;
  });
  assert.deepEqual((await readdir(dir)).sort(), ["blocker", "taken"]);
});

Deno.test("appendLine adds whole lines", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "runs.jsonl");
  await appendLine(path, '{"a":1}');
  await appendLine(path, '{"b":2}\n');
  assert.equal(await readFile(path, "utf8"), '{"a":1}\n{"b":2}\n');
});

Deno.test("removeLeftovers removes temporary files of dead writers of this host, or all", async () => {
  const dir = await Deno.makeTempDir();
  const shards = join(dir, "scores", "m1", "step1");
  await Deno.mkdir(shards, { recursive: true });
  const dead = join(shards, `shard00000.bin.${HOST}.${await deadPid()}.0a1b2c3d.tmp`);
  const live = join(shards, `shard00001.bin.${HOST}.${Deno.pid}.0a1b2c3d.tmp`);
  const remote = join(dir, `manifest.json.node17.4242.0a1b2c3d.tmp`);
  const old = join(dir, "report.html.1234.0a1b2c3d.tmp");
  for (const p of [dead, live, remote, old]) await writeFile(p, "partial");
  await writeFile(join(shards, "shard00002.bin"), "kept");
  assert.deepEqual(await removeLeftovers(dir, false), [dead]);
  assert.deepEqual((await removeLeftovers(dir, true)).sort(), [live, old, remote].sort());
  assert.deepEqual(await readdir(shards), ["shard00002.bin"]);
});
