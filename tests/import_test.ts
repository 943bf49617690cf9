import assert from "node:assert/strict";
import { PAPER_PAIRS } from "./fixtures/paper.ts";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { main } from "../main.ts";
import type { Summary } from "../reports/analysis/summary.ts";
import { writeHfParquet, writeRankCsvs } from "./fixtures/hf_files.ts";

/** Runs the CLI in-process; returns the exit status and what it printed to stderr. */
async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = () => {};
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" "));
  try {
    return { code: await main(args), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A Pythia-like experiment file over few rows (`sps` rows per step). */
async function experimentFile(
  dir: string,
  opts: { suite?: "deduped" | "duped"; sps?: number; steps?: number[] } = {},
): Promise<string> {
  const suffix = (opts.suite ?? "deduped") === "deduped" ? "-deduped" : "";
  const sizes: [string, number][] = [
    ["70m", 70426624],
    ["160m", 162322944],
    ["410m", 405334016],
    ["1b", 1011781632],
    ["1.4b", 1414647808],
    ["2.8b", 2775208960],
    ["6.9b", 6857302016],
    ["12b", 11846072320],
  ];
  const steps = opts.steps ?? [23000, 143000];
  const models = sizes.map(([s, p]) =>
    `    - { name: pythia-${s}${suffix}, parameters: ${p}, path: "m/${s}/step{step}.onnx" }`
  ).join("\n");
  const text = `name: tiny${suffix}
suite:
  sequences_per_step: ${opts.sps ?? 1}
  tokens_per_sequence: 2048
  end_of_text_id: 0
  steps: [${steps.join(", ")}]
  models:
${models}
data: { format: raw, path: data/document.bin, row_length: 2049, dtype: uint16 }
memorization: { offset: 0, context: 32, continuation: 32, mode: extractable, suppressed_tokens: [0] }
rows: seen
target: { model: pythia-12b${suffix}, step: 143000 }
devices:
  - { device: cpu, workers: 1, threads: 1 }
batch_size: 8
shard_size: 1000
analysis:
  min_precision: 0.9
  budgets: [0.001, 0.01, 0.1, 0.3]
  bootstrap: 10
  seed: 0
  parameter_count: total
`;
  const path = join(dir, "tiny.yaml");
  await Deno.writeTextFile(path, text);
  return path;
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

async function summaryOf(out: string): Promise<Summary> {
  return JSON.parse(await Deno.readTextFile(join(out, "summary.json"))) as Summary;
}

function row(s: Summary, model: string, step: number) {
  const r = s.predictors.find((p) => p.model === model && p.step === step);
  assert.ok(r, `${model}@${step} in the predictor table`);
  return r;
}

Deno.test("import: both Hugging Face layouts (a split in two files, tokens column) give hand-computed confusion counts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_hf_" });
  const exp = await experimentFile(dir);
  const hf = join(dir, "pythia-memorized-evals");
  // Target 12B: rows 0..99 and 50000..50049 (150), split over two files of the split folder.
  await writeHfParquet(join(hf, "deduped.12b", "0000.parquet"), range(50000, 50050));
  await writeHfParquet(join(hf, "deduped.12b", "0001.parquet"), range(0, 100).reverse());
  // 70M (data layout, one file): 0..49 and 100..119 → tp 50, fp 20, fn 100.
  await writeHfParquet(
    join(hf, "data", "deduped.70m-00000-of-00001-3f9a2c.parquet"),
    [...range(100, 120), ...range(0, 50)],
  );
  // 1.4B (data layout, two files): 0..99 and 60000 → tp 100, fp 1, fn 50.
  await writeHfParquet(join(hf, "data", "deduped.1.4b-00000-of-00002-aa.parquet"), range(0, 60));
  await writeHfParquet(
    join(hf, "data", "deduped.1.4b-00001-of-00002-bb.parquet"),
    [...range(60, 100), 60000],
  );
  // 12B@23000 (split folder with a step): 0..79 and 20000, compared on rows [0, 23000).
  await writeHfParquet(join(hf, "deduped.12b.23000", "0000.parquet"), [...range(0, 80), 20000]);
  await Deno.writeTextFile(join(hf, "README.md"), "dataset card");
  const out = join(dir, "run");
  const r = await cli(["import", hf, "--experiment", exp, "--output", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /1 file\(s\) match no layout.*README\.md/);
  const s = await summaryOf(out);
  assert.equal(s.target.memorized, 150);
  assert.equal(s.target.rowsScored, 143000);
  const pick = (m: string, st: number) => {
    const p = row(s, m, st);
    return [p.tp, p.fp, p.fn, p.tn, p.rowsCompared];
  };
  assert.deepEqual(pick("pythia-70m-deduped", 143000), [50, 20, 100, 143000 - 170, 143000]);
  assert.deepEqual(pick("pythia-1.4b-deduped", 143000), [100, 1, 50, 143000 - 151, 143000]);
  assert.deepEqual(pick("pythia-12b-deduped", 23000), [80, 1, 20, 23000 - 101, 23000]);
  assert.equal(row(s, "pythia-12b-deduped", 23000).coverage, 23000 / 143000);
  // Memorized-row lists carry no per-row scores: no curves, distributions or correlations.
  assert.deepEqual(s.curves, []);
  assert.deepEqual(s.distributions, []);
  // The run section says what came from where; no model paths or devices.
  const imp = s.run.imported!;
  assert.equal(imp.files.length, 6);
  for (const f of imp.files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
  const f12 = imp.files.filter((f) => f.model === "pythia-12b-deduped" && f.step === 143000);
  assert.deepEqual(f12.map((f) => [f.layout, f.rows]), [
    ["hf-split-folder", 50],
    ["hf-split-folder", 100],
  ]);
  assert.equal(f12[0].bytes, (await Deno.stat(f12[0].path)).size);
  assert.deepEqual(s.run.models, []);
  assert.deepEqual(s.run.devices, []);
  assert.match(s.run.command, /^deno task import /);
  assert.match(imp.runs[0].rowsReason, /\[0, 143000\)/);
  // Example rows carry the tokens column (token ids: no tokenizer given).
  assert.ok(s.examples.length > 0);
  for (const x of s.examples) {
    assert.equal(x.tokens.length, 64);
    assert.equal(x.tokens[0], ((x.row * 7) % 50000) + 1);
    assert.ok(!x.caughtBy.some((p) => p.model === "pythia-12b-deduped" && p.step === 143000));
  }
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.match(html, /were not produced by this harness/);
  assert.match(html, /no per-row scores/);
  assert.match(html, /caught by \d+ of 3 predictors/);
  assert.doesNotMatch(html, /<h3>Models<\/h3>/);
  // `deno task report` re-renders the import from the run folder alone.
  await Deno.remove(join(out, "report.html"));
  assert.equal((await cli(["report", out])).code, 0);
  assert.ok((await Deno.stat(join(out, "report.html"))).isFile);
  // --rows restricts every run: on [0, 1000) the target memorized 100 rows.
  const out2 = join(dir, "run-rows");
  assert.equal(
    (await cli(["import", hf, "--experiment", exp, "--output", out2, "--rows", "0:1000"])).code,
    0,
  );
  const s2 = await summaryOf(out2);
  assert.equal(s2.target.memorized, 100);
  assert.equal(s2.target.rowsScored, 1000);
  assert.deepEqual(
    [row(s2, "pythia-70m-deduped", 143000)].map((p) => [p.tp, p.fp, p.fn, p.tn]),
    [[50, 20, 50, 880]],
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: reference per-rank CSVs and a custom pattern give per-row scores", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_csv_" });
  const exp = await experimentFile(dir, { sps: 1, steps: [143000] });
  const ref = join(dir, "reference");
  // Target: rows 0..1999 scored; memorized where row % 10 == 0 (200 rows).
  await writeRankCsvs(
    join(ref, "memorization_pythia-12b-deduped_143000"),
    2000,
    4,
    (r) => (r % 10 === 0 ? 32 : r % 17),
  );
  // 1B: memorized where row % 20 == 0 (100, all true positives) or row % 97 == 1 and not a
  // multiple of 10 (1, 98, …, 1941 are 21 rows; 680 and 1650 are multiples of 10: 19 false).
  await writeRankCsvs(
    join(ref, "memorization_pythia-1b-deduped_143000"),
    2000,
    3,
    (r) => (r % 20 === 0 || (r % 97 === 1 && r % 10 !== 0) ? 32 : r % 10 === 0 ? 31 : 0),
  );
  // 70M by a custom layout: scores/70m/step143000.txt, index,accuracy with a header.
  const custom = join(dir, "custom");
  await Deno.mkdir(join(custom, "70m"), { recursive: true });
  await Deno.writeTextFile(
    join(custom, "70m", "step143000.txt"),
    "index,accuracy\n" + range(0, 2000).map((r) => `${r},${r % 40 === 0 ? 1 : 0}`).join("\n"),
  );
  const out = join(dir, "run");
  const r = await cli(["import", ref, "--experiment", exp, "--output", out]);
  assert.equal(r.code, 0, r.err);
  const s = await summaryOf(out);
  assert.equal(s.target.rowsScored, 2000);
  assert.equal(s.target.memorized, 200);
  const p = row(s, "pythia-1b-deduped", 143000);
  assert.deepEqual([p.tp, p.fp, p.fn, p.tn], [100, 19, 100, 2000 - 219]);
  // Per-row scores give a thresholded score curve: score ≥ 31/32 catches every target row.
  const curve = s.curves.find((c) => c.model === "pythia-1b-deduped" && c.signal === "score")!;
  const at31 = curve.points.find((q) => q.threshold === 31 / 32)!;
  assert.equal(at31.recall, 1);
  assert.equal(s.distributions.length, 2);
  assert.equal(s.run.imported!.files.filter((f) => f.layout === "reference-csv").length, 7);

  const out2 = join(dir, "run-custom");
  const r2 = await cli([
    "import",
    custom,
    ref,
    "--experiment",
    exp,
    "--output",
    out2,
    "--pattern",
    String.raw`(?:^|/)(?<model>[^/]+)/step(?<step>\d+)\.txt$`,
  ]);
  assert.equal(r2.code, 0, r2.err);
  const p70 = row(await summaryOf(out2), "pythia-70m-deduped", 143000);
  assert.deepEqual([p70.tp, p70.fp, p70.fn, p70.tn], [50, 0, 150, 1800]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: the paper's 13 precision/recall pairs through deno task import", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_paper_" });
  const sps = 7;
  const steps = [23000, 43000, 63000, 83000, 103000, 123000, 143000];
  const exp = await experimentFile(dir, { sps, steps });
  const n = 143000 * sps;
  const positives = Math.round(0.0162 * n);
  const target = Array.from({ length: positives }, (_, j) => Math.floor((j * n) / positives));
  const isTarget = new Uint8Array(n);
  for (const r of target) isTarget[r] = 1;
  const hf = join(dir, "hf");
  await writeHfParquet(join(hf, "deduped.12b", "0000.parquet"), target, { tokens: 4 });
  for (const p of PAPER_PAIRS) {
    const seen = p.step * sps;
    const mem = target.filter((r) => r < seen);
    const tp = Math.round(p.recall * mem.length);
    const fp = Math.round(tp / p.precision - tp);
    const rows = new Set<number>();
    for (let j = 0; rows.size < tp; j++) rows.add(mem[(j * 7919) % mem.length]);
    for (let j = 0, k = 0; k < fp; j++) {
      const r = (j * 104729 + 13) % seen;
      if (!isTarget[r] && !rows.has(r)) rows.add(r), k++;
    }
    const split = p.step === 143000 ? `deduped.${p.size}` : `deduped.${p.size}.${p.step}`;
    await writeHfParquet(join(hf, "data", `${split}-00000-of-00001-x.parquet`), [...rows], {
      tokens: 4,
    });
  }
  const out = join(dir, "run");
  const r = await cli(["import", hf, "--experiment", exp, "--output", out]);
  assert.equal(r.code, 0, r.err);
  const s = await summaryOf(out);
  assert.equal(s.target.memorized, positives);
  assert.equal(s.target.rate.toFixed(4), "0.0162");
  for (const p of PAPER_PAIRS) {
    const q = row(s, `pythia-${p.size}-deduped`, p.step);
    assert.equal(Number(q.precision!.toFixed(3)), p.precision, `${p.size}@${p.step} precision`);
    assert.equal(Number(q.recall!.toFixed(3)), p.recall, `${p.size}@${p.step} recall`);
    assert.equal(q.rowsCompared, p.step * sps);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: every bad input is exit 2 naming the file (and the row)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_bad_" });
  const exp = await experimentFile(dir);
  let k = 0;
  const expectBad = async (
    write: (root: string) => Promise<string>,
    message: RegExp,
    extra: string[] = [],
  ) => {
    const root = join(dir, `case${k++}`);
    await Deno.mkdir(root, { recursive: true });
    const file = await write(root);
    const out = join(root, "run");
    const r = await cli(["import", root, "--experiment", exp, "--output", out, ...extra]);
    assert.equal(r.code, 2, `${message}: ${r.err}`);
    assert.ok(r.err.includes(file), `names ${file}: ${r.err}`);
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /\n\s+at /); // no stack trace
    let wrote = false;
    try {
      await Deno.stat(join(out, "import.json"));
      wrote = true;
    } catch { /* nothing written */ }
    assert.equal(wrote, false, "nothing written on bad input");
  };
  const hfFile = async (root: string, split: string, rows: number[], name = "0000.parquet") => {
    const path = join(root, split, name);
    await writeHfParquet(path, rows, { tokens: 2 });
    return path;
  };
  // An index outside the scored rows [0, 143000).
  await expectBad(
    (root) => hfFile(root, "deduped.12b", [5, 143000]),
    /row 1: index 143000 is outside/,
  );
  // An index twice within one file.
  await expectBad(
    (root) => hfFile(root, "deduped.12b", [5, 9, 5]),
    /rows 0 and 2: index 5 appears twice/,
  );
  // An index twice across the files of one run.
  await expectBad(async (root) => {
    await hfFile(root, "deduped.12b", [1, 2], "0000.parquet");
    return await hfFile(root, "deduped.12b", [3, 2], "0001.parquet");
  }, /index 2 appears twice in run pythia-12b-deduped@143000/);
  // No integer index column.
  await expectBad(async (root) => {
    const path = join(root, "deduped.12b", "0000.parquet");
    await Deno.mkdir(join(root, "deduped.12b"), { recursive: true });
    const bytes = parquetWriteBuffer({
      columnData: [{ name: "index", data: ["a", "b"], type: "STRING" }],
    });
    await Deno.writeFile(path, new Uint8Array(bytes));
    return path;
  }, /no integer "index" column/);
  // A split of the other suite.
  await expectBad(
    (root) => hfFile(root, "duped.70m", [1]),
    /duped suite but the experiment .* deduped/,
  );
  // A split whose step is not an integer.
  await expectBad((root) => hfFile(root, "deduped.12b.23k", [1]), /step "23k" is not an integer/);
  // Custom pattern: a step that does not parse, a model not in the experiment.
  const pattern = String.raw`(?<model>[^/]+)_(?<step>[^/_]+)\.csv$`;
  await expectBad(
    async (root) => {
      const path = join(root, "70m_final.csv");
      await Deno.writeTextFile(path, "0,1\n");
      return path;
    },
    /step "final" is not an integer/,
    ["--pattern", pattern],
  );
  await expectBad(
    async (root) => {
      const path = join(root, "13b_143000.csv");
      await Deno.writeTextFile(path, "0,1\n");
      return path;
    },
    /model "13b" is not in the experiment/,
    ["--pattern", pattern],
  );
  // Reference CSVs: a bad accuracy, an index twice across ranks.
  await expectBad(async (root) => {
    const path = join(root, "memorization_pythia-12b-deduped_143000", "rank-0.csv");
    await Deno.mkdir(join(root, "memorization_pythia-12b-deduped_143000"));
    await Deno.writeTextFile(path, "0,1\n1,1.5\n");
    return path;
  }, /:2: accuracy "1.5" is not a number in \[0, 1\]/);
  await expectBad(async (root) => {
    const d = join(root, "memorization_pythia-12b-deduped_143000");
    await Deno.mkdir(d);
    await Deno.writeTextFile(join(d, "rank-0.csv"), "0,1\n1,0\n");
    await Deno.writeTextFile(join(d, "rank-1.csv"), "2,1\n1,0.5\n");
    return join(d, "rank-1.csv");
  }, /line 2: index 1 appears twice/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: --tokenizer decodes the example rows' tokens column", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_tok_" });
  const exp = await experimentFile(dir, { steps: [143000] });
  const hf = join(dir, "hf");
  const ids = (r: number) => Array.from({ length: 64 }, (_, j) => BigInt(((r + j) % 400) + 10));
  await writeHfParquet(join(hf, "deduped.12b", "0000.parquet"), [3, 7, 11], { tokenIds: ids });
  await writeHfParquet(join(hf, "deduped.70m", "0000.parquet"), [7], { tokenIds: ids });
  const tokenizer = new URL("../experiments/nano/tokenizer.json", import.meta.url).pathname;
  const out = join(dir, "run");
  const r = await cli([
    "import",
    hf,
    "--experiment",
    exp,
    "--output",
    out,
    "--tokenizer",
    tokenizer,
  ]);
  assert.equal(r.code, 0, r.err);
  const s = await summaryOf(out);
  const { loadTokenizer } = await import("../engine/data/tokenizer.ts");
  const tok = await loadTokenizer(tokenizer);
  assert.deepEqual(s.examples.map((x) => x.row), [3, 11, 7]); // caught by none first, then by 70M
  for (const x of s.examples) {
    const t = ids(x.row).map(Number);
    assert.equal(x.context, tok.decode(t.slice(0, 32)));
    assert.equal(x.continuation, tok.decode(t.slice(32, 64)));
  }
  assert.deepEqual(s.examples[2].caughtBy, [{ model: "pythia-70m-deduped", step: 143000 }]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: --suite takes one suite's splits from a download holding both", async () => {
  const dir = await Deno.makeTempDir({ prefix: "import_suite_" });
  const exp = await experimentFile(dir, { steps: [143000] });
  const hf = join(dir, "hf");
  await writeHfParquet(join(hf, "deduped.12b", "0000.parquet"), [3, 7, 11]);
  await writeHfParquet(join(hf, "deduped.70m", "0000.parquet"), [7]);
  await writeHfParquet(join(hf, "duped.12b", "0000.parquet"), [1, 2]);
  // Without --suite, the other suite's split is refused, and the message says what to do.
  const refused = await cli(["import", hf, "--experiment", exp, "--output", join(dir, "a")]);
  assert.equal(refused.code, 2, refused.err);
  assert.match(refused.err, /duped\.12b.*give --suite deduped/s);
  // With it, only the deduped splits are imported, and the skipped files are named.
  const out = join(dir, "b");
  const r = await cli(["import", hf, "--experiment", exp, "--suite", "deduped", "--output", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /1 file\(s\) of the other suite skipped \(--suite deduped\): .*duped\.12b/);
  const s = await summaryOf(out);
  assert.deepEqual([...new Set(s.predictors.map((p) => p.model))].sort(), [
    "pythia-12b-deduped",
    "pythia-70m-deduped",
  ]);
  // The target's memorized rows are deduped.12b's 3, 7, 11 (not duped.12b's 1, 2).
  const p70 = row(s, "pythia-70m-deduped", 143000);
  assert.deepEqual([p70.tp, p70.fp, p70.fn], [1, 0, 2]);
  // --suite and an experiment of the other suite disagree; a bad value says the valid ones.
  const other = await cli([
    "import",
    hf,
    "--experiment",
    exp,
    "--suite",
    "duped",
    "--output",
    join(dir, "c"),
  ]);
  assert.equal(other.code, 2);
  assert.match(other.err, /--suite duped: the experiment .* is the deduped suite/);
  const bad = await cli(["import", hf, "--suite", "both", "--output", join(dir, "d")]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--suite both: expected duped or deduped/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("import: what a killed import left is cleaned up, and a swapped-out import put back", async () => {
  const { recoverImportFolder } = await import("../engine/import/import.ts");
  const dir = await Deno.makeTempDir({ prefix: "import_recover_" });
  // Killed while staging: the staging folder goes; the last import stays.
  await Deno.mkdir(join(dir, "imported.partial-4242", "m"), { recursive: true });
  await Deno.mkdir(join(dir, "imported"));
  const notes: string[] = [];
  await recoverImportFolder(dir, (l) => notes.push(l));
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["imported"]);
  assert.match(notes[0], /removed .*imported\.partial-4242, left by an import that was stopped/);
  // Killed between the two renames of the swap: the previous import is put back.
  await Deno.remove(join(dir, "imported"));
  await Deno.mkdir(join(dir, "imported.old-77", "kept"), { recursive: true });
  await recoverImportFolder(dir, (l) => notes.push(l));
  assert.ok((await Deno.stat(join(dir, "imported", "kept"))).isDirectory);
  assert.match(notes.at(-1)!, /restored .*imported from imported\.old-77/);
  // A leftover old copy beside a complete import is removed.
  await Deno.mkdir(join(dir, "imported.old-78"));
  await recoverImportFolder(dir, () => {});
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["imported"]);
  await Deno.remove(dir, { recursive: true });
});
