import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NANO = join(ROOT, "experiments", "nano");

/** `deno run -P=run main.ts ...args` in the project folder: exit status and stderr. */
async function cli(...args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=run", "main.ts", ...args],
    cwd: ROOT,
    env: { ONNXRUNTIME_NODE_INSTALL: "skip", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) =>
    new TextDecoder().decode(b).split("\n")
      .filter((l) => !l.includes("Permissions in the config file is an experimental feature"))
      .join("\n").trim();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Exit 2, every line of the message at `file:line:column`, no stack trace. */
function assertBadInput(r: { code: number; stderr: string }, pattern: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.ok(!/^\s+at /m.test(r.stderr), `${what}: a stack trace: ${r.stderr}`);
  assert.ok(!/\n\s*\n/.test(r.stderr), `${what}: more than one paragraph: ${r.stderr}`);
}

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
    assertBadInput(r, /^error: /, "missing files");
    const lines = r.stderr.replace(/^error: /, "").split("\n");
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
    assertBadInput(t, /^error: /, "template");
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
      assertBadInput(r, new RegExp(`^error: ${file}:${at}: `), rows);
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
    assertBadInput(
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
