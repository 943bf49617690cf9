/**
 * Exports a run folder's per-row scores, one file per checkpoint under
 * `<run>/exports/`: CSV in the reference format (`index,accuracy`, accuracy =
 * matches / l, as in the memorization CSVs published with the paper) or Parquet
 * with every column (index, accuracy, matches, prefix, nll).
 *
 * @module
 */
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readCheckpointScores, writeAtomic } from "./store.ts";
import type { CheckpointScores } from "../types.ts";

/** Export formats. */
export type ExportFormat = "csv" | "parquet";

/** The reference CSV (`index,accuracy`) of one checkpoint's scores. */
export function scoresToCsv(scores: CheckpointScores): string {
  const l = scores.continuation;
  const lines = ["index,accuracy"];
  for (let i = 0; i < scores.rows.length; i++) {
    lines.push(`${scores.rows[i]},${scores.matches[i] / l}`);
  }
  return lines.join("\n") + "\n";
}

/** A Parquet file of one checkpoint's scores (index, accuracy, matches, prefix, nll). */
export function scoresToParquet(scores: CheckpointScores): Uint8Array {
  const n = scores.rows.length;
  const l = scores.continuation;
  const columns = [
    { name: "index", data: Array.from(scores.rows), type: "INT64" as const },
    { name: "accuracy", data: Array.from(scores.matches, (m) => m / l), type: "DOUBLE" as const },
    { name: "matches", data: Array.from(scores.matches), type: "INT32" as const },
  ];
  if (scores.prefix) {
    columns.push({ name: "prefix", data: Array.from(scores.prefix), type: "INT32" as const });
  }
  const nll = scores.nll
    ? [{ name: "nll", data: Array.from(scores.nll), type: "FLOAT" as const }]
    : [];
  const buffer = parquetWriteBuffer({
    columnData: [
      ...columns.map((c) => ({ ...c, data: c.type === "INT64" ? c.data.map(BigInt) : c.data })),
      ...nll,
    ],
    rowGroupSize: Math.max(1, n),
  });
  return new Uint8Array(buffer);
}

/** Writes one export file per stored checkpoint; returns their paths. */
export async function exportScores(runDir: string, format: ExportFormat): Promise<string[]> {
  const written: string[] = [];
  for (const scores of await readCheckpointScores(runDir)) {
    const path = join(runDir, "exports", `${scores.model}-step${scores.step}.${format}`);
    await writeAtomic(path, format === "csv" ? scoresToCsv(scores) : scoresToParquet(scores));
    written.push(path);
  }
  return written;
}
