/**
 * `deno task bench import`: wall time and peak RSS of `deno task import`
 * (import + analysis + report) on synthetic data of the full published size.
 * (`deno task report` and `deno task export` on a paper-shape store are
 * measured by `deno task bench store`, bench/store.ts.)
 *
 * Data (generated once under `BENCH_DIR`, default /tmp/bench-import, and
 * reused): the Hugging Face layout and schema (`data/<split>-0000k-of-00002-
 * <hash>.parquet`, columns index int64, tokens list<int64>,
 * __index_level_0__ int64) for both suites: 8 final splits each and the 12B
 * checkpoints at steps 23000 … 123000, with the published memorized counts
 * of the final duped models and the deduped 70m/160m/410m; the other deduped
 * finals are the duped counts × 0.86 (their ratio where both are known) and
 * a 12B checkpoint memorizes (step / 143000) × the final's count (estimates).
 * Memorization is nested across runs of a suite through a latent per row, as
 * in bench/analysis.ts. `BENCH_HF_SCALE` (default 1) divides rows and counts
 * (a quick smoke run). `BENCH_TOKENS` (default 4) sets the tokens per row
 * of the list column: only the example rows' tokens are ever read, so it
 * changes file sizes (hashing time), not what the import holds.
 *
 * Each measured command runs in its own process under `/usr/bin/time`, which
 * reports its peak RSS. Run: `deno task bench import`.
 *
 * @module
 */
import { mix32 } from "../engine/random.ts";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { listBuilder, type RowList } from "../engine/rowset.ts";
import { writeHfParquet } from "../tests/fixtures/hf_files.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The last step of every Pythia model. */
export const FINAL = 143000;
const CHECKPOINTS = [23000, 43000, 63000, 83000, 103000, 123000];
const SIZES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"];
const DUPED = [463953, 689673, 970341, 1256141, 1373722, 1675077, 2120969, 2382326];
const DEDUPED_KNOWN = [411448, 581195, 811039];
const GROUPS = 64;

/** Published (or, where marked, estimated) memorized counts of every split of a suite. */
export function splitCounts(
  suite: "duped" | "deduped",
): { split: string; step: number; count: number }[] {
  const finals = SIZES.map((_, i) =>
    suite === "duped" ? DUPED[i] : DEDUPED_KNOWN[i] ?? Math.round(DUPED[i] * 0.86)
  );
  return [
    ...SIZES.map((s, i) => ({ split: `${suite}.${s}`, step: FINAL, count: finals[i] })),
    ...CHECKPOINTS.map((step) => ({
      split: `${suite}.12b.${step}`,
      step,
      count: Math.round(finals[7] * step / FINAL),
    })),
  ];
}

/** Memorized rows of runs (seen = step × sps rows) with the given counts, nested through a latent. */
export function memorizedRows(
  runs: { step: number; count: number }[],
  sps: number,
  seed: number,
): RowList[] {
  const last = Math.max(...runs.map((r) => r.step)) * sps;
  const state = runs.map((r, i) => {
    const seen = r.step * sps;
    const q = r.count / seen;
    let s = mix32(seed * 1000 + i + 1);
    const t = Float64Array.from({ length: GROUPS }, () => {
      s = mix32(s + 0x9e3779b9);
      return q * (1 + 0.3 * (2 * (s / 2 ** 32) - 1));
    });
    return { seen, t, rows: listBuilder(r.count + (r.count >> 2)) };
  });
  const order = Array.from(
    { length: GROUPS },
    (_, g) => state.map((_, i) => i).sort((a, b) => state[b].t[g] - state[a].t[g]),
  );
  for (let r = 0; r < last; r++) {
    const h = mix32((r ^ seed * 0x27d4eb2d) + 0x9e3779b9);
    const z = (h >>> 6) / 67108864;
    const g = h & (GROUPS - 1);
    for (const i of order[g]) {
      const s = state[i];
      if (s.t[g] <= z) break;
      if (r < s.seen) s.rows.add(r);
    }
  }
  return state.map((s) => s.rows.done());
}

