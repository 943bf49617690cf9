/**
 * `deno task bench features`: exact window counts (engine/data/features/
 * window_counts.ts) on a generated token stream with planted duplicates, at
 * Pythia's row shape (2049 uint16 tokens per row, scored window 64 tokens at
 * offset 0, context 32), checked against brute force on a sample of queries;
 * tokens/s, peak RSS of the whole scanning process (`/usr/bin/time -v`) and
 * the extrapolation to the deduplicated Pile (146M rows × 2049 tokens).
 *
 * The stream (`BENCH_FEATURES_ROWS` rows, default 20,000 = 41M tokens) is
 * written once to `BENCH_DIR` (default /tmp/bench-features) as a raw row
 * file: uniform random tokens, then planted copies of 2% of the rows' scored
 * windows (the k-th source gets max(1, round(100 / k)) copies at random
 * positions of random rows, so copies straddle no row boundary and sit at
 * any offset) and 1% of the rows repeated whole (a second epoch). Queries:
 * every row's window plus random decoy windows up to `BENCH_FEATURES_QUERIES`
 * (default 2,000,000), so the tables are far larger than the CPU caches, as
 * a Pile-sized table is (each probe a cache miss). `BENCH_FEATURES_PROCS`
 * (default 1) processes each scan a contiguous share of the rows with their
 * own tables (the layout of a Slurm array: counts per shard are summed).
 *
 * @module
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { xoshiro128 } from "../engine/random.ts";
import { buildWindowTable, queryCounts, scanAll } from "../engine/data/features/window_counts.ts";

const ROW = 2049, W = 64, K = 32;
const PILE_ROWS = 146_432_000; // 143,000 steps × 1024 rows
const SAMPLE = 24;

function generate(path: string, rows: number, seed: number): void {
  const rnd = xoshiro128(seed);
  const data = new Uint16Array(rows * ROW);
  for (let i = 0; i < data.length; i++) data[i] = rnd() % 50000;
  const sources = Math.max(1, Math.floor(rows * 0.02));
  for (let k = 1; k <= sources; k++) {
    const src = (k * 7919) % rows;
    for (let c = Math.max(1, Math.round(100 / k)); c > 0; c--) {
      const row = rnd() % rows, at = rnd() % (ROW - W + 1);
      data.copyWithin(row * ROW + at, src * ROW, src * ROW + W);
    }
  }
  for (let j = 0; j < Math.floor(rows * 0.01); j++) {
    const from = rnd() % rows, to = rnd() % rows;
    data.copyWithin(to * ROW, from * ROW, from * ROW + ROW);
  }
  writeFileSync(path, new Uint8Array(data.buffer));
}

/** The sampled queries: planted sources first, then seeded random rows. */
function sampleRows(rows: number): number[] {
  const out = new Set<number>();
  for (let k = 1; out.size < SAMPLE / 2; k++) out.add((k * 7919) % rows);
  const rnd = xoshiro128(99);
  while (out.size < SAMPLE) out.add(rnd() % rows);
  return [...out];
}

/** The child: build both tables, scan rows [from, to), print JSON. */
function child(path: string, rows: number, queries: number, from: number, to: number): void {
  const fd = openSync(path, "r");
  const windows = new Uint16Array(queries * W);
  const head = new Uint16Array(W);
  for (let r = 0; r < rows; r++) {
    readSync(fd, new Uint8Array(head.buffer), 0, W * 2, r * ROW * 2);
    windows.set(head, r * W);
  }
  const rnd = xoshiro128(7);
  for (let i = rows * W; i < windows.length; i++) windows[i] = rnd() % 50000;
  let t = performance.now();
  const tw = buildWindowTable(windows, W, W);
  const tc = buildWindowTable(windows, W, K);
  const buildS = (performance.now() - t) / 1000;
  const chunkRows = 512;
  const buf = new Uint16Array(chunkRows * ROW);
  t = performance.now();
  for (let r = from; r < to; r += chunkRows) {
    const n = Math.min(chunkRows, to - r);
    readSync(fd, new Uint8Array(buf.buffer), 0, n * ROW * 2, r * ROW * 2);
    for (let i = 0; i < n; i++) {
      scanAll([tw, tc], buf, i * ROW, (i + 1) * ROW);
    }
  }
  const scanS = (performance.now() - t) / 1000;
  closeSync(fd);
  const cw = queryCounts(tw), cc = queryCounts(tc);
  const sample = sampleRows(rows);
  console.log(JSON.stringify({
    buildS,
    scanS,
    tokens: (to - from) * ROW,
    tableMB: (tw.bytes + tc.bytes) / 2 ** 20,
    queryTokensMB: windows.byteLength / 2 ** 20,
    rejected: tw.rejected + tc.rejected,
    window: sample.map((q) => cw[q]),
    context: sample.map((q) => cc[q]),
  }));
}

/**
 * Occurrences of the first `width` tokens of row q at any position of any of
 * `rows` rows of `row` tokens (brute force, for checking the counts).
 */
export function bruteForce(
  data: Uint16Array,
  row: number,
  rows: number,
  q: number,
  width: number,
): number {
  let n = 0;
  const base = q * row;
  for (let r = 0; r < rows; r++) {
    for (let p = r * row, end = r * row + row - width; p <= end; p++) {
      if (data[p] !== data[base]) continue;
      let t = 1;
      while (t < width && data[p + t] === data[base + t]) t++;
      if (t === width) n++;
    }
  }
  return n;
}

