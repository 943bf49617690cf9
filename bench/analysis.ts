/**
 * Analysis scale benchmark: synthetic memorization of 8 models × 7 steps
 * (the paper's Pythia suite) over N rows, generated directly as row sets,
 * then the analysis core (predictor table, bootstrap, scaling fits,
 * recommendations). Reports seconds per stage, peak resident memory, and,
 * side by side, the confusion count of one predictor by row sets against a
 * per-row merge walk over typed columns (the ratio).
 *
 * N defaults to 10M rows; `BENCH_ROWS=146000000` runs the paper's size.
 * Run alone: `deno run -P=bench bench/analysis.ts`.
 *
 * @module
 */
import type { Experiment, ModelSpec } from "../engine/types.ts";
import { analyzeRuns } from "../reports/analysis/analysis.ts";
import { confusion } from "../reports/analysis/metrics.ts";
import { type AnalysedCheckpoint, analysedFrom } from "../reports/analysis/checkpoints.ts";
import { listBuilder, listHas, rangesOf, restrictList, type RowList } from "../engine/rowset.ts";
import { mix32, seededRandom } from "../engine/random.ts";

const MODELS: [string, number, number][] = [
  // name, total parameters, relative memorization (recall-like) at the last step
  ["70M", 70426624, 0.2],
  ["160M", 162322944, 0.29],
  ["410M", 405334016, 0.4],
  ["1B", 1011781632, 0.51],
  ["1.4B", 1414647808, 0.55],
  ["2.8B", 2775208960, 0.66],
  ["6.9B", 6857302016, 0.8],
  ["12B", 11846072320, 1],
];
const STEPS = [23000, 43000, 63000, 83000, 103000, 123000, 143000];
const GROUPS = 64;

/** A synthetic Pythia-like experiment over `rows` rows (all seen by the last step). */
export function syntheticExperiment(rows: number, bootstrap = 200): Experiment {
  const models: ModelSpec[] = MODELS.map(([name, parameters]) => ({
    name,
    parameters,
    checkpoints: STEPS.map((step) => ({ step, path: `/synthetic/${name}/${step}.onnx` })),
  }));
  return {
    name: "synthetic",
    file: "/synthetic.yaml",
    suite: { models, sequencesPerStep: rows / 143000, tokensPerSequence: 2048, endOfTextId: 0 },
    data: { format: "raw", path: "/synthetic.bin", rowLength: 2049, dtype: "uint16" },
    memorization: {
      offset: 0,
      context: 32,
      continuation: 32,
      mode: "extractable",
      suppressedTokens: [0],
    },
    rows: { kind: "seen" },
    target: { model: "12B", step: 143000 },
    devices: [{ device: "cpu", threads: 1 }],
    batchSize: 64,
    shardSize: 1 << 20,
    output: "/tmp/synthetic",
    analysis: {
      minPrecision: 0.9,
      budgets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
      bootstrap,
      seed: 0,
      folds: 5,
      recallOver: "all",
      recalls: [0.5, 0.8, 0.9, 0.95],
      parameterCount: "total",
    },
  };
}

/**
 * Synthetic runs as row sets: row r has a latent memorability z_r and a
 * group g_r; run (m, s) memorizes it when r < s·rowsPerStep and
 * z_r < 1.62%·q_m·(s/143000)^0.6·(1 + 0.3·u_{m,s,g}). Runs of one step share
 * their scored ranges.
 */
export function syntheticRuns(exp: Experiment, rows: number): AnalysedCheckpoint[] {
  const random = seededRandom(42);
  const seen = STEPS.map((step) => {
    const end = Math.min(rows, Math.floor(step * exp.suite.sequencesPerStep));
    return { b: rangesOf([[0, end]]), end };
  });
  const runs: {
    model: string;
    step: number;
    si: number;
    mem: ReturnType<typeof listBuilder>;
    t: Float64Array;
  }[] = [];
  for (const [model, , q] of MODELS) {
    STEPS.forEach((step, si) => {
      const t = new Float64Array(GROUPS);
      for (let g = 0; g < GROUPS; g++) {
        t[g] = 0.0162 * q * Math.pow(step / 143000, 0.6) * (1 + 0.3 * (2 * random() - 1));
      }
      runs.push({ model, step, si, mem: listBuilder(), t });
    });
  }
  // Per group: runs by threshold, highest first, so most rows stop after one comparison.
  const order = Array.from(
    { length: GROUPS },
    (_, g) => runs.map((_, i) => i).sort((a, b) => runs[b].t[g] - runs[a].t[g]),
  );
  for (let r = 0; r < rows; r++) {
    const h = mix32(r + 0x9e3779b9);
    const z = (h >>> 6) / 67108864;
    const g = h & (GROUPS - 1);
    for (const i of order[g]) {
      const run = runs[i];
      if (run.t[g] <= z) break;
      if (r < seen[run.si].end) run.mem.add(r);
    }
  }
  return runs.map((run) =>
    analysedFrom({
      model: run.model,
      step: run.step,
      continuation: 32,
      scored: seen[run.si].b,
      memorized: run.mem.done(),
    }, exp)
  );
}