/** Writes both suites' splits in the HF `data/` layout (two files per split); returns the files. */
async function generateHf(
  dir: string,
  tokens: number,
  scale: number,
): Promise<Record<string, string[]>> {
  const marker = join(dir, "hf", "done.json");
  const files: Record<string, string[]> = { duped: [], deduped: [] };
  if (existsSync(marker)) return JSON.parse(await Deno.readTextFile(marker));
  for (const suite of ["deduped", "duped"] as const) {
    const splits = splitCounts(suite).map((x) => ({ ...x, count: Math.round(x.count / scale) }));
    const t = performance.now();
    const rows = memorizedRows(splits, 1024 / scale, suite === "duped" ? 1 : 2);
    for (let i = 0; i < splits.length; i++) {
      const half = rows[i].length >> 1;
      for (const [k, part] of [rows[i].subarray(0, half), rows[i].subarray(half)].entries()) {
        const path = join(
          dir,
          "hf",
          "data",
          `${splits[i].split}-0000${k}-of-00002-${(mix32(i * 7 + k) >>> 0).toString(16)}.parquet`,
        );
        await writeHfParquet(path, part, { tokens, rowGroupSize: 1 << 18 });
        files[suite].push(path);
      }
      console.error(`wrote ${splits[i].split}: ${rows[i].length} memorized rows`);
    }
    console.error(
      `generated the ${suite} splits in ${((performance.now() - t) / 1000).toFixed(0)} s`,
    );
  }
  await Deno.writeTextFile(marker, JSON.stringify(files));
  return files;
}

/** Runs `deno run -P=run main.ts ARGS` under /usr/bin/time: wall seconds and peak RSS (MB). */
async function measure(name: string, args: string[]): Promise<{ seconds: number; peakMB: number }> {
  const cmd = new Deno.Command("/usr/bin/time", {
    args: ["-f", "BENCH %e %M", Deno.execPath(), "run", "-P=run", join(ROOT, "main.ts"), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const err = new TextDecoder().decode(out.stderr);
  const m = /BENCH ([\d.]+) (\d+)/.exec(err);
  if (!out.success || !m) throw new Error(`${name} failed:\n${err.slice(-3000)}`);
  const r = { seconds: Number(m[1]), peakMB: Number(m[2]) / 1024 };
  console.error(`${name}: ${r.seconds.toFixed(1)} s, peak RSS ${r.peakMB.toFixed(0)} MB`);
  return r;
}

/** Runs the benchmark; returns the measurements. */
export async function runImportBench(): Promise<Record<string, number>> {
  const dir = Deno.env.get("BENCH_DIR") ?? "/tmp/bench-import";
  const tokens = Number(Deno.env.get("BENCH_TOKENS") ?? 4);
  const skip = new Set((Deno.env.get("BENCH_SKIP") ?? "").split(",").filter(Boolean));
  await Deno.mkdir(dir, { recursive: true });
  const out: Record<string, number> = { tokensPerRow: tokens };
  const load = () => Deno.loadavg()[0];
  out.loadBefore = load();
  const hfScale = Number(Deno.env.get("BENCH_HF_SCALE") ?? 1);
  out.hfScale = hfScale;
  const files = await generateHf(dir, tokens, hfScale);
  const experiment = (s: string) => join(ROOT, "experiments", `pythia-${s}.yaml`);
  const record = (key: string, r: { seconds: number; peakMB: number }) => {
    out[`${key}Seconds`] = r.seconds;
    out[`${key}PeakMB`] = r.peakMB;
  };
  if (!skip.has("heatmap")) {
    record(
      "heatmapImport",
      await measure("import, 14 runs, --rows 0:23552000", [
        "import",
        ...files.deduped,
        "--experiment",
        experiment("deduped"),
        "--rows",
        "0:23552000",
        "--output",
        join(dir, "run-heatmap"),
      ]),
    );
  }
  if (!skip.has("full")) {
    for (const suite of ["deduped", "duped"]) {
      record(
        `full${suite}Import`,
        await measure(`import, 14 ${suite} runs, every row`, [
          "import",
          ...files[suite],
          "--experiment",
          experiment(suite),
          "--output",
          join(dir, `run-${suite}`),
        ]),
      );
    }
  }
  out.loadAfter = load();
  return out;
}
