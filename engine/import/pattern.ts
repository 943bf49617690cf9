/**
 * `deno task import --pattern REGEX`: a regular expression from the command
 * line, run over every input path. JavaScript's regular expressions
 * backtrack, so a pattern such as `(a+)+b` takes exponential time on a
 * 40-character name, and a running match cannot be interrupted, not even by
 * SIGTERM. Two defences:
 *
 * - **refused up front** ({@link patternProblem}): backreferences, and
 *   quantified groups that contain another quantifier or an alternation (the
 *   shapes of catastrophic backtracking), with a message saying so; a static
 *   test cannot tell every slow pattern, but it catches the exponential ones
 *   before anything runs, in any process;
 * - **a time budget** ({@link matchPaths}): the paths are matched in a worker
 *   thread while the main thread waits with a timer, so a pattern that is
 *   still slow (polynomial backtracking on long paths) ends in an error after
 *   {@link PATTERN_BUDGET_MS}, and a stop signal is handled meanwhile.
 *
 * @module
 */
import { excerpt, UserError } from "../errors.ts";

/** Time the matching of all paths may take. */
export const PATTERN_BUDGET_MS = 10_000;

interface Group {
  quantified: boolean;
  alternation: boolean;
}

/** The largest repeat count of the quantifier at `i` (0 when there is none), and its length. */
function quantifierAt(source: string, i: number): { max: number; length: number } {
  const c = source[i];
  if (c === "*" || c === "+") return { max: Infinity, length: 1 };
  if (c === "?") return { max: 1, length: 1 };
  if (c === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i, i + 40));
    if (m) {
      const max = m[2] === undefined ? Number(m[1]) : m[3] === "" ? Infinity : Number(m[3]);
      return { max, length: m[0].length };
    }
  }
  return { max: 0, length: 0 };
}

/**
 * Why a pattern may backtrack catastrophically, or null: a backreference
 * (`\1`, `\k<name>`), or a group repeated more than once (`*`, `+`, `{n,}`,
 * `{n,m}` with m > 1) that itself holds a quantified part (`?` included) or an
 * alternation, e.g. `(a+)+`, `(a?)*`, `(\w|\d)*`, `((ab)*c)+`.
 */
export function patternProblem(source: string): string | null {
  const stack: Group[] = [{ quantified: false, alternation: false }];
  let i = 0;
  // After an atom: apply a following quantifier to `atom` (a group just closed, or null).
  const quantify = (atom: Group | null, at: number): string | null => {
    const q = quantifierAt(source, i);
    if (q.length === 0) return null;
    i += q.length;
    if (source[i] === "?") i++; // lazy
    if (q.max > 1) {
      if (atom && (atom.quantified || atom.alternation)) {
        return `the group at character ${at + 1} is repeated (${
          source.slice(i - q.length - (source[i - 1] === "?" ? 1 : 0), i)
        }) and holds ${
          atom.quantified ? "a repeated part" : "an alternation (|)"
        }: nested repetition can take exponential time (catastrophic backtracking)`;
      }
    }
    // Any quantifier, `?` too, makes the enclosing group ambiguous when it is repeated: (a?)*.
    stack[stack.length - 1].quantified = true;
    return null;
  };
  const opens: number[] = [];
  while (i < source.length) {
    const c = source[i];
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || (next === "k" && source[i + 2] === "<")) {
        return `the backreference at character ${
          i + 1
        } can take exponential time: match without it`;
      }
      i += 2;
      const problem = quantify(null, i - 2);
      if (problem) return problem;
    } else if (c === "[") {
      i++;
      if (source[i] === "^") i++;
      if (source[i] === "]") i++;
      while (i < source.length && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      i++;
      const problem = quantify(null, i);
      if (problem) return problem;
    } else if (c === "(") {
      opens.push(i);
      stack.push({ quantified: false, alternation: false });
      i++;
      if (source[i] === "?") {
        const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(source.slice(i, i + 200));
        i += m ? m[0].length : 1;
      }
    } else if (c === ")") {
      const group = stack.pop() ?? { quantified: false, alternation: false };
      const at = opens.pop() ?? 0;
      if (stack.length === 0) stack.push({ quantified: false, alternation: false });
      i++;
      const parent = stack[stack.length - 1];
      parent.quantified ||= group.quantified;
      parent.alternation ||= group.alternation;
      const problem = quantify(group, at);
      if (problem) return problem;
    } else if (c === "|") {
      stack[stack.length - 1].alternation = true;
      i++;
    } else {
      i++;
      const problem = quantify(null, i - 1);
      if (problem) return problem;
    }
  }
  return null;
}

/** Compiles `--pattern`, refusing a pattern that does not compile or can backtrack badly. */
export function compilePattern(source: string): RegExp {
  if (source.length > 1000) {
    throw new UserError(
      `--pattern ${excerpt(source)}: longer than 1000 characters; a layout needs a short one`,
    );
  }
  let re: RegExp;
  try {
    re = new RegExp(source);
  } catch (e) {
    throw new UserError(`--pattern ${excerpt(source)}: ${(e as Error).message}`);
  }
  const problem = patternProblem(source);
  if (problem) {
    throw new UserError(
      `--pattern ${excerpt(source)}: ${problem}. Rewrite it without nesting, e.g. ` +
        String.raw`(?<model>[^/]+)/step(?<step>\d+)\.csv$`,
    );
  }
  return re;
}

/** The named groups of a match (an empty object for a match without groups), or null. */
export type PathMatch = Record<string, string | undefined> | null;

/**
 * Matches every path against the pattern in a worker thread, within
 * {@link PATTERN_BUDGET_MS} (a UserError after it; the worker is ended).
 */
export async function matchPaths(
  source: string,
  paths: readonly string[],
  budgetMs: number = PATTERN_BUDGET_MS,
): Promise<PathMatch[]> {
  compilePattern(source);
  if (paths.length === 0) return [];
  const worker = new Worker(new URL("./pattern_worker.ts", import.meta.url), { type: "module" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await new Promise<PathMatch[]>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new UserError(
            `--pattern ${excerpt(source)}: matching ${paths.length} path(s) took longer than ${
              budgetMs / 1000
            } s (backtracking); give a simpler pattern, e.g. ` +
              String.raw`(?<model>[^/]+)/step(?<step>\d+)\.csv$`,
          ),
        );
      }, budgetMs);
      worker.onmessage = (e: MessageEvent<PathMatch[] | { error: string }>) => {
        if (Array.isArray(e.data)) resolve(e.data);
        else reject(new UserError(`--pattern ${excerpt(source)}: ${e.data.error}`));
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        reject(new Error(`--pattern: the matching worker failed: ${e.message}`));
      };
      worker.postMessage({ source, paths });
    });
  } finally {
    clearTimeout(timer);
    worker.terminate();
  }
}
