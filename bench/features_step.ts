/**
 * `deno task bench features-step` (also the third part of `deno task bench
 * features`): the experiment's `features` step itself (tasks/features.ts
 * `computeFeatures`: parts, tables, shard scans, assembly, the record written)
 * on a generated token stream of `BENCH_FEATURES_STEP_ROWS` selected rows
 * (default 2,000,000) on one thread and on `BENCH_FEATURES_STEP_THREADS`
 * (default the cores, tasks/features_threads.ts `featureThreads`) and, for
 * the growth with the rows, a quarter of them; each in its own process under
 * `/usr/bin/time -v` (wall time, whole-process peak RSS), the load average
 * (`Deno.loadavg()`, /proc/loadavg's) before and after each, and the step's
 * own phase timings (parts, tables, scan, record).
 *
 * The stream is a raw row file of rows of 65 uint16 tokens (the nano suite's
 * shape: the scored window is context 32 + continuation 32 at offset 0, so
 * the cost measured is the step's per-selected-row work, not the scanning of
 * long rows, which `deno task bench features` measures per token; 16 data
 * shards at 2M rows, so the assembly's summing over shard files is
 * measured per shard too): tokens
 * uniform in [1, 512) (the nano tokenizer's ids, so every window is decoded
 * to text, compressed and searched for personal data as in a run), then 2%
 * of the rows overwritten by a copy of another row (window counts ≥ 2, a
 * next step with the same window). The nano experiment is the template
 * (tokenizer, window), with `rows: all`, 1024 sequences per step and data
 * shards of 125,000 rows (`BENCH_FEATURES_STEP_CHUNK`: the step's rows per
 * chunk, default its own). Checked: the record's window counts of sampled
 * copied and random rows equal a brute-force count over the stream.
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadExperiment } from "../engine/config/config.ts";
import { allFeatures, readRowFeatures } from "../engine/data/features/rows_file.ts";
import { xoshiro128 } from "../engine/random.ts";
import { computeFeatures, type StepTiming } from "../tasks/features.ts";
import { featureThreads } from "../tasks/features_threads.ts";
import { bruteForce, spawn } from "./features.ts";

const ROW = 65, W = 64, SHARD = 125_000;
const PILE_ROWS = 146_432_000, PILE_ROW = 2049;
const NANO_YAML = fileURLToPath(new URL("../experiments/nano.yaml", import.meta.url));

/** The stream: random tokens, 2% of the rows a copy of another row; the copied rows. */
function generate(path: string, rows: number): number[] {
  const rnd = xoshiro128(33);
  const data = new Uint16Array(rows * ROW);
  for (let i = 0; i < data.length; i++) data[i] = 1 + (rnd() % 511);
  const copied: number[] = [];
  for (let j = 0; j < Math.floor(rows * 0.02); j++) {
    const from = rnd() % rows, to = rnd() % rows;
    data.copyWithin(to * ROW, from * ROW, from * ROW + ROW);
    copied.push(to);
  }
  writeFileSync(path, new Uint8Array(data.buffer));
  return copied;
}

/** The child: the features step over the stream, its record's phases and a few window counts. */
async function child(
  path: string,
  out: string,
  sample: number[],
  threads: number,
): Promise<void> {
  const nano = await loadExperiment(NANO_YAML);
  const exp = {
    ...nano,
    data: { format: "raw" as const, path, rowLength: ROW, dtype: "uint16" as const },
    rows: { kind: "all" as const },
    suite: { ...nano.suite, sequencesPerStep: 1024 },
    shardSize: SHARD,
    output: out,
  };
  const t = performance.now();
  const chunk = Deno.env.get("BENCH_FEATURES_STEP_CHUNK");
  const done = await computeFeatures(exp, {
    log: () => {},
    threads,
    ...(chunk ? { chunkRows: Number(chunk) } : {}),
  });
  const wallS = (performance.now() - t) / 1000;
  const f = (await readRowFeatures(out))!;
  const dir = join(out, "features", f.key);
  let scanS = 0;
  for (let d = 0; d < f.shards; d++) {
    const head = await Deno.readFile(join(dir, `counts-${String(d).padStart(5, "0")}.bin`));
    scanS += new Float64Array(head.buffer, 0, 1)[0];
  }
  const window = allFeatures(f).window;
  console.log(JSON.stringify({
    stepS: wallS,
    scanS,
    timing: done.timing,
    threads,
    shards: f.shards,
    rows: f.count,
    scanned: done.scanned,
    personalRows: f.personal.rows.length,
    window: sample.map((r) => window[r]),
  }));
}

