/**
 * The analysis input of a run folder made by `deno task import`: its runs
 * from `imported/`, the example rows' tokens recorded in `import.json`, and
 * the run section's facts (files, sizes, SHA-256, the rows taken as scored
 * and why) instead of model paths and devices. {@link attachExamples} fills
 * in the example tokens once after an import, from the target's files (the
 * Hugging Face `tokens` column: a row's first 64 tokens).
 *
 * @module
 */
import { join } from "node:path";
import { loadDecoder } from "../engine/data/tokenizer.ts";
import {
  checkImportAgainst,
  type ImportRecord,
  readImportedCheckpoints,
  readImportRecord,
} from "../engine/import/imported.ts";
import { forEachRowGroup, parquetColumns, parquetRecords } from "../engine/import/read.ts";
import { writeJson } from "../engine/store/store.ts";
import type { Experiment } from "../engine/types.ts";
import { isUserError } from "../engine/errors.ts";
import { type AnalysisInput, exampleRows } from "../reports/analysis/analysis.ts";
import { shellQuote } from "../engine/os/shell.ts";

/** Everything `analyze` needs from an import's run folder. */
export async function loadImportedInput(
  runDir: string,
  experiment: Experiment,
  record: ImportRecord,
  log: (line: string) => void,
): Promise<AnalysisInput> {
  checkImportAgainst(runDir, record, experiment);
  const runs = await readImportedCheckpoints(runDir, record);
  const m = experiment.memorization;
  const exampleTokens = new Map(
    record.examples.map((
      x,
    ) => [x.row, x.tokens.slice(m.offset, m.offset + m.context + m.continuation)]),
  );
  const decode = await loadDecoder(experiment.suite.tokenizer, log);
  return {
    experiment,
    runs,
    exampleTokens,
    decode,
    run: {
      command: `${record.command}\ndeno task report ${shellQuote(runDir)}`,
      startedAt: record.startedAt,
      seconds: null,
      rowsPerSecond: null,
      devices: [],
      models: [],
      data: { path: "", fingerprint: null },
      missingShards: [],
      imported: {
        files: record.runs.flatMap((r) =>
          r.files.map((f) => ({ model: r.model, step: r.step, ...f }))
        ),
        runs: record.runs.map((r) => ({
          model: r.model,
          step: r.step,
          kind: r.kind,
          scoredRows: r.scoredRows,
          memorized: r.memorized,
          rowsReason: r.rowsReason,
        })),
        rows: record.rows,
        ignored: record.ignored,
      },
    },
  };
}

/**
 * Reads the tokens of the report's example rows from the target's imported
 * Parquet files (when they have a `tokens` column) into `import.json`.
 * Returns the number of rows found.
 */
export async function attachExamples(
  runDir: string,
  experiment: Experiment,
  log: (line: string) => void = () => {},
): Promise<number> {
  const record = await readImportRecord(runDir);
  if (!record) return 0;
  const runs = await readImportedCheckpoints(runDir, record);
  const wanted = new Set(exampleRows({ experiment, runs }));
  const goal = experiment.target;
  const target = goal && record.runs.find((r) => r.model === goal.model && r.step === goal.step);
  const m = experiment.memorization;
  const window = m.offset + m.context + m.continuation;
  const examples: ImportRecord["examples"] = [];
  let from: string | null = null;
  for (const f of target?.files ?? []) {
    if (wanted.size === 0 || !f.path.endsWith(".parquet")) continue;
    if (!(await parquetColumns(f.path)).has("tokens")) continue;
    const records: number[] = [], rows: number[] = [];
    await forEachRowGroup(f.path, ["index"], (v, first, count) => {
      for (let i = 0; i < count; i++) {
        const r = Number(v.index[i]);
        if (wanted.has(r)) records.push(first + i), rows.push(r);
      }
    });
    let values: unknown[][];
    try {
      values = await parquetRecords(f.path, ["tokens"], records);
    } catch (e) {
      if (!isUserError(e)) throw e;
      log(`Note: no example text from ${f.path}: ${(e as Error).message}`);
      continue;
    }
    values.forEach((cells, i) => {
      // Only the window the report shows is kept (a row of millions of tokens is not).
      const list = (cells[0] ?? []) as ArrayLike<unknown>;
      const tokens = Array.from(
        { length: Math.min(list.length, window) },
        (_, j) => Number(list[j]),
      );
      if (tokens.some((t) => !(Number.isInteger(t) && t >= 0 && t < 2 ** 32))) {
        log(`Note: no example text for row ${rows[i]}: its tokens in ${f.path} are not token ids`);
        return;
      }
      examples.push({ row: rows[i], tokens });
      wanted.delete(rows[i]);
    });
    if (records.length > 0) from = from ? `${from}, ${f.path}` : f.path;
  }
  examples.sort((a, b) => a.row - b.row);
  await writeJson(join(runDir, "import.json"), { ...record, examples, examplesFrom: from });
  return examples.length;
}
