/**
 * Scoring at a real model size, side by side in one run: builds (never
 * commits) a random-init GPT-NeoX of a Pythia shape under runs/bench/ with the
 * project's ONNX writer (bench/neox.ts) and Megatron data of 2049-token rows
 * in which every 4th row continues with the model's own greedy output
 * (memorized) and the row after it the same with one token changed; then runs
 * each scorer in its own process (bench/pythia_scorer.ts) and reports rows/s
 * (the whole process, model loading included) and rows per CPU-second (which a
 * busy machine disturbs less), peak RSS, the ratios, and the
 * per-row agreement of the project's scores with transformers.js and the
 * reference algorithm (no cache, full logits, via onnxruntime; run on the
 * first BENCH_REF_ROWS rows, as it is ~50× slower).
 *
 * Settings (environment): BENCH_SHAPE (70m; any key of PYTHIA), BENCH_ROWS
 * (1024), BENCH_REF_ROWS (32), BENCH_DTYPE (float32 | float16), BENCH_EXTERNAL
 * (1: weights in external data; transformers.js then reads the inline copy),
 * BENCH_THREADS (the machine's cores), BENCH_BATCHES (16,64), BENCH_DEVICE (the
 * project's device, default cpu; e.g. cuda:0 — the other scorers stay on the CPU).
 *
 * @module
 */
import { availableParallelism, loadavg as osLoadavg } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { writeMegatron } from "./megatron.ts";
import { ensureNeox, PYTHIA } from "./neox.ts";
import type { ScorerResult } from "./pythia_scorer.ts";

const K = 32, L = 32, ROW = 2049;
const SCORER = fileURLToPath(new URL("./pythia_scorer.ts", import.meta.url));

const loadavg = () => osLoadavg().map((x) => x.toFixed(2)).join(" ");

async function runScorer(
  scorer: string,
  model: string,
  data: string,
  rows: number,
  batch: number,
  threads: number,
): Promise<ScorerResult & { load: string }> {
  const before = loadavg();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-P=bench",
      SCORER,
      scorer,
      model,
      data,
      String(rows),
      String(batch),
      String(threads),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`scorer ${scorer} failed (exit ${out.code})`);
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
  const r = JSON.parse(line) as ScorerResult;
  const load = `${before} → ${loadavg()}`;
  const perCpu = (r.rows / r.cpuSeconds).toFixed(2);
  console.log(
    `${scorer.padEnd(12)} batch ${String(batch).padStart(3)}: ${r.rowsPerS.toFixed(2)} rows/s, ` +
      `${perCpu} rows per CPU-s (${r.rows} rows in ${r.seconds.toFixed(1)} s), ` +
      `peak RSS ${r.peakRssMb.toFixed(0)} MB, loadavg ${load}`,
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
  const root = `runs/bench/pythia-${shapeName}`;
  const t0 = performance.now();
  const inline = await ensureNeox(`${root}-${dtype}-inline`, { shape, dtype, external: false });
  const project = external
    ? await ensureNeox(`${root}-${dtype}-external`, { shape, dtype, external: true })
    : inline;
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
    r[`transformers${batch}`] = await runScorer(
      "transformers",
      inline.path,
      data,
      rows,
      batch,
      threads,
    );
  }
  r.reference = await runScorer("reference", inline.path, data, refRows, 8, threads);
  const b = Math.max(...batches);
  const tjs = r[`transformers${b}`], ext = r[`extractable${b}`], full = r[`full${b}`];
  const agreeFull = disagreements(full, tjs, rows);
  const agreeRef = disagreements(full, r.reference, refRows);
  const agreeExt = disagreements(ext, full, rows, true);
  const memorized = full.prefix.filter((p) => p === L).length;
  console.log(
    `agreement: full vs transformers.js differ on ${agreeFull.length}/${rows} rows ${
      JSON.stringify(agreeFull.slice(0, 10))
    }; full vs reference on ${agreeRef.length}/${refRows}; extractable's prefix vs full's on ` +
      `${agreeExt.length}/${rows}; ${memorized} rows memorized`,
  );
  const out: Record<string, number> = {
    rows,
    weights_mb: weightsMb,
    memorized,
    disagree_full_transformers: agreeFull.length,
    disagree_full_reference: agreeRef.length,
    disagree_extractable_full_prefix: agreeExt.length,
    reference_rows_per_s: r.reference.rowsPerS,
    extractable_over_transformers: ext.rowsPerS / tjs.rowsPerS,
    extractable_over_transformers_per_cpu_s: tjs.cpuSeconds / tjs.rows /
      (ext.cpuSeconds / ext.rows),
    full_over_transformers_per_cpu_s: tjs.cpuSeconds / tjs.rows / (full.cpuSeconds / full.rows),
    full_over_transformers: full.rowsPerS / tjs.rowsPerS,
    extractable_over_reference: ext.rowsPerS / r.reference.rowsPerS,
    full_over_reference: full.rowsPerS / r.reference.rowsPerS,
    extractable_over_reference_per_cpu_s: r.reference.cpuSeconds / r.reference.rows /
      (ext.cpuSeconds / ext.rows),
    full_over_reference_per_cpu_s: r.reference.cpuSeconds / r.reference.rows /
      (full.cpuSeconds / full.rows),
  };
  for (const [name, x] of Object.entries(r)) {
    out[`${name}_rows_per_s`] = x.rowsPerS;
    out[`${name}_rows_per_cpu_s`] = x.rows / x.cpuSeconds;
    out[`${name}_peak_rss_mb`] = x.peakRssMb;
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
