/**
 * The fault matrix (docs/reliability.md): each class of fault replayed on a
 * reduced nano suite through the command line, checking the exit status, the
 * message (one paragraph naming the file, no stack trace), and that the final
 * scores equal those of an uninterrupted run.
 *
 * @module
 */
import { claimOutputFolder } from "../engine/os/run_marker.ts";
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { processState } from "../engine/os/process.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { shardFiles } from "./fixtures/shard_files.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NANO = join(ROOT, "experiments", "nano");
const HOLDER = fileURLToPath(new URL("./fixtures/hold_lock.ts", import.meta.url));
/** 2 models × 2 steps × 8 shards of 32 rows: quick to score. */
const SMALL = { models: 2, steps: 2, rows: 256, shardSize: 32, batchSize: 32 };
const SMALL_SHARDS = 32;
/**
 * 480 shards of all five nano models: ~4.5 s of scoring on the 2-core development machine, so
 * that a stop lands mid-run (the child of a killed parent notices within a second; 96 shards of
 * two models took under a second once scoring got faster).
 */
const LONG = { models: 5, steps: 4, rows: 768, shardSize: 32, batchSize: 32 };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function command(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", "main.ts", ...args],
    cwd: ROOT,
    env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

async function cli(args: string[], env?: Record<string, string>): Promise<Result> {
  const out = await command(args, env).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** No stack trace: no line of the form `    at …`. */
function assertNoStack(r: Result) {
  assert.doesNotMatch(r.stderr, /^\s+at /m, `a stack trace was printed:\n${r.stderr}`);
}

function expectCode(r: Result, code: number) {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}\n${r.stderr}`);
}

async function cp(from: string, to: string) {
  const out = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

/** Every file under a folder whose name ends in `.tmp`. */
async function tmpFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) found.push(...await tmpFiles(path));
    else if (e.name.endsWith(".tmp")) found.push(path);
  }
  return found;
}

/** The last record of `runs.jsonl`. */
async function lastRun(dir: string): Promise<Record<string, unknown>> {
  const lines = (await readFile(join(dir, "runs.jsonl"), "utf8")).trim().split("\n");
  return JSON.parse(lines.at(-1)!);
}

async function assertSameScores(dir: string, ref: string) {
  await assertSameShardBytes(dir, ref);
  assert.deepEqual(await readCheckpointScores(dir), await readCheckpointScores(ref));
}

/** Byte equality of every shard file (needs no manifest). */
async function assertSameShardBytes(dir: string, ref: string) {
  const files = await shardFiles(ref);
  assert.deepEqual(await shardFiles(dir), files);
  for (const f of files) {
    assert.deepEqual(
      await readFile(join(dir, "scores", f)),
      await readFile(join(ref, "scores", f)),
      f,
    );
  }
}

/**
 * A private copy of the nano models and data (so they can be damaged), an
 * experiment over them with output `<dir>/<name>`, and its reference run.
 */
async function suite(shape: typeof SMALL) {
  const dir = await Deno.makeTempDir({ prefix: "faults_" });
  const inputs = join(dir, "inputs");
  await Deno.mkdir(inputs);
  const models = Array.from({ length: shape.models }, (_, i) => `s${i + 1}`);
  for (const part of [...models, "data", "tokenizer.json"]) {
    await cp(join(NANO, part), join(inputs, part));
  }
  const base = await writeReducedExperiment(dir, { ...shape, output: join(dir, "ref") });
  // deno-lint-ignore no-explicit-any
  const doc = parse(await readFile(base, "utf8")) as any;
  const local = (p: string) => p.replace(NANO, inputs);
  for (const m of doc.suite.models) m.path = local(m.path);
  doc.suite.tokenizer = local(doc.suite.tokenizer);
  doc.data.path = local(doc.data.path);
  doc.data.duplicates = local(doc.data.duplicates);
  const yaml = join(dir, "faults.yaml");
  await writeFile(yaml, stringify(doc));
  const ref = join(dir, "ref");
  const r = await cli(["experiment", yaml, "--no-report", "--output", ref]);
  expectCode(r, 0);
  return {
    dir,
    yaml,
    ref,
    inputs,
    /** A copy of the reference run folder. */
    async copy(name: string): Promise<string> {
      const to = join(dir, name);
      await cp(ref, to);
      return to;
    },
    run: (out: string, ...extra: string[]) =>
      cli(["experiment", yaml, "--no-report", "--output", out, ...extra]),
  };
}

const small = await suite(SMALL);

Deno.test("corrupted shards (flipped byte, truncated, bad header) are named, moved aside and rescored", async () => {
  const out = await small.copy("corrupt");
  const files = await shardFiles(out);
  const [flipped, cut, header] = [files[1], files[12], files[30]].map((f) =>
    join(out, "scores", f)
  );
  const bytes = await readFile(flipped);
  bytes[64 + 100] ^= 0x04;
  await writeFile(flipped, bytes);
  await truncate(cut, 100);
  const h = await readFile(header);
  h.set(new TextEncoder().encode("NOTSHARD"), 0);
  await writeFile(header, h);

  // The report refuses: the shards count as missing, each named.
  const report = await cli(["report", out]);
  expectCode(report, 2);
  assertNoStack(report);
  assert.ok(report.stderr.includes(`${flipped} is corrupt (checksum mismatch`), report.stderr);
  assert.match(report.stderr, /3 of 32 shards are missing/);

  const r = await small.run(out);
  expectCode(r, 0);
  assert.ok(r.stderr.includes(`${flipped} is corrupt (checksum mismatch (stored xxh64`), r.stderr);
  assert.ok(r.stderr.includes(`${cut} is corrupt (truncated: 100 bytes`), r.stderr);
  assert.ok(r.stderr.includes(`${header} is corrupt (not a shard file`), r.stderr);
  assert.equal((r.stderr.match(/; it is rescored\./g) ?? []).length, 3);
  assert.equal((await readdir(join(out, "stale", "corrupt"))).length, 3);
  assert.equal((await lastRun(out)).shards, 3);
  await assertSameScores(out, small.ref);
});

Deno.test("a damaged manifest is exit 2 naming it, touches nothing, and deleting it is safe", async () => {
  const out = await small.copy("manifest");
  const manifest = join(out, "manifest.json");
  await writeFile(manifest, '{"version": 2, "settingsHash": ');
  for (const r of [await small.run(out), await cli(["report", out])]) {
    expectCode(r, 2);
    assertNoStack(r);
    assert.ok(r.stderr.includes(`${manifest}: not valid JSON`), r.stderr);
    assert.match(r.stderr, /delete it/);
  }
  await assertSameShardBytes(out, small.ref);
  await Deno.remove(manifest);
  const again = await small.run(out);
  expectCode(again, 0);
  assert.match(
    again.stderr,
    new RegExp(`${SMALL_SHARDS} shards \\(${SMALL_SHARDS} already done\\)`),
  );
  await assertSameScores(out, small.ref);
});

Deno.test("a model changed in the middle has its scores moved aside and rescored", async () => {
  const out = await small.copy("model");
  const model = join(small.inputs, "s2", "step143.onnx");
  const original = await readFile(model);
  const changed = new Uint8Array(original); // a copy (Buffer#slice is a view)
  changed[changed.length >> 1] ^= 0x01;
  await writeFile(model, changed);
  try {
    const r = await small.run(out);
    expectCode(r, 0);
    assert.ok(r.stderr.includes(`${model} changed since its scores were made; moved them to`));
    assert.equal((await lastRun(out)).shards, 8);
  } finally {
    await writeFile(model, original);
  }
  const back = await small.run(out);
  expectCode(back, 0);
  assert.ok(back.stderr.includes(`${model} changed since its scores were made`));
  await assertSameScores(out, small.ref);
});

Deno.test("a truncated or missing model is exit 2 naming it; earlier results stay intact", async () => {
  const out = await small.copy("badmodel");
  const model = join(small.inputs, "s1", "step123.onnx");
  const original = await readFile(model);
  try {
    await truncate(model, 1000);
    const cut = await small.run(out);
    expectCode(cut, 2);
    assertNoStack(cut);
    assert.ok(cut.stderr.includes(model), cut.stderr);
    await Deno.remove(model);
    const gone = await small.run(out);
    expectCode(gone, 2);
    assertNoStack(gone);
    assert.ok(gone.stderr.includes(model), gone.stderr);
  } finally {
    await writeFile(model, original);
  }
  await assertSameScores(out, small.ref);
});

Deno.test("identical weights under two steps are a warning in the run's output and the report", async () => {
  const out = await small.copy("twins");
  const [a, b] = ["step123.onnx", "step143.onnx"].map((f) => join(small.inputs, "s1", f));
  const original = await readFile(a);
  await writeFile(a, await readFile(b));
  try {
    const r = await cli(["experiment", small.yaml, "--output", out]);
    expectCode(r, 0);
    const warning =
      /warning: identical weights \(sha256 [0-9a-f]{16}…\) under 2 checkpoints: nano-s1 step 123 .*nano-s1 step 143/;
    assert.match(r.stderr, warning);
    const summary = JSON.parse(await readFile(join(out, "summary.json"), "utf8"));
    assert.equal(summary.run.warnings.length, 1);
    assert.match(summary.run.warnings[0], /nano-s1 step 123 .*nano-s1 step 143/);
    assert.match(await readFile(join(out, "report.html"), "utf8"), /identical weights/);
  } finally {
    await writeFile(a, original);
  }
});

Deno.test("corrupted data (truncated .bin, bad .idx header) is exit 2 naming the file", async () => {
  const out = await small.copy("data");
  const bin = join(small.inputs, "data", "train.bin");
  const idx = join(small.inputs, "data", "train.idx");
  const [binBytes, idxBytes] = [await readFile(bin), await readFile(idx)];
  try {
    await truncate(bin, 100_000);
    const cut = await small.run(out);
    expectCode(cut, 2);
    assertNoStack(cut);
    assert.ok(cut.stderr.includes(`${bin}: the index says the data ends at byte`), cut.stderr);
    await writeFile(bin, binBytes);
    const bad = new Uint8Array(idxBytes);
    bad.set(new TextEncoder().encode("XXXX"), 0);
    await writeFile(idx, bad);
    const header = await small.run(out);
    expectCode(header, 2);
    assertNoStack(header);
    assert.ok(header.stderr.includes(`${idx}: not a valid MMapIndexedDataset index`));
  } finally {
    await writeFile(bin, binBytes);
    await writeFile(idx, idxBytes);
  }
  const r = await small.run(out);
  expectCode(r, 0);
  await assertSameScores(out, small.ref);
});

Deno.test("a second writer on a run folder refuses naming the holder, or waits with --wait", async () => {
  const out = join(small.dir, "busy");
  const holder = new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", HOLDER, out],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = holder.stdout.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value).trim(), "locked");
  reader.releaseLock();
  const refused = await small.run(out);
  expectCode(refused, 2);
  assertNoStack(refused);
  assert.match(
    refused.stderr,
    new RegExp(`${out} is in use: scoring by pid ${holder.pid} on this host since .*--wait`),
  );
  const report = await cli(["report", out]);
  expectCode(report, 2);
  assert.match(report.stderr, new RegExp(`in use: scoring by pid ${holder.pid}`));
  // Export and forecast read the shards a scoring run may move aside: they refuse too.
  for (const args of [["export", out], ["forecast", out, out]]) {
    const r = await cli(args);
    expectCode(r, 2);
    assertNoStack(r);
    assert.match(r.stderr, new RegExp(`in use: scoring by pid ${holder.pid}`), args.join(" "));
  }

  const waiting = command(["experiment", small.yaml, "--no-report", "--output", out, "--wait"])
    .output();
  await new Promise((r) => setTimeout(r, 3000));
  holder.kill("SIGTERM");
  await holder.status;
  await holder.stdout.cancel();
  const waited = await waiting;
  const stderr = new TextDecoder().decode(waited.stderr);
  assert.equal(waited.code, 0, stderr);
  assert.match(stderr, /Waiting \(--wait\)/);
  await assertSameScores(out, small.ref);
});

Deno.test("two runs started together on one folder score each shard once", async () => {
  const out = join(small.dir, "race");
  const args = ["experiment", small.yaml, "--no-report", "--output", out, "--wait"];
  const [a, b] = await Promise.all([command(args).output(), command(args).output()]);
  assert.equal(a.code, 0, new TextDecoder().decode(a.stderr));
  assert.equal(b.code, 0, new TextDecoder().decode(b.stderr));
  const records = (await readFile(join(out, "runs.jsonl"), "utf8")).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(records.reduce((n, r) => n + r.shards, 0), SMALL_SHARDS);
  await assertSameScores(out, small.ref);
});

Deno.test("leftover temporary files of a killed run are removed at the next start", async () => {
  const out = await small.copy("leftovers");
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, "_");
  const dead = new Deno.Command("true").spawn();
  await dead.status;
  const [first] = await shardFiles(out);
  const planted = [
    join(out, "scores", `${first}.${host}.${dead.pid}.0a1b2c3d.tmp`),
    join(out, `manifest.json.${host}.${dead.pid}.0a1b2c3d.tmp`),
    join(out, "report.html.1234.0a1b2c3d.tmp"),
  ];
  for (const p of planted) await writeFile(p, new Uint8Array(1000));
  const r = await small.run(out);
  expectCode(r, 0);
  assert.match(r.stderr, /Removed 3 leftover temporary files/);
  assert.deepEqual(await tmpFiles(out), []);
  await assertSameScores(out, small.ref);
});

Deno.test("an output folder outside the writable folders is exit 2 naming it, not Deno's hint", async () => {
  // Outside both writable folders (<repo>/runs and /tmp) wherever the checkout lives: a folder
  // inside the checkout would be under /tmp when the repository is cloned there.
  const out = join("/var/tmp", `.memo-faults-out-${Deno.pid}`);
  const r = await small.run(out);
  expectCode(r, 2);
  assertNoStack(r);
  assert.ok(r.stderr.includes(`${out}: cannot be written: the folder is outside those`), r.stderr);
  assert.doesNotMatch(r.stderr, /--allow-write/);
  assert.equal(await Deno.stat(out).then(() => true, () => false), false);
});

Deno.test("a failure while running is one paragraph and exit 1; the stack trace only with --debug", async () => {
  const out = join(small.dir, "failing");
  // A shard that can never be written (a folder sits where its file goes, so
  // the rename fails with an error that is not the user's input): the run fails.
  const blocker = join(out, "scores", "nano-s1", "step143", "shard00000.bin");
  await claimOutputFolder(out, "run"); // a run folder (marked), in which the fault is planted
  await Deno.mkdir(join(blocker, "blocks-the-shard"), { recursive: true });
  const plain = await cli(["experiment", small.yaml, "--no-report", "--output", out]);
  expectCode(plain, 1);
  assertNoStack(plain);
  assert.match(plain.stderr, /failed: writing .*shard00000\.bin failed: /);
  assert.ok(!/\n\s*\n/.test(plain.stderr.slice(plain.stderr.indexOf("failed: "))), plain.stderr);
  assert.match(plain.stderr, /\(--debug shows where\)/);
  const debug = await cli(["experiment", small.yaml, "--no-report", "--output", out, "--debug"]);
  expectCode(debug, 1);
  assert.match(debug.stderr, /^\s+at /m);
  await Deno.remove(blocker, { recursive: true });
  // The other shards were kept, and a run without the fault finishes the folder.
  const r = await small.run(out);
  expectCode(r, 0);
  await assertSameScores(out, small.ref);
});

const long = await suite(LONG);

/** Starts a run, waits for ≥ 2 finished shards, then calls `stop`; returns the shards kept. */
async function interrupted(
  cmd: Deno.Command,
  out: string,
  stop: (child: Deno.ChildProcess) => void,
) {
  const child = cmd.spawn();
  let exited = false;
  const output = child.output().finally(() => (exited = true));
  const deadline = Date.now() + 60_000;
  while ((await shardFiles(out)).length < 2) {
    if (exited) throw new Error(`exited early: ${new TextDecoder().decode((await output).stderr)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`fewer than 2 shards within 60 s: ${(await output).code}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  stop(child);
  const status = await output;
  let stderr = "";
  try {
    stderr = new TextDecoder().decode(status.stderr);
  } catch {
    // not piped
  }
  return { status, stderr, kept: await shardFiles(out) };
}

for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  Deno.test(`${signal} mid-run stops like Ctrl-C, records the stop, exits ${code} and resumes`, async () => {
    const out = join(long.dir, signal);
    const cmd = command(["experiment", long.yaml, "--no-report", "--output", out]);
    const { status, stderr, kept } = await interrupted(cmd, out, (c) => c.kill(signal));
    assert.equal(status.code, code, stderr);
    assert.match(
      stderr,
      new RegExp(
        `Interrupted by ${signal}: \\d+ of \\d+ remaining shards done.*; rerun the same command to resume\\.`,
      ),
    );
    const record = await lastRun(out);
    assert.equal(record.interrupted, true);
    assert.equal(record.stopped, signal);
    assert.equal(record.shards, kept.length);
    assert.deepEqual(await readdir(join(out, "locks")), []);
    const r = await long.run(out);
    expectCode(r, 0);
    await assertSameScores(out, long.ref);
  });
}

Deno.test("the child of a SIGKILLed deno task stops by itself and releases the folder", async () => {
  const out = join(long.dir, "orphan");
  const task = new Deno.Command(Deno.execPath(), {
    args: ["task", "experiment", long.yaml, "--no-report", "--output", out],
    cwd: ROOT,
    env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1" },
    stdout: "null",
    stderr: "null",
  });
  let childPid = 0;
  await interrupted(task, out, (parent) => {
    childPid = JSON.parse(Deno.readTextFileSync(join(out, "locks", "run.lock"))).pid;
    assert.notEqual(childPid, parent.pid);
    parent.kill("SIGKILL");
  });
  const deadline = Date.now() + 30_000;
  while (processState(childPid) !== false) {
    assert.ok(Date.now() < deadline, `the child ${childPid} still runs 30 s after its parent died`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const record = await lastRun(out);
  assert.equal(record.stopped, "parent");
  assert.deepEqual(await readdir(join(out, "locks")), []);
  const r = await long.run(out);
  expectCode(r, 0);
  await assertSameScores(out, long.ref);
});

/** Whether a tmpfs can be mounted here (root in a container that allows it). */
async function tryMount(dir: string, size: string): Promise<string | null> {
  if (Deno.build.os !== "linux") return "not Linux";
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "piped",
  }).output().catch((e) => ({ code: -1, stderr: new TextEncoder().encode(String(e)) }));
  return out.code === 0 ? null : new TextDecoder().decode(out.stderr).trim() || `exit ${out.code}`;
}

async function mountCommand(args: string[]) {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

const full = join(small.dir, "full");
await Deno.mkdir(full);
// Probe once at load (the test is registered as ignored where it cannot run); mount in the test.
const mountProblem = await tryMount(full, "48k");
if (mountProblem === null) await mountCommand(["umount", full]);
else {
  console.log(
    `faults_test: SKIPPING the disk-full case: a small tmpfs cannot be mounted here ` +
      `(${mountProblem}); it runs where the test runs as root with mount allowed (CI).`,
  );
}

Deno.test({
  name: "disk full names the file being written, leaves nothing partial, and resumes once freed",
  ignore: mountProblem !== null,
  fn: async () => {
    const out = join(full, "run");
    assert.equal(await tryMount(full, "48k"), null);
    try {
      const r = await small.run(out);
      expectCode(r, 1);
      assertNoStack(r);
      assert.match(
        r.stderr,
        new RegExp(
          `writing ${full}/run/\\S+ failed: no space left on the device\\. Nothing partial was ` +
            "left behind and earlier results are intact; free space .* rerun the same command",
        ),
      );
      assert.deepEqual(await tmpFiles(out), []);
      const kept = await shardFiles(out);
      assert.ok(kept.length > 0 && kept.length < SMALL_SHARDS, `${kept.length} shards kept`);
      await readCheckpointScores(out); // every kept shard verifies
      // An export onto the full disk fails the same way, and leaves no partial file either.
      for (const format of ["csv", "parquet"]) {
        const exported = await cli(["export", out, "--format", format]);
        expectCode(exported, 1);
        assertNoStack(exported);
        assert.match(
          exported.stderr,
          new RegExp(`writing ${out}/exports/\\S+ failed: no space left`),
        );
        assert.deepEqual(await tmpFiles(out), []);
      }
      // With --debug, the same failure also shows where it happened.
      const debug = await small.run(out, "--debug");
      expectCode(debug, 1);
      assert.match(debug.stderr, /no space left on the device/);
      assert.match(debug.stderr, /^\s+at /m);

      await mountCommand(["mount", "-o", "remount,size=4m", full]);
      const again = await small.run(out);
      expectCode(again, 0);
      await assertSameScores(out, small.ref);
    } finally {
      await mountCommand(["umount", full]);
    }
  },
});
