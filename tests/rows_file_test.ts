import assert from "node:assert/strict";
import { readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  allFeatures,
  computedDuplicates,
  type FeatureChunk,
  FeatureCursor,
  type MaskedHit,
  personalKinds,
  readRowFeatures,
  sliceChunk,
  writeRowFeatures,
} from "../engine/data/features/rows_file.ts";
import { UserError } from "../engine/errors.ts";
import { scoredFromScores } from "../engine/store/scored_checkpoint.ts";
import { rateByComputedDuplicates, rateByDuplicates } from "../reports/analysis/figures.ts";

/** A record of n rows (rows 3i + 1) with values that make every column distinct. */
function columns(n: number): FeatureChunk {
  return {
    rows: Uint32Array.from({ length: n }, (_, i) => 3 * i + 1),
    window: Uint32Array.from({ length: n }, (_, i) => 1 + (i % 7)),
    context: Uint32Array.from({ length: n }, (_, i) => 2 + (i % 11)),
    step: Int32Array.from({ length: n }, (_, i) => Math.floor((3 * i + 1) / 16)),
    nextStep: Int32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 9 : -1)),
    rowCopies: Uint32Array.from({ length: n }, (_, i) => 1 + (i % 3)),
    compression: Float64Array.from({ length: n }, (_, i) => Math.round(1e6 * (0.3 + i / n)) / 1e6),
    distinct: Float64Array.from({ length: n }, (_, i) => (i % 64) / 64),
  };
}

const hit = (kind: MaskedHit["kind"], masked: string): MaskedHit => ({
  kind,
  start: 2,
  end: 9,
  masked,
});
const PERSONAL: [number, MaskedHit[]][] = [
  [4, [hit("email", "j***@example.org")]],
  [31, [hit("phone", "+*-***-****-**67"), hit("email", "a***@example.com")]],
  [2998, [hit("address", "**** M*** Street")]],
];
const META = { key: "k", of: "text" as const, seconds: 1.5, shards: 3, tokens: 4242 };

async function written(n = 1000): Promise<{ run: string; dir: string }> {
  const run = await Deno.makeTempDir({ prefix: "rows_file" });
  const dir = join(run, "features", "k");
  await Deno.mkdir(dir, { recursive: true });
  await writeRowFeatures(dir, META, [
    sliceChunk(columns(n), 0, 400),
    sliceChunk(columns(n), 400, n),
  ], PERSONAL);
  return { run, dir };
}

/** The UserError of reading a run folder's features (exit 2), its message checked. */
async function rejects(run: string, message: RegExp, chunkRows = 1 << 20): Promise<void> {
  await assert.rejects(async () => {
    const f = await readRowFeatures(run, { chunkRows });
    for (let k = 0; k < f!.chunks; k++) f!.chunk(k);
  }, (e) => e instanceof UserError && message.test(e.message));
}

Deno.test("row features file: typed columns and personal.jsonl read back equal, chunk by chunk, with the metadata", async () => {
  const { run, dir } = await written();
  try {
    const f = (await readRowFeatures(run, { chunkRows: 97 }))!;
    assert.equal(f.version, 2);
    assert.deepEqual(
      [f.key, f.of, f.seconds, f.shards, f.tokens, f.count],
      ["k", "text", 1.5, 3, 4242, 1000],
    );
    assert.equal(f.chunks, Math.ceil(1000 / 97));
    assert.deepEqual(allFeatures(f), columns(1000));
    // little-endian elements, count × width bytes
    const bytes = await readFile(join(dir, "compression.float64"));
    assert.equal(bytes.length, 8000);
    assert.equal(new DataView(bytes.buffer).getFloat64(8, true), columns(1000).compression[1]);
    // personal data: the compact index, the masked hits read back on demand
    assert.deepEqual(Array.from(f.personal.rows), [4, 31, 2998]);
    assert.deepEqual(f.personal.hits(31), PERSONAL[1][1]);
    assert.deepEqual(f.personal.hits(5), []);
    assert.deepEqual(personalKinds(f, 31), ["email", "phone"]);
    // a cursor across chunks, restarting when asked a lower row
    const at = new FeatureCursor(f);
    for (const row of [1, 2, 289, 292, 2998, 0, 97 * 3 + 1]) {
      const i = (row - 1) / 3;
      assert.equal(at.seek(row), Number.isInteger(i) && i < 1000, `row ${row}`);
      if (at.i >= 0) assert.equal(at.chunk!.window[at.i], 1 + (i % 7));
    }
    const dup = computedDuplicates(f);
    assert.equal(dup.length, 2999);
    assert.equal(dup[4], 2);
    // the report's rate by duplicates walks the chunks: the same bins as against the array, for
    // rows with and without features, past the last one, and a run with gaps
    const scored = (model: string, rows: number[]) =>
      scoredFromScores({
        model,
        step: 1,
        continuation: 4,
        rows: Uint32Array.from(rows),
        matches: Uint8Array.from(rows, (r) => (r * 7919) % 5),
      });
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
    const runs = [
      scored("all", range(0, 3100)),
      scored("gaps", [...range(100, 200), ...range(2990, 3050)]),
      scored("none", []),
    ];
    const walked = rateByComputedDuplicates(runs, f);
    assert.deepEqual(walked, runs.map((r) => rateByDuplicates(r, dup)));
    assert.ok(walked[0].bins.length >= 4);
    assert.equal(walked[0].bins.reduce((a, b) => a + b.rows, 0), 2999);
  } finally {
    await rm(run, { recursive: true });
  }
});