/** One size: the stream written, the step run in a timed child, its counts checked. */
async function measure(dir: string, rows: number, threads: number) {
  const path = join(dir, `step-${rows}.bin`), out = join(dir, `step-run-${rows}`);
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const copied = generate(path, rows);
  const rnd = xoshiro128(5);
  const sample = [...copied.slice(0, 3), ...Array.from({ length: 3 }, () => rnd() % rows)];
  const loadBefore = loadavg();
  const r = await spawn(
    ["--child", path, out, sample.join(","), String(threads)],
    import.meta.url,
  ) as unknown as StepResult;
  const loadAfter = loadavg();
  const data = new Uint16Array(Deno.readFileSync(path).buffer);
  sample.forEach((q, i) => {
    const want = bruteForce(data, ROW, rows, q, W);
    if (r.window[i] !== want) throw new Error(`row ${q}: counted ${r.window[i]}, brute ${want}`);
  });
  await Deno.remove(out, { recursive: true });
  await Deno.remove(path);
  return { ...r, loadBefore, loadAfter, copies: sample.slice(0, 3).map((_, i) => r.window[i]) };
}

interface StepResult {
  stepS: number;
  scanS: number;
  timing: StepTiming;
  threads: number;
  shards: number;
  rows: number;
  scanned: number;
  personalRows: number;
  window: number[];
  wallS: number;
  peakMB: number;
}

/** The load average (1, 5, 15 minutes: /proc/loadavg's first three fields). */
function loadavg(): string {
  return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
}

/**
 * The table bytes per selected row at the Pile (window_counts.ts layout, per
 * width: 16-byte slots at load ≤ 0.7, a bit filter of 16 bits per query up to
 * 2^32 bits, 4 bytes per query's slot, 4 bytes per slot of a shard's counts).
 */
function pileTableBytes(n: number): number {
  let cap = 16;
  while (cap * 0.7 < n) cap *= 2;
  let bits = 1024;
  while (bits < 16 * n && bits < 2 ** 32) bits *= 2;
  return 2 * (cap * 16 + bits / 8 + n * 4 + cap * 4);
}

/** Microseconds per row of `s` seconds over `rows`. */
const us = (s: number, rows: number) => (s / rows) * 1e6;

/**
 * Runs the step benchmark at `BENCH_FEATURES_STEP_ROWS` rows on one thread
 * and on `BENCH_FEATURES_STEP_THREADS`, and a quarter of them on those threads.
 */