/** Confusion by a merge walk over per-row columns (the baseline the row sets replace). */
function mergeWalk(pRows: Uint32Array, pMem: Uint8Array, tRows: Uint32Array, tMem: Uint8Array) {
  let i = 0, j = 0, tp = 0, fp = 0, fn = 0, n = 0;
  while (i < pRows.length && j < tRows.length) {
    if (pRows[i] < tRows[j]) i++;
    else if (pRows[i] > tRows[j]) j++;
    else {
      n++;
      if (pMem[i] && tMem[j]) tp++;
      else if (pMem[i]) fp++;
      else if (tMem[j]) fn++;
      i++;
      j++;
    }
  }
  return { tp, fp, fn, n };
}

/** Runs the benchmark; returns the measurements (seconds, MB, ratios). */
export function runAnalysisBench(opts: { rows?: number } = {}): Promise<Record<string, number>> {
  const rows = opts.rows ?? Number(Deno.env.get("BENCH_ROWS") ?? 10_000_000);
  let peak = Deno.memoryUsage().rss;
  const sample = () => (peak = Math.max(peak, Deno.memoryUsage().rss));
  const out: Record<string, number> = { rows, runs: MODELS.length * STEPS.length };
  const exp = syntheticExperiment(rows);
  let t = performance.now();
  const runs = syntheticRuns(exp, rows);
  out.generateSeconds = (performance.now() - t) / 1000;
  sample();
  const target = runs.find((r) => r.id.model === "12B" && r.id.step === 143000)!;
  t = performance.now();
  const core = analyzeRuns(exp, runs, target);
  out.analysisSeconds = (performance.now() - t) / 1000;
  sample();
  for (const [k, v] of Object.entries(core.seconds)) out[`${k}Seconds`] = v;
  out.patterns = core.patterns;
  out.targetRate = core.predictors.find((p) => p.model === "12B" && p.step === 143000)!.targetRate;
  const p69 = core.predictors.find((p) => p.model === "6.9B" && p.step === 143000)!;
  out.precision69B = p69.precision ?? NaN;
  out.recall69B = p69.recall ?? NaN;

  // Side by side: one predictor's confusion by row sets vs a per-row merge walk (first ≤ 4M rows).
  const n = Math.min(rows, 4_000_000);
  const pred = runs.find((r) => r.id.model === "6.9B" && r.id.step === 143000)!;
  const head = rangesOf([[0, n]]);
  const sub = (l: RowList) => restrictList(l, head);
  const cols = (run: AnalysedCheckpoint) => {
    const rs = Uint32Array.from({ length: n }, (_, i) => i);
    const mem = Uint8Array.from({ length: n }, (_, i) => (listHas(run.memorized, i) ? 1 : 0));
    return { rs, mem };
  };
  const pc = cols(pred), tc = cols(target);
  sample();
  t = performance.now();
  const walk = mergeWalk(pc.rs, pc.mem, tc.rs, tc.mem);
  const walkSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const bits = confusion(head, sub(pred.memorized), head, sub(target.memorized));
  const bitsSeconds = (performance.now() - t) / 1000;
  if (bits.tp !== walk.tp || bits.fp !== walk.fp || bits.fn !== walk.fn || bits.n !== walk.n) {
    throw new Error(`row-set and merge-walk confusions differ: ${JSON.stringify({ bits, walk })}`);
  }
  out.mergeWalkSeconds = walkSeconds;
  out.rowSetSeconds = bitsSeconds;
  out.rowSetSpeedup = walkSeconds / bitsSeconds;
  out.peakRssMB = peak / 2 ** 20;
  return Promise.resolve(out);
}

if (import.meta.main) {
  const result = await runAnalysisBench();
  for (const [k, v] of Object.entries(result)) console.log(`${k}: ${Number(v.toPrecision(4))}`);
}