Deno.test("row features file: a version 1 rows.json (per-row JSON arrays) reads as null, so the step recomputes it", async () => {
  const run = await Deno.makeTempDir({ prefix: "rows_file_v1" });
  try {
    const dir = join(run, "features", "old");
    await Deno.mkdir(dir, { recursive: true });
    const v1 = { version: 1, key: "old", rows: [0, 1], window: [1, 1], personal: {} };
    await writeFile(join(dir, "rows.json"), JSON.stringify(v1));
    assert.equal(await readRowFeatures(run), null);
    // a large one (the Pile's was ~7 GB) is not parsed: its head says version 1
    const big = JSON.stringify({ ...v1, rows: Array.from({ length: 400_000 }, (_, i) => i) });
    assert.ok(big.length > 1 << 20);
    await writeFile(join(dir, "rows.json"), big);
    assert.equal(await readRowFeatures(run), null);
  } finally {
    await rm(run, { recursive: true });
  }
});

Deno.test("row features file: truncated or corrupted files are exit 2 naming the file", async (t) => {
  await t.step("a column file cut short", async () => {
    const { run, dir } = await written();
    try {
      await truncate(join(dir, "window.uint32"), 3996);
      await rejects(run, /window\.uint32: 3996 bytes, expected 1000 rows × 4 bytes = 4000/);
    } finally {
      await rm(run, { recursive: true });
    }
  });
  await t.step("a column file missing", async () => {
    const { run, dir } = await written();
    try {
      await rm(join(dir, "distinct.float64"));
      await rejects(run, /distinct\.float64: the column file is missing/);
    } finally {
      await rm(run, { recursive: true });
    }
  });
  await t.step("NaN where a share must be", async () => {
    const { run, dir } = await written();
    try {
      const path = join(dir, "distinct.float64");
      const bytes = await readFile(path);
      new DataView(bytes.buffer).setFloat64(8 * 500, NaN, true);
      await writeFile(path, bytes);
      await rejects(run, /distinct\.float64: element 500 \(row 1501\): NaN is not a share/, 97);
    } finally {
      await rm(run, { recursive: true });
    }
  });
  await t.step("rows out of order across a chunk boundary", async () => {
    const { run, dir } = await written();
    try {
      const path = join(dir, "rows.uint32");
      const bytes = await readFile(path);
      new DataView(bytes.buffer).setUint32(4 * 97, 5, true);
      await writeFile(path, bytes);
      await rejects(run, /rows\.uint32: element 97 \(row 5\): not above the row before it/, 97);
    } finally {
      await rm(run, { recursive: true });
    }
  });
  await t.step("metadata without a field, and a personal file cut short", async () => {
    const { run, dir } = await written();
    try {
      const meta = JSON.parse(await readFile(join(dir, "rows.json"), "utf8"));
      await writeFile(join(dir, "rows.json"), JSON.stringify({ ...meta, count: "many" }));
      await rejects(run, /rows\.json: field count/);
      await writeFile(join(dir, "rows.json"), JSON.stringify(meta));
      const lines = (await readFile(join(dir, "personal.jsonl"), "utf8")).split("\n");
      await writeFile(join(dir, "personal.jsonl"), lines.slice(0, 2).join("\n") + "\n");
      await rejects(run, /personal\.jsonl: 2 lines, rows\.json says 3/);
      await writeFile(join(dir, "personal.jsonl"), lines[0] + "\n" + lines[1].slice(0, 20));
      await rejects(run, /personal\.jsonl: the last line has no line ending/);
    } finally {
      await rm(run, { recursive: true });
    }
  });
});
