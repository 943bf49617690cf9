/**
 * Tests of engine/cluster/cluster.ts and engine/cluster/slurm.ts: the shard-group split, the
 * Slurm scripts and command line, and an end-to-end run of the nano
 * experiment as a Slurm job array on a real one-node cluster (tests/slurm.ts),
 * with one task killed midway and resubmitted.
 */
import { claimOutputFolder } from "../engine/os/run_marker.ts";
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import {
  arraySpec,
  formatMissing,
  jobsForGroup,
  parseShardGroup,
  shardGroups,
} from "../engine/cluster/cluster.ts";
import {
  arrayScript,
  reportSbatchArgs,
  splitSlurmArgs,
  submitSlurm,
  taskResources,
} from "../engine/cluster/slurm.ts";
import { loadExperiment } from "../engine/config/config.ts";
import { shellQuote } from "../engine/os/shell.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { runExperiment } from "../tasks/score.ts";
import { shardPath } from "../engine/store/store.ts";
import { readCheckpointScores } from "./fixtures/stored_scores.ts";
import type { Job } from "../engine/types.ts";
import { writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { ensureSlurm, startSlurm } from "./slurm.ts";
function job(model: string, step: number, shard: number, flops: number): Job {
  return {
    id: `${model}/step${step}/shard${String(shard).padStart(5, "0")}`,
    model,
    step,
    path: `/m/${model}/step${step}.onnx`,
    shard,
    rows: new Uint32Array([shard]),
    flops,
  };
}

Deno.test("shardGroups covers every job once, in plan order, with balanced cost", () => {
  const jobs: Job[] = [];
  for (const [model, n] of [["s", 1e6], ["m", 4e6], ["l", 1.6e7]] as const) {
    for (const step of [10, 20]) {
      for (let k = 0; k < 5; k++) jobs.push(job(model, step, k, n * (k < 4 ? 1 : 0.5)));
    }
  }
  const groups = shardGroups(jobs, 4);
  assert.equal(groups.length, 4);
  assert.deepEqual(groups.flat(), jobs); // contiguous, plan order, nothing lost or repeated
  const total = jobs.reduce((s, j) => s + j.flops, 0);
  const biggest = Math.max(...jobs.map((j) => j.flops));
  for (const g of groups) {
    const cost = g.reduce((s, j) => s + j.flops, 0);
    assert.ok(Math.abs(cost - total / 4) <= biggest, `group cost ${cost} vs mean ${total / 4}`);
  }
  // The same call agrees with itself and with jobsForGroup (what --shard-group runs).
  assert.deepEqual(
    groups.map((g) => g.map((j) => j.id)),
    [0, 1, 2, 3].map((i) => jobsForGroup({ jobs }, i, 4).map((j) => j.id)),
  );
});

Deno.test("shardGroups leaves no group empty while count ≤ jobs, even with one huge job", () => {
  const jobs = [job("a", 1, 0, 1000), job("a", 1, 1, 1), job("a", 1, 2, 1), job("a", 1, 3, 1)];
  const groups = shardGroups(jobs, 4);
  assert.deepEqual(groups.map((g) => g.length), [1, 1, 1, 1]);
  const two = shardGroups(jobs, 2);
  assert.deepEqual(two.map((g) => g.map((j) => j.shard)), [[0], [1, 2, 3]]);
  assert.deepEqual(shardGroups(jobs, 6).map((g) => g.length).reduce((a, b) => a + b), 4);
  assert.deepEqual(shardGroups([], 3), [[], [], []]);
  assert.throws(() => shardGroups(jobs, 0), RangeError);
  assert.throws(() => jobsForGroup({ jobs }, 4, 4), RangeError);
});

Deno.test("parseShardGroup accepts I/N and names the flag otherwise", () => {
  assert.deepEqual(parseShardGroup("3/8"), { index: 3, count: 8 });
  assert.deepEqual(parseShardGroup("0/1"), { index: 0, count: 1 });
  for (const bad of ["8/8", "1/0", "-1/3", "a/b", "3", "1/2/3"]) {
    assert.throws(() => parseShardGroup(bad), /--shard-group/);
  }
});

Deno.test("splitSlurmArgs separates sbatch options from the harness's", () => {
  assert.deepEqual(splitSlurmArgs(["exp.yaml", "--dry-run"]), {
    harness: ["exp.yaml", "--dry-run"],
    slurm: null,
  });
  assert.deepEqual(
    splitSlurmArgs([
      "exp.yaml",
      "--slurm",
      "--partition=gpu",
      "--slurm-tasks",
      "12",
      "-t",
      "4:00:00",
    ]),
    {
      harness: ["exp.yaml"],
      slurm: { dryRun: false, tasks: 12, sbatchArgs: ["--partition=gpu", "-t", "4:00:00"] },
    },
  );
  assert.deepEqual(splitSlurmArgs(["exp.yaml", "--slurm-tasks=3", "--slurm-dry-run", "-A", "x"]), {
    harness: ["exp.yaml"],
    slurm: { dryRun: true, tasks: 3, sbatchArgs: ["-A", "x"] },
  });
  assert.deepEqual(
    splitSlurmArgs(["e.yaml", "--slurm", "--output", "r", "--slurm-tasks", "4", "--", "-p", "gpu"]),
    {
      harness: ["e.yaml", "--output", "r"],
      slurm: { dryRun: false, tasks: 4, sbatchArgs: ["-p", "gpu"] },
    },
  );
  assert.throws(() => splitSlurmArgs(["e.yaml", "--slurm", "--slurm-tasks", "0"]), /--slurm-tasks/);
  assert.throws(() => splitSlurmArgs(["e.yaml", "--slurm-tasks", "2"]), /needs --slurm/);
});

Deno.test("taskResources asks for CPUs per thread and the GPUs the cuda slots name", () => {
  assert.deepEqual(
    taskResources({ devices: [{ device: "cpu", threads: 2 }, { device: "cpu", threads: 2 }] }),
    {
      cpus: 4,
      gpus: 0,
    },
  );
  assert.deepEqual(
    taskResources({
      devices: [{ device: "cuda:0", threads: 1 }, { device: "cuda:0", threads: 1 }, {
        device: "cuda:1",
        threads: 1,
      }],
    }),
    { cpus: 3, gpus: 2 },
  );
});

Deno.test("arraySpec, shellQuote and reportSbatchArgs", () => {
  assert.equal(arraySpec([0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
  assert.equal(arraySpec([4]), "4");
  assert.equal(shellQuote("/a/b-c.yaml"), "/a/b-c.yaml");
  assert.equal(shellQuote("it's here"), `'it'\\''s here'`);
  assert.deepEqual(
    reportSbatchArgs([
      "--partition",
      "gpu",
      "--gres=gpu:4",
      "-A",
      "lab",
      "-t",
      "1:00",
      "-pdebug",
      "--qos=low",
    ]),
    ["--partition", "gpu", "-A", "lab", "-pdebug", "--qos=low"],
  );
});

Deno.test("arrayScript runs the harness on group $SLURM_ARRAY_TASK_ID of N with the experiment's GPUs", () => {
  const script = arrayScript({
    name: "nano",
    file: "/p/experiments/nano.yaml",
    runDir: "/shared/runs/nano",
    project: "/p",
    deno: "/opt/deno",
    count: 6,
    indices: [0, 2, 3, 4],
    cpus: 2,
    gpus: 2,
  });
  assert.match(script, /^#SBATCH --array=0,2-4$/m);
  assert.match(script, /^#SBATCH --output=\/shared\/runs\/nano\/slurm\/%A_%a.out$/m);
  assert.match(script, /^#SBATCH --gres=gpu:2$/m);
  assert.match(script, /^#SBATCH --cpus-per-task=2$/m);
  assert.match(script, /^cd \/p$/m);
  assert.match(
    script,
    /^exec \/opt\/deno task experiment \/p\/experiments\/nano.yaml \\\n {2}--shard-group "\$SLURM_ARRAY_TASK_ID\/6" --no-report --output \/shared\/runs\/nano$/m,
  );
});

Deno.test("formatMissing lists missing shards per checkpoint as ranges", () => {
  const plan = {
    jobs: [0, 1, 2, 3, 4].flatMap((k) => [job("s1", 143, k, 1), job("s2", 143, k, 2)]),
  };
  const missing = plan.jobs.filter((j) => j.model === "s1" ? j.shard !== 1 : j.shard === 4);
  assert.equal(
    formatMissing(missing, plan),
    "s1 step143: shards 0, 2-4 (4 of 5 missing)\ns2 step143: shard 4 (1 of 5 missing)",
  );
});

// ---------------------------------------------------------------------------
// A real one-node Slurm cluster on loopback (tests/slurm.ts).

const PROJECT = fileURLToPath(new URL("..", import.meta.url));
const TASKS = 4;
const slurm = await ensureSlurm();
if (!slurm.ok) console.log(slurm.line);

/** The reduced nano experiment with one single-thread CPU worker per array task. */
async function clusterExperiment(dir: string): Promise<string> {
  const path = await writeReducedExperiment(dir, {
    models: 2,
    steps: 3,
    rows: 1024,
    shardSize: 128,
    batchSize: 64,
    output: join(dir, "unused"),
  });
  // deno-lint-ignore no-explicit-any
  const doc = parse(await readFile(path, "utf8")) as any;
  doc.name = "cluster";
  doc.devices = [{ device: "cpu", workers: 1, threads: 1 }];
  doc.analysis = { ...(doc.analysis ?? {}), bootstrap: 20 };
  await writeFile(path, stringify(doc));
  return path;
}

/** Runs `main.ts experiment FILE --output RUN --slurm --slurm-tasks N` as a user would. */
async function submit(file: string, runDir: string, env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=run",
      "main.ts",
      "experiment",
      file,
      "--output",
      runDir,
      "--slurm",
      "--slurm-tasks",
      String(TASKS),
    ],
    cwd: PROJECT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `--slurm submission failed:\n${text}`);
  return text;
}

interface Submission {
  arrayJob: string;
  reportJob: string;
  count: number;
  indices: number[];
}

async function submissions(runDir: string): Promise<Submission[]> {
  const text = await readFile(join(runDir, "slurm", "submissions.jsonl"), "utf8");
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** Relative path → bytes of every shard file under a run folder. */
async function shardFiles(runDir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const walk = async (rel: string) => {
    for (const e of await readdir(join(runDir, rel), { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (e.isDirectory()) await walk(r);
      else if (e.name.endsWith(".bin")) out.set(r, await readFile(join(runDir, r)));
    }
  };
  await walk("scores");
  return out;
}

async function logs(runDir: string): Promise<string> {
  const dir = join(runDir, "slurm");
  const parts: string[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".out")).sort()) {
    parts.push(`--- ${name}\n${(await readFile(join(dir, name), "utf8")).slice(-3000)}`);
  }
  return parts.join("\n");
}

Deno.test({
  name: "slurm: a job array of the nano experiment equals a local run; a killed task resubmits",
  ignore: !slurm.ok,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "memo-cluster-" });
    const cluster = await startSlurm({ cpus: 2 });
    try {
      const file = await clusterExperiment(dir);
      const localDir = join(dir, "local");
      const slurmDir = join(dir, "slurm");

      // The reference: a local run of the same experiment.
      const local = await loadExperiment(file, { output: localDir });
      await runExperiment(local, {
        progress: false,
        log: () => {},
      });
      const expected = await shardFiles(localDir);

      // A finished run submits nothing; changed settings make every shard pending.
      const finished = await submitSlurm(local, { dryRun: true, sbatchArgs: [], tasks: TASKS });
      assert.deepEqual([finished.indices, finished.missing], [[], 0]);
      assert.match(finished.message, /every shard is finished/);
      const changed = { ...local, memorization: { ...local.memorization, continuation: 31 } };
      const stale = await submitSlurm(changed, { dryRun: true, sbatchArgs: [], tasks: TASKS });
      assert.deepEqual([stale.indices, stale.missing], [[0, 1, 2, 3], expected.size]);

      // Shard group 1 is killed midway: once one of its shards is stored we
      // scancel it, and its last job always fails (a folder sits where its
      // shard file goes, so the shard cannot be written), so the group can
      // never finish in this submission whatever the timing.
      const exp = await loadExperiment(file, { output: slurmDir });
      const reader = await openTokenReader(exp.data);
      const plan = makePlan(exp, reader.rows);
      await reader.close();
      assert.ok(plan.jobs.length >= TASKS, `${plan.jobs.length} jobs`);
      assert.equal(expected.size, plan.jobs.length);
      const victim = jobsForGroup(plan, 1, TASKS);
      assert.ok(victim.length >= 3, `group 1 has ${victim.length} jobs`);
      const victimFiles = victim.map((j) => shardPath(j.model, j.step, j.shard));
      const blocker = join(slurmDir, victimFiles.at(-1)!);
      await claimOutputFolder(slurmDir, "run"); // a run folder (marked), with the fault planted
      await Deno.mkdir(join(blocker, "blocks-the-shard"), { recursive: true });

      const first = await submit(file, slurmDir, cluster.env);
      const [s1] = await submissions(slurmDir);
      assert.equal(s1.count, TASKS, first);
      assert.deepEqual(s1.indices, [0, 1, 2, 3]);
      let killed = "";
      for (let i = 0; i < 600 && !killed; i++) {
        const stored = await Promise.all(
          victimFiles.slice(0, -1).map((p) => exists(join(slurmDir, p))),
        );
        if (stored.some(Boolean)) {
          const task = `${s1.arrayJob}_1`;
          const query = ["-h", "-o", "%T", "-j", task];
          const state = await cluster.client("squeue", query).catch(() => "");
          // A task that already failed on its unwritable shard cannot be cancelled: that is fine.
          await cluster.client("scancel", [task]).catch(() => "");
          killed = state.trim() || "already over";
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(killed, `group 1 stored no shard:\n${await logs(slurmDir)}`);
      console.log(`scancelled array task 1 (state then: ${killed})`);
      await cluster.waitForJobs([s1.arrayJob, s1.reportJob]);

      const partial = await shardFiles(slurmDir);
      const done = victimFiles.filter((p) => partial.has(p));
      assert.ok(done.length >= 1 && done.length < victim.length, `group 1 stored ${done}`);
      assert.equal(
        partial.size,
        expected.size - (victim.length - done.length),
        await logs(slurmDir),
      );
      const reportLog = await readFile(
        join(slurmDir, "slurm", `${s1.reportJob}-report.out`),
        "utf8",
      );
      assert.match(reportLog, /missing/i, reportLog);
      const last = victim.at(-1)!;
      assert.ok(reportLog.includes(`${last.model} step${last.step}: shard`), reportLog);
      const before = new Map<string, Deno.FileInfo>();
      for (const p of partial.keys()) before.set(p, await Deno.stat(join(slurmDir, p)));

      // Resubmitting (same command, the blocking folder gone) submits only
      // group 1 and scores only its missing shards.
      await Deno.remove(blocker, { recursive: true });
      await submit(file, slurmDir, cluster.env);
      const [, s2] = await submissions(slurmDir);
      assert.deepEqual(s2.indices, [1]);
      await cluster.waitForJobs([s2.arrayJob, s2.reportJob]);

      const merged = await shardFiles(slurmDir);
      assert.deepEqual(
        [...merged.keys()].sort(),
        [...expected.keys()].sort(),
        await logs(slurmDir),
      );
      for (const [p, bytes] of expected) assert.deepEqual(merged.get(p), bytes, p);
      for (const [p, info] of before) {
        const now = await Deno.stat(join(slurmDir, p));
        assert.equal(now.ino, info.ino, `${p} was rewritten`);
        assert.equal(now.mtime?.getTime(), info.mtime?.getTime(), `${p} was rewritten`);
      }
      assert.deepEqual(await readCheckpointScores(slurmDir), await readCheckpointScores(localDir));
      assert.ok(await exists(join(slurmDir, "report.html")), await logs(slurmDir));
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => undefined);
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
