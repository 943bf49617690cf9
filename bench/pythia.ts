/**
 * Scoring at a real model size, side by side in one run: builds (never
 * commits) a random-init GPT-NeoX of a Pythia shape under runs/bench/ with the
 * project's ONNX writer (bench/neox.ts) and Megatron data of 2049-token rows
 * in which every 4th row continues with the model's own greedy output
 * (memorized) and the row after it the same with one token changed; then runs
 * each scorer in its own process (bench/pythia_scorer.ts) and reports rows/s
 * (the whole process, model loading included) and rows per CPU-second (which a
 * busy machine disturbs less), the whole process's peak RSS (`/usr/bin/time`),
 * the ratios, and the
 * per-row agreement of the project's scores with transformers.js and the
 * reference algorithm (no cache, full logits, via onnxruntime; run on the
 * first BENCH_REF_ROWS rows, as it is ~50× slower). `run_extractable` and
 * `run_full` are the harness itself: `main.ts experiment` with one CPU worker
 * (main thread, pool, worker thread, store) on the same rows, model and data.
 *
 * Settings (environment): BENCH_SHAPE (70m; any key of PYTHIA), BENCH_ROWS
 * (1024), BENCH_REF_ROWS (32), BENCH_DTYPE (float32 | float16), BENCH_EXTERNAL
 * (1: weights in external data; transformers.js then reads the inline copy),
 * BENCH_THREADS (the machine's cores), BENCH_BATCHES (16,64), BENCH_DEVICE (the
 * project's device, default cpu; e.g. cuda:0 — the other scorers stay on the CPU),
 * BENCH_FOLDER (1: also score the same weights as a Hugging Face model folder,
 * float16 `pytorch_model.bin` as Pythia ships it, written by PyTorch through
 * BENCH_PYTHON, default /usr/bin/python3; 0: skip), BENCH_TRANSFORMERS (1; 0
 * skips scoring with transformers.js, which still plants the data), BENCH_REF_ROWS
 * 0 skips the reference, BENCH_RUN (1; 0 skips the harness's own runs).
 *
 * The folder variant's goals (issue 20): rows/s within 5% of the ONNX path
 * (the float32 ONNX file of the same weights) in both modes, and one worker's
 * peak RSS at most the float32 weights + 300 MB.
 *
 * @module
 */
import { availableParallelism, loadavg as osLoadavg } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { writeMegatron } from "./megatron.ts";
import { ensureNeox, PYTHIA, writeNeoxFolder } from "./neox.ts";
import type { ScorerResult } from "./pythia_scorer.ts";
import { readCheckpointScores } from "../tests/fixtures/stored_scores.ts";

const K = 32, L = 32, ROW = 2049;
const SCORER = fileURLToPath(new URL("./pythia_scorer.ts", import.meta.url));

const loadavg = () => osLoadavg().map((x) => x.toFixed(2)).join(" ");

/** Runs `deno ARGS` under /usr/bin/time: its stdout, wall and CPU seconds, peak RSS (MiB). */
async function timedDeno(
  args: string[],
): Promise<{ stdout: string; seconds: number; cpuSeconds: number; peakRssMb: number }> {
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "BENCH_TIME %e %U %S %M", Deno.execPath(), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  const lines = err.split("\n");
  const m = /^BENCH_TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(
    lines.findLast((l) => l.startsWith("BENCH_TIME")) ?? "",
  );
  const rest = lines.filter((l) => !l.startsWith("BENCH_TIME")).join("\n").trim();
  if (rest) console.error(rest);
  if (!out.success || !m) {
    throw new Error(`deno ${args.slice(0, 4).join(" ")} failed (exit ${out.code})`);
  }
  return {
    stdout: new TextDecoder().decode(out.stdout),
    seconds: Number(m[1]),
    cpuSeconds: Number(m[2]) + Number(m[3]),
    peakRssMb: Number(m[4]) / 1024,
  };
}

/**
 * `run-extractable` / `run-full`: the harness itself, `main.ts experiment`
 * with one CPU worker of `threads` threads (the pool, its worker thread, the
 * store), on rows [0, rows) of the same model and data; matches and prefixes
 * read back from its store.
 */
