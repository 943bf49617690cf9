/**
 * Problems found in an experiment file, as messages that say what is wrong
 * and what would be valid (from the schema's descriptions, {@link validAt}),
 * with "did you mean" suggestions for misspelt keys ({@link nearest}).
 *
 * @module
 */
import type { z } from "zod";
import { formatPath, validAt, validKeys, type YamlPath } from "./fields.ts";

/** One problem found in an experiment file, before it is located in the text. */
export interface Issue {
  /** Where the problem is (the value, or the key when `atKey`). */
  path: YamlPath;
  /** What is wrong and what would be valid (without the location). */
  message: string;
  /** Point at the key of the last path segment rather than at its value. */
  atKey?: boolean;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `word` (camelCase, case and small typos forgiven), or undefined. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) =>
    s.replace(/([a-z])([A-Z])/g, "$1_$2").replace(/-/g, "_").toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(norm(word), norm(c));
    if (dist < bestDistance) [best, bestDistance] = [c, dist];
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

/** Looks up the raw value at a path. */
export function valueAt(root: unknown, path: YamlPath): unknown {
  let node = root;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return node;
}

/** A short description of a raw YAML value for messages. */
export function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "empty (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "number" && !Number.isFinite(value)) {
    return Number.isNaN(value)
      ? "the number .nan"
      : `a number beyond the largest double (±1.8e308, read as ${value})`;
  }
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Explains a number written as a string (`70_000_000`, `"1024"`), or returns undefined. */
export function numberAsString(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const t = value.trim();
  if (/^[+-]?\d[\d_,]*(\.\d+)?([eE][+-]?\d+)?$/.test(t) && /[_,]/.test(t)) {
    const plain = t.replace(/[_,]/g, "");
    return `${JSON.stringify(value)} is a string, not a number: YAML 1.2 allows no ` +
      `underscores or commas in numbers; write ${plain}`;
  }
  if (/^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t)) {
    return `${JSON.stringify(value)} is a quoted string, not a number; write ${t} without quotes`;
  }
  return undefined;
}

type ZodIssue = z.core.$ZodIssue;

/**
 * The issues of the union option the value was evidently meant for: the one
 * whose problems lie deepest (no type mismatch, unknown or missing key at its
 * root), or undefined when two options fit equally (then the union's own
 * description says what is valid).
 */
function closestOption(issue: ZodIssue & { code: "invalid_union" }): ZodIssue[] | undefined {
  // A wrong shape at the option's root weighs more than unknown or missing keys.
  const misses = (issues: readonly ZodIssue[]) =>
    issues.reduce(
      (a, i) =>
        a + (i.code === "unrecognized_keys"
          ? i.keys.length
          : i.path.length === 0
          ? 10
          : i.code === "invalid_type" && i.path.length === 1
          ? 1
          : 0),
      0,
    );
  // Between equal misses, the option whose missing key a misspelt key is nearest to.
  const misspelt = (issues: readonly ZodIssue[]) => {
    const missing = issues.filter((i) => i.code === "invalid_type" && i.path.length === 1)
      .map((i) => String(i.path[0]));
    return issues.filter((i) => i.code === "unrecognized_keys")
      .flatMap((i) => i.keys).filter((k) => nearest(k, missing) !== undefined).length;
  };
  const scored = issue.errors
    .map((errors) => ({ errors, misses: misses(errors), misspelt: misspelt(errors) }))
    .sort((a, b) => a.misses - b.misses || b.misspelt - a.misspelt);
  if (scored.length === 0) return undefined;
  const [best, next] = scored;
  if (next && next.misses === best.misses && next.misspelt === best.misspelt) return undefined;
  return best.errors;
}

/** Flattens union issues into the issues of their closest option, with full paths. */
function flatten(
  issues: readonly ZodIssue[],
  base: YamlPath,
): { issue: ZodIssue; path: YamlPath }[] {
  const out: { issue: ZodIssue; path: YamlPath }[] = [];
  for (const issue of issues) {
    const path = [...base, ...(issue.path as YamlPath)];
    const option = issue.code === "invalid_union" ? closestOption(issue) : undefined;
    if (option) out.push(...flatten(option, path));
    else out.push({ issue, path });
  }
  return out;
}

/** Turns zod issues into {@link Issue}s with messages that say what is valid. */
export function fromZod(issues: readonly ZodIssue[], raw: unknown, base: YamlPath = []): Issue[] {
  const flat = flatten(issues, base);
  const out: Issue[] = [];
  // A misspelt key is reported once, as unknown (with the suggestion), not also as missing.
  const suggested = new Set<string>();
  for (const { issue, path } of flat) {
    if (issue.code !== "unrecognized_keys") continue;
    for (const key of issue.keys) {
      const guess = nearest(key, validKeys(path));
      if (guess) suggested.add(JSON.stringify([...path, guess]));
    }
  }
  for (const { issue, path } of flat) {
    if (issue.code === "unrecognized_keys") {
      const keys = validKeys(path);
      for (const key of issue.keys) {
        const guess = nearest(key, keys);
        const where = path.length === 0 ? "at the top level" : `in ${formatPath(path)}`;
        out.push({
          path: [...path, key],
          atKey: true,
          message: `unknown key "${key}" ${where}` +
            (guess ? `; did you mean "${guess}"?` : ";") + ` Valid keys: ${keys.join(", ")}.`,
        });
      }
      continue;
    }
    const value = valueAt(raw, path);
    if (value === undefined && suggested.has(JSON.stringify(path))) continue;
    const valid = validAt(path) ?? issue.message;
    const asString = numberAsString(value);
    let message: string;
    if (asString) message = `${asString} (expected ${valid})`;
    else if (value === undefined) message = `required but missing; expected ${valid}`;
    else if (typeof value === "number" && !Number.isFinite(value)) {
      message = `${describe(value)} is not valid; expected ${valid}`;
    } else if (issue.code === "too_big" && typeof value === "number") {
      message = `${value} is too large: at most ${Number(issue.maximum)} ` +
        `${issue.origin === "array" ? "entries " : ""}allowed; expected ${valid}`;
    } else if (issue.code === "too_big" && Array.isArray(value)) {
      message =
        `a list of ${value.length} entries is too long: at most ${Number(issue.maximum)}; ` +
        `expected ${valid}`;
    } else if (issue.code === "invalid_type") {
      message = `${describe(value)} has the wrong type; expected ${valid}`;
    } else message = `${describe(value)} is not valid; expected ${valid}`;
    out.push({ path, message: `${formatPath(path)}: ${message}` });
  }
  return out;
}
