/**
 * `deno task bench store`: `deno task report` and `deno task export` (csv,
 * parquet, dataset) on a synthetic store of the paper's shape, side by side
 * with the disk: the sequential read of the same shard bytes (one 16 MiB
 * buffer, bench/store_io.ts) and, for the exports, the write of as many bytes
 * as they wrote. Each runs in its own process under `/usr/bin/time` (wall
 * time, peak RSS of the whole process); each line gives its ratio to the
 * read (and, for the exports, to read + write) and the load average.
 *
 * The store: the deduplicated suite's experiment (8 models × 7 steps) with
 * `sequences_per_step` = 1024 / scale (scale 32: 4,576,000 rows per final
 * checkpoint, 148.7M rows and 1.49 GB of shards in all; scale 8: 595M rows,
 * 5.9 GB; 1M-row shards as in experiments/pythia-deduped.yaml). Generated
 * under `BENCH_DIR` (default /tmp/bench-store) and kept for the next run;
 * `BENCH_CLEAN=1` deletes it afterwards. Exports are deleted after each is
 * measured.
 *
 * With BENCH_WRITERS=1 it also runs the Parquet writers side by side on the
 * same shapes (bench/parquet_writers.ts: the previous hyparquet-writer code
 * and DuckDB, the export's two writers before this one, per-checkpoint files and the
 * Hive dataset), each in its own process.
 *
 * Settings (environment): BENCH_STORE_SCALES (default 32; e.g. `32,8`),
 * BENCH_SKIP (any of report,csv,parquet,dataset), BENCH_COLD (1: evict the
 * store's files from the page cache, `dd iflag=nocache`, before the read and
 * before each command, so each reads from the disk; default: they read
 * whatever the page cache holds, the same for all of them).
 *
 * @module
 */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { loadExperiment } from "../engine/config/config.ts";
import { makePlan } from "../engine/plan/plan.ts";
import { makeManifest, openStore, writeJson } from "../engine/store/store.ts";
import { mix32 } from "../engine/random.ts";
import { checkpointKey } from "../engine/types.ts";
import { FINAL, memorizedRows, splitCounts } from "./import.ts";
import { filesUnder } from "./store_io.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Writes the scaled paper-size store (8 models × 7 steps) of the deduplicated suite. */
export async function generateStore(dir: string, sps: number): Promise<string> {
  const out = join(dir, `store-sps${sps}`);
  if (existsSync(join(out, "done.json"))) return out;
  const base = await loadExperiment(join(ROOT, "experiments", "pythia-deduped.yaml"));
  const exp = { ...base, output: out, suite: { ...base.suite, sequencesPerStep: sps } };
  const totalRows = FINAL * sps;
  const plan = makePlan(exp, totalRows);
  const fingerprints = new Map(
    exp.suite.models.flatMap((m) =>
      m.checkpoints.map((c) => [c.path, `bench-${m.name}-${c.step}`] as [string, string])
    ),
  );
  const store = openStore(out);
  await store.prepare(makeManifest(exp, "bench-data", fingerprints));
  await writeJson(join(out, "experiment.json"), exp);
  // Memorization per run: count ∝ the published one, scaled to the store's rows.
  const runs = exp.suite.models.flatMap((m, mi) =>
    m.checkpoints.map((c) => ({
      model: m.name,
      step: c.step,
      count: Math.round(splitCounts("deduped")[mi].count * (c.step / FINAL) * sps / 1024),
    }))
  );
  const mem = memorizedRows(runs, sps, 3);
  const index = new Map(runs.map((r, i) => [checkpointKey(r.model, r.step), i]));
  const t = performance.now();
  for (const job of plan.jobs) {
    const list = mem[index.get(checkpointKey(job.model, job.step))!];
    const n = job.rows.length;
    const matches = new Uint8Array(n), prefix = new Uint8Array(n), nll = new Float32Array(n);
    let j = 0;
    while (j < list.length && list[j] < job.rows[0]) j++;
    for (let i = 0; i < n; i++) {
      const r = job.rows[i];
      const h = mix32(r * 31 + job.step);
      if (j < list.length && list[j] === r) {
        j++;
        matches[i] = prefix[i] = 32;
        nll[i] = (h % 100) / 400;
      } else {
        prefix[i] = h % 24;
        matches[i] = prefix[i] + ((h >>> 8) % 8);
        nll[i] = 0.5 + ((h >>> 12) % 1000) / 200;
      }
    }
    await store.writeShard(job, { rows: job.rows, matches, prefix, nll });
  }
  await Deno.writeTextFile(join(out, "done.json"), "{}");
  console.error(
    `generated the store (${plan.jobs.length} shards) in ${
      ((performance.now() - t) / 1000).toFixed(0)
    } s`,
  );
  return out;
}

