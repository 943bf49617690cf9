/**
 * `deno task bench devices`: chooses the device slots (workers × intra-op
 * threads) for this machine and a model by a short trial of the real pool, and
 * says why. Every split of the cores into workers × threads (1 × C, 2 × C/2,
 * …, C × 1) scores the same rows in A B … B A order; the fastest (whole runs,
 * model loading included) wins, unless one with fewer workers is within 5% of
 * it (each worker holds its own copy of the model: fewer workers, less
 * memory). On a GPU (BENCH_DEVICE=cuda:0) the trial is 1 vs 2 workers.
 *
 * Model: BENCH_EXPERIMENT (an experiment file; its largest model's last
 * checkpoint) or, by default, the random-init Pythia shape of the `pythia`
 * bench (BENCH_SHAPE, default 70m) on random Megatron rows. Also BENCH_MODE
 * (extractable | full), BENCH_TRIAL_ROWS (512), BENCH_CORES (the machine's).
 *
 * @module
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { loadExperiment } from "../engine/config/config.ts";
import { openTokenReader } from "../engine/data/datasets.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { writeMegatron } from "./megatron.ts";
import { ensureNeox, neoxParams, PYTHIA } from "./neox.ts";
import { benchJobs } from "./pool.ts";
import { type Candidate, choose, cpuCandidates, measureCandidates } from "../engine/run/devices.ts";
import { workerTask } from "../tasks/score.ts";

async function defaultExperiment(): Promise<string> {
  const shapeName = Deno.env.get("BENCH_SHAPE") ?? "70m";
  const shape = PYTHIA[shapeName];
  if (!shape) throw new Error(`BENCH_SHAPE ${shapeName}: expected one of ${Object.keys(PYTHIA)}`);
  const root = resolve(`runs/bench/pythia-${shapeName}`);
  const model = await ensureNeox(`${root}-float32-inline`, {
    shape,
    dtype: "float32",
    external: false,
  });
  const data = writeMegatron(`${root}-devices-data`, { rows: 1024, vocab: shape.vocab, seed: 9 });
  const file = `${root}-devices.yaml`;
  const mode = Deno.env.get("BENCH_MODE") === "full" ? "full" : "extractable";
  await Deno.writeTextFile(
    file,
    trialExperiment(shapeName, resolve(model.path), resolve(data), mode),
  );
  return file;
}

/** The experiment file of a trial: one model, one checkpoint, its first 1024 rows in jobs of 64 (so a trial takes as few as it needs). */
export function trialExperiment(
  name: string,
  model: string,
  data: string,
  mode: "extractable" | "full",
): string {
  const shape = PYTHIA[name];
  return [
    `name: devices-trial-${name}`,
    "suite:",
    "  steps: [1]",
    "  models:",
    `    - name: pythia-${name}`,
    `      parameters: ${neoxParams(shape)}`,
    `      vocab_size: ${shape.vocab}`,
    `      checkpoints: { "1": ${JSON.stringify(model)} }`,
    `data: { format: megatron, path: ${JSON.stringify(data)} }`,
    `memorization: { mode: ${mode}, suppressed_tokens: [0] }`,
    "rows: seen",
    "batch_size: 64",
    "shard_size: 64",
    "",
  ].join("\n");
}

/** Runs the trial; returns each candidate's rows/s and the choice. */
export async function runDevicesBench(): Promise<Record<string, number>> {
  const file = Deno.env.get("BENCH_EXPERIMENT") ?? await defaultExperiment();
  const exp = await loadExperiment(file);
  const reader = await openTokenReader(exp.data);
  const totalRows = reader.rows;
  await reader.close();
  const largest = exp.suite.models.reduce((a, b) => (b.parameters > a.parameters ? b : a));
  const checkpoint = largest.checkpoints.at(-1)!;
  const jobs = benchJobs(
    makePlan(exp, totalRows).jobs.filter((j) => j.path === checkpoint.path),
    Number(Deno.env.get("BENCH_TRIAL_ROWS") ?? 512),
  );
  const rows = jobs.reduce((a, j) => a + j.rows.length, 0);
  if (!rows) throw new Error(`${file}: no rows to score for ${checkpoint.path}`);
  const device = Deno.env.get("BENCH_DEVICE") ?? "cpu";
  const cores = Number(Deno.env.get("BENCH_CORES") ?? availableParallelism());
  const candidates: Candidate[] = device === "cpu"
    ? cpuCandidates(cores)
    : [1, 2].map((workers) => ({ device, workers, threads: 1 }));
  console.log(
    `devices trial: ${checkpoint.path}, ${rows} rows per configuration, ${exp.memorization.mode}, ` +
      `batch ${exp.batchSize}; ${candidates.map((c) => `${c.workers} × ${c.threads}`).join(", ")}`,
  );
  // Whole runs, loading included: with few jobs per worker, "after start-up" is not measurable.
  const measured = await measureCandidates(candidates, jobs, (job) => workerTask(exp, job), {
    steady: false,
    log: console.log,
  });
  const { best, why } = choose(measured);
  console.log(`choice: ${why}.`);
  console.log(
    `experiment file:\ndevices:\n  - { device: ${best.device}, workers: ${best.workers}, threads: ${best.threads} }`,
  );
  const out: Record<string, number> = { rows, workers: best.workers, threads: best.threads };
  for (const c of measured) out[`rows_per_s_${c.workers}x${c.threads}`] = c.rowsPerS!;
  return out;
}

if (import.meta.main) console.log(JSON.stringify(await runDevicesBench()));
