/**
 * Pool scaling benchmark: the same job list (a slice of the nano experiment)
 * scored by 1 worker and by 2 workers (1 intra-op thread each), side by side in
 * one run (in the order 1, 2, 2, 1). Reports rows/s of each and the ratio
 * (2 workers ÷ 1 worker), in all and after worker start-up, and the CPU cores
 * the process actually got (on a busy machine the ratio is capped by that).
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { workerTask } from "../tasks/score.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { timeSlots, type TrialTiming } from "../engine/run/devices.ts";
import type { DeviceSlot, Experiment, Job } from "../engine/types.ts";

/** Rows scored per configuration (enough for several seconds of work per worker). */
const BENCH_ROWS = 8192;

/** Picks jobs round-robin across checkpoints until `rows` rows are collected. */
export function benchJobs(jobs: Job[], rows: number): Job[] {
  const byPath = new Map<string, Job[]>();
  for (const j of jobs) byPath.set(j.path, [...(byPath.get(j.path) ?? []), j]);
  const queues = [...byPath.values()];
  const out: Job[] = [];
  let total = 0;
  for (let round = 0; total < rows && queues.some((q) => q.length > round); round++) {
    for (const q of queues) {
      if (round < q.length && total < rows) {
        out.push(q[round]);
        total += q[round].rows.length;
      }
    }
  }
  return out;
}

/** One pool run ({@link TrialTiming}) and the CPU seconds it used. */
export interface Timing extends TrialTiming {
  cpu: number;
}

/** One pool run over `jobs` on `slots`: seconds in all and after start-up, CPU seconds. */
export async function timePool(exp: Experiment, jobs: Job[], slots: DeviceSlot[]): Promise<Timing> {
  const cpu0 = process.cpuUsage();
  const t = await timeSlots(jobs, slots, (job) => workerTask(exp, job));
  const used = process.cpuUsage(cpu0);
  return { ...t, cpu: (used.user + used.system) / 1e6 };
}

/** Runs the pool benchmark (default: experiments/nano.yaml); returns rows/s of 1 and 2 workers and their ratio. */
export async function runPoolBench(
  file = fileURLToPath(new URL("../experiments/nano.yaml", import.meta.url)),
): Promise<Record<string, number>> {
  const exp = await loadExperiment(file);
  const reader = await openTokenReader(exp.data);
  const totalRows = reader.rows;
  await reader.close();
  const jobs = benchJobs(makePlan(exp, totalRows).jobs, BENCH_ROWS);
  const rows = jobs.reduce((a, j) => a + j.rows.length, 0);
  const cpu: DeviceSlot = { device: "cpu", threads: 1 };
  // A B B A order, so a change of machine load during the run affects both alike.
  const runs: [number, Timing][] = [];
  for (const workers of [1, 2, 2, 1]) {
    runs.push([workers, await timePool(exp, jobs, Array(workers).fill(cpu))]);
  }
  const sum = (w: number, f: (t: Timing) => number) =>
    runs.filter(([n]) => n === w).reduce((a, [, t]) => a + f(t), 0);
  const rate = (w: number) => (2 * rows) / sum(w, (t) => t.total);
  const steady = (w: number) => sum(w, (t) => rows - t.firstRows) / sum(w, (t) => t.steady);
  const result = {
    "pool rows": rows,
    "pool jobs": jobs.length,
    "pool 1 worker rows/s": Math.round(rate(1)),
    "pool 2 workers rows/s": Math.round(rate(2)),
    "pool speedup 2/1": round2(rate(2) / rate(1)),
    "pool 1 worker rows/s (after start-up)": Math.round(steady(1)),
    "pool 2 workers rows/s (after start-up)": Math.round(steady(2)),
    "pool speedup 2/1 (after start-up)": round2(steady(2) / steady(1)),
    "pool CPU cores used, 1 worker": round2(sum(1, (t) => t.cpu) / sum(1, (t) => t.total)),
    "pool CPU cores used, 2 workers": round2(sum(2, (t) => t.cpu) / sum(2, (t) => t.total)),
    // Rows per CPU-second of 2 workers ÷ of 1 worker: below 1 means pool overhead.
    "pool rows per CPU-second 2/1": round2(
      (2 * rows / sum(2, (t) => t.cpu)) / (2 * rows / sum(1, (t) => t.cpu)),
    ),
  };
  for (const [k, v] of Object.entries(result)) console.log(`${k.padEnd(40)} ${v}`);
  return result;
}

if (import.meta.main) await runPoolBench(Deno.args[0]);

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