/** One measured process. */
interface Timed {
  seconds: number;
  peakMB: number;
  cpuSeconds: number;
  load: string;
  stdout: string;
}

const loadavg = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");

/** Runs `deno ARGS` under /usr/bin/time: wall seconds, CPU seconds, peak RSS (MB), load. */
async function timed(name: string, args: string[]): Promise<Timed> {
  const before = loadavg();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "BENCH %e %U %S %M", Deno.execPath(), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  const m = /BENCH ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
  if (!out.success || !m) throw new Error(`${name} failed:\n${err.slice(-3000)}`);
  return {
    seconds: Number(m[1]),
    cpuSeconds: Number(m[2]) + Number(m[3]),
    peakMB: Number(m[4]) / 1024,
    load: `${before} → ${loadavg()}`,
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** Drops a folder's files from the page cache (posix_fadvise DONTNEED through dd). */
async function evict(dir: string): Promise<void> {
  for (const path of await filesUnder(dir)) {
    await new Deno.Command("dd", {
      args: [`if=${path}`, "iflag=nocache", "count=0", "status=none"],
    })
      .output();
  }
}

async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const path of await filesUnder(dir)) n += (await Deno.stat(path)).size;
  return n;
}

/**
 * The bytes an export wrote under `dir` (then deleted) and the time to write
 * as many bytes to the same disk (bench/store_io.ts, fsynced, in its own process).
 */
