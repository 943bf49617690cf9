/**
 * `deno task import`: scores produced elsewhere become a run folder the
 * analysis reads like its own store (engine/import/imported.ts). Inputs
 * and their layouts are in engine/import/layout.ts.
 *
 * Rows scored. A run at step s scored, by default, what the reference
 * evaluated: the rows it has seen, `[0, s · sequences_per_step)` (a fully
 * trained Pythia run: 0 … 143000·1024). Memorized-row lists (the Hugging Face
 * splits) carry only the memorized rows, so every other row of that range
 * counts as scored and not memorized; per-row files (`index,accuracy`,
 * exports) count the rows they list. `rows` (`--rows A:B`) restricts every
 * run to `[A, B)` (the paper's heatmaps: 0:23552000).
 *
 * Bad input is a {@link UserError} naming the file and the row: an index
 * outside `[0, s · sequences_per_step)`, an index twice within one run (also
 * across its files), a file without an integer `index` column, a value that
 * does not parse. Nothing is written to the run folder before every file
 * has been read; a run folder holding the store of a scored experiment is
 * never touched.
 *
 * Memory: a memorized-row list costs 8 bytes per listed row while its run is
 * read (4 after); a per-row run holds one byte per row of `[0, s ·
 * sequences_per_step)` per column while it is read (nll: 4), then is
 * written in chunks and released.
 *
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { UserError } from "../errors.ts";
import { checkpointKey, checkpointLabel, type Experiment } from "../types.ts";
import { experimentSuite, findInputs, type InputFile } from "./layout.ts";
import {
  cellNumber,
  type ColumnChunkValues,
  fileDigest,
  forEachCsvRow,
  forEachRowGroup,
  gridMatches,
  indexValue,
  offGridMessage,
  parquetColumns,
} from "./read.ts";
import {
  CHUNK_ROWS,
  IMPORT_VERSION,
  type ImportedCheckpoint,
  importedCheckpointDir,
  type ImportedFile,
  type ImportRecord,
  writeChunk,
  writeMemorized,
} from "./imported.ts";
import { writeJson } from "../store/store.ts";
import { fsProblem } from "../os/fs_errors.ts";
import { claimOutputFolder } from "../os/run_marker.ts";
import { type RowList, sortDistinct } from "../rowset.ts";
import { ifNotFound } from "../os/fs_errors.ts";

/** Options of {@link importRuns}. */
export interface ImportOptions {
  /** Folders (searched recursively) or files. */
  inputs: string[];
  /** The experiment the scores belong to (suite, memorization settings). */
  experiment: Experiment;
  /** The run folder to create. */
  output: string;
  /** `--rows A:B`: restrict every run to `[start, end)`. */
  rows?: { start: number; end: number };
  /** Custom layout: a regular expression over the relative path with groups `model` and `step`. */
  pattern?: string;
  /**
   * `--suite`: the experiment's Pythia suite; Hugging Face splits of the other
   * suite are skipped (a whole download holds both) instead of refused.
   */
  suite?: "duped" | "deduped";
  /** The command line, recorded in `import.json`. */
  command: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

interface CheckpointFiles {
  model: string;
  step: number;
  files: InputFile[];
}

/** Groups files by run, in the experiment's model order then step; one kind per run. */
function groupRuns(files: InputFile[], exp: Experiment): CheckpointFiles[] {
  const byKey = new Map<string, CheckpointFiles>();
  for (const f of files) {
    const key = checkpointKey(f.model, f.step);
    const run = byKey.get(key) ?? { model: f.model, step: f.step, files: [] };
    const other = run.files.find((g) => (g.kind === "memorized") !== (f.kind === "memorized"));
    if (other) {
      throw new UserError(
        `${f.path}: run ${checkpointLabel(f)} mixes memorized-row lists (${
          f.kind === "memorized" ? f.path : other.path
        }) and per-row scores (${f.kind === "memorized" ? other.path : f.path}); import one kind`,
      );
    }
    run.files.push(f);
    byKey.set(key, run);
  }
  const order = new Map(exp.suite.models.map((m, i) => [m.name, i]));
  return [...byKey.values()].sort((a, b) =>
    (order.get(a.model) ?? 0) - (order.get(b.model) ?? 0) || a.step - b.step
  );
}

/** Reads a memorized-row list run: the sorted distinct rows of all its files. */
async function readMemorizedRun(
  run: CheckpointFiles,
  limit: number,
): Promise<{ rows: RowList; counts: number[] }> {
  const parts: { path: string; sorted: Uint32Array }[] = [];
  for (const f of run.files) {
    const columns = await parquetColumns(f.path);
    const type = columns.get("index");
    if (type !== "INT64" && type !== "INT32") {
      throw new UserError(
        `${f.path}: no integer "index" column (columns: ${
          [...columns].map(([n, t]) => `${n} ${t ?? "?"}`).join(", ")
        }); expected the Hugging Face schema index int64, tokens list<int64>`,
      );
    }
    const level = columns.has("__index_level_0__") ? ["__index_level_0__"] : [];
    let rows = new Uint32Array(1 << 16), n = 0;
    await forEachRowGroup(f.path, ["index", ...level], (v, first, count) => {
      if (n + count > rows.length) {
        const bigger = new Uint32Array(Math.max(rows.length * 2, n + count));
        bigger.set(rows.subarray(0, n));
        rows = bigger;
      }
      for (let i = 0; i < count; i++) {
        const r = indexValue(v.index[i], f.path, first + i, limit);
        if (level.length > 0 && Number(v.__index_level_0__[i]) !== r) {
          throw new UserError(
            `${f.path}: row ${first + i}: __index_level_0__ ${
              String(v.__index_level_0__[i])
            } differs from index ${r}`,
          );
        }
        rows[n++] = r;
      }
    }, { maxRows: limit });
    const unsorted = rows.subarray(0, n);
    const sorted = unsorted.slice();
    const dup = sortDistinct(sorted);
    if (dup >= 0) {
      const a = unsorted.indexOf(dup), b = unsorted.indexOf(dup, a + 1);
      throw new UserError(`${f.path}: rows ${a} and ${b}: index ${dup} appears twice`);
    }
    parts.push({ path: f.path, sorted });
  }
  // Merge the files' sorted rows, rejecting a row listed by two files.
  const total = parts.reduce((s, p) => s + p.sorted.length, 0);
  const out = new Uint32Array(total);
  const at = parts.map(() => 0);
  for (let k = 0; k < total; k++) {
    let best = -1;
    for (let p = 0; p < parts.length; p++) {
      if (at[p] >= parts[p].sorted.length) continue;
      const v = parts[p].sorted[at[p]];
      if (best >= 0 && v === parts[best].sorted[at[best]]) {
        throw new UserError(
          `${parts[p].path}: index ${v} appears twice in run ${checkpointLabel(run)} ` +
            `(also in ${parts[best].path})`,
        );
      }
      if (best < 0 || v < parts[best].sorted[at[best]]) best = p;
    }
    out[k] = parts[best].sorted[at[best]++];
  }
  return { rows: out, counts: parts.map((p) => p.sorted.length) };
}

const UNSET = 255;

/** Per-row columns of a run, dense over `[0, limit)` (matches 255 = row not given). */
interface Dense {
  matches: Uint8Array;
  prefix?: Uint8Array;
  nll?: Float32Array;
  counts: number[];
}

/** Reads a per-row run (reference CSVs, exports) into dense columns, checking every row. */
async function readScoredRun(run: CheckpointFiles, limit: number, l: number): Promise<Dense> {
  const d: Dense = { matches: new Uint8Array(limit).fill(UNSET), counts: [] };
  let columns: string | null = null;
  const put = (path: string, where: string, index: number) => {
    if (index >= limit) {
      throw new UserError(
        `${path}: ${where}: index ${index} is outside the scored rows [0, ${limit})`,
      );
    }
    if (d.matches[index] !== UNSET) {
      throw new UserError(
        `${path}: ${where}: index ${index} appears twice in run ${checkpointLabel(run)}`,
      );
    }
  };
  for (const f of run.files) {
    if (!f.path.endsWith(".parquet")) {
      if (columns !== null && columns !== "accuracy") {
        throw new UserError(`${f.path}: has columns accuracy, other files of the run ${columns}`);
      }
      columns = "accuracy";
      d.counts.push(
        await forEachCsvRow(f.path, (index, accuracy, line) => {
          put(f.path, `line ${line}`, index);
          const m = gridMatches(accuracy, l);
          if (m === null) throw new UserError(`${f.path}:${line}: ${offGridMessage(accuracy, l)}`);
          d.matches[index] = m;
        }),
      );
      continue;
    }
    const have = await parquetColumns(f.path);
    const type = have.get("index");
    if (type !== "INT64" && type !== "INT32") {
      throw new UserError(`${f.path}: no integer "index" column (columns: ${[...have.keys()]})`);
    }
    const score = have.has("matches") ? "matches" : have.has("accuracy") ? "accuracy" : null;
    if (!score) {
      throw new UserError(`${f.path}: needs a "matches" or "accuracy" column besides "index"`);
    }
    const wanted = ["index", score, ...["prefix", "nll"].filter((c) => have.has(c))];
    const sig = wanted.slice(2).join(",") || "accuracy";
    if (columns !== null && columns !== sig) {
      throw new UserError(`${f.path}: has columns ${sig}, other files of the run ${columns}`);
    }
    columns = sig;
    if (have.has("prefix")) d.prefix ??= new Uint8Array(limit);
    if (have.has("nll")) d.nll ??= new Float32Array(limit);
    d.counts.push(
      await forEachRowGroup(f.path, wanted, (v, first, count) => {
        for (let i = 0; i < count; i++) {
          const index = indexValue(v.index[i], f.path, first + i, limit);
          put(f.path, `row ${first + i}`, index);
          d.matches[index] = rowValues(f.path, first + i, v, i, score, l, d, index);
        }
      }, { maxRows: limit }),
    );
  }
  return d;
}

/**
 * Checks one Parquet record's scores against what they can mean at
 * continuation length `l` and stores prefix and nll; returns its matches.
 * matches and prefix are integers in [0, l] (a prefix of 1000 is refused, not
 * wrapped in a byte), prefix ≤ matches, an accuracy lies on the grid of 1/l,
 * nll is finite and ≥ 0; an empty cell is an error.
 */
function rowValues(
  path: string,
  record: number,
  v: ColumnChunkValues,
  i: number,
  score: "matches" | "accuracy",
  l: number,
  d: Dense,
  index: number,
): number {
  const where = `${path}: row ${record}`;
  const s = cellNumber(v[score][i], path, record, score);
  let m: number | null;
  if (score === "matches") {
    m = s;
    if (!(Number.isInteger(m) && m >= 0 && m <= l)) {
      throw new UserError(`${where}: matches ${s} is not an integer in [0, ${l}] (l = ${l})`);
    }
  } else {
    if (!(s >= 0 && s <= 1)) throw new UserError(`${where}: accuracy ${s} is not in [0, 1]`);
    m = gridMatches(s, l);
    if (m === null) throw new UserError(`${where}: ${offGridMessage(s, l)}`);
  }
  if (d.prefix) {
    const p = cellNumber(v.prefix[i], path, record, "prefix");
    if (!(Number.isInteger(p) && p >= 0 && p <= m)) {
      throw new UserError(
        `${where}: prefix ${p} is not an integer in [0, matches = ${m}] (the exact matched ` +
          `prefix of a continuation of l = ${l} tokens)`,
      );
    }
    d.prefix[index] = p;
  }
  if (d.nll) {
    const x = cellNumber(v.nll[i], path, record, "nll");
    if (!(Number.isFinite(x) && x >= 0)) {
      throw new UserError(`${where}: nll ${x} is not a finite number ≥ 0 (nats per token)`);
    }
    d.nll[index] = x;
  }
  return m;
}

/** Writes a per-row run's chunks and returns its scored ranges and memorized rows. */
async function writeDense(
  dir: string,
  d: Dense,
  lo: number,
  hi: number,
  l: number,
  key: string,
): Promise<
  { scored: number[]; size: number; memorized: RowList; chunks: number; matchCounts: number[] }
> {
  const scored: number[] = [];
  const matchCounts = new Array<number>(l + 1).fill(0);
  const mem: number[] = [];
  let chunks = 0, size = 0;
  let rows = new Uint32Array(CHUNK_ROWS), n = 0;
  const flush = async () => {
    if (n === 0) return;
    const part = rows.subarray(0, n);
    await writeChunk(
      dir,
      chunks++,
      {
        rows: part,
        matches: Uint8Array.from(part, (r) => d.matches[r]),
        ...(d.prefix ? { prefix: Uint8Array.from(part, (r) => d.prefix![r]) } : {}),
        ...(d.nll ? { nll: Float32Array.from(part, (r) => d.nll![r]) } : {}),
      },
      l,
      key,
    );
    rows = new Uint32Array(CHUNK_ROWS);
    n = 0;
  };
  for (let r = lo; r < hi; r++) {
    if (d.matches[r] === UNSET) continue;
    if (scored.length > 0 && scored[scored.length - 1] === r) scored[scored.length - 1] = r + 1;
    else scored.push(r, r + 1);
    size++;
    matchCounts[Math.min(d.matches[r], l)]++;
    if ((d.prefix ? d.prefix[r] : d.matches[r]) >= l) mem.push(r);
    rows[n++] = r;
    if (n === CHUNK_ROWS) await flush();
  }
  await flush();
  return { scored, size, memorized: Uint32Array.from(mem), chunks, matchCounts };
}

/** A file's size, or a UserError naming it (unreadable, a dangling link, a loop). */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (e) {
    throw fsProblem(path, e, "input file");
  }
}

