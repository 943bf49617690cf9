/**
 * Imports scores produced elsewhere, so the analysis can reproduce the
 * paper's tables without scoring: the reference per-row CSVs
 * (`index,accuracy`, accuracy = matches / l, one or many files per run), the
 * Parquet files `export` writes (index, accuracy and optionally matches,
 * prefix, nll), and lists of memorized row indices (CSV with one index per
 * line, or a Parquet file with one integer column).
 *
 * A memorized-row list carries no scores: the run is taken to have scored
 * every row it has seen (`[0, step · sequencesPerStep)`, or `rows` when
 * given), with matches = l on listed rows and 0 elsewhere, so distributions
 * and correlations of such runs are binary.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { parquetRead } from "hyparquet";
import type { CheckpointScores } from "../types.ts";
import { UserError } from "../errors.ts";

/** One file and the run it belongs to. */
export interface ImportFile {
  path: string;
  model: string;
  step: number;
  /** `scores` (index,accuracy) or `memorized` (row list); detected from the content when absent. */
  kind?: "scores" | "memorized";
}

/** What to import. */
export interface ImportSpec {
  /** Files with their runs. */
  files?: ImportFile[];
  /** A folder whose file names match `pattern` … */
  dir?: string;
  /** … a regular expression with named groups `model` and `step`, e.g. `memorization_(?<model>[^_]+)_(?<step>\d+)`. */
  pattern?: string;
  /** Continuation length l the accuracies are fractions of (paper: 32). */
  continuation: number;
  /** Rows per step, for the rows a memorized-row list's run has seen. */
  sequencesPerStep?: number;
  /** Rows scored by memorized-row lists' runs, when not every seen row: [start, end). */
  rows?: { start: number; end: number };
}