async function runExperiment(
  mode: "extractable" | "full",
  model: string,
  data: string,
  rows: number,
  batch: number,
  threads: number,
): Promise<ScorerResult> {
  const dir = `runs/bench/pythia-run-${mode}-${batch}`;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}.yaml`;
  const abs = (p: string) => fileURLToPath(new URL(p, `file://${Deno.cwd()}/`));
  await Deno.writeTextFile(
    file,
    `name: pythia-run
suite:
  sequences_per_step: ${rows}
  steps: [1]
  models: [{name: m, parameters: 1, checkpoints: {1: ${JSON.stringify(abs(model))}}}]
data: {format: megatron, path: ${JSON.stringify(abs(data))}, row_length: ${ROW}}
memorization: {context: ${K}, continuation: ${L}, mode: ${mode}, suppressed_tokens: [0]}
target: none
devices: [{device: cpu, workers: 1, threads: ${threads}}]
batch_size: ${batch}
shard_size: ${rows}
`,
  );
  const t = await timedDeno([
    "run",
    "-P=run",
    "main.ts",
    "experiment",
    file,
    "--no-report",
    "--output",
    dir,
  ]);
  const [scores] = await readCheckpointScores(dir);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(file);
  return {
    scorer: `run-${mode}`,
    rows,
    batch,
    seconds: t.seconds,
    rowsPerS: rows / t.seconds,
    peakRssMb: t.peakRssMb,
    cpuSeconds: t.cpuSeconds,
    matches: Array.from(scores.matches),
    prefix: Array.from(scores.prefix!),
  };
}

async function runScorer(
  scorer: string,
  model: string,
  data: string,
  rows: number,
  batch: number,
  threads: number,
): Promise<ScorerResult & { load: string }> {
  const before = loadavg();
  let r: ScorerResult;
  if (scorer === "run-extractable" || scorer === "run-full") {
    r = await runExperiment(scorer.slice(4) as "full", model, data, rows, batch, threads);
  } else {
    const t = await timedDeno([
      "run",
      "-P=bench",
      SCORER,
      scorer,
      model,
      data,
      String(rows),
      String(batch),
      String(threads),
    ]);
    r = JSON.parse(t.stdout.trim().split("\n").at(-1)!) as ScorerResult;
    // The whole process as the system saw it (/usr/bin/time), model loading included.
    r.peakRssMb = t.peakRssMb;
  }
  const load = `${before} → ${loadavg()}`;
  const perCpu = (r.rows / r.cpuSeconds).toFixed(2);
  console.log(
    `${scorer.padEnd(18)} batch ${String(batch).padStart(3)}: ${r.rowsPerS.toFixed(2)} rows/s, ` +
      `${perCpu} rows per CPU-s (${r.rows} rows in ${r.seconds.toFixed(1)} s), ` +
      `peak RSS ${r.peakRssMb.toFixed(0)} MB${
        r.loadSeconds === undefined
          ? ""
          : `, load ${r.loadSeconds.toFixed(2)} s (peak RSS ${r.loadPeakRssMb!.toFixed(0)} MB)`
      }, loadavg ${load}`,
  );
  return { ...r, load };
}

/** Rows (of the first `n`) where two scorers' matches or prefixes differ. */
function disagreements(a: ScorerResult, b: ScorerResult, n: number, prefixOnly = false): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (a.prefix[i] !== b.prefix[i] || (!prefixOnly && a.matches[i] !== b.matches[i])) out.push(i);
  }
  return out;
}

