import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertUserError, cli, cliWith, ROOT } from "./cli.ts";

const BAD = join(ROOT, "tests", "fixtures", "bad-experiments");

Deno.test("every bad experiment file exits 2 with file:line:column and no traceback", async () => {
  const files = (await readdir(BAD)).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 20, `only ${files.length} bad experiment fixtures`);
  const check = async (f: string) => {
    const rel = `tests/fixtures/bad-experiments/${f}`;
    const expect = /^# expect: (\d+:\d+) (.+)$/m.exec(await readFile(join(BAD, f), "utf8"));
    assert.ok(expect, `${f}: no '# expect:' comment`);
    const r = await cli("experiment", rel, "--dry-run");
    const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    assertUserError(r, new RegExp(`^error: ${escaped(rel)}:${expect[1]}: `), f);
    assert.ok(r.stderr.includes(expect[2]), `${f}: want "${expect[2]}" in ${r.stderr}`);
  };
  for (let i = 0; i < files.length; i += 4) await Promise.all(files.slice(i, i + 4).map(check));
});

Deno.test("usage errors exit 2; --help exits 0", async () => {
  const help = await cli("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /deno task experiment \[FILE\] \[options\]/);
  assert.match(help.stdout, /deno task <command> --help/);
  assertUserError(await cli("experiment", "--dryrun"), /Unknown option '--dryrun'/, "flag");
  assertUserError(await cli("frobnicate"), /unknown command "frobnicate"/, "command");
  assertUserError(
    await cli("experiment", "nope.yaml", "--dry-run"),
    /^error: nope\.yaml:1:1: cannot load the experiment file: the file does not exist/,
    "missing file",
  );
  assertUserError(
    await cli("experiment", "experiments/pythia-deduped.yaml", "--dry-run", "--shard-group", "8/8"),
    /--shard-group 8\/8: expected I\/N/,
    "shard group",
  );
  assertUserError(await cli("report", "runs/no-such-run"), /no such run folder/, "report");
  assertUserError(await cli("export", "runs/no-such-run"), /no such run folder/, "export");
  assertUserError(
    await cli("export", "--format", "xml"),
    /--format xml: expected csv, parquet or dataset/,
    "export format",
  );
});

Deno.test("each subcommand has its own --help", async () => {
  const expectations: [string[], RegExp, RegExp][] = [
    [["experiment", "--help"], /--shard-group I\/N/, /--partial/],
    [["report", "-h"], /--partial/, /--shard-group/],
    [["export", "--help"], /--format csv\|parquet/, /--shard-group/],
    [["help", "report"], /--partial/, /--shard-group/],
  ];
  for (const [args, want, notWant] of expectations) {
    const r = await cli(...args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, want, args.join(" "));
    assert.doesNotMatch(r.stdout, notWant, args.join(" "));
  }
  // The global text lists every subcommand and points to the per-command help.
  const global = await cli("--help");
  for (const c of ["experiment", "report", "export"]) {
    assert.match(global.stdout, new RegExp(`deno task ${c} `));
  }
  assert.match(global.stdout, /deno task <command> --help/);
  // -h after `--` belongs to sbatch, not to us: the command runs (and fails on the missing file).
  assertUserError(
    await cli("experiment", "nope.yaml", "--slurm", "--", "-h"),
    /nope\.yaml:1:1/,
    "sbatch -h",
  );
});

Deno.test("--dry-run --json prints the plan as one JSON object", async () => {
  const r = await cli(
    "experiment",
    "experiments/pythia-deduped.yaml",
    "--dry-run",
    "--json",
    "--shard-group",
    "1/4",
  );
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.jobs, 4784);
  assert.equal(plan.pending, 4784);
  assert.equal(plan.finished, 0);
  assert.equal(plan.totalRows, 146432000);
  assert.equal(plan.rowsAssumed, true);
  assert.match(plan.notes[0], /document\.bin is missing: assuming 146432000 rows/);
  assert.equal(plan.shardGroup.index, 1);
  assert.equal(plan.shardGroup.count, 4);
  assert.ok(plan.shardGroup.jobs > 0 && plan.shardGroup.jobs < 4784, plan.shardGroup.jobs);
  const c = plan.checkpoints.find((x: { model: string; step: number }) =>
    x.model === "pythia-70m-deduped" && x.step === 23000
  );
  assert.deepEqual([c.rows, c.jobs, c.target], [23552000, 24, false]);
  assert.equal(plan.checkpoints.filter((x: { target: boolean }) => x.target).length, 1);
  assertUserError(await cli("experiment", "--json"), /--json goes with --dry-run/, "json alone");
});