/** What a child measured, with its wall seconds and peak RSS. */
export interface ChildResult {
  buildS: number;
  scanS: number;
  tokens: number;
  tableMB: number;
  queryTokensMB: number;
  rejected: number;
  window: number[];
  context: number[];
  wallS: number;
  peakMB: number;
}

/**
 * Runs a bench module's child (`deno run -P=bench MODULE ARGS`) under
 * `/usr/bin/time -v`: its JSON line on stdout, with its wall seconds and
 * whole-process peak RSS (MB).
 */
export async function spawn(
  args: string[],
  module: string = import.meta.url,
): Promise<ChildResult> {
  const cmd = new Deno.Command("/usr/bin/time", {
    args: ["-v", Deno.execPath(), "run", "-P=bench", new URL(module).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const err = new TextDecoder().decode(out.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    err,
  );
  if (!out.success || !rss || !wall) throw new Error(`features child failed:\n${err.slice(-3000)}`);
  return {
    ...JSON.parse(new TextDecoder().decode(out.stdout)),
    peakMB: Number(rss[1]) / 1024,
    wallS: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
  };
}

/** Runs the benchmark; returns the measurements. */
export async function runFeaturesBench(): Promise<Record<string, number>> {
  const dir = Deno.env.get("BENCH_DIR") ?? "/tmp/bench-features";
  const rows = Number(Deno.env.get("BENCH_FEATURES_ROWS") ?? 20000);
  const queries = Math.max(rows, Number(Deno.env.get("BENCH_FEATURES_QUERIES") ?? 2_000_000));
  const procs = Number(Deno.env.get("BENCH_FEATURES_PROCS") ?? 1);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `stream-${rows}.bin`);
  if (!existsSync(path)) generate(path, rows, 21);
  const per = Math.ceil(rows / procs);
  const results = await Promise.all(
    Array.from({ length: procs }, (_, i) =>
      spawn([
        "--child",
        path,
        String(rows),
        String(queries),
        String(i * per),
        String(Math.min(rows, (i + 1) * per)),
      ])),
  );
  // brute force on the sample, over the whole stream
  const data = new Uint16Array(Deno.readFileSync(path).buffer);
  const sample = sampleRows(rows);
  for (const [name, width] of [["window", W], ["context", K]] as const) {
    sample.forEach((q, i) => {
      const got = results.reduce((s, r) => s + r[name][i], 0);
      const want = bruteForce(data, ROW, rows, q, width);
      if (got !== want) throw new Error(`row ${q} ${name}: counted ${got}, brute force ${want}`);
    });
  }
  const planted = sample.slice(0, SAMPLE / 2).map((_, i) =>
    results.reduce((s, r) => s + r.window[i], 0)
  );
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const scanS = Math.max(...results.map((r) => r.scanS));
  const perProc = tokens / procs / scanS;
  const r0 = results[0];
  // Pile: every token of every row is scanned by both tables
  const pileTokens = PILE_ROWS * ROW;
  const coreHours = pileTokens / perProc / 3600;
  // per width, for the Pile's 146M queries: ≤ 0.7 load → 2^28 slots × 20 B (keys, counts),
  // a 2^32-bit filter (512 MB) and 4 B per query
  const pileTableGB = 2 * (2 ** 28 * 20 + 2 ** 29 + PILE_ROWS * 4) / 2 ** 30;
  const pileQueryTokensGB = PILE_ROWS * W * 2 / 2 ** 30;
  const load = Deno.loadavg()[0].toFixed(1);
  console.error(
    `features: ${rows} rows × ${ROW} tokens, ${queries} queries (${rows} rows + decoys), ` +
      `${procs} process(es); brute force agrees on ${SAMPLE} sampled queries (planted ` +
      `windows occur ${planted.join(", ")} times), ${r0.rejected} hash matches rejected\n` +
      `  build ${r0.buildS.toFixed(1)} s, scan ${scanS.toFixed(1)} s: ` +
      `${(perProc / 1e6).toFixed(1)}M tokens/s per process (both widths), ` +
      `peak RSS ${r0.peakMB.toFixed(0)} MB (tables ${r0.tableMB.toFixed(0)} MB, query tokens ` +
      `${r0.queryTokensMB.toFixed(0)} MB), load ${load}\n` +
      `  Pile (146.4M rows × 2049 = ${(pileTokens / 1e9).toFixed(0)}B tokens): ` +
      `${coreHours.toFixed(1)} core-hours → ${(coreHours / 16).toFixed(2)} h on 16 cores, ` +
      `${(coreHours / 32 * 60).toFixed(0)} min per task of a 32-task array; tables ` +
      `${pileTableGB.toFixed(1)} GB + query tokens ${pileQueryTokensGB.toFixed(1)} GB per ` +
      `process (verifying), ÷ P with P hash partitions (P passes)`,
  );
  return {
    rows,
    queries,
    procs,
    tokensPerSecondPerProcess: Math.round(perProc),
    buildSeconds: r0.buildS,
    scanSeconds: scanS,
    peakRssMB: Math.round(Math.max(...results.map((r) => r.peakMB))),
    tableMB: Math.round(r0.tableMB),
    pileCoreHours: Number(coreHours.toFixed(2)),
    pileHoursOn16Cores: Number((coreHours / 16).toFixed(2)),
    pileTableGB: Number(pileTableGB.toFixed(1)),
    pileQueryTokensGB: Number(pileQueryTokensGB.toFixed(1)),
  };
}

if (import.meta.main && Deno.args[0] === "--child") {
  const [, path, rows, queries, from, to] = Deno.args;
  child(path, Number(rows), Number(queries), Number(from), Number(to));
}
