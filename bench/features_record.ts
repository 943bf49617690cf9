/**
 * `deno task bench features-record` (also the second part of `deno task
 * bench features`): the row-feature record and the models over it at scale.
 * A generated selection of `BENCH_FEATURES_RECORD_ROWS` rows (default
 * 10,000,000; every row's values a seeded hash of its index, memorization
 * growing with the log window count, 0.5% of the rows with a masked e-mail
 * address) is written by `writeRowFeatures` chunk by chunk (one process) and
 * then, in a second process, read back in full and the data-only and one
 * combined model (with a cheap run's prefix, matches and NLL, generated per
 * chunk) fitted on the bounded sample and applied to every row
 * (`fitFeatureModels`). Each process runs under `/usr/bin/time -v`: wall time
 * and whole-process peak RSS; the load average is printed before each.
 *
 * @module
 */
import { join } from "node:path";
import {
  type FeatureChunk,
  type MaskedHit,
  readRowFeatures,
  writeRowFeatures,
} from "../engine/data/features/rows_file.ts";
import { hash32 } from "../engine/random.ts";
import { listBuilder, rangesOf } from "../engine/rowset.ts";
import type { ScoreChunk, ScoreSource } from "../engine/store/scored_checkpoint.ts";
import type { AnalysisSettings } from "../engine/types.ts";
import type { AnalysedCheckpoint } from "../reports/analysis/checkpoints.ts";
import { FEATURE_SAMPLE_ROWS } from "../reports/analysis/combined.ts";
import { fitFeatureModels } from "../reports/analysis/feature_candidates.ts";
import { foldOf } from "../reports/analysis/histograms.ts";
import { type ChildResult, spawn } from "./features.ts";

const PILE_ROWS = 146_432_000;
const CHUNK = 1 << 20, L = 32;
const u = (row: number, k: number) => hash32(row, 1000 + k) / 4294967296;
const windowOf = (r: number) => 1 + Math.floor(-Math.log(1 - u(r, 1)) * 3);
const compressionOf = (r: number) => Math.round((0.4 + 0.6 * u(r, 2)) * 1e6) / 1e6;
const memorizedOf = (r: number) =>
  u(r, 3) < 1 / (1 + Math.exp(5 - 1.6 * Math.log(windowOf(r)) + 2 * (compressionOf(r) - 0.7)));

/** Chunk after chunk of the generated record (rows 0 … n − 1). */
function* chunks(n: number): Generator<FeatureChunk> {
  for (let at = 0; at < n; at += CHUNK) {
    const m = Math.min(CHUNK, n - at);
    const rows = Uint32Array.from({ length: m }, (_, i) => at + i);
    const window = Uint32Array.from(rows, windowOf);
    yield {
      rows,
      window,
      context: Uint32Array.from(rows, (r, i) => window[i] + Math.floor(u(r, 4) * 4)),
      step: Int32Array.from(rows, (r) => Math.floor(r / 1024)),
      nextStep: Int32Array.from(rows, (r) => (u(r, 5) < 0.01 ? Math.floor(r / 1024) + 90 : -1)),
      rowCopies: Uint32Array.from(rows, (r) => (u(r, 5) < 0.01 ? 2 : 1)),
      compression: Float64Array.from(rows, compressionOf),
      distinct: Float64Array.from(rows, (r) => Math.round(u(r, 6) * 64) / 64),
    };
  }
}

function* personal(n: number): Generator<[number, MaskedHit[]]> {
  for (let r = 0; r < n; r++) {
    if (u(r, 7) < 0.005) {
      yield [r, [{ kind: "email", start: 3, end: 20, masked: "j***@example.org" }]];
    }
  }
}

/** A run's scores generated chunk by chunk (nothing held per row). */
function source(n: number, signal: (r: number) => number): ScoreSource {
  return {
    prefix: true,
    nll: true,
    chunks: Math.ceil(n / CHUNK),
    chunk(k): ScoreChunk {
      const rows = Uint32Array.from(
        { length: Math.min(CHUNK, n - k * CHUNK) },
        (_, i) => k * CHUNK + i,
      );
      const prefix = Uint8Array.from(rows, signal);
      return {
        rows,
        matches: prefix,
        prefix,
        nll: Float32Array.from(rows, (r) => 2 - signal(r) / L + u(r, 8)),
      };
    },
  };
}

/** The child writing the record. */
async function write(dir: string, n: number): Promise<void> {
  const folder = join(dir, "features", "bench");
  await Deno.mkdir(folder, { recursive: true });
  const t = performance.now();
  const meta = { key: "bench", of: "text" as const, seconds: 0, shards: 1, tokens: n * 2049 };
  await writeRowFeatures(folder, meta, chunks(n), personal(n));
  console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000 }));
}