Deno.test("--dry-run prints the paper-scale pythia plan without the files", async () => {
  const r = await cli("experiment", "experiments/pythia-deduped.yaml", "--dry-run");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /note: data file .*document\.bin is missing: assuming 146432000 rows/);
  assert.match(r.stdout, /jobs: 4,784 \(model × step × shard\), 32,000–1,000,000 rows per job/);
  assert.match(r.stdout, /pythia-70m-deduped\s+23000\s+23,552,000\s+24\s+212 PFLOP\s+20\.4 EFLOP/);
  assert.match(r.stdout, /resume: nothing finished yet; 4,784 jobs to run/);
});

Deno.test("--dry-run reads the row count from a data file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cli-test-"));
  try {
    await writeFile(join(dir, "data.bin"), new Uint8Array(1000 * 20 * 2));
    await writeFile(
      join(dir, "exp.yaml"),
      `suite:
  sequences_per_step: 4
  steps: [10, 100, 1000]
  models: [{name: m, parameters: 1000, path: "m{step}.onnx"}]
data: {format: raw, path: data.bin, row_length: 20}
memorization: {context: 8, continuation: 8}
shard_size: 300
`,
    );
    const r = await cli("experiment", join(dir, "exp.yaml"), "--dry-run", "--shard-group", "0/2");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes("is missing"), r.stdout);
    assert.match(r.stdout, /rows: 1,000 selected of 1,000 in the data; 4 shards/);
    assert.match(r.stdout, /--shard-group 0\/2 runs \d+ of the 7 jobs/);
    assert.match(r.stdout, /m\s+100\s+400\s+2\s+/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const NANO = join(ROOT, "experiments", "nano.yaml");

Deno.test({
  name: "--dry-run on the default experiment (experiments/nano.yaml)",
  ignore: !existsSync(NANO),
  async fn() {
    const r = await cli("experiment", "--dry-run");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^experiment nano: /m);
    assert.match(r.stdout, /\(target\)/);
  },
});

Deno.test("without Slurm on PATH, stderr is exactly the error paragraph (--slurm included)", async () => {
  // An empty PATH: no sbatch, as on most machines. Deno used to print a line on every command
  // here ("Failed to resolve 'sbatch' for allow-run") because the run permission set named it.
  const bin = await mkdtemp(join(tmpdir(), "cli-no-slurm-bin-"));
  const out = await mkdtemp(join(tmpdir(), "cli-no-slurm-run-"));
  try {
    const env = { PATH: bin };
    const missing = await cliWith(env, "experiment", "nope.yaml", "--dry-run");
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      "error: nope.yaml:1:1: cannot load the experiment file: the file does not exist. " +
        "Give the path of a YAML experiment file, e.g. experiments/nano.yaml.\n",
    );
    const submit = await cliWith(env, "experiment", "--output", out, "--slurm", "--", "-p", "x");
    assert.equal(submit.code, 2, submit.stderr);
    assert.equal(
      submit.stderr,
      "error: sbatch not found on PATH: --slurm submits with Slurm's sbatch; run on a Slurm " +
        "login node, or use --slurm-dry-run to only write the scripts\n",
    );
    assert.equal(submit.stdout, "");
    // The scripts were written before the submission failed: they can be submitted by hand.
    assert.deepEqual((await readdir(join(out, "slurm"))).sort(), ["array.sh", "report.sh"]);
    const help = await cliWith(env, "--help");
    assert.equal(help.code, 0);
    assert.equal(help.stderr, "");
  } finally {
    await rm(bin, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  }
});