/** Writes the data: random rows, then planted rows from transformers.js's greedy output. */
async function plantData(
  prefix: string,
  model: string,
  rows: number,
  vocab: number,
  threads: number,
) {
  writeMegatron(prefix, { rows, vocab, seed: 7 });
  const contexts = Math.ceil(rows / 4);
  // Contexts of rows 0, 4, 8, ...: generate from them (a copy of the data holding those rows).
  const tmp = `${prefix}-contexts`;
  writeMegatron(tmp, { rows: contexts, vocab, seed: 1 });
  const bin = await Deno.open(`${prefix}.bin`, { read: true, write: true });
  const ctxBin = await Deno.open(`${tmp}.bin`, { write: true });
  const row = new Uint8Array(ROW * 2);
  try {
    for (let i = 0; i < contexts; i++) {
      await bin.seek(4 * i * ROW * 2, Deno.SeekMode.Start);
      await bin.read(row);
      await ctxBin.seek(i * ROW * 2, Deno.SeekMode.Start);
      await ctxBin.write(row);
    }
  } finally {
    ctxBin.close();
  }
  const plant = await runScorer("plant", model, tmp, contexts, 64, threads);
  try {
    for (let i = 0; i < contexts; i++) {
      const at = 4 * i;
      await bin.seek(at * ROW * 2, Deno.SeekMode.Start);
      await bin.read(row);
      const tokens = new Uint16Array(row.buffer);
      tokens.set(plant.generated![i], K);
      for (const [r, change] of [[at, -1], [at + 1, i % L]]) {
        if (r >= rows) continue;
        const copy = tokens.slice();
        if (change >= 0) copy[K + change] = 1 + (copy[K + change] % (vocab - 1));
        await bin.seek(r * ROW * 2, Deno.SeekMode.Start);
        await bin.write(new Uint8Array(copy.buffer));
      }
    }
  } finally {
    bin.close();
  }
  for (const f of [`${tmp}.bin`, `${tmp}.idx`]) await Deno.remove(f);
}

