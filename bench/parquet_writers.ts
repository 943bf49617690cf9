/**
 * One Parquet writer of `deno task bench store` (BENCH_WRITERS=1) on the
 * export's real shapes, in its own process (so `/usr/bin/time` gives its own
 * peak RSS): `duckdb` is the export itself (tasks/export_parquet.ts);
 * `hyparquet` is the writer the export used before (hyparquet-writer, pure
 * JavaScript), kept here as it was for the comparison: row groups of
 * ROW_GROUP rows built as typed columns (index as BigInt64Array) and written
 * file by file. Shapes: `parquet` (one file per checkpoint, with accuracy)
 * and `dataset` (Hive parts of PART_ROWS rows, without accuracy), written
 * under `<run>/exports-bench/<writer>/`.
 *
 * parquet-wasm was measured with a script outside the project (it needs its
 * input as Arrow IPC, so apache-arrow as well): on one checkpoint of 4.58M
 * rows it took 3.2 s against hyparquet-writer's 3.6 s and DuckDB's 1.6 s
 * (docs/analysis.md).
 *
 * Usage: deno run -P=bench bench/parquet_writers.ts hyparquet|duckdb parquet|dataset RUN_DIR
 *
 * @module
 */
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileWriter, ParquetWriter } from "hyparquet-writer";
import { readStoredSources, type StoredSource } from "../engine/store/stored_checkpoints.ts";
import { chunkMemorized, type ScoreChunk } from "../engine/store/scored_checkpoint.ts";
import { modelSegment, PART_ROWS, ROW_GROUP } from "../tasks/export.ts";
import { ChunkCursor, ParquetWriterDuckDB } from "../tasks/export_parquet.ts";

interface Column {
  name: string;
  type: "INT64" | "DOUBLE" | "INT32" | "FLOAT" | "BOOLEAN";
}

/** hyparquet-writer, as tasks/export.ts used it: row groups of typed columns, a file per part. */
async function writeHyparquet(
  run: StoredSource,
  pathOf: (part: number) => string,
  partRows: number,
  accuracy: boolean,
): Promise<number> {
  const l = run.continuation;
  const columns: Column[] = [
    { name: "index", type: "INT64" },
    ...(accuracy ? [{ name: "accuracy", type: "DOUBLE" as const }] : []),
    { name: "matches", type: "INT32" },
    { name: "prefix", type: "INT32" },
    { name: "nll", type: "FLOAT" },
    { name: "memorized", type: "BOOLEAN" },
  ];
  let writer: ParquetWriter | null = null, path = "", part = 0, inPart = 0, total = 0;
  let buffer: ScoreChunk[] = [], buffered = 0;
  const close = async () => {
    if (!writer) return;
    await writer.finish();
    await rename(`${path}.tmp`, path);
    writer = null;
  };
  const flush = async (n: number) => {
    const rows = new BigInt64Array(n), matches = new Int32Array(n), memorized = new Array(n);
    const prefix = new Int32Array(n), nll = new Float32Array(n);
    let at = 0;
    while (at < n) {
      const c = buffer[0];
      const take = Math.min(n - at, c.rows.length);
      for (let i = 0; i < take; i++) {
        rows[at + i] = BigInt(c.rows[i]);
        matches[at + i] = c.matches[i];
        prefix[at + i] = c.prefix![i];
        nll[at + i] = c.nll![i];
        memorized[at + i] = chunkMemorized(c, i, l);
      }
      at += take;
      if (take === c.rows.length) buffer.shift();
      else {
        buffer[0] = {
          rows: c.rows.subarray(take),
          matches: c.matches.subarray(take),
          prefix: c.prefix!.subarray(take),
          nll: c.nll!.subarray(take),
        };
      }
    }
    buffered -= n;
    const data: Record<string, ArrayLike<unknown>> = {
      index: rows,
      matches,
      prefix,
      nll,
      memorized,
    };
    if (accuracy) data.accuracy = Float64Array.from(matches, (m) => m / l);
    if (writer && inPart + n > partRows) await close();
    if (!writer) {
      path = pathOf(part++);
      await mkdir(dirname(path), { recursive: true });
      writer = new ParquetWriter({
        writer: fileWriter(`${path}.tmp`),
        schema: [
          { name: "schema", num_children: columns.length },
          ...columns.map((c) => ({
            name: c.name,
            type: c.type,
            repetition_type: "REQUIRED" as const,
          })),
        ],
      });
      inPart = 0;
    }
    await writer.write({
      columnData: columns.map((c) => ({ name: c.name, data: data[c.name] as never })),
      rowGroupSize: n,
    });
    inPart += n;
    total += n;
  };
  for (let k = 0; k < run.source.chunks; k++) {
    const c = run.source.chunk(k);
    buffer.push(c);
    buffered += c.rows.length;
    while (buffered >= ROW_GROUP) await flush(ROW_GROUP);
    // The source's next chunk reuses this one's memory.
    buffer = buffer.map((b) =>
      b.rows.buffer !== c.rows.buffer ? b : {
        rows: b.rows.slice(),
        matches: b.matches.slice(),
        prefix: b.prefix!.slice(),
        nll: b.nll!.slice(),
      }
    );
  }
  if (buffered > 0) await flush(buffered);
  await close();
  return total;
}

async function writeDuckdb(
  writer: ParquetWriterDuckDB,
  run: StoredSource,
  pathOf: (part: number) => string,
  partRows: number,
  accuracy: boolean,
): Promise<number> {
  const cursor = new ChunkCursor(run.source);
  let total = 0;
  for (let part = 0; cursor.peek(); part++) {
    const path = pathOf(part);
    await mkdir(dirname(path), { recursive: true });
    total += await writer.write(cursor, {
      path: `${path}.tmp`,
      rows: partRows,
      l: run.continuation,
      accuracy,
      rowGroup: ROW_GROUP,
    });
    await rename(`${path}.tmp`, path);
  }
  return total;
}

if (import.meta.main) {
  const [which, shape, runDir] = Deno.args;
  const out = join(runDir, "exports-bench", which);
  await rm(out, { recursive: true, force: true });
  const duck = which === "duckdb" ? await ParquetWriterDuckDB.open() : null;
  let rows = 0;
  for (const run of await readStoredSources(runDir)) {
    const dataset = shape === "dataset";
    const pathOf = (part: number) =>
      dataset
        ? join(
          out,
          "dataset",
          `model=${modelSegment(run.model)}`,
          `step=${run.step}`,
          `part-${part}.parquet`,
        )
        : join(out, modelSegment(run.model), `step${run.step}.parquet`);
    const partRows = dataset ? PART_ROWS : Infinity;
    rows += duck
      ? await writeDuckdb(duck, run, pathOf, partRows, !dataset)
      : await writeHyparquet(run, pathOf, partRows, !dataset);
  }
  duck?.close();
  console.log(rows);
}
