import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadExperiment } from "../engine/config/config.ts";
import { computeFeatures } from "../tasks/features.ts";
import {
  allFeatures,
  FEATURE_COLUMNS,
  type MaskedHit,
  readRowFeatures,
  type RowFeatures,
} from "../engine/data/features/rows_file.ts";
import { countWindows } from "../engine/data/features/window_counts.ts";
import { UserError } from "../engine/errors.ts";
import { NANO_YAML, writeReducedExperiment } from "./fixtures/reduced_experiment.ts";
import { scoreAndReport } from "../tasks/experiment.ts";
import type { Summary } from "../reports/analysis/summary.ts";
import { exportScores } from "../tasks/export.ts";
import { parquetReadObjects } from "hyparquet";
import { NANO_K, NANO_L, nanoRows } from "./fixtures/nano_data.ts";

const quiet = { log: () => {} };

/** The record's column files. */
const FEATURE_FILES = FEATURE_COLUMNS.map(({ name, type }) => `${name}.${type}`);

/** The record's personal hits as an object (row → masked hits). */
function personalOf(f: RowFeatures): Record<string, MaskedHit[]> {
  return Object.fromEntries(Array.from(f.personal.rows, (r) => [String(r), f.personal.hits(r)]));
}

Deno.test("features step on the nano suite: exact counts, resumable by data shard, shard groups, masked personal data", async () => {
  const dir = await Deno.makeTempDir({ prefix: "features_task" });
  try {
    const exp = { ...(await loadExperiment(NANO_YAML)), output: dir };
    // two shard groups: the first leaves the rows file to the last
    const g0 = await computeFeatures(exp, { ...quiet, shardGroup: { index: 0, count: 2 } });
    assert.deepEqual([g0.scanned, g0.skipped, g0.rows], [3, 0, null]);
    const g1 = await computeFeatures(exp, { ...quiet, shardGroup: { index: 1, count: 2 } });
    assert.deepEqual([g1.scanned, g1.skipped], [2, 0]);
    assert.ok(g1.rows);
    const f = (await readRowFeatures(dir))!;
    const a = allFeatures(f);
    assert.equal(f.count, 2288);
    assert.equal(a.rows.length, 2288);
    assert.equal(f.shards, 5);
    assert.equal(f.tokens, 2288 * 65);
    assert.ok(f.seconds > 0);
    assert.equal(f.of, "text");
    // equal to the pure module's counts over every position of every row (itself brute-force checked)
    const { rowLength, tokens } = await nanoRows();
    const w = NANO_K + NANO_L;
    const windows = new Uint16Array(2288 * w);
    const segments: Uint16Array[] = [];
    for (let r = 0; r < 2288; r++) {
      windows.set(tokens.subarray(r * rowLength, r * rowLength + w), r * w);
      segments.push(tokens.subarray(r * rowLength, (r + 1) * rowLength));
    }
    assert.deepEqual(
      Array.from(a.window),
      Array.from(countWindows(windows, w, w, () => segments)),
    );
    assert.deepEqual(
      Array.from(a.context),
      Array.from(countWindows(windows, w, NANO_K, () => segments)),
    );
    assert.equal(a.window.reduce((s, v) => s + v, 0), 3698);
    assert.equal(a.step[2287], 142);
    // personal data: rows found, values masked only
    const personal = Object.values(personalOf(f));
    assert.ok(personal.length > 50, `${personal.length} rows with personal data`);
    const folder = join(dir, "features", f.key);
    const raw = await readFile(join(folder, "personal.jsonl"), "utf8");
    for (const hits of personal) for (const h of hits) assert.match(h.masked, /\*/);
    assert.ok(!/[A-Za-z0-9]{2,}@[a-z]/.test(raw), "no raw e-mail address in personal.jsonl");
    // resumable: one shard lost → only it is scanned again, same features
    await rm(join(folder, "rows.json"));
    await rm(join(folder, "counts-00002.bin"));
    const again = await computeFeatures(exp, quiet);
    assert.deepEqual([again.scanned, again.skipped], [1, 4]);
    const f2 = (await readRowFeatures(dir))!;
    assert.deepEqual(allFeatures(f2), a);
    assert.deepEqual(personalOf(f2), personalOf(f));
    // finished: nothing scanned
    assert.equal((await computeFeatures(exp, quiet)).scanned, 0);
    assert.deepEqual((await readdir(join(dir, "features"))).length, 1);
    assert.ok(existsSync(join(folder, "counts-00004.bin")));
    // changed data with the same row count starts afresh (the key holds the data's fingerprint)
    const data = join(dir, "data");
    await mkdir(data);
    const src = exp.data.path.replace(/\.(bin|idx)$/, "");
    await copyFile(`${src}.idx`, join(data, "train.idx"));
    const bin = await readFile(`${src}.bin`);
    bin[2] ^= 1; // a token of row 0
    await writeFile(join(data, "train.bin"), bin);
    const changed = { ...exp, data: { ...exp.data, path: join(data, "train") } };
    const fresh = await computeFeatures(changed, quiet);
    assert.deepEqual([fresh.scanned, fresh.skipped], [5, 0]);
    assert.equal((await readdir(join(dir, "features"))).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("features step in small chunks: the record equals the one-chunk record; a damaged counts file is exit 2 naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "features_chunks" });
  try {
    const base = await loadExperiment(NANO_YAML);
    const one = { ...base, output: join(dir, "one") };
    const small = { ...base, output: join(dir, "small") };
    await computeFeatures(one, quiet);
    // 300 rows at a time: 8 chunks of the 2,288 selected rows, shards of 512 rows read in two blocks
    await computeFeatures(small, { ...quiet, chunkRows: 300 });
    const a = (await readRowFeatures(one.output))!, b = (await readRowFeatures(small.output))!;
    assert.equal(b.count, 2288);
    assert.deepEqual(allFeatures(b), allFeatures(a));
    assert.deepEqual(personalOf(b), personalOf(a));
    assert.ok(b.personal.rows.length > 50);
    const { seconds: _a, ...metaA } = a, { seconds: _b, ...metaB } = b;
    assert.deepEqual(
      { ...metaB, chunk: null, personal: null },
      { ...metaA, chunk: null, personal: null },
    );
    const folder = (f: RowFeatures, out: string) => join(out, "features", f.key);
    for (let d = 0; d < 5; d++) {
      const name = `counts-0000${d}.bin`;
      const x = await readFile(join(folder(a, one.output), name));
      const y = await readFile(join(folder(b, small.output), name));
      assert.deepEqual(y.subarray(8), x.subarray(8), name);
    }
    // a counts file cut short: the assembly refuses it, naming the file
    const cut = join(folder(b, small.output), "counts-00003.bin");
    await rm(join(folder(b, small.output), "rows.json"));
    await writeFile(cut, (await readFile(cut)).subarray(0, 100));
    await assert.rejects(
      computeFeatures(small, quiet),
      (e: Error) => e instanceof UserError && e.message.startsWith(`${cut}: 100 bytes, expected`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task experiment computes the features; summary.json gives their cost; computed counts stand in for a missing data.duplicates", async () => {
  const dir = await Deno.makeTempDir({ prefix: "features_pipeline" });
  try {
    const path = await writeReducedExperiment(dir, {
      models: 2,
      steps: 2,
      rows: 256,
      shardSize: 64,
      batchSize: 32,
      output: join(dir, "out"),
    });
    const yaml = await readFile(path, "utf8");
    const quietRun = { progress: false as const, log: () => {} };
    // the user's data.duplicates wins
    const given = await loadExperiment(path);
    await scoreAndReport(given, quietRun);
    const s1 = JSON.parse(await readFile(join(dir, "out", "summary.json"), "utf8")) as Summary;
    assert.ok(s1.features);
    assert.equal(s1.features.duplicates, "data.duplicates");
    assert.equal(s1.features.rows, 256);
    assert.equal(s1.features.shards, 36); // 2288 data rows / 64
    assert.ok(s1.features.seconds > 0);
    // the combined and data-only predictors beside the single signal and the paper's binary one
    const p = s1.features.predictors!;
    assert.equal(p.rows, 256);
    assert.equal(p.memorized, s1.target.memorized);
    assert.equal(p.budgets.length, s1.recommendations.length);
    for (const [i, b] of p.budgets.entries()) {
      assert.equal(b.budget, s1.recommendations[i].budget);
      assert.deepEqual(b.dataOnly, p.budgets[0].dataOnly);
      assert.ok(b.compute <= b.budget);
      if (b.runs.length === 0) assert.deepEqual(b.combined, b.dataOnly);
      if (b.combined.precision !== null && b.combined.tp > 0) {
        assert.ok(b.combined.recall === b.combined.tp / p.memorized);
      }
    }
    // personal data: per kind, masked examples only; the page shows the section
    assert.ok(p.personal.length > 0);
    for (const k of p.personal) {
      assert.ok(k.memorized <= k.rows);
      for (const c of k.caught) assert.ok(c.caught <= k.memorized);
      for (const x of k.examples) assert.match(x.masked, /\*/);
    }
    const html = await readFile(join(dir, "out", "report.html"), "utf8");
    assert.match(html, /<section id="features">/);
    assert.match(html, /Personal data/);
    // what wins per budget, among every candidate, is the recommendation itself
    assert.match(html, /recommended \(wins, held out\)/);
    for (const [i, b] of p.budgets.entries()) {
      const m = s1.recommendations[i].measured;
      assert.equal(b.recommended?.recall ?? null, m?.recall ?? null);
      assert.equal(b.recommended?.signal ?? null, m?.signal ?? null);
    }
    // the features' measured seconds beside the scoring's (runs.jsonl), no FLOPs
    const cost = s1.features.cost;
    assert.equal(cost.featureSeconds, s1.features.seconds);
    assert.equal(cost.scoringSeconds, s1.run.seconds);
    assert.ok(cost.scoringSeconds! > 0);
    assert.equal(cost.shareOfScoring, cost.featureSeconds / cost.scoringSeconds!);
    assert.ok(html.includes(`of the ${cost.scoringSeconds!.toFixed(1)} s the scoring`));
    // without it, the computed window counts
    const noDup = yaml.split("\n").filter((l) => !/^\s*duplicates:/.test(l)).join("\n");
    await writeFile(path, noDup);
    const computed = await loadExperiment(path);
    assert.equal(computed.data.duplicates, undefined);
    await scoreAndReport(computed, quietRun);
    const s2 = JSON.parse(await readFile(join(dir, "out", "summary.json"), "utf8")) as Summary;
    assert.equal(s2.features?.duplicates, "computed");
    assert.ok(s2.rateByDuplicates && s2.rateByDuplicates.length > 0);
    const rows = s2.rateByDuplicates[0].bins.reduce((a, b) => a + b.rows, 0);
    assert.ok(rows > 0);
    // deno task export: the feature columns after the scores', CSV and Parquet
    const out = join(dir, "out");
    const f = allFeatures((await readRowFeatures(out))!);
    const withHits = new Set((await readRowFeatures(out))!.personal.rows);
    const csv = (await exportScores(out, "csv"))[0];
    const lines = (await readFile(csv, "utf8")).trim().split("\n");
    assert.equal(
      lines[0],
      "index,accuracy,window_count,context_count,seen_step,next_seen_step,row_copies," +
        "compression,distinct_share,personal_kinds",
    );
    for (const line of lines.slice(1)) {
      const cells = line.split(",");
      const i = f.rows.indexOf(Number(cells[0]));
      assert.deepEqual(cells.slice(2, 5).map(Number), [f.window[i], f.context[i], f.step[i]]);
    }
    const pq = (await exportScores(out, "parquet")).find((p) => p.endsWith(".parquet"))!;
    const back = await parquetReadObjects({ file: new Uint8Array(await readFile(pq)).buffer });
    assert.deepEqual(
      Object.keys(back[0]).slice(-8),
      [
        "window_count",
        "context_count",
        "seen_step",
        "next_seen_step",
        "row_copies",
        "compression",
        "distinct_share",
        "personal_kinds",
      ],
    );
    const personalRows = back.filter((r) => r.personal_kinds !== "");
    assert.equal(
      personalRows.length,
      back.filter((r) => withHits.has(Number(r.index))).length,
    );
    assert.ok(personalRows.length > 0);
    for (const r of personalRows) assert.match(String(r.personal_kinds), /^[a-z0-9;]+$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("features step in 3 shard groups, one on 2 threads: each group computes the parts of its chunks, the record equals the one-group record, a rerun skips finished parts, damaged pieces are exit 2 naming them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "features_groups" });
  try {
    const base = await loadExperiment(NANO_YAML);
    const one = { ...base, output: join(dir, "one") };
    const three = { ...base, output: join(dir, "three") };
    // 300 rows a chunk: 8 chunks of the 2,288 selected rows; 5 data shards
    const small = { ...quiet, chunkRows: 300 };
    await computeFeatures(one, small);
    const g = (index: number, extra = {}) =>
      computeFeatures(three, { ...small, ...extra, shardGroup: { index, count: 3 } });
    // stopped before it starts: nothing computed, nothing lost
    const stopped = await g(0, { signal: AbortSignal.abort() });
    assert.deepEqual([stopped.parts, stopped.scanned, stopped.rows], [0, 0, null]);
    const g0 = await g(0);
    const g1 = await g(1, { threads: 2 });
    const g2 = await g(2);
    // group I: the parts of chunks c ≡ I (mod 3), the data shards d ≡ I (mod 3); the last assembles
    assert.deepEqual([g0.parts, g0.scanned, g0.rows], [3, 2, null]);
    assert.deepEqual([g1.parts, g1.scanned, g1.rows], [3, 2, null]);
    assert.deepEqual([g2.parts, g2.scanned], [2, 1]);
    assert.ok(g2.rows);
    const a = (await readRowFeatures(one.output))!, b = (await readRowFeatures(three.output))!;
    assert.equal(b.count, 2288);
    assert.deepEqual(allFeatures(b), allFeatures(a));
    assert.deepEqual(personalOf(b), personalOf(a));
    const { seconds: _a, ...metaA } = a, { seconds: _b, ...metaB } = b;
    assert.deepEqual(
      { ...metaB, chunk: null, personal: null },
      { ...metaA, chunk: null, personal: null },
    );
    const folder = join(three.output, "features", b.key);
    for (const name of [...FEATURE_FILES, "personal.jsonl"]) {
      const x = await readFile(join(one.output, "features", a.key, name));
      assert.deepEqual(await readFile(join(folder, name)), x, name);
    }
    // a rerun without a group: only the lost part is computed again, nothing scanned
    const pieces = join(folder, "rows-300");
    await rm(join(folder, "rows.json"));
    await rm(join(pieces, "part-00004.bin"));
    const again = await computeFeatures(three, small);
    assert.deepEqual([again.parts, again.scanned], [1, 0]);
    assert.deepEqual(allFeatures((await readRowFeatures(three.output))!), allFeatures(a));
    // a hashes file or a part cut short: exit 2 naming it
    for (const name of ["hashes-00002.bin", "part-00005.bin"]) {
      const path = join(pieces, name), bytes = await readFile(path);
      await rm(join(folder, "rows.json"));
      await writeFile(path, bytes.subarray(0, 100));
      await assert.rejects(
        computeFeatures(three, small),
        (e: Error) => e instanceof UserError && e.message.startsWith(`${path}: `),
      );
      await writeFile(path, bytes);
      assert.ok((await computeFeatures(three, small)).rows);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
