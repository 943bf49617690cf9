/**
 * Test helper: a throwaway one-node Slurm cluster on loopback (munged,
 * slurmctld, slurmd) in a temporary folder, for the cluster tests. Needs
 * root (the daemons run as root) and Debian's `slurm-wlm` and `munge`
 * packages; {@link ensureSlurm} installs them when it can and otherwise gives
 * the one line saying why the test is skipped.
 *
 * @module
 */

import { type Availability, ensurePrograms, exec } from "./system_packages.ts";

/** A running one-node cluster; every client command must get {@link SlurmCluster.env}. */
export interface SlurmCluster {
  /** Temporary folder holding the configuration, state, spool and logs. */
  dir: string;
  /** Path of the generated `slurm.conf`. */
  conf: string;
  /** Environment for client commands (`SLURM_CONF`). */
  env: Record<string, string>;
  /** Runs a Slurm client command (sbatch, squeue, scancel, ...) and returns its stdout. */
  client(cmd: string, args: string[]): Promise<string>;
  /** Waits until none of the given jobs (array or plain ids) is pending or running. */
  waitForJobs(ids: string[], timeoutMs?: number): Promise<void>;
  /** Cancels every job, stops the daemons and removes the folder (unless `keep`). */
  stop(keep?: boolean): Promise<void>;
}

const PROGRAMS = ["munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel"];

/**
 * Whether the test cluster can run here: as root, with Slurm and munge
 * installed (with apt-get when missing). Otherwise the one line to print when
 * skipping.
 */
export async function ensureSlurm(): Promise<Availability> {
  const what = "the Slurm cluster test (tests/cluster_test.ts)";
  if (Deno.build.os === "linux" && Deno.uid() !== 0) {
    return {
      ok: false,
      line: `SKIPPED ${what}: its slurmctld, slurmd and munged run as root (uid ${Deno.uid()} ` +
        "here); as root the test installs slurm-wlm and munge with apt-get itself",
    };
  }
  if (Deno.build.os === "linux" && !(await hasCgroups())) {
    return {
      ok: false,
      line: `SKIPPED ${what}: slurmd needs the cgroup file system and /sys/fs/cgroup is empty ` +
        "here (a chroot or container without it: mount it, e.g. mount --rbind /sys)",
    };
  }
  return await ensurePrograms({ what, programs: PROGRAMS, packages: ["slurm-wlm", "munge"] });
}

/**
 * Whether /sys/fs/cgroup holds a cgroup file system (slurmd's cgroup plugin
 * needs one). Asked of the shell: Deno lets only --allow-all read under /sys.
 */
async function hasCgroups(): Promise<boolean> {
  return (await exec("sh", ["-c", `[ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]`])).code === 0;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The minimal `slurm.conf` of the test cluster (pure, for reading and testing). */
export function slurmConf(o: {
  dir: string;
  socket: string;
  ctldPort: number;
  slurmdPort: number;
  cpus: number;
}): string {
  const d = o.dir;
  return [
    "ClusterName=memotest",
    "SlurmctldHost=localhost(127.0.0.1)",
    `SlurmctldPort=${o.ctldPort}`,
    `SlurmdPort=${o.slurmdPort}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${o.socket}`,
    `StateSaveLocation=${d}/state`,
    `SlurmdSpoolDir=${d}/spool`,
    `SlurmctldPidFile=${d}/slurmctld.pid`,
    `SlurmdPidFile=${d}/slurmd.pid`,
    `SlurmctldLogFile=${d}/log/slurmctld.log`,
    `SlurmdLogFile=${d}/log/slurmd.log`,
    "MailProg=/bin/true",
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "SchedulerType=sched/backfill",
    "MpiDefault=none",
    "ReturnToService=2",
    "JobCompType=jobcomp/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "SwitchType=switch/none",
    "MinJobAge=600",
    "KillWait=2",
    `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${o.cpus} RealMemory=1000 State=UNKNOWN`,
    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n");
}

async function tail(path: string, lines = 15): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim().split("\n").slice(-lines).join("\n");
  } catch {
    return `(no ${path})`;
  }
}

