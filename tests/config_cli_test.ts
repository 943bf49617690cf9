import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertUserError, cli, ROOT } from "./cli.ts";

const NANO = join(ROOT, "experiments", "nano");

/** A nano-suite experiment with real data, written into `dir`; `extra` lines replace keys. */
function nanoText(models: string, extra = ""): string {
  return `suite:
  sequences_per_step: 16
  tokens_per_sequence: 64
  steps: [23, 143]
  models:
${models}
data:
  format: megatron
  path: ${NANO}/data/train
  row_length: 65
shard_size: 512
${extra}`;
}

/** `line:column` (1-based) where `needle` starts in `text`. */
function position(text: string, needle: string): string {
  const before = text.slice(0, text.indexOf(needle));
  const lines = before.split("\n");
  return `${lines.length}:${lines.at(-1)!.length + 1}`;
}

Deno.test("files named by an experiment that are missing are exit 2 at their line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "config-cli-"));
  try {
    const file = join(dir, "exp.yaml");
    const text = nanoText(
      `    - name: s1
      parameters: 22976
      path: ${NANO}/s1/step{step}.onnx
    - name: gone
      parameters: 800000
      checkpoints: {143: /etc/step143.onnx}`,
      `output: ${dir}/run\n`,
    ).replace("  row_length: 65\n", "  row_length: 65\n  duplicates: nope.npy\n");
    await writeFile(file, text);
    const r = await cli("experiment", file);
    assertUserError(r, /^error: /, "missing files");
    const lines = r.stderr.trim().replace(/^error: /, "").split("\n");
    assert.deepEqual(lines, [
      `${file}:${position(text, "/etc/step143.onnx")}: suite.models[1].checkpoints.143: the ` +
      `checkpoint gone step 143 /etc/step143.onnx: it does not exist`,
      `${file}:${position(text, "nope.npy")}: data.duplicates: the duplicate counts ` +
      `${dir}/nope.npy: it does not exist`,
      "Give paths to existing, readable files (relative paths resolve against the experiment " +
      "file's folder); --dry-run plans without them.",
    ]);
    // A template path names the template's line; a folder is not a file.
    const template = nanoText(
      `    - name: s1
      parameters: 22976
      path: ${dir}/step{step}.onnx`,
      `output: ${dir}/run\n`,
    );
    await writeFile(file, template);
    await Deno.mkdir(join(dir, "step23.onnx"));
    const t = await cli("experiment", file);
    assertUserError(t, /^error: /, "template");
    const at = `${file}:${position(template, `${dir}/step{step}.onnx`)}: suite.models[0].path: `;
    assert.ok(
      t.stderr.includes(`${at}the checkpoint s1 step 23 ${dir}/step23.onnx: it is a folder`),
      t.stderr,
    );
    assert.ok(
      t.stderr.includes(`${at}the checkpoint s1 step 143 ${dir}/step143.onnx: it does not exist`),
      t.stderr,
    );
    // --dry-run plans without the files.
    const dry = await cli("experiment", file, "--dry-run");
    assert.equal(dry.code, 0, dry.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a rows range or sample beyond the data is exit 2 at its line, not clamped", async () => {
  const dir = await mkdtemp(join(tmpdir(), "config-cli-"));
  try {
    const file = join(dir, "exp.yaml");
    const models = `    - name: s1
      parameters: 22976
      path: ${NANO}/s1/step{step}.onnx`;
    for (
      const [rows, pattern] of [
        [
          "rows: {range: [0, 100000000]}",
          /rows\.range \[0, 100000000\] goes beyond the data, which has \d+ rows/,
        ],
        [
          "rows: {sample: 100000}",
          /rows\.sample 100000 is more than the 2288 rows the checkpoints have seen/,
        ],
      ] as const
    ) {
      const text = nanoText(models, `output: ${dir}/run\n${rows}\n`);
      await writeFile(file, text);
      const r = await cli("experiment", file, "--dry-run");
      const at = position(text, rows.includes("range") ? "[0, 100000000]" : "100000}");
      assertUserError(r, new RegExp(`^error: ${file}:${at}: `), rows);
      assert.match(r.stderr, pattern, rows);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("an experiment file over 1 MiB is refused unread, exit 2", async () => {
  const dir = await mkdtemp(join(tmpdir(), "config-cli-"));
  try {
    const file = join(dir, "big.yaml");
    const text = nanoText("    - {name: s1, parameters: 1, path: a{step}.onnx}") +
      "analysis:\n  budgets: [" + Array(400_000).fill("0.1").join(", ") + "]\n";
    await writeFile(file, text);
    const r = await cli("experiment", file, "--dry-run");
    assertUserError(
      r,
      new RegExp(
        `^error: ${file}:1:1: cannot load the experiment file: it is ${text.length} bytes, ` +
          `more than the 1048576 bytes`,
      ),
      "big file",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a shard size that makes millions of jobs is exit 2 at its line before the plan", async () => {
  const dir = await mkdtemp(join(tmpdir(), "config-cli-"));
  try {
    const file = join(dir, "paper.yaml");
    const paper = await Deno.readTextFile(join(ROOT, "experiments", "pythia-deduped.yaml"));
    const text = paper.replace(/^shard_size: \d+$/m, "shard_size: 1");
    assert.notEqual(text, paper);
    await writeFile(file, text);
    const r = await cli("experiment", file, "--dry-run", "--output", join(dir, "run"));
    const [line] = position(text, "shard_size: 1\n").split(":");
    assertUserError(
      r,
      new RegExp(
        `^error: ${file}:${line}:13: shard_size 1 makes 4\\d{9} jobs .*more ` +
          `than the 1000000 allowed: choose shard_size ≥ \\d+`,
      ),
      "shard_size 1",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