/** Growable typed column. */
class Column<T extends Uint32Array | Uint8Array | Float32Array> {
  length = 0;
  constructor(public data: T) {}
  push(v: number) {
    if (this.length === this.data.length) {
      const bigger = new (this.data.constructor as { new (n: number): T })(
        this.data.length * 2 + 1024,
      );
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  done(): T {
    return this.data.slice(0, this.length) as T;
  }
}

interface Parsed {
  rows: Uint32Array;
  matches?: Uint8Array;
  prefix?: Uint8Array;
  nll?: Float32Array;
}

/** Streams a CSV line by line: `index,accuracy` (header optional) or one index per line. */
async function parseCsv(path: string, l: number, kind: ImportFile["kind"]): Promise<Parsed> {
  const rows = new Column(new Uint32Array(1024));
  const matches = new Column(new Uint8Array(1024));
  let columns = 0;
  let lineNo = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const raw of lines) {
    lineNo++;
    const line = raw.trim();
    if (line === "") continue;
    const cells = line.split(",");
    if (columns === 0) {
      columns = kind === "memorized" ? 1 : kind === "scores" ? 2 : cells.length;
      if (!/^\d/.test(cells[0])) continue; // header
    }
    const index = Number(cells[0]);
    if (!Number.isInteger(index) || index < 0 || index >= 2 ** 32) {
      throw new UserError(
        `${path}:${lineNo}: row index "${cells[0]}" is not an integer in [0, 2^32)`,
      );
    }
    rows.push(index);
    if (columns >= 2) {
      const acc = Number(cells[1]);
      if (!(acc >= 0 && acc <= 1)) {
        throw new UserError(`${path}:${lineNo}: accuracy "${cells[1]}" is not a number in [0, 1]`);
      }
      matches.push(Math.round(acc * l));
    }
  }
  return columns >= 2 ? { rows: rows.done(), matches: matches.done() } : { rows: rows.done() };
}

/** Reads a Parquet file: index + accuracy (+ matches, prefix, nll) columns, or one integer column. */
async function parseParquet(path: string, l: number): Promise<Parsed> {
  const bytes = await readFile(path);
  const file = new Uint8Array(bytes).buffer as ArrayBuffer;
  const cols = new Map<string, ArrayLike<unknown>[]>();
  await parquetRead({
    file,
    onChunk: ({ columnName, columnData }) => {
      cols.set(columnName, [...(cols.get(columnName) ?? []), columnData]);
    },
  });
  const flat = (name: string) => cols.get(name)?.flatMap((c) => Array.from(c, Number));
  const names = [...cols.keys()];
  const index = flat("index") ?? (names.length === 1 ? flat(names[0]) : undefined);
  if (!index) {
    throw new UserError(
      `${path}: expected an "index" column (with "accuracy") or a single integer column of memorized rows; found ${
        names.join(", ")
      }`,
    );
  }
  const out: Parsed = { rows: Uint32Array.from(index) };
  const matches = flat("matches");
  const accuracy = flat("accuracy");
  if (matches) out.matches = Uint8Array.from(matches);
  else if (accuracy) out.matches = Uint8Array.from(accuracy, (a) => Math.round(a * l));
  const prefix = flat("prefix");
  if (prefix) out.prefix = Uint8Array.from(prefix);
  const nll = flat("nll");
  if (nll) out.nll = Float32Array.from(nll);
  return out;
}

/** Files named by the spec (explicit list, or a folder matched against the pattern). */
async function listFiles(spec: ImportSpec): Promise<ImportFile[]> {
  const files = [...(spec.files ?? [])];
  if (spec.dir) {
    if (!spec.pattern) {
      throw new UserError(`import: "dir" ${spec.dir} needs a "pattern" with groups model and step`);
    }
    const re = new RegExp(spec.pattern);
    for (const name of (await readdir(spec.dir)).sort()) {
      const m = re.exec(name);
      if (!m?.groups?.model || !m.groups.step) continue;
      files.push({
        path: join(spec.dir, name),
        model: m.groups.model,
        step: Number(m.groups.step),
      });
    }
  }
  if (files.length === 0) {
    throw new UserError(
      `import: no files (give "files", or "dir" with a "pattern" that matches file names)`,
    );
  }
  return files;
}

/** Sorts a run's rows ascending (with their columns) and rejects duplicate rows. */
function sortRun(p: Parsed, where: string): Parsed {
  const n = p.rows.length;
  let sorted = true;
  for (let i = 1; i < n; i++) if (p.rows[i] <= p.rows[i - 1]) sorted = false;
  if (sorted) return p;
  const order = Uint32Array.from({ length: n }, (_, i) => i).sort((a, b) => p.rows[a] - p.rows[b]);
  const pick = <T extends Uint32Array | Uint8Array | Float32Array>(a: T | undefined) =>
    a ? (a.map((_, i) => a[order[i]]) as T) : undefined;
  const out = {
    rows: pick(p.rows)!,
    matches: pick(p.matches),
    prefix: pick(p.prefix),
    nll: pick(p.nll),
  };
  for (let i = 1; i < n; i++) {
    if (out.rows[i] === out.rows[i - 1]) {
      throw new UserError(`${where}: row ${out.rows[i]} appears twice`);
    }
  }
  return out;
}

function concat<T extends Uint32Array | Uint8Array | Float32Array>(
  parts: (T | undefined)[],
): T | undefined {
  if (parts.some((p) => p === undefined)) return undefined;
  const n = parts.reduce((s, p) => s + p!.length, 0);
  const out = new (parts[0]!.constructor as { new (n: number): T })(n);
  let o = 0;
  for (const p of parts) {
    out.set(p!, o);
    o += p!.length;
  }
  return out;
}

/**
 * Imports scores from CSV or Parquet files into one {@link CheckpointScores}
 * per (model, step), rows ascending (several files of one run are merged).
 */
export async function importScores(spec: ImportSpec): Promise<CheckpointScores[]> {
  const l = spec.continuation;
  const byRun = new Map<string, { file: ImportFile; parts: Parsed[] }>();
  for (const file of await listFiles(spec)) {
    const parsed = file.path.endsWith(".parquet")
      ? await parseParquet(file.path, l)
      : await parseCsv(file.path, l, file.kind);
    let p = parsed;
    if (!parsed.matches || file.kind === "memorized") {
      p = memorizedToScores(parsed.rows, file, spec);
    }
    const key = `${file.model}\u0000${file.step}`;
    const entry = byRun.get(key) ?? { file, parts: [] };
    entry.parts.push(p);
    byRun.set(key, entry);
  }
  return [...byRun.values()].map(({ file, parts }) => {
    const merged = sortRun({
      rows: concat(parts.map((p) => p.rows))!,
      matches: concat(parts.map((p) => p.matches)),
      prefix: concat(parts.map((p) => p.prefix)),
      nll: concat(parts.map((p) => p.nll)),
    }, `${file.model} step ${file.step} (${basename(file.path)})`);
    const out: CheckpointScores = {
      model: file.model,
      step: file.step,
      continuation: l,
      rows: merged.rows,
      matches: merged.matches!,
    };
    if (merged.prefix) out.prefix = merged.prefix;
    if (merged.nll) out.nll = merged.nll;
    return out;
  });
}

/** A memorized-row list as scores over the rows the run scored (matches l on listed rows, else 0). */
function memorizedToScores(listed: Uint32Array, file: ImportFile, spec: ImportSpec): Parsed {
  const range = spec.rows ??
    (spec.sequencesPerStep ? { start: 0, end: file.step * spec.sequencesPerStep } : null);
  if (!range) {
    throw new UserError(
      `${file.path}: a memorized-row list needs the rows its run scored: give "sequencesPerStep" (rows seen = step × it) or "rows"`,
    );
  }
  const n = range.end - range.start;
  const rows = Uint32Array.from({ length: n }, (_, i) => range.start + i);
  const matches = new Uint8Array(n);
  for (const r of listed) {
    if (r < range.start || r >= range.end) {
      throw new UserError(
        `${file.path}: memorized row ${r} is outside the scored rows [${range.start}, ${range.end})`,
      );
    }
    matches[r - range.start] = spec.continuation;
  }
  return { rows, matches };
}