export async function runStepBench(): Promise<Record<string, number>> {
  const dir = join(Deno.env.get("BENCH_DIR") ?? "/tmp/bench-features", "step");
  const n = Number(Deno.env.get("BENCH_FEATURES_STEP_ROWS") ?? 2_000_000);
  const threads = Number(Deno.env.get("BENCH_FEATURES_STEP_THREADS") ?? featureThreads());
  mkdirSync(dir, { recursive: true });
  const small = await measure(dir, Math.round(n / 4), threads);
  const one = await measure(dir, n, 1);
  const many = threads > 1 ? await measure(dir, n, threads) : one;
  const rows = one.rows, t1 = one.timing, tn = many.timing;
  const partUs = us(t1.partSeconds, rows), tablesUs = us(t1.tables, rows);
  const sumUsPerShard = us(t1.sums, rows) / one.shards;
  const recordUs = us(t1.record - t1.sums, rows);
  const scanRate = (rows * ROW) / t1.scan;
  const perThreadMB = threads > 1 ? (many.peakMB - one.peakMB) / (threads - 1) : 0;
  const pile = pileExtrapolation({ partUs, tablesUs, sumUsPerShard, recordUs });
  const line = (r: typeof one) =>
    `${r.rows} rows, ${r.threads} thread(s): step ${r.stepS.toFixed(1)} s (parts ` +
    `${r.timing.parts.toFixed(1)} s, tables ${r.timing.tables.toFixed(1)} s, scan ` +
    `${r.timing.scan.toFixed(1)} s, record ${r.timing.record.toFixed(1)} s of which summing ` +
    `${r.timing.sums.toFixed(1)} s), process wall ${r.wallS.toFixed(1)} s, peak RSS ` +
    `${r.peakMB.toFixed(0)} MB, load ${r.loadBefore} → ${r.loadAfter}`;
  console.error(
    `features step (rows of ${ROW} tokens, window ${W}, ${one.shards} data shards):\n` +
      `  ${line(small)}\n  ${line(one)}\n  ${threads > 1 ? line(many) + "\n  " : ""}` +
      `brute force agrees on 6 sampled rows (copied rows' windows occur ` +
      `${one.copies.join(", ")} times); ${one.personalRows} rows with personal data\n` +
      `  per selected row (one thread): parts ${partUs.toFixed(1)} µs, tables ` +
      `${tablesUs.toFixed(2)} µs, record ${recordUs.toFixed(2)} µs + summing ` +
      `${sumUsPerShard.toFixed(3)} µs per shard; scan ${(scanRate / 1e6).toFixed(1)}M ` +
      `tokens/s; ${threads} threads: parts ${(t1.parts / tn.parts).toFixed(2)}× and scan ` +
      `${(t1.scan / tn.scan).toFixed(2)}× faster, ${perThreadMB.toFixed(0)} MB more per thread\n` +
      `  Pile (${PILE_ROWS} rows × ${PILE_ROW} tokens, ${PILE_SHARDS} data shards): ${pile.text}`,
  );
  return {
    stepRows: rows,
    stepThreads: threads,
    stepSeconds: one.stepS,
    stepThreadsSeconds: many.stepS,
    stepPeakRssMB: Math.round(one.peakMB),
    stepThreadsPeakRssMB: Math.round(many.peakMB),
    stepSmallPeakRssMB: Math.round(small.peakMB),
    stepPartMicrosecondsPerRow: Number(partUs.toFixed(2)),
    stepTablesMicrosecondsPerRow: Number(tablesUs.toFixed(3)),
    stepScanTokensPerSecond: Math.round(scanRate),
    stepPileHoursOn16Cores: Number(pile.hours16.toFixed(2)),
    stepPileMinutesPerTaskOf32: Number(pile.minutes32.toFixed(1)),
    stepPileMemoryGiB: Number(pile.memoryGiB.toFixed(1)),
  };
}

/** `deno task bench features`' measured scan cost of the Pile (2049-token rows, 8M queries). */
const PILE_SCAN_CORE_HOURS = 14.1;
const PILE_SHARDS = Math.ceil(PILE_ROWS / 1_000_000);

/**
 * The step at the Pile from the per-row costs measured here and the scan's
 * core-hours (bench/features.ts): on 16 cores (one process, 16 threads) and
 * per task of a 32-task array (one core each; every task builds its tables
 * from the hashes files; the last also assembles the record).
 */
function pileExtrapolation(c: {
  partUs: number;
  tablesUs: number;
  sumUsPerShard: number;
  recordUs: number;
}): { hours16: number; minutes32: number; memoryGiB: number; text: string } {
  const h = (usPerRow: number) => (usPerRow * PILE_ROWS) / 1e6 / 3600;
  const parts = h(c.partUs), tables = h(c.tablesUs);
  const record = h(c.recordUs + c.sumUsPerShard * PILE_SHARDS);
  const hours16 = (parts + PILE_SCAN_CORE_HOURS) / 16 + tables + record;
  const minutes32 = ((parts + PILE_SCAN_CORE_HOURS) / 32 + tables + record) * 60;
  const memoryGiB = (pileTableBytes(PILE_ROWS) + 4 * PILE_ROWS) / 2 ** 30;
  const text = `parts ${parts.toFixed(2)} core-hours, tables ${(tables * 60).toFixed(1)} min ` +
    `per process, scan ${PILE_SCAN_CORE_HOURS} core-hours (deno task bench features), record ` +
    `${(record * 60).toFixed(1)} min (summing ${PILE_SHARDS} counts files) → ` +
    `${hours16.toFixed(2)} h on 16 cores, ${minutes32.toFixed(0)} min for the last task of a ` +
    `32-task array (goal: under an hour); memory per process while scanning ` +
    `${memoryGiB.toFixed(1)} GiB (tables, one shared counts array per width, the selection) ` +
    "plus each thread's chunk";
  return { hours16, minutes32, memoryGiB, text };
}

if (import.meta.main && Deno.args[0] === "--child") {
  const [, path, out, sample, threads] = Deno.args;
  await child(path, out, sample.split(",").map(Number), Number(threads));
}
