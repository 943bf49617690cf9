import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isUserError } from "../engine/errors.ts";
import { duplicateWeights, modelFingerprints } from "../engine/model/fingerprint.ts";
import { tempDir, writeTinyLM } from "./tiny_lm.ts";

async function one(path: string, cache?: string) {
  return (await modelFingerprints([path], cache ? { cache } : {})).get(path)!;
}

/** Flips one bit of the byte in the middle of a file (mtime changes as a real edit's would). */
async function flipMiddle(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes[bytes.length >> 1] ^= 1;
  await writeFile(path, bytes);
}

Deno.test("the fingerprint covers every byte of the model file, middle included", async () => {
  await using dir = await tempDir();
  const path = await writeTinyLM(dir.path, "m.onnx", { variant: "no-cache", seed: 1 });
  const a = await one(path);
  assert.match(a.fingerprint, /^[0-9a-f]{32}$/);
  assert.equal((await one(path)).fingerprint, a.fingerprint);
  await flipMiddle(path);
  const b = await one(path);
  assert.notEqual(b.fingerprint, a.fingerprint);
  assert.notEqual(b.weights, a.weights);
});

Deno.test("the fingerprint covers the external-data files a model names", async () => {
  await using dir = await tempDir();
  const path = await writeTinyLM(dir.path, "m.onnx", {
    variant: "no-cache",
    seed: 2,
    external: true,
  });
  const before = await one(path);
  const { buildTinyLM } = await import("./tiny_lm.ts");
  const [loc] = [...buildTinyLM({ variant: "no-cache", seed: 2, external: true }).files.keys()];
  await flipMiddle(join(dir.path, loc));
  assert.notEqual((await one(path)).weights, before.weights);
  await Deno.remove(join(dir.path, loc));
  await assert.rejects(() => one(path), (e) => {
    assert.ok(isUserError(e));
    assert.equal(
      (e as Error).message,
      `${join(dir.path, loc)}: the external-data file ${loc} of ${path} does not exist; ` +
        "check the checkpoint paths in the experiment file.",
    );
    return true;
  });
});

Deno.test("config.json enters the fingerprint but not the weights hash", async () => {
  await using dir = await tempDir();
  const path = await writeTinyLM(dir.path, "m.onnx", { variant: "no-cache", seed: 3 });
  const a = await one(path);
  await writeFile(join(dir.path, "config.json"), '{"num_attention_heads": 2}');
  const b = await one(path);
  assert.notEqual(b.fingerprint, a.fingerprint);
  assert.equal(b.weights, a.weights);
});

Deno.test("digests are cached by path, size, mtime and ctime", async () => {
  await using dir = await tempDir();
  const path = await writeTinyLM(dir.path, "m.onnx", { variant: "no-cache", seed: 4 });
  const cache = join(dir.path, "fingerprints.json");
  const first = await one(path, cache);
  const stored = JSON.parse(await readFile(cache, "utf8"));
  const entry = stored.files[path];
  assert.equal(entry.sha256, createHash("sha256").update(await readFile(path)).digest("hex"));
  assert.equal(entry.size, (await Deno.stat(path)).size);
  assert.deepEqual(entry.external, []);
  // A cache entry whose stamps match is used as is (proved by planting a different digest).
  entry.sha256 = "0".repeat(64);
  await writeFile(cache, JSON.stringify(stored));
  const planted = await one(path, cache);
  assert.notEqual(planted.weights, first.weights);
  // Touching the file (new mtime and ctime) makes it hashed again.
  await utimes(path, new Date(), new Date(Date.now() - 3_600_000));
  assert.equal((await one(path, cache)).weights, first.weights);
  // A damaged cache is ignored.
  await writeFile(cache, "{not json");
  assert.equal((await one(path, cache)).weights, first.weights);
});

Deno.test("a model that does not exist or is not ONNX is a user error naming it", async () => {
  await using dir = await tempDir();
  const missing = join(dir.path, "nope.onnx");
  await assert.rejects(() => one(missing), (e) => {
    assert.ok(isUserError(e));
    assert.equal(
      (e as Error).message,
      `${missing}: the model file does not exist; check the checkpoint paths in the experiment file.`,
    );
    return true;
  });
  const junk = join(dir.path, "junk.onnx");
  await writeFile(junk, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  await assert.rejects(() => one(junk), (e) => {
    assert.ok(isUserError(e));
    assert.match((e as Error).message, new RegExp(`^${junk}: not an ONNX model \\(`));
    return true;
  });
});

Deno.test("identical weights under two steps are one warning naming both", async () => {
  await using dir = await tempDir();
  const a = await writeTinyLM(join(dir.path, "a"), "step1.onnx", { variant: "no-cache", seed: 5 });
  const b = await writeTinyLM(join(dir.path, "b"), "step2.onnx", { variant: "no-cache", seed: 5 });
  const c = await writeTinyLM(join(dir.path, "c"), "step3.onnx", { variant: "no-cache", seed: 6 });
  const f = await modelFingerprints([a, b, c]);
  const records = [
    { model: "m", step: 1, path: a, weights: f.get(a)!.weights },
    { model: "m", step: 2, path: b, weights: f.get(b)!.weights },
    { model: "m", step: 3, path: c, weights: f.get(c)!.weights },
  ];
  const warnings = duplicateWeights(records);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    new RegExp(
      `^identical weights \\(sha256 [0-9a-f]{16}…\\) under 2 checkpoints: m step 1 \\(${a}\\), ` +
        `m step 2 \\(${b}\\)\\. One is probably a stale copy`,
    ),
  );
  assert.deepEqual(duplicateWeights(records.slice(1)), []);
});