/** Imports the inputs into a new run folder; returns what `import.json` records. */
export async function importRuns(opts: ImportOptions): Promise<ImportRecord> {
  const t0 = performance.now();
  const log = opts.log ?? ((line: string) => console.error(line));
  const exp = opts.experiment;
  const suite = checkImportTarget(opts);
  // Only a new, empty or run folder: a folder of the user's own is refused, never overwritten.
  await claimOutputFolder(opts.output, "run");
  const { files, ignored } = await findImportFiles(opts, suite, log);
  const runs = groupRuns(files, exp);
  await recoverImportFolder(opts.output, log);
  const staging = join(opts.output, `imported.partial-${Deno.pid}`);
  await rm(staging, { recursive: true, force: true });
  const records: ImportedCheckpoint[] = [];
  try {
    const bytesAll = runs.flatMap((r) => r.files).reduce((a, f) => a + fileSize(f.path), 0);
    let bytesDone = 0;
    for (const run of runs) {
      const t = performance.now();
      const rec = await importCheckpoint(run, staging, opts);
      records.push(rec);
      bytesDone += rec.files.reduce((a, f) => a + f.bytes, 0);
      const elapsed = (performance.now() - t0) / 1000;
      const rate = bytesDone / Math.max(elapsed, 1e-9);
      log(
        `imported ${records.length}/${runs.length} ${checkpointLabel(run)}: ` +
          `${run.files.length} file(s), ${rec.memorized} memorized of ${rec.scoredRows} scored ` +
          `rows (${((performance.now() - t) / 1000).toFixed(1)} s; ${
            (rate / 2 ** 20).toFixed(1)
          } ` +
          `MB/s, ETA ${Math.round((bytesAll - bytesDone) / rate)} s)`,
      );
    }
    const record: ImportRecord = {
      version: IMPORT_VERSION,
      command: opts.command,
      startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
      seconds: (performance.now() - t0) / 1000,
      experiment: exp.file,
      rows: opts.rows ?? null,
      runs: records,
      ignored,
      examples: [],
      examplesFrom: null,
    };
    await swapInImport(staging, opts.output, record);
    return record;
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Refuses an output folder holding a scored experiment's store, and a
 * `--suite` other than the experiment's; returns the experiment's suite.
 */
function checkImportTarget(opts: ImportOptions): "duped" | "deduped" {
  const exp = opts.experiment;
  if (existsSync(join(opts.output, "manifest.json"))) {
    throw new UserError(
      `${opts.output} holds the scores of a scored experiment (manifest.json); ` +
        "import into another folder (--output)",
    );
  }
  const suite = experimentSuite(exp);
  if (opts.suite !== undefined && opts.suite !== suite) {
    throw new UserError(
      `--suite ${opts.suite}: the experiment ${exp.file} is the ${suite} suite; give ` +
        `--experiment experiments/pythia-${opts.suite}.yaml, or --suite ${suite}`,
    );
  }
  return suite;
}

/** The importable input files (a UserError when there is none) and the ignored ones, noted. */
async function findImportFiles(
  opts: ImportOptions,
  suite: "duped" | "deduped",
  log: (line: string) => void,
): Promise<{ files: InputFile[]; ignored: string[] }> {
  const { files, ignored, otherSuite } = await findInputs(
    opts.inputs,
    opts.experiment,
    opts.pattern,
    { skipOtherSuite: opts.suite !== undefined },
  );
  if (otherSuite.length > 0) {
    log(
      `Note: ${otherSuite.length} file(s) of the other suite skipped (--suite ${suite}): ${
        otherSuite.slice(0, 3).join(", ")
      }${otherSuite.length > 3 ? ", …" : ""}`,
    );
  }
  if (files.length === 0) {
    throw new UserError(
      `no importable file under ${opts.inputs.join(", ")}: expected Hugging Face splits ` +
        "(<split>/0000.parquet or data/<split>-00000-of-0000N-<hash>.parquet), reference CSVs " +
        "(memorization_<model>_<step>/rank-<r>.csv), exports (<model>/step<step>.csv|parquet, " +
        "model=<m>/step=<s>/part-N.parquet) or --pattern with groups model and step" +
        (ignored.length > 0 ? `; found only ${ignored.slice(0, 3).join(", ")}` : ""),
    );
  }
  if (ignored.length > 0) {
    log(
      `Note: ${ignored.length} file(s) match no layout and are not imported: ${
        ignored.slice(0, 5).join(", ")
      }${ignored.length > 5 ? ", …" : ""}`,
    );
  }
  return { files, ignored };
}

/** A checkpoint's rows: what its step has seen, `[0, limit)`, and the part `[lo, hi)` imported. */
interface CheckpointRows {
  limit: number;
  lo: number;
  hi: number;
  /** Why these rows count as scored (the start of `rowsReason`). */
  seen: string;
  /** `--rows`'s part of `rowsReason` ("" without it). */
  restricted: string;
}

/** Reads one checkpoint's files and writes its part of the import into `staging`. */
async function importCheckpoint(
  run: CheckpointFiles,
  staging: string,
  opts: ImportOptions,
): Promise<ImportedCheckpoint> {
  const sps = opts.experiment.suite.sequencesPerStep;
  const limit = run.step * sps;
  const lo = Math.min(limit, opts.rows?.start ?? 0);
  const hi = Math.min(limit, opts.rows?.end ?? limit);
  const rows: CheckpointRows = {
    limit,
    lo,
    hi,
    seen: `[0, ${limit}) = every row step ${run.step} × ${sps} rows per step has seen`,
    restricted: opts.rows ? `, restricted by --rows to [${lo}, ${hi})` : "",
  };
  const digests: { bytes: number; sha256: string }[] = [];
  for (const f of run.files) digests.push(await fileDigest(f.path));
  const key = createHash("sha256").update(digests.map((d) => d.sha256).join("\n"))
    .digest("hex");
  const dir = importedCheckpointDir(staging, run.model, run.step);
  await mkdir(dir, { recursive: true });
  const l = opts.experiment.memorization.continuation;
  const p = run.files[0].kind === "memorized"
    ? await importMemorizedRun(run, dir, rows)
    : await importScoredRun(run, dir, rows, l, key);
  return {
    model: run.model,
    step: run.step,
    kind: p.kind,
    columns: p.columns,
    continuation: l,
    scored: p.scored,
    scoredRows: p.scoredRows,
    memorized: p.memorized,
    rowsReason: p.rowsReason,
    files: run.files.map((f, i): ImportedFile => ({
      path: f.path,
      layout: f.layout,
      ...digests[i],
      rows: p.counts[i],
    })),
    chunks: p.chunks,
    ...(p.matchCounts ? { matchCounts: p.matchCounts } : {}),
    key,
  };
}

/** What a run's kind decides of its {@link ImportedCheckpoint}, and the rows read per file. */
type ImportedPart =
  & Omit<ImportedCheckpoint, "model" | "step" | "continuation" | "files" | "key">
  & { counts: number[] };

/** A memorized-row list run: its listed rows within `[lo, hi)`; every other row is scored. */
async function importMemorizedRun(
  run: CheckpointFiles,
  dir: string,
  { limit, lo, hi, seen, restricted }: CheckpointRows,
): Promise<ImportedPart> {
  const read = await readMemorizedRun(run, limit);
  let a = 0, b = read.rows.length;
  while (a < b && read.rows[a] < lo) a++;
  while (b > a && read.rows[b - 1] >= hi) b--;
  const memorized = read.rows.slice(a, b);
  await writeMemorized(dir, memorized);
  return {
    kind: "memorized",
    columns: [],
    scored: hi > lo ? [lo, hi] : [],
    scoredRows: Math.max(0, hi - lo),
    memorized: memorized.length,
    rowsReason: `memorized-row list: rows ${seen}${restricted}; rows not listed count as ` +
      "scored and not memorized",
    chunks: 0,
    counts: read.counts,
  };
}

/** A per-row run: the rows its files list within `[lo, hi)`, written in chunks. */
async function importScoredRun(
  run: CheckpointFiles,
  dir: string,
  { limit, lo, hi, seen, restricted }: CheckpointRows,
  l: number,
  key: string,
): Promise<ImportedPart> {
  const dense = await readScoredRun(run, limit, l);
  const w = await writeDense(dir, dense, lo, hi, l, key);
  await writeMemorized(dir, w.memorized);
  return {
    kind: run.files[0].kind,
    columns: [
      "matches",
      ...(dense.prefix ? ["prefix" as const] : []),
      ...(dense.nll ? ["nll" as const] : []),
    ],
    scored: w.scored,
    scoredRows: w.size,
    memorized: w.memorized.length,
    rowsReason: `per-row scores: the rows the files list, within ${seen}${restricted}`,
    chunks: w.chunks,
    matchCounts: w.matchCounts,
    counts: dense.counts,
  };
}

/** Swaps the staged import in; the old import (if any) goes only once the new one is complete. */
async function swapInImport(staging: string, output: string, record: ImportRecord): Promise<void> {
  const final = join(output, "imported");
  const old = join(output, `imported.old-${Deno.pid}`);
  if (existsSync(final)) await rename(final, old);
  await rename(staging, final);
  await writeJson(join(output, "import.json"), record);
  await rm(old, { recursive: true, force: true });
}

/**
 * Cleans what a killed import left in `output` (the caller holds the folder's
 * lock, so no other import is running): staging folders `imported.partial-*`
 * are removed, and a previous import moved aside (`imported.old-*`) while its
 * successor was being swapped in is put back when `imported` is missing, else
 * removed.
 */
export async function recoverImportFolder(
  output: string,
  log: (line: string) => void,
): Promise<void> {
  const names = await readdir(output).catch(ifNotFound([] as string[]));
  for (const name of names.filter((n) => n.startsWith("imported.partial-"))) {
    await rm(join(output, name), { recursive: true, force: true });
    log(`Note: removed ${join(output, name)}, left by an import that was stopped.`);
  }
  const old = names.filter((n) => n.startsWith("imported.old-")).sort();
  if (old.length === 0) return;
  if (!names.includes("imported")) {
    await rename(join(output, old[old.length - 1]), join(output, "imported"));
    log(
      `Note: restored ${join(output, "imported")} from ${
        old[old.length - 1]
      }, moved aside by an import that was stopped.`,
    );
    old.pop();
  }
  for (const name of old) await rm(join(output, name), { recursive: true, force: true });
}
