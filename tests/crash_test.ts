import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { runExperiment } from "../tasks/score.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { shardFiles } from "./fixtures/shard_files.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SHAPE = { models: 2, steps: 2, rows: 768, shardSize: 32, batchSize: 32 };

function experimentCommand(yaml: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", "main.ts", "experiment", yaml, "--no-report"],
    cwd: ROOT,
    env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
}

/** Starts a run, waits for ≥ 2 finished shards, sends the signal; returns shards on disk and the exit. */
async function interrupt(yaml: string, out: string, signal: Deno.Signal) {
  const child = experimentCommand(yaml).spawn();
  let exited = false;
  const output = child.output().finally(() => (exited = true));
  const deadline = Date.now() + 60_000;
  while ((await shardFiles(out)).length < 2) {
    if (exited) {
      const early = await output;
      throw new Error(`the run exited early: ${new TextDecoder().decode(early.stderr)}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      const late = await output;
      const shards = (await shardFiles(out)).length;
      throw new Error(
        `fewer than 2 shards (${shards}) within 60 s: ${new TextDecoder().decode(late.stderr)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill(signal);
  const status = await output;
  return { kept: await shardFiles(out), status, stderr: new TextDecoder().decode(status.stderr) };
}

/** Reruns to completion; returns the number of shards the rerun scored (from runs.jsonl). */
async function rerun(yaml: string, out: string): Promise<number> {
  const status = await experimentCommand(yaml).output();
  assert.equal(status.code, 0, new TextDecoder().decode(status.stderr));
  const lines = (await readFile(join(out, "runs.jsonl"), "utf8")).trim().split("\n");
  return JSON.parse(lines.at(-1)!).shards;
}

async function assertSameShards(a: string, b: string) {
  const files = await shardFiles(a);
  assert.deepEqual(await shardFiles(b), files);
  for (const f of files) {
    assert.deepEqual(await readFile(join(b, "scores", f)), await readFile(join(a, "scores", f)), f);
  }
}

async function setup(name: string) {
  const dir = await Deno.makeTempDir({ prefix: `crash_test_${name}` });
  const refYaml = await writeReducedExperiment(dir, { ...SHAPE, output: join(dir, "ref") });
  const ref = await loadExperiment(refYaml);
  const whole = await runExperiment(ref, {
    progress: false,
    log: () => {},
  });
  const sub = await Deno.makeTempDir({ prefix: "run", dir });
  const yaml = await writeReducedExperiment(sub, { ...SHAPE, output: join(dir, "interrupted") });
  return { dir, ref: ref.output, out: join(dir, "interrupted"), yaml, total: whole.scored };
}

Deno.test("a run killed with SIGKILL resumes and ends byte-identical to an uninterrupted run", async () => {
  const t = await setup("kill");
  const { kept, status } = await interrupt(t.yaml, t.out, "SIGKILL");
  assert.equal(status.signal, "SIGKILL");
  assert.ok(kept.length < t.total, `the run finished before the kill (${kept.length} shards)`);
  const scored = await rerun(t.yaml, t.out);
  // Every shard on disk at the kill is kept; only the missing ones are scored.
  assert.equal(scored, t.total - kept.length);
  await assertSameShards(t.ref, t.out);
});

Deno.test("a run stopped with SIGINT says how to resume, exits 130 and resumes byte-identically", async () => {
  const t = await setup("int");
  const { kept, status, stderr } = await interrupt(t.yaml, t.out, "SIGINT");
  assert.equal(status.code, 130, stderr);
  assert.match(
    stderr,
    /Interrupted by SIGINT: \d+ of \d+ remaining shards done.*; rerun the same command to resume\./,
  );
  assert.ok(kept.length < t.total, `the run finished before the interrupt (${kept.length} shards)`);
  const scored = await rerun(t.yaml, t.out);
  // The shards in flight at the interrupt were finished and written, so the rerun scores only the rest.
  assert.equal(scored, t.total - kept.length);
  await assertSameShards(t.ref, t.out);
});