/** Runs the bench; returns the measured numbers by name. */
export async function runPythiaBench(): Promise<Record<string, number>> {
  const env = (k: string, d: string) => Deno.env.get(k) ?? d;
  const shapeName = env("BENCH_SHAPE", "70m");
  const shape = PYTHIA[shapeName];
  if (!shape) throw new Error(`BENCH_SHAPE ${shapeName}: expected one of ${Object.keys(PYTHIA)}`);
  const rows = Number(env("BENCH_ROWS", "1024"));
  const refRows = Math.min(rows, Number(env("BENCH_REF_ROWS", "32")));
  const dtype = env("BENCH_DTYPE", "float32") as "float32" | "float16";
  const external = env("BENCH_EXTERNAL", "0") === "1";
  const threads = Number(env("BENCH_THREADS", String(availableParallelism())));
  const batches = env("BENCH_BATCHES", "16,64").split(",").map(Number);
  const withFolder = env("BENCH_FOLDER", "1") === "1";
  const withTjs = env("BENCH_TRANSFORMERS", "1") === "1";
  const withRun = env("BENCH_RUN", "1") === "1";
  const root = `runs/bench/pythia-${shapeName}`;
  const t0 = performance.now();
  const inline = await ensureNeox(`${root}-${dtype}-inline`, { shape, dtype, external: false });
  const project = external
    ? await ensureNeox(`${root}-${dtype}-external`, { shape, dtype, external: true })
    : inline;
  const folder = withFolder
    ? await ensureNeox(
      `${root}-hf-bin-f16`,
      { shape, dtype: "float16", external: false },
      writeNeoxFolder,
    )
    : null;
  const data = `${root}-data-${rows}`;
  // The marker is written last: data left by an interrupted run is made again.
  if (!existsSync(`${data}.planted`)) {
    await plantData(data, inline.path, rows, shape.vocab, threads);
    await Deno.writeTextFile(`${data}.planted`, `${inline.path}\n`);
  }
  console.log(
    `pythia bench: ${shapeName} (${inline.params.toLocaleString()} parameters, ${dtype}, ` +
      `${(inline.weightBytes / 2 ** 20).toFixed(0)} MB of weights${
        external ? ", external data" : ""
      }), ` +
      `${rows} rows (reference: ${refRows}), k ${K}, l ${L}, ${threads} threads; built in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const weightsMb = inline.weightBytes / 2 ** 20;
  const r: Record<string, ScorerResult> = {};
  // Interleaved so that a change in the machine's load hurts every scorer alike.
  for (const batch of batches) {
    r[`extractable${batch}`] = await runScorer(
      "extractable",
      project.path,
      data,
      rows,
      batch,
      threads,
    );
    r[`full${batch}`] = await runScorer("full", project.path, data, rows, batch, threads);
    if (folder) {
      r[`folder_extractable${batch}`] = await runScorer(
        "folder-extractable",
        folder.path,
        data,
        rows,
        batch,
        threads,
      );
      r[`folder_full${batch}`] = await runScorer(
        "folder-full",
        folder.path,
        data,
        rows,
        batch,
        threads,
      );
    }
    if (withRun) {
      for (const mode of ["extractable", "full"]) {
        r[`run_${mode}${batch}`] = await runScorer(
          `run-${mode}`,
          project.path,
          data,
          rows,
          batch,
          threads,
        );
      }
    }
    if (withTjs) {
      r[`transformers${batch}`] = await runScorer(
        "transformers",
        inline.path,
        data,
        rows,
        batch,
        threads,
      );
    }
  }
  if (refRows > 0) {
    r.reference = await runScorer("reference", inline.path, data, refRows, 8, threads);
  }
  const b = Math.max(...batches);
  const tjs = r[`transformers${b}`], ext = r[`extractable${b}`], full = r[`full${b}`];
  const agreeExt = disagreements(ext, full, rows, true);
  const memorized = full.prefix.filter((p) => p === L).length;
  const out: Record<string, number> = {
    rows,
    weights_mb: weightsMb,
    memorized,
    disagree_extractable_full_prefix: agreeExt.length,
  };
  const perCpu = (x: ScorerResult) => x.rows / x.cpuSeconds;
  /** Rows per second after the model was loaded. */
  const scoringRate = (x: ScorerResult) => x.rows / (x.seconds - (x.loadSeconds ?? 0));
  const ratios = (name: string, other: ScorerResult) => {
    out[`extractable_over_${name}`] = ext.rowsPerS / other.rowsPerS;
    out[`full_over_${name}`] = full.rowsPerS / other.rowsPerS;
    out[`extractable_over_${name}_per_cpu_s`] = perCpu(ext) / perCpu(other);
    out[`full_over_${name}_per_cpu_s`] = perCpu(full) / perCpu(other);
  };
  const notes = [`extractable's prefix vs full's on ${agreeExt.length}/${rows}`];
  if (tjs) {
    const agreeFull = disagreements(full, tjs, rows);
    out.disagree_full_transformers = agreeFull.length;
    notes.push(
      `full vs transformers.js differ on ${agreeFull.length}/${rows} rows ${
        JSON.stringify(agreeFull.slice(0, 10))
      }`,
    );
    ratios("transformers", tjs);
  }
  if (r.reference) {
    const agreeRef = disagreements(full, r.reference, refRows);
    out.disagree_full_reference = agreeRef.length;
    notes.push(`full vs reference on ${agreeRef.length}/${refRows}`);
    ratios("reference", r.reference);
  }
  if (folder) {
    // The folder holds the same weights rounded to float16: agreement is close, not exact.
    const fExt = r[`folder_extractable${b}`], fFull = r[`folder_full${b}`];
    const agreeFolder = disagreements(fFull, full, rows);
    out.disagree_folder_full_onnx_full = agreeFolder.length;
    out.folder_weights_stored_mb = folder.weightBytes / 2 ** 20;
    out.folder_weights_float32_mb = 2 * folder.weightBytes / 2 ** 20;
    for (const batch of batches) {
      const [fe, ff] = [r[`folder_extractable${batch}`], r[`folder_full${batch}`]];
      const [e, f] = [r[`extractable${batch}`], r[`full${batch}`]];
      out[`folder_over_onnx_extractable${batch}`] = fe.rowsPerS / e.rowsPerS;
      out[`folder_over_onnx_full${batch}`] = ff.rowsPerS / f.rowsPerS;
      out[`folder_over_onnx_extractable${batch}_per_cpu_s`] = perCpu(fe) / perCpu(e);
      out[`folder_over_onnx_full${batch}_per_cpu_s`] = perCpu(ff) / perCpu(f);
      // Scoring alone: the rows over the seconds after the model was loaded (loading is
      // once per checkpoint and worker, and this bench's few rows would let it dominate).
      out[`folder_over_onnx_extractable${batch}_scoring`] = scoringRate(fe) / scoringRate(e);
      out[`folder_over_onnx_full${batch}_scoring`] = scoringRate(ff) / scoringRate(f);
    }
    const goal = out.folder_weights_float32_mb + 300;
    const worst = Math.max(fExt.peakRssMb, fFull.peakRssMb);
    out.folder_peak_rss_goal_mb = goal;
    out.folder_peak_rss_mb = worst;
    out.folder_load_s = fFull.loadSeconds!;
    out.onnx_load_s = full.loadSeconds!;
    notes.push(`folder full vs ONNX full differ on ${agreeFolder.length}/${rows} rows`);
    console.log(
      `folder (float16 pytorch_model.bin) vs ONNX (float32), batch ${b}: rows/s of scoring ` +
        `(the model loaded) ${out[`folder_over_onnx_extractable${b}_scoring`].toFixed(3)}× ` +
        `extractable, ${out[`folder_over_onnx_full${b}_scoring`].toFixed(3)}× full (goal ≥ ` +
        `0.95); of the whole process, loading included ` +
        `${out[`folder_over_onnx_extractable${b}`].toFixed(3)}×, ` +
        `${out[`folder_over_onnx_full${b}`].toFixed(3)}× (per CPU-s ` +
        `${out[`folder_over_onnx_extractable${b}_per_cpu_s`].toFixed(3)}×, ` +
        `${out[`folder_over_onnx_full${b}_per_cpu_s`].toFixed(3)}×); load ` +
        `${out.folder_load_s.toFixed(2)} s vs ${out.onnx_load_s.toFixed(2)} s; peak RSS ` +
        `${worst.toFixed(0)} MB (goal ≤ ${goal.toFixed(0)} MB: float32 weights + 300 MB)`,
    );
  }
  if (withRun) {
    for (const mode of ["extractable", "full"]) {
      const n = disagreements(r[`run_${mode}${b}`], r[`${mode}${b}`], rows).length;
      out[`disagree_run_${mode}`] = n;
      notes.push(`the harness's ${mode} vs the scorer's on ${n}/${rows}`);
    }
  }
  console.log(`agreement: ${notes.join("; ")}; ${memorized} rows memorized`);
  // Issue 23's memory goal: each scorer's whole process within the float32 weights + 300 MB.
  const budget = weightsMb + 300;
  out.peak_rss_goal_mb = budget;
  const scorers = Object.entries(r).filter(([n]) =>
    /^(run_|folder_)?(extractable|full)\d+$/.test(n)
  );
  console.log(
    `peak RSS, goal ≤ ${budget.toFixed(0)} MB (float32 weights + 300 MB): ` +
      scorers.map(([n, x]) =>
        `${n} ${x.peakRssMb.toFixed(0)}${x.peakRssMb > budget ? " (over)" : ""}`
      ).join(", "),
  );
  for (const [name, x] of Object.entries(r)) {
    out[`${name}_rows_per_s`] = x.rowsPerS;
    out[`${name}_rows_per_cpu_s`] = x.rows / x.cpuSeconds;
    out[`${name}_peak_rss_mb`] = x.peakRssMb;
    out[`${name}_peak_rss_over_weights_mb`] = x.peakRssMb - weightsMb;
  }
  if (batches.includes(16) && batches.includes(64)) {
    out.extractable_batch64_over_16 = r.extractable64.rowsPerS / r.extractable16.rowsPerS;
    out.full_batch64_over_16 = r.full64.rowsPerS / r.full16.rowsPerS;
    const cpu = (x: ScorerResult) => x.rows / x.cpuSeconds;
    out.extractable_batch64_over_16_per_cpu_s = cpu(r.extractable64) / cpu(r.extractable16);
    out.full_batch64_over_16_per_cpu_s = cpu(r.full64) / cpu(r.full16);
  }
  out.extractable_peak_rss_over_weights_mb = ext.peakRssMb - weightsMb;
  out.full_peak_rss_over_weights_mb = full.peakRssMb - weightsMb;
  return out;
}

if (import.meta.main) console.log(JSON.stringify(await runPythiaBench()));