async function writeBaseline(
  store: string,
  dir: string,
): Promise<{ written: number; write: Timed }> {
  const written = await bytesUnder(dir);
  await Deno.remove(dir, { recursive: true });
  const write = await timed("write", [
    "run",
    "-P=bench",
    "bench/store_io.ts",
    "write",
    join(store, "write-baseline.tmp"),
    String(written),
  ]);
  return { written, write };
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;

/** Runs the benchmark; returns the measurements. */
export async function runStoreBench(): Promise<Record<string, number>> {
  const dir = Deno.env.get("BENCH_DIR") ?? "/tmp/bench-store";
  const scales = (Deno.env.get("BENCH_STORE_SCALES") ?? "32").split(",").map(Number);
  const skip = new Set((Deno.env.get("BENCH_SKIP") ?? "").split(",").filter(Boolean));
  const cold = Deno.env.get("BENCH_COLD") === "1";
  await Deno.mkdir(dir, { recursive: true });
  const out: Record<string, number> = {};
  for (const scale of scales) {
    const sps = 1024 / scale;
    const store = await generateStore(dir, sps);
    const scores = join(store, "scores");
    const shardBytes = await bytesUnder(scores);
    const shards = (await filesUnder(scores)).length;
    const rows = (shardBytes - 64 * shards) / 10;
    const key = (what: string) => `${what}Scale${scale}`;
    console.log(
      `\n1/${scale} of the paper: ${(rows / 1e6).toFixed(1)}M rows, ${gb(shardBytes)} of shards ` +
        `in ${shards} files; each command ${
          cold ? "reads from the disk (store evicted from the page cache first)" : "after a read " +
            "(the store in the page cache as far as it fits)"
        }; ratios to the read just before it`,
    );
    const row = (what: string, t: Timed, ratio: string) =>
      console.log(
        `${what.padEnd(18)} ${t.seconds.toFixed(1).padStart(7)} s  ` +
          `(${t.cpuSeconds.toFixed(1).padStart(5)} CPU-s)  ${ratio.padEnd(40)} ` +
          `peak RSS ${t.peakMB.toFixed(0).padStart(5)} MB   load ${t.load}`,
      );
    const reads: number[] = [];
    const read = async (): Promise<number> => {
      if (cold) await evict(scores);
      const t = await timed("read", ["run", "-P=bench", "bench/store_io.ts", "read", scores]);
      row(`read shards`, t, `${(shardBytes / 1e9 / t.seconds).toFixed(2)} GB/s`);
      reads.push(t.seconds);
      return t.seconds;
    };
    const commands: [string, string[]][] = [
      ["report", ["report", store, "--partial"]],
      ["csv", ["export", store, "--format", "csv"]],
      ["parquet", ["export", store, "--format", "parquet"]],
      ["dataset", ["export", store, "--format", "dataset"]],
    ];
    for (const [what, args] of commands) {
      if (skip.has(what)) continue;
      const disk = await read();
      if (cold) await evict(scores);
      const t = await timed(what, ["run", "-P=run", "main.ts", ...args]);
      out[key(`${what}Seconds`)] = t.seconds;
      out[key(`${what}PeakMB`)] = t.peakMB;
      out[key(`${what}ReadRatio`)] = t.seconds / disk;
      if (what === "report") {
        row(what, t, `${(t.seconds / disk).toFixed(2)}× read`);
        continue;
      }
      const { written, write } = await writeBaseline(store, join(store, "exports"));
      out[key(`${what}Bytes`)] = written;
      out[key(`${what}WriteSeconds`)] = write.seconds;
      out[key(`${what}ReadWriteRatio`)] = t.seconds / (disk + write.seconds);
      row(
        `export ${what}`,
        t,
        `${(t.seconds / disk).toFixed(2)}× read, ` +
          `${(t.seconds / (disk + write.seconds)).toFixed(2)}× read + write`,
      );
      row(`  write ${gb(written)}`, write, "(the export's bytes, fsynced)");
    }
    if (Deno.env.get("BENCH_WRITERS") === "1") {
      for (const shape of ["parquet", "dataset"]) {
        for (const writer of ["hyparquet", "duckdb"]) {
          const disk = await read();
          if (cold) await evict(scores);
          const t = await timed(`${writer} ${shape}`, [
            "run",
            "-P=bench",
            "bench/parquet_writers.ts",
            writer,
            shape,
            store,
          ]);
          const { written, write } = await writeBaseline(store, join(store, "exports-bench"));
          const key2 = key(`${writer}${shape === "parquet" ? "File" : "Dataset"}`);
          out[`${key2}Seconds`] = t.seconds;
          out[`${key2}PeakMB`] = t.peakMB;
          out[`${key2}ReadWriteRatio`] = t.seconds / (disk + write.seconds);
          row(
            `${writer} ${shape}`,
            t,
            `${(t.seconds / disk).toFixed(2)}× read, ` +
              `${(t.seconds / (disk + write.seconds)).toFixed(2)}× read + write`,
          );
          row(`  write ${gb(written)}`, write, "(the files' bytes, fsynced)");
        }
      }
    }
    reads.sort((a, b) => a - b);
    const median = reads[reads.length >> 1];
    out[key("readSecondsMedian")] = median;
    printMedianRatios(out, key, commands.map(([what]) => what), median);
    out[key("shardBytes")] = shardBytes;
    out[key("rows")] = rows;
    if (Deno.env.get("BENCH_CLEAN") === "1") await Deno.remove(store, { recursive: true });
  }
  return out;
}

/**
 * Each command's ratio against the median read (+ its write), goal ≤ 3: the first cold read of a
 * run is often slower (0.4–0.7 GB/s against 1.4–2.7 after), which flatters the command after it.
 */
function printMedianRatios(
  out: Record<string, number>,
  key: (what: string) => string,
  commands: string[],
  median: number,
): void {
  const against = commands.flatMap((what) => {
    const seconds = out[key(`${what}Seconds`)];
    if (seconds === undefined) return [];
    const ratio = seconds / (median + (out[key(`${what}WriteSeconds`)] ?? 0));
    out[key(`${what}MedianRatio`)] = ratio;
    return [`${what} ${ratio.toFixed(2)}×${ratio > 3 ? " (over)" : ""}`];
  });
  if (!against.length) return;
  console.log(
    `against the median read (${median.toFixed(1)} s, + each export's write), goal ≤ 3: ` +
      against.join(", "),
  );
}