/**
 * Starts munged, slurmctld and slurmd as root in a fresh temporary folder and
 * waits until the node is idle. `cpus` is the node's CPU count (each array
 * task of the tests asks for one, so `cpus` tasks run at once).
 */
export async function startSlurm(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  const dir = await Deno.makeTempDir({ prefix: "memo-slurm-" });
  await Deno.chmod(dir, 0o755);
  for (const sub of ["state", "spool", "log", "munge", "key"]) {
    await Deno.mkdir(`${dir}/${sub}`);
  }
  await Deno.chmod(`${dir}/munge`, 0o755);
  await Deno.chmod(`${dir}/key`, 0o700);
  const key = `${dir}/key/munge.key`;
  await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(1024)), { mode: 0o400 });
  await Deno.chmod(key, 0o400);
  const socket = `${dir}/munge/munge.socket`;
  const conf = `${dir}/slurm.conf`;
  await Deno.writeTextFile(
    conf,
    slurmConf({ dir, socket, ctldPort: freePort(), slurmdPort: freePort(), cpus: opts.cpus ?? 2 }),
  );
  const env = { SLURM_CONF: conf };
  const children: Deno.ChildProcess[] = [];
  const spawn = (cmd: string, args: string[]) => {
    const child = new Deno.Command(cmd, {
      args,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    })
      .spawn();
    children.push(child);
    return child;
  };

  const client = async (cmd: string, args: string[]) => {
    const r = await exec(cmd, args, env);
    if (r.code !== 0) {
      throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    }
    return r.stdout;
  };

  const stop = async (keep = false) => {
    await exec("scancel", ["--user=root"], env).catch(() => undefined);
    // Give running tasks a moment to be killed by slurmd before it goes.
    for (let i = 0; i < 20; i++) {
      const q = await exec("squeue", ["-h", "-t", "R,CG"], env);
      if (q.code !== 0 || q.stdout.trim() === "") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const child of children.reverse()) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await Promise.all(children.map((c) => c.status));
    if (!keep) await Deno.remove(dir, { recursive: true }).catch(() => undefined);
  };

  try {
    spawn("munged", [
      "-F",
      "-f",
      `--socket=${socket}`,
      `--key-file=${key}`,
      `--log-file=${dir}/log/munged.log`,
      `--pid-file=${dir}/munge/munged.pid`,
      `--seed-file=${dir}/munge/munged.seed`,
    ]);
    await waitFor(
      async () => (await exec("munge", ["-n", "-S", socket])).code === 0,
      10_000,
      async () => `munged did not start: ${await tail(`${dir}/log/munged.log`)}`,
    );
    spawn("slurmctld", ["-D", "-i", "-f", conf]);
    spawn("slurmd", ["-D", "-N", "localhost", "-f", conf]);
    await waitFor(
      async () => {
        const r = await exec("sinfo", ["-h", "-N", "-o", "%T"], env);
        return r.code === 0 && r.stdout.trim() === "idle";
      },
      30_000,
      async () =>
        `the Slurm node did not become idle:\n${await tail(
          `${dir}/log/slurmctld.log`,
        )}\n${await tail(
          `${dir}/log/slurmd.log`,
        )}`,
    );
  } catch (e) {
    await stop(true);
    throw e;
  }

  const waitForJobs = (ids: string[], timeoutMs = 180_000) =>
    waitFor(
      async () => {
        const r = await exec("squeue", ["-h", "-o", "%i %T", "-j", ids.join(",")], env);
        return r.code === 0 && r.stdout.trim() === "";
      },
      timeoutMs,
      async () => `jobs ${ids} did not finish: ${(await exec("squeue", [], env)).stdout}`,
      500,
    );
  return { dir, conf, env, client, waitForJobs, stop };
}

async function waitFor(
  ok: () => Promise<boolean>,
  timeoutMs: number,
  why: () => Promise<string>,
  everyMs = 200,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(await why());
}
