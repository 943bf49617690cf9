/**
 * Loads an experiment file (YAML) into a validated, typed {@link Experiment}.
 * Every problem is a {@link UserError} naming `file:line:column`, the field,
 * and what would be valid; misspelt keys are never ignored (the nearest valid
 * key is suggested). Relative paths resolve against the experiment file's
 * folder; the default output is `runs/<name>` relative to the current folder.
 * The steps: {@link readYaml} (syntax, alias bounds, positions), the schema
 * ({@link experimentSchema}, messages by {@link fromZod}), then {@link build}.
 *
 * @module
 */
import { open } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { build } from "./build.ts";
import { fromZod, type Issue } from "./messages.ts";
import { experimentSchema, LIMITS } from "./schema.ts";
import { readYaml } from "./yaml.ts";
import type { Experiment } from "../types.ts";

/** Options of {@link loadExperiment}. */
export interface LoadOptions {
  /** Output folder overriding the file's (relative to the current folder). */
  output?: string;
}

/** Reads, parses and validates an experiment file. Throws a {@link UserError} on bad input. */
export async function loadExperiment(path: string, opts: LoadOptions = {}): Promise<Experiment> {
  const file = resolve(path);
  const text = await readExperimentText(path, file);
  return parseExperiment(text, file, { ...opts, display: path });
}

/** The file's text, refused unread when it is over {@link LIMITS.fileBytes}. */
async function readExperimentText(display: string, file: string): Promise<string> {
  const refuse = (why: string): never => {
    throw new UserError(
      `${display}:1:1: cannot load the experiment file: ${why}. Give the path of a YAML ` +
        `experiment file, e.g. experiments/nano.yaml.`,
    );
  };
  let handle;
  try {
    handle = await open(file, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    return refuse(
      code === "ENOENT"
        ? "the file does not exist"
        : code === "EACCES"
        ? "permission denied (it cannot be read)"
        : `it cannot be read (${(e as Error).message})`,
    );
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) return refuse("this is a folder, not a file");
    if (stat.size > LIMITS.fileBytes) {
      return refuse(
        `it is ${stat.size} bytes, more than the ${LIMITS.fileBytes} bytes an experiment file ` +
          `may have (long lists belong in data files, e.g. data.duplicates)`,
      );
    }
    // Read at most one byte past the limit (a file that grows while read is refused too).
    const buffer = new Uint8Array(LIMITS.fileBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > LIMITS.fileBytes) {
      return refuse(`it is more than the ${LIMITS.fileBytes} bytes an experiment file may have`);
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } catch (e) {
    if (e instanceof UserError) throw e;
    return refuse(`it cannot be read (${(e as Error).message})`);
  } finally {
    await handle.close();
  }
}

/**
 * Parses and validates the text of an experiment file whose absolute path is
 * `file` (used to resolve relative paths); `display` names it in messages.
 */
export function parseExperiment(
  text: string,
  file: string,
  opts: LoadOptions & { display?: string } = {},
): Experiment {
  const display = opts.display ?? (relative(".", file) || file);
  if (text.length > LIMITS.fileBytes) {
    throw new UserError(
      `${display}:1:1: the experiment file has ${text.length} characters, more than the ` +
        `${LIMITS.fileBytes} allowed`,
    );
  }
  const yaml = readYaml(text, display);
  const fail = (issues: Issue[]): never => {
    const located = issues.map((i) => ({ at: yaml.where(i.path, i.atKey === true), i }));
    located.sort((a, b) => compareLocations(a.at, b.at));
    throw new UserError(located.map(({ at, i }) => `${at}: ${i.message}`).join("\n"));
  };
  const raw = yaml.value;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail([{
      path: [],
      message: "an experiment file must be a YAML mapping with at least suite: and data: " +
        "(see experiments/nano.yaml)",
    }]);
  }
  const parsed = experimentSchema.safeParse(raw);
  if (!parsed.success) return fail(fromZod(parsed.error.issues, raw));
  const built = build(parsed.data, { file, outputOverride: opts.output, where: yaml.where });
  if (built.issues.length > 0) fail(built.issues);
  return built.experiment;
}

/** Orders `file:line:column` strings by line, then column. */
function compareLocations(a: string, b: string): number {
  const pos = (s: string) => /:(\d+):(\d+)$/.exec(s)?.slice(1).map(Number) ?? [0, 0];
  const [la, ca] = pos(a);
  const [lb, cb] = pos(b);
  return la - lb || ca - cb;
}
