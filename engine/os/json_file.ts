/**
 * JSON files of a run folder read as input from outside (they may have been
 * edited by hand, truncated or replaced): size and nesting depth are bounded
 * before the text is parsed, and the parsed value is validated against the
 * file's zod schema (the one source of what the file may hold). Every problem
 * is a {@link UserError} naming the file and the field, with at most a short
 * escaped excerpt of the input.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import type { z } from "zod";
import { excerpt, UserError } from "../errors.ts";
import { fsProblem } from "./fs_errors.ts";

/** Bounds of a JSON file read by {@link readJsonFile}. */
export interface JsonBounds {
  /** Largest file accepted, in bytes (default 64 MiB). */
  maxBytes?: number;
  /** Deepest nesting of lists and objects accepted (default 64). */
  maxDepth?: number;
}

/** Options of {@link readJsonFile}. */
export interface JsonFileOptions<T> extends JsonBounds {
  /** The file's schema; the value returned is its output. */
  schema: z.ZodType<T>;
  /** Builds the error of a damaged file from what is wrong (default: `<path>: <why>`). */
  damaged?: (why: string) => UserError;
}

/** Default bound on a run folder's JSON files (an import of every Pythia run is ~1 MB). */
export const JSON_MAX_BYTES = 64 << 20;
/** Default bound on their nesting (they nest 5 levels). */
export const JSON_MAX_DEPTH = 64;

/**
 * Reads, bounds, parses and validates a JSON file; null when it does not
 * exist. A file that cannot be read (permissions, a symlink loop, a folder)
 * is a UserError naming it.
 */
export async function readJsonFile<T>(path: string, opts: JsonFileOptions<T>): Promise<T | null> {
  const damaged = opts.damaged ?? ((why: string) => new UserError(`${path}: ${why}`));
  const maxBytes = opts.maxBytes ?? JSON_MAX_BYTES;
  let text: string;
  try {
    const info = await stat(path);
    if (info.isFile() && info.size > maxBytes) {
      throw damaged(`${info.size} bytes, more than the ${maxBytes} such a file can have`);
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw fsProblem(path, e, "JSON file");
  }
  return parseJsonText(text, path, { ...opts, damaged });
}

/** {@link readJsonFile} on text already read. */
export function parseJsonText<T>(text: string, path: string, opts: JsonFileOptions<T>): T {
  const damaged = opts.damaged ?? ((why: string) => new UserError(`${path}: ${why}`));
  const maxBytes = opts.maxBytes ?? JSON_MAX_BYTES;
  if (text.length > maxBytes) {
    throw damaged(`${text.length} characters, more than the ${maxBytes} such a file can have`);
  }
  const depth = nestingDepth(text, opts.maxDepth ?? JSON_MAX_DEPTH);
  if (depth !== null) {
    throw damaged(
      `nested more than ${opts.maxDepth ?? JSON_MAX_DEPTH} levels deep (at character ${depth})`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw damaged(`not valid JSON (${clip((e as Error).message)})`);
  }
  const parsed = opts.schema.safeParse(value);
  if (!parsed.success) throw damaged(schemaProblem(parsed.error, value));
  return parsed.data;
}

/** The first issue of a failed validation: the field's path, what is wrong, what it holds. */
export function schemaProblem(error: z.ZodError, value: unknown): string {
  const issue = error.issues[0];
  const field = fieldPath(issue.path);
  let held: unknown = value;
  for (const key of issue.path) {
    held = held !== null && typeof held === "object"
      ? (held as Record<PropertyKey, unknown>)[key as PropertyKey]
      : undefined;
  }
  const shown = held === undefined ? "" : ` (it holds ${excerpt(JSON.stringify(held) ?? "", 40)})`;
  const more = error.issues.length > 1 ? `; ${error.issues.length - 1} more problem(s)` : "";
  return `${field === "" ? "the top level" : `field ${field}`}: ${
    clip(issue.message)
  }${shown}${more}`;
}

/** `runs[0].scoredRows` of a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out;
}

function clip(message: string): string {
  return message.length > 160 ? `${message.slice(0, 160)}…` : message;
}

/**
 * The position where the nesting of `[` and `{` (outside strings) first
 * exceeds `max`, or null: checked before `JSON.parse`, so a file of a million
 * `[` never reaches a recursive validator.
 */
export function nestingDepth(text: string, max: number): number | null {
  let depth = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return i;
    } else if (c === 93 || c === 125) depth--;
  }
  return null;
}
