/**
 * Slurm: submits an experiment's shard groups as one job array (one array
 * task per group, each running the ordinary harness with `--shard-group I/N`
 * into the same result store) plus a dependent job that renders the merged
 * report. Resubmitting submits only the groups with missing shards, and each
 * task skips the shards already stored, so the science has one code path and
 * the cluster only decides which shards run where.
 *
 * @module
 */
import { claimOutputFolder } from "../os/run_marker.ts";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { arraySpec, shardGroups } from "./cluster.ts";
import { UserError } from "../errors.ts";
import { currentManifest, openRun, type RunFolder } from "../plan/run_folder.ts";
import { checkpointKey, type Experiment, type Job } from "../types.ts";
import { shellQuote } from "../os/shell.ts";

/** Array tasks per submission when `--slurm-tasks` is not given (capped by the job count). */
export const DEFAULT_TASKS = 8;

/** What `--slurm` asked for, split off the command line. */
export interface SlurmRequest {
  /** Only write the scripts (`--slurm-dry-run`). */
  dryRun: boolean;
  /** Array tasks (`--slurm-tasks N`). */
  tasks?: number;
  /** Options passed to `sbatch` as given (everything after `--slurm` that is not ours). */
  sbatchArgs: string[];
}

/** The options {@link splitSlurmArgs} takes off a command line, declared as node:util `parseArgs` would. */
export const SLURM_OPTIONS = {
  "slurm": { type: "boolean" },
  "slurm-dry-run": { type: "boolean" },
  "slurm-tasks": { type: "string" },
} as const;

/**
 * Splits `experiment` arguments at `--slurm` / `--slurm-dry-run`. With a
 * `--` after the flag, what follows `--` goes to sbatch and what lies between
 * stays with the harness (`FILE --slurm --output RUN -- --partition=gpu`);
 * without one, everything after the flag goes to sbatch
 * (`FILE --slurm --partition=gpu`). `--slurm-tasks N` and `--slurm-dry-run`
 * are ours wherever they are. Returns `slurm: null` when neither flag is
 * present.
 */
export function splitSlurmArgs(args: readonly string[]): {
  harness: string[];
  slurm: SlurmRequest | null;
} {
  const at = args.findIndex((a) => a === "--slurm" || a === "--slurm-dry-run");
  const tasksFlag = (rest: string[], out: string[]): number | undefined => {
    let tasks: number | undefined;
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === "--slurm-tasks" || a.startsWith("--slurm-tasks=")) {
        const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : rest[++i];
        tasks = Number(v);
        if (!Number.isInteger(tasks) || tasks < 1) {
          throw new UserError(`--slurm-tasks ${v}: expected a positive integer (array tasks)`);
        }
      } else out.push(a);
    }
    return tasks;
  };
  if (at < 0) {
    const harness: string[] = [];
    const tasks = tasksFlag([...args], harness);
    if (tasks !== undefined) {
      throw new UserError("--slurm-tasks needs --slurm or --slurm-dry-run");
    }
    return { harness, slurm: null };
  }
  let dryRun = args[at] === "--slurm-dry-run";
  const ours = (list: readonly string[]) =>
    list.filter((a) => {
      if (a === "--slurm-dry-run") dryRun = true;
      return a !== "--slurm-dry-run" && a !== "--slurm";
    });
  const dashes = args.indexOf("--", at + 1);
  const harnessPart = dashes < 0
    ? args.slice(0, at)
    : [...args.slice(0, at), ...args.slice(at + 1, dashes)];
  const sbatchPart = dashes < 0 ? args.slice(at + 1) : args.slice(dashes + 1);
  const harness: string[] = [];
  const before = tasksFlag(ours(harnessPart), harness);
  const sbatchArgs: string[] = [];
  const after = tasksFlag(ours(sbatchPart), sbatchArgs);
  return { harness, slurm: { dryRun, tasks: after ?? before, sbatchArgs } };
}

/** Resources of one array task, derived from the experiment's device slots. */
export function taskResources(exp: Pick<Experiment, "devices">): { cpus: number; gpus: number } {
  let cpus = 0;
  let gpus = 0;
  for (const slot of exp.devices) {
    cpus += Math.max(1, slot.threads);
    const m = /^cuda(?::(\d+))?$/.exec(slot.device);
    if (m) gpus = Math.max(gpus, Number(m[1] ?? 0) + 1);
  }
  return { cpus: Math.max(1, cpus), gpus };
}

/** Everything the job scripts need, resolved. */
export interface ScriptSettings {
  name: string;
  /** The experiment file (absolute). */
  file: string;
  /** The run folder (absolute). */
  runDir: string;
  /** The project folder holding deno.json and main.ts. */
  project: string;
  /** Absolute path of the deno executable. */
  deno: string;
  /** Total groups N (the `--shard-group` denominator). */
  count: number;
  /** Group indices to run in this submission. */
  indices: number[];
  cpus: number;
  gpus: number;
}

