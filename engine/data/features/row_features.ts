/**
 * The row features of the experiment's `features` step as values (pure: no
 * I/O): the `rows.json` record, its export columns and per-row lookups. The
 * file is read by rows_file.ts. Personal data is kept masked only.
 *
 * @module
 */
import { PERSONAL_KINDS, type PersonalKind } from "./personal.ts";

/** Version of `rows.json` (bumped when its meaning changes). */
export const FEATURES_VERSION = 1;

/** A masked personal-data hit of a row's decoded window (never the raw value). */
export interface MaskedHit {
  /** Kind of personal data. */
  kind: PersonalKind;
  /** Span [start, end) in the decoded window (UTF-16 code units). */
  start: number;
  /** End of the span. */
  end: number;
  /** The value masked by `redact` (never the raw value). */
  masked: string;
}

/** `features/<key>/rows.json`: the row features of the selected rows, rows ascending. */
export interface RowFeatures {
  /** {@link FEATURES_VERSION} of the writer. */
  version: number;
  /** The settings key (the folder name under `features/`). */
  key: string;
  /** The rows (the experiment's selection, ascending). */
  rows: number[];
  /** Occurrences of the scored window (context + continuation) at any position of the data. */
  window: number[];
  /** Occurrences of the context alone. */
  context: number[];
  /** Training step of the row (row / sequences_per_step). */
  step: number[];
  /** Step of the next selected row with the identical window (−1: none). */
  nextStep: number[];
  /** Selected rows with the identical window (1: the row only). */
  rowCopies: number[];
  /** Compressed / raw size of the window (text when decoded, else token bytes). */
  compression: number[];
  /** Distinct tokens / tokens of the window. */
  distinct: number[];
  /** What was compressed and searched for personal data. */
  of: "text" | "tokens";
  /** Per row with personal data (row as a string key): its masked hits. */
  personal: Record<string, MaskedHit[]>;
  /** Measured cost of the step, all shards and the assembly (seconds of wall time). */
  seconds: number;
  /** Data shards scanned. */
  shards: number;
  /** Tokens scanned over all shards. */
  tokens: number;
}

/** Per row of the data (index = row; 0 for rows not selected): the computed window count. */
export function computedDuplicates(f: RowFeatures): Uint32Array {
  const out = new Uint32Array((f.rows[f.rows.length - 1] ?? -1) + 1);
  f.rows.forEach((r, i) => out[r] = f.window[i]);
  return out;
}

/** A feature column of the export (`deno task export`): its name, Parquet type and value per row. */
export interface FeatureColumn {
  /** Column name. */
  name: string;
  /** Parquet physical type (`BYTE_ARRAY` holds UTF-8 text). */
  type: "INT32" | "DOUBLE" | "BYTE_ARRAY";
  /** The value of feature element `i` (−1, NaN or "" for a row without features: `i` < 0). */
  value(i: number): number | string;
}

/**
 * The feature columns of the export, in order: window and context counts,
 * the step that trains on the row and the next step with the identical
 * window, the rows with it, compression, distinct-token share and the kinds
 * of personal data in the window (`;`-separated, in report order; never values).
 */
export function featureColumns(f: RowFeatures): FeatureColumn[] {
  const int = (a: number[]) => (i: number) => (i < 0 ? -1 : a[i]);
  const dbl = (a: number[]) => (i: number) => (i < 0 ? NaN : a[i]);
  return [
    { name: "window_count", type: "INT32", value: int(f.window) },
    { name: "context_count", type: "INT32", value: int(f.context) },
    { name: "seen_step", type: "INT32", value: int(f.step) },
    { name: "next_seen_step", type: "INT32", value: int(f.nextStep) },
    { name: "row_copies", type: "INT32", value: int(f.rowCopies) },
    { name: "compression", type: "DOUBLE", value: dbl(f.compression) },
    { name: "distinct_share", type: "DOUBLE", value: dbl(f.distinct) },
    {
      name: "personal_kinds",
      type: "BYTE_ARRAY",
      value: (i) => (i < 0 ? "" : personalKinds(f, f.rows[i]).join(";")),
    },
  ];
}

/** The kinds of personal data in a row's window (report order, each once; [] for none). */
export function personalKinds(f: RowFeatures, row: number): PersonalKind[] {
  const hits = f.personal[String(row)] ?? [];
  return PERSONAL_KINDS.filter((k) => hits.some((h) => h.kind === k));
}

/** The element of `row` in the features (binary search over the ascending rows; −1: none). */
export function featureIndex(f: RowFeatures, row: number): number {
  let lo = 0, hi = f.rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = f.rows[mid];
    if (r === row) return mid;
    if (r < row) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