/** The child reading the record back and fitting and applying the models. */
async function fit(dir: string, n: number): Promise<void> {
  let t = performance.now();
  const f = (await readRowFeatures(dir))!;
  let sum = 0;
  for (let k = 0; k < f.chunks; k++) sum += f.chunk(k).window.reduce((a, v) => a + v, 0);
  const readS = (performance.now() - t) / 1000;
  const memorized = listBuilder();
  for (let r = 0; r < n; r++) if (memorizedOf(r)) memorized.add(r);
  const target = {
    model: "target",
    step: 1,
    continuation: L,
    id: { model: "target", step: 1 },
    compute: 100,
    parameters: 1,
    scored: rangesOf([[0, n]]),
    memorized: memorized.done(),
    source: source(n, (r) => (memorizedOf(r) ? L : 0)),
  } as unknown as AnalysedCheckpoint;
  const cheapSignal = (r: number) =>
    (memorizedOf(r) && u(r, 9) < 0.5) || u(r, 10) < 0.005 ? L : Math.floor(u(r, 11) * L);
  const cheap = {
    ...target,
    model: "cheap",
    id: { model: "cheap", step: 1 },
    compute: 10,
    source: source(n, cheapSignal),
  } as unknown as AnalysedCheckpoint;
  const settings: AnalysisSettings = {
    minPrecision: 0.5,
    budgets: [0.5],
    bootstrap: 0,
    seed: 0,
    parameterCount: "total",
    folds: 5,
    recallOver: "all",
    recalls: [],
  };
  const positives = [0, 0, 0, 0, 0];
  for (const r of target.memorized) positives[foldOf(r, 0, 5)]++;
  t = performance.now();
  const fits = fitFeatureModels(f, [target, cheap], target, settings, positives)!;
  const fitS = (performance.now() - t) / 1000;
  const recall = (c: { tp: number; fn: number }) => c.tp / (c.tp + c.fn);
  console.log(JSON.stringify({
    readS,
    fitS,
    sum,
    rows: fits.rows,
    memorized: fits.memorized,
    sample: fits.sample,
    dataOnly: recall(fits.dataOnly.fit.heldOut),
    combined: recall(fits.byBudget[0].fit.heldOut),
  }));
}

/** Runs the record benchmark: write, then read + fit + apply, each in its own timed process. */
export async function runRecordBench(): Promise<Record<string, number>> {
  const dir = join(Deno.env.get("BENCH_DIR") ?? "/tmp/bench-features", "record");
  const n = Number(Deno.env.get("BENCH_FEATURES_RECORD_ROWS") ?? 10_000_000);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  const loadW = load();
  const w = await spawn(["--write", dir, String(n)], import.meta.url);
  const loadF = load();
  const f = await spawn(["--fit", dir, String(n)], import.meta.url) as ChildResult & FitResult;
  let bytes = 0;
  for await (const e of Deno.readDir(join(dir, "features", "bench"))) {
    bytes += (await Deno.stat(join(dir, "features", "bench", e.name))).size;
  }
  const x = PILE_ROWS / n;
  console.error(
    `features record: ${n} rows (${(bytes / 2 ** 20).toFixed(0)} MiB on disk)\n` +
      `  write: wall ${w.wallS.toFixed(1)} s, peak RSS ${
        w.peakMB.toFixed(0)
      } MB (load ${loadW})\n` +
      `  read back ${f.readS.toFixed(1)} s; fit on ${f.sample.rows} sampled rows (memorized ` +
      `${f.sample.rates.memorized.toFixed(3)}, others ${f.sample.rates.other.toFixed(4)}) and ` +
      `apply to all ${f.rows} (${f.memorized} memorized): ${f.fitS.toFixed(1)} s; process wall ` +
      `${f.wallS.toFixed(1)} s, peak RSS ${f.peakMB.toFixed(0)} MB (load ${loadF}); held-out ` +
      `recall data-only ${f.dataOnly.toFixed(3)}, combined ${f.combined.toFixed(3)}\n` +
      `  Pile (${PILE_ROWS} rows, × ${x.toFixed(1)}): write ~${(w.wallS * x / 60).toFixed(1)} ` +
      `min, ${(bytes * x / 2 ** 30).toFixed(1)} GiB; fit + apply ≤ ${
        (f.wallS * x / 60).toFixed(1)
      } ` +
      `min (taken as linear in rows: an upper bound, the ${FEATURE_SAMPLE_ROWS}-row sample's fit ` +
      "does not grow; memory: a chunk and the sample, plus 4 B per memorized and flagged row)",
  );
  return {
    recordRows: n,
    recordBytes: bytes,
    writeSeconds: w.wallS,
    writePeakRssMB: Math.round(w.peakMB),
    fitSeconds: f.fitS,
    fitProcessSeconds: f.wallS,
    fitPeakRssMB: Math.round(f.peakMB),
    sampleRows: f.sample.rows,
  };
}

interface FitResult {
  readS: number;
  fitS: number;
  rows: number;
  memorized: number;
  sample: { rows: number; rates: { memorized: number; other: number } };
  dataOnly: number;
  combined: number;
}

if (import.meta.main && Deno.args[0] === "--write") {
  await write(Deno.args[1], Number(Deno.args[2]));
} else if (import.meta.main && Deno.args[0] === "--fit") {
  await fit(Deno.args[1], Number(Deno.args[2]));
}