/** The job-array script: one task per shard group, each running the ordinary harness. */
export function arrayScript(s: ScriptSettings): string {
  const q = shellQuote;
  return [
    "#!/bin/bash",
    `# Shard groups of experiment ${s.name}: array task I runs --shard-group I/${s.count}.`,
    "# Written by `deno task experiment FILE --slurm`; run that command again to resubmit:",
    "# only groups with missing shards are submitted and finished shards are skipped.",
    `#SBATCH --job-name=memo-${s.name}`,
    `#SBATCH --array=${arraySpec(s.indices)}`,
    `#SBATCH --output=${join(s.runDir, "slurm", "%A_%a.out")}`,
    `#SBATCH --cpus-per-task=${s.cpus}`,
    ...(s.gpus > 0 ? [`#SBATCH --gres=gpu:${s.gpus}`] : []),
    "set -euo pipefail",
    `cd ${q(s.project)}`,
    `exec ${q(s.deno)} task experiment ${q(s.file)} \\`,
    `  --shard-group "$SLURM_ARRAY_TASK_ID/${s.count}" --no-report --output ${q(s.runDir)}`,
    "",
  ].join("\n");
}

/** The report job's script: merges the store and renders, or lists the missing shards. */
export function reportScript(s: ScriptSettings): string {
  const q = shellQuote;
  return [
    "#!/bin/bash",
    `# Report of experiment ${s.name}, run after the array job (afterany).`,
    `#SBATCH --job-name=memo-${s.name}-report`,
    `#SBATCH --output=${join(s.runDir, "slurm", "%j-report.out")}`,
    "#SBATCH --cpus-per-task=1",
    "set -euo pipefail",
    `cd ${q(s.project)}`,
    `exec ${q(s.deno)} task report ${q(s.runDir)}`,
    "",
  ].join("\n");
}

/** sbatch options that also apply to the report job (where it runs and who pays). */
export function reportSbatchArgs(sbatchArgs: readonly string[]): string[] {
  const keep = /^--(partition|account|qos|reservation|clusters|constraint)(=|$)/;
  const keepShort = new Set(["-p", "-A", "-q", "-M", "-C"]);
  const out: string[] = [];
  for (let i = 0; i < sbatchArgs.length; i++) {
    const a = sbatchArgs[i];
    if (keep.test(a)) {
      out.push(a);
      if (!a.includes("=") && i + 1 < sbatchArgs.length) out.push(sbatchArgs[++i]);
    } else if (keepShort.has(a) && i + 1 < sbatchArgs.length) {
      out.push(a, sbatchArgs[++i]);
    } else if (/^-[pAqMC]./.test(a)) out.push(a);
  }
  return out;
}

/** What {@link submitSlurm} did. */
export interface SlurmSubmission {
  /** Path of the job-array script. */
  script: string;
  /** Path of the report job's script. */
  reportScript: string;
  /** Total groups N. */
  count: number;
  /** Group indices submitted (those with missing shards). */
  indices: number[];
  /** Missing jobs over all groups at submission time. */
  missing: number;
  /** Slurm job ids, when submitted. */
  arrayJob?: string;
  reportJob?: string;
  /** Human-readable summary: what was written/submitted, how to watch and resubmit. */
  message: string;
}

/** Options of {@link submitSlurm}. */
export interface SlurmOptions {
  /** Write the scripts without submitting. */
  dryRun: boolean;
  /** Extra sbatch options (override the script's `#SBATCH` lines). */
  sbatchArgs: string[];
  /** Array tasks N (default {@link DEFAULT_TASKS}, at most the number of jobs). */
  tasks?: number;
  /** The deno executable the tasks run (default: this process's). */
  deno?: string;
  /** The sbatch program (default {@link SBATCH_LAUNCHER}, which runs `sbatch` from PATH). */
  sbatch?: string;
}

