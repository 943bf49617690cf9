import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { ChunkCursor, packIndices, writeParquetFile } from "../tasks/export_parquet.ts";
import type { ScoreChunk, ScoreSource } from "../engine/store/scored_checkpoint.ts";

/** Scores as whole columns, served in chunks of the given sizes that share one buffer (as the store's do). */
interface Columns {
  rows: number[];
  matches: number[];
  prefix?: number[];
  nll: number[];
}

function chunked(c: Columns, sizes: number[]): ScoreSource {
  const max = Math.max(...sizes);
  const buf: ScoreChunk = {
    rows: new Uint32Array(max),
    matches: new Uint8Array(max),
    prefix: c.prefix ? new Uint8Array(max) : undefined,
    nll: new Float32Array(max),
  };
  const starts = sizes.map((_, k) => sizes.slice(0, k).reduce((a, b) => a + b, 0));
  return {
    prefix: !!c.prefix,
    nll: true,
    chunks: sizes.length,
    chunk(k) {
      const from = starts[k], n = sizes[k];
      buf.rows.fill(0xdead);
      buf.matches.fill(99);
      for (let i = 0; i < n; i++) {
        buf.rows[i] = c.rows[from + i];
        buf.matches[i] = c.matches[from + i];
        if (c.prefix) buf.prefix![i] = c.prefix[from + i];
        buf.nll![i] = c.nll[from + i];
      }
      return {
        rows: buf.rows.subarray(0, n),
        matches: buf.matches.subarray(0, n),
        prefix: buf.prefix?.subarray(0, n),
        nll: buf.nll!.subarray(0, n),
      };
    },
  };
}

/** 200 rows: gaps from 1 to past 2^31 (the index's delta encoding, its BigInt path included), matches past l, odd floats. */
function sample(withPrefix: boolean): Columns {
  const rows: number[] = [], matches: number[] = [], prefix: number[] = [], nll: number[] = [];
  let r = 7;
  for (let i = 0; i < 200; i++) {
    rows.push(r);
    r += i === 150 ? 2 ** 31 + 5 : i % 17 === 0 ? 1000 + i : 1;
    matches.push(i === 3 ? 40 : (i * 7) % 33);
    prefix.push(matches[i] === 32 ? 32 : i % 4);
    const odd = [NaN, -0, 0, Infinity, -Infinity, 1e-40];
    nll.push(Math.fround(i < odd.length ? odd[i] : i / 3));
  }
  return { rows, matches, prefix: withPrefix ? prefix : undefined, nll };
}

