import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { ifNotFound, isNotFound } from "../engine/os/fs_errors.ts";

Deno.test("isNotFound knows Deno's and node:fs's absent paths, and nothing else", async () => {
  const missing = "/nonexistent/fs_errors_test";
  const deno = await Deno.readFile(missing).catch((e) => e);
  const node = await readFile(missing).catch((e) => e);
  assert.ok(isNotFound(deno) && isNotFound(node));
  const dir = await Deno.makeTempDir();
  try {
    const notAFile = await readFile(dir).catch((e) => e); // EISDIR
    assert.ok(notAFile instanceof Error && !isNotFound(notAFile));
    assert.ok(!isNotFound(new SyntaxError("x")) && !isNotFound(null));
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("ifNotFound gives the fallback for an absent path and rethrows any other error", async () => {
  assert.equal(await readFile("/nonexistent/fs_errors_test").catch(ifNotFound(null)), null);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(() => readFile(dir).catch(ifNotFound(null)), /EISDIR|directory/i);
  } finally {
    await Deno.remove(dir);
  }
});