/** The project folder (holding deno.json and main.ts). */
export function projectDir(): string {
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

/**
 * The program `--slurm` submits with: `engine/cluster/sbatch.sh`, which runs
 * Slurm's `sbatch` from PATH at the moment of submission (exit 127 when there
 * is none). The `run` permission set names this file rather than `sbatch`:
 * Deno resolves a program name on PATH at startup and prints a line on every
 * command of a machine without Slurm.
 */
export const SBATCH_LAUNCHER: string = fileURLToPath(new URL("./sbatch.sh", import.meta.url));

/**
 * Writes `<run>/slurm/array.sh` and `<run>/slurm/report.sh` and, unless
 * `dryRun`, submits the array (only groups with missing shards) with
 * `sbatch --parsable` and the report job with `--dependency=afterany:<array>`.
 */
export async function submitSlurm(exp: Experiment, opts: SlurmOptions): Promise<SlurmSubmission> {
  const folder = await openRun(exp.output, { experiment: exp, fingerprint: true });
  const plan = folder.plan;
  if (plan.jobs.length === 0) {
    throw new UserError(
      `${exp.file}: the plan has no jobs (no checkpoint has seen a selected row)`,
    );
  }
  const count = Math.min(opts.tasks ?? DEFAULT_TASKS, plan.jobs.length);
  const missingIds = new Set(
    (await pendingJobs(folder)).map((j) => j.id),
  );
  const groups = shardGroups(plan.jobs, count);
  const indices = groups.flatMap((g, i) => (g.some((j) => missingIds.has(j.id)) ? [i] : []));
  const { cpus, gpus } = taskResources(exp);
  const settings: ScriptSettings = {
    name: exp.name,
    file: exp.file,
    runDir: exp.output,
    project: projectDir(),
    deno: opts.deno ?? Deno.execPath(),
    count,
    indices: indices.length > 0 ? indices : groups.map((_, i) => i),
    cpus,
    gpus,
  };
  const dir = join(exp.output, "slurm");
  await claimOutputFolder(exp.output, "run"); // a folder of the user's own is refused
  await mkdir(dir, { recursive: true });
  const script = join(dir, "array.sh");
  const reportPath = join(dir, "report.sh");
  await writeFile(script, arrayScript(settings), { mode: 0o755 });
  await writeFile(reportPath, reportScript(settings), { mode: 0o755 });
  const base = { script, reportScript: reportPath, count, indices, missing: missingIds.size };
  const lines = [
    `${plan.jobs.length} jobs in ${count} shard groups; ${missingIds.size} jobs missing, ` +
    `in groups ${arraySpec(indices) || "(none)"}.`,
    `wrote ${script}`,
    `wrote ${reportPath}`,
  ];
  if (indices.length === 0) {
    lines.push(`every shard is finished: render with \`deno task report ${exp.output}\``);
    return { ...base, message: lines.join("\n") };
  }
  if (opts.dryRun) {
    const report = [...reportSbatchArgs(opts.sbatchArgs), reportPath].map(shellQuote).join(" ");
    lines.push(
      `dry run: submit with \`sbatch ${
        [...opts.sbatchArgs, script].map(shellQuote).join(" ")
      }\`, ` +
        `then \`sbatch --dependency=afterany:<array job id> ${report}\``,
    );
    return { ...base, message: lines.join("\n") };
  }
  const sbatch = opts.sbatch ?? SBATCH_LAUNCHER;
  const arrayJob = await runSbatch(sbatch, ["--parsable", ...opts.sbatchArgs, script]);
  const reportJob = await runSbatch(sbatch, [
    "--parsable",
    `--dependency=afterany:${arrayJob}`,
    ...reportSbatchArgs(opts.sbatchArgs),
    reportPath,
  ]);
  await writeFile(
    join(dir, "submissions.jsonl"),
    JSON.stringify({ at: new Date().toISOString(), arrayJob, reportJob, count, indices }) + "\n",
    { flag: "a" },
  );
  lines.push(
    `submitted array job ${arrayJob} (tasks ${arraySpec(indices)} of 0-${count - 1}) ` +
      `and report job ${reportJob} (after it)`,
    `watch: squeue -j ${arrayJob},${reportJob}; task logs in ${dir}/`,
    "resubmit after failures with the same command: only missing shards run",
  );
  return { ...base, arrayJob, reportJob, message: lines.join("\n") };
}

/**
 * Jobs the store does not hold for the experiment as it is now: all of them
 * when settings or data changed since the stored scores, a checkpoint's when
 * its file changed, else the store's missing shards (the tasks then move the
 * stale scores aside, as a local run does).
 */
async function pendingJobs(folder: RunFolder): Promise<Job[]> {
  const { manifest: stored, plan } = folder;
  if (!stored) return plan.jobs;
  const now = await currentManifest(folder);
  if (now.settingsHash !== stored.settingsHash) return plan.jobs;
  const before = new Map(
    stored.checkpoints.map((c) => [checkpointKey(c.model, c.step), c.fingerprint]),
  );
  const changed = new Set(
    now.checkpoints.filter((c) => before.get(checkpointKey(c.model, c.step)) !== c.fingerprint)
      .map((c) => checkpointKey(c.model, c.step)),
  );
  const missing = new Set(folder.missing.map((j) => j.id));
  return plan.jobs.filter((j) => missing.has(j.id) || changed.has(checkpointKey(j.model, j.step)));
}

async function runSbatch(sbatch: string, args: string[]): Promise<string> {
  const notFound = () =>
    new UserError(
      "sbatch not found on PATH: --slurm submits with Slurm's sbatch; run on a Slurm login node, " +
        "or use --slurm-dry-run to only write the scripts",
    );
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(sbatch, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw notFound();
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new UserError(
        `not allowed to run ${sbatch}: the run permission set in deno.json needs ` +
          `"run": ["./engine/cluster/sbatch.sh"]`,
      );
    }
    throw e;
  }
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (out.code === 127 && stderr === "sbatch: not found on PATH") throw notFound();
  if (out.code !== 0) {
    throw new UserError(`sbatch ${args.join(" ")} failed (exit ${out.code}): ${stderr}`);
  }
  // --parsable prints "jobid" or "jobid;cluster".
  return stdout.split(";")[0];
}