Deno.test("the Parquet writer: every value back exactly through hyparquet and DuckDB, row groups across chunks, statistics per group", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const withPrefix of [true, false]) {
      const c = sample(withPrefix);
      const path = join(dir, `s${withPrefix}.parquet`);
      const cursor = new ChunkCursor(chunked(c, [5, 13, 1, 60, 121]));
      const written = writeParquetFile(cursor, {
        path,
        rows: Infinity,
        l: 32,
        accuracy: true,
        rowGroup: 23,
      });
      assert.equal(written, 200);
      const file = new Uint8Array(await readFile(path)).buffer;
      const meta = parquetMetadata(file);
      assert.deepEqual(
        meta.schema.slice(1).map((s) => [s.name, s.type, s.repetition_type]),
        [
          ["index", "INT64", "REQUIRED"],
          ["accuracy", "DOUBLE", "REQUIRED"],
          ["matches", "INT32", "REQUIRED"],
          ...(withPrefix ? [["prefix", "INT32", "REQUIRED"]] : []),
          ["nll", "FLOAT", "REQUIRED"],
          ["memorized", "BOOLEAN", "REQUIRED"],
        ],
      );
      assert.deepEqual(
        meta.row_groups.map((g) => Number(g.num_rows)),
        [23, 23, 23, 23, 23, 23, 23, 23, 16],
      );
      const reach = c.prefix ?? c.matches;
      const back = await parquetReadObjects({ file });
      assert.equal(back.length, 200);
      back.forEach((o, i) => {
        assert.equal(o.index, BigInt(c.rows[i]), `index of row ${i}`);
        assert.equal(o.matches, c.matches[i]);
        assert.equal(o.accuracy, c.matches[i] / 32);
        if (withPrefix) assert.equal(o.prefix, c.prefix![i]);
        assert.ok(Object.is(o.nll, c.nll[i]), `nll of row ${i}: ${o.nll} for ${c.nll[i]}`);
        assert.equal(o.memorized, reach[i] >= 32);
      });
      // Statistics: each group's least and greatest value, NaN left out.
      meta.row_groups.forEach((g, k) => {
        const at = (name: string) =>
          g.columns.find((x) => x.meta_data!.path_in_schema[0] === name)!;
        const part = (a: number[]) => a.slice(23 * k, 23 * k + Number(g.num_rows));
        const st = (name: string) => at(name).meta_data!.statistics!;
        assert.equal(st("index").min_value, BigInt(Math.min(...part(c.rows))));
        assert.equal(st("index").max_value, BigInt(Math.max(...part(c.rows))));
        assert.equal(st("matches").min_value, Math.min(...part(c.matches)));
        assert.equal(st("matches").max_value, Math.max(...part(c.matches)));
        assert.equal(st("accuracy").max_value, Math.max(...part(c.matches)) / 32);
        const nll = part(c.nll).filter((v) => !Number.isNaN(v));
        assert.equal(st("nll").min_value, Math.min(...nll));
        assert.equal(st("nll").max_value, Math.max(...nll));
        const mem = part(reach).map((v) => v >= 32);
        assert.equal(st("memorized").max_value, mem.some((m) => m));
        assert.equal(st("memorized").min_value, mem.every((m) => m));
      });
      // DuckDB: the same rows, and a filter it can answer from the statistics.
      const { DuckDBInstance } = await import("@duckdb/node-api");
      const db = await DuckDBInstance.create(":memory:");
      const sql = await db.connect();
      try {
        const q = async (text: string) => (await sql.runAndReadAll(text)).getRows();
        const rows = await q(
          `SELECT "index", accuracy, matches, nll, memorized FROM read_parquet('${path}')`,
        );
        assert.deepEqual(
          rows.map((r) => [r[0], r[1], r[2], r[4]]),
          c.rows.map((x, i) => [BigInt(x), c.matches[i] / 32, c.matches[i], reach[i] >= 32]),
        );
        rows.forEach((r, i) =>
          assert.ok(Object.is(r[3], c.nll[i]) || (r[3] === 0 && c.nll[i] === 0))
        );
        assert.deepEqual(
          await q(`SELECT count(*) FROM read_parquet('${path}') WHERE "index" >= ${2 ** 31}`),
          [[49n]],
        );
      } finally {
        sql.closeSync();
        db.closeSync();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Parquet writer: a part of at most `rows` rows leaves the cursor on the next row; an empty source is a file of no rows", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = sample(true);
    const cursor = new ChunkCursor(chunked(c, [50, 150]));
    const o = { l: 32, accuracy: false, rowGroup: 30 };
    assert.equal(writeParquetFile(cursor, { ...o, path: join(dir, "a.parquet"), rows: 70 }), 70);
    assert.equal(writeParquetFile(cursor, { ...o, path: join(dir, "b.parquet"), rows: 70 }), 70);
    assert.equal(writeParquetFile(cursor, { ...o, path: join(dir, "c.parquet"), rows: 70 }), 60);
    const back = [];
    for (const name of ["a", "b", "c"]) {
      const file = new Uint8Array(await readFile(join(dir, `${name}.parquet`))).buffer;
      assert.deepEqual(
        parquetMetadata(file).schema.slice(1).map((s) => s.name),
        ["index", "matches", "prefix", "nll", "memorized"],
      );
      back.push(...(await parquetReadObjects({ file })).map((r) => Number(r.index)));
    }
    assert.deepEqual(back, c.rows);

    const empty = join(dir, "empty.parquet");
    const none = chunked({ rows: [], matches: [], prefix: [], nll: [] }, [0]);
    assert.equal(writeParquetFile(new ChunkCursor(none), { ...o, path: empty, rows: Infinity }), 0);
    const { DuckDBInstance } = await import("@duckdb/node-api");
    const db = await DuckDBInstance.create(":memory:");
    const sql = await db.connect();
    try {
      const described = await sql.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${empty}')`);
      assert.deepEqual(described.getRows().map((r) => r[0]), [
        "index",
        "matches",
        "prefix",
        "nll",
        "memorized",
      ]);
      const count = await sql.runAndReadAll(`SELECT count(*) FROM read_parquet('${empty}')`);
      assert.deepEqual(count.getRows(), [[0n]]);
    } finally {
      sql.closeSync();
      db.closeSync();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dictionary indices: one bit-packed run of the RLE/bit-packing hybrid, values LSB first", () => {
  // Width 3, values 0..7 then 1: two groups of 8 (header (2 << 1) | 1 = 5).
  const codes = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 1]);
  const out = packIndices(codes, codes.length, 3);
  assert.deepEqual(Array.from(out), [3, 5, 0b10001000, 0b11000110, 0b11111010, 1, 0, 0]);
  // 200 groups: the run header is a two-byte varint.
  assert.deepEqual(Array.from(packIndices(new Uint8Array(1600), 1600, 1).subarray(0, 3)), [
    1,
    145,
    3,
  ]);
});
