/**
 * Model fingerprints: what tells the store that a checkpoint's stored scores
 * were made by exactly this model. Every byte of the ONNX file and of each
 * external-data file it names is hashed (SHA-256, the digest `sha256sum` and
 * Hugging Face's LFS pointers show), so a re-export or a fine-tune that changes
 * only middle layers is noticed. A `config.json` beside the model enters the
 * fingerprint too (the adapter reads it), but not the weights hash, which is
 * what {@link duplicateWeights} compares. A Hugging Face model folder
 * (engine/model/hf/folder.ts) is hashed as its weight files and their index,
 * plus its `config.json`, so a step branch serving another step's files is
 * caught as identical weights.
 *
 * Hashing a suite costs a read of every file (≈ 2 GB/s per core here), so the
 * digest of each file is cached in `<run>/fingerprints.json` by path, size,
 * mtime and ctime (ctime also changes when a file is replaced by a copy that
 * keeps the old mtime, e.g. `rsync -a`); reruns only `stat` the files.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { open, readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.ts";
import { writeAtomic } from "../os/atomic.ts";
import { containedFile } from "../os/contained.ts";
import { externalLocations } from "./model_info.ts";
import { parseModel } from "./onnx_proto.ts";
import { readModelFile } from "./model_file.ts";
import { hfWeightFiles, isHfFolder } from "./hf/folder.ts";
import type { ModelFingerprint } from "../types.ts";
import { ifNotFound, isNotFound } from "../os/fs_errors.ts";

export type { ModelFingerprint };

/** The cache file's content. */
interface CacheFile {
  version: 1;
  files: Record<string, CacheEntry>;
}

interface CacheEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  sha256: string;
  /** For an ONNX file: the external-data locations it names. */
  external?: string[];
}

/** Options of {@link modelFingerprints}. */
export interface FingerprintOptions {
  /** Cache file (default: none, every file is hashed). */
  cache?: string;
  /** Progress lines for files that take a while to hash. */
  log?: (line: string) => void;
}

const CACHE_VERSION = 1 as const;
/**
 * Bytes per read while hashing: 1 MiB hashes the 269 MB bench model as fast as 16 MiB (249–265
 * against 285–290 ms), and the main thread, idle while the workers score, does not keep a 16 MiB
 * buffer it no longer uses in the run's peak (the harness's peak 5–12 MB lower, measured).
 */
const CHUNK = 1 << 20;
const SAY_ABOVE = 256 << 20;

/**
 * Fingerprints model files (each path once), reading the cache first and
 * writing it back when something was hashed. Throws a UserError naming the
 * file when a model or one of its external-data files cannot be read.
 */
export async function modelFingerprints(
  paths: Iterable<string>,
  opts: FingerprintOptions = {},
): Promise<Map<string, ModelFingerprint>> {
  const cache: CacheFile = opts.cache ? await readCache(opts.cache) : emptyCache();
  let changed = false;
  const digest = async (file: string, onnx: boolean): Promise<CacheEntry> => {
    const s = await stat(file);
    // A device or FIFO (/dev/zero, a pipe) would be read forever.
    if (!s.isFile()) throw new UserError(`${file}: not a regular file; give the model's file`);
    const hit = cache.files[file];
    if (
      hit && hit.size === s.size && hit.mtimeMs === s.mtimeMs && hit.ctimeMs === s.ctimeMs &&
      (!onnx || hit.external)
    ) {
      // Checked on every use: a cache from an older run, or edited, is not trusted.
      if (onnx) checkExternal(file, hit.external ?? []);
      return hit;
    }
    if (s.size > SAY_ABOVE) opts.log?.(`hashing ${file} (${(s.size / 2 ** 30).toFixed(2)} GiB)…`);
    const entry: CacheEntry = onnx
      ? await hashOnnx(file, s)
      : { ...stamp(s), sha256: await hashStream(file) };
    if (onnx) checkExternal(file, entry.external ?? []);
    cache.files[file] = entry;
    changed = true;
    return entry;
  };
  const out = new Map<string, ModelFingerprint>();
  for (const path of paths) {
    if (out.has(path)) continue;
    const file = resolve(path);
    // A Hugging Face model folder: its weight files (and their index) are the model.
    const folder = isHfFolder(file);
    const weights = createHash("sha256");
    let external: string[];
    if (folder) {
      weights.update("hf folder\n");
      external = hfWeightFiles(file);
    } else {
      const model = await digest(file, true).catch((e) => {
        throw unreadable(file, "model file", e);
      });
      weights.update(`onnx ${model.sha256}\n`);
      external = model.external ?? [];
    }
    for (const loc of external) {
      const target = join(folder ? file : dirname(file), loc);
      const ext = await digest(target, false).catch((e) => {
        throw unreadable(target, `external-data file ${loc} of ${file}`, e);
      });
      weights.update(`${loc} ${ext.sha256}\n`);
    }
    const weightsHash = weights.digest("hex");
    const key = createHash("sha256").update(`weights ${weightsHash}\n`);
    const config = await readFile(join(folder ? file : dirname(file), "config.json"))
      .catch(ifNotFound(null));
    if (config) key.update(config);
    out.set(path, { fingerprint: key.digest("hex").slice(0, 32), weights: weightsHash });
  }
  if (changed && opts.cache) await writeCache(opts.cache, cache);
  return out;
}

/** A checkpoint as far as duplicate detection needs it. */
export interface WeightsRecord {
  model: string;
  step: number;
  path: string;
  /** {@link ModelFingerprint.weights}; records without it are ignored. */
  weights?: string;
}

/**
 * One warning per set of checkpoints (two or more) with identical weights, a
 * known hazard of published checkpoint suites (a step uploaded as a stale copy
 * of another): their scores are then identical too.
 */
export function duplicateWeights(records: readonly WeightsRecord[]): string[] {
  const groups = new Map<string, WeightsRecord[]>();
  for (const r of records) {
    if (!r.weights) continue;
    const list = groups.get(r.weights) ?? [];
    list.push(r);
    groups.set(r.weights, list);
  }
  const warnings: string[] = [];
  for (const [hash, list] of groups) {
    if (list.length < 2) continue;
    const names = list.map((r) => `${r.model} step ${r.step} (${r.path})`).join(", ");
    warnings.push(
      `identical weights (sha256 ${hash.slice(0, 16)}…) under ${list.length} checkpoints: ` +
        `${names}. One is probably a stale copy of another (a known hazard of published ` +
        "checkpoint suites); their scores are identical. Check the checkpoint files.",
    );
  }
  return warnings;
}

/**
 * Refuses external-data locations of an ONNX file that leave its folder
 * (absolute, `..`, a symbolic link out of it) or are not regular files,
 * before any byte of them is read (engine/os/contained.ts).
 */
function checkExternal(file: string, locations: readonly string[]): void {
  for (const loc of locations) containedFile(dirname(file), loc, file);
}

function stamp(s: { size: number; mtimeMs: number; ctimeMs: number }) {
  return { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
}

/** What the inline weights' references name while the external-data locations are listed. */
const INLINE = "\u0000inline weights";

/**
 * Hashes an ONNX file (in chunks) and lists its external-data locations (the
 * protobuf structure walked with positional reads, engine/model/model_file.ts),
 * never holding the file's weights in memory: a 269 MB model read whole here
 * used to be the main thread's largest allocation of a run.
 */
async function hashOnnx(
  file: string,
  s: { size: number; mtimeMs: number; ctimeMs: number },
): Promise<CacheEntry> {
  let external: string[];
  try {
    const model = parseModel(readModelFile(file, { location: INLINE }).bytes);
    external = [...externalLocations(model.graph)].filter((l) => l !== INLINE).sort();
  } catch (e) {
    throw new UserError(
      `${file}: not an ONNX model (${(e as Error).message}); check the checkpoint path in ` +
        "the experiment file or re-export the model.",
    );
  }
  return { ...stamp(s), sha256: await hashStream(file), external };
}

/** SHA-256 of a file read in chunks (external data can be many GiB). */
async function hashStream(file: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(file, "r");
  try {
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

function unreadable(file: string, what: string, e: unknown): Error {
  if (e instanceof UserError) return e;
  const code = (e as { code?: string }).code;
  const why = code === "ENOENT"
    ? "does not exist"
    : code === "EACCES"
    ? "is not readable (permission denied)"
    : `cannot be read (${(e as Error).message})`;
  return new UserError(
    `${file}: the ${what} ${why}; check the checkpoint paths in the experiment file.`,
  );
}

async function readCache(path: string): Promise<CacheFile> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as CacheFile;
    if (parsed?.version === CACHE_VERSION && parsed.files && typeof parsed.files === "object") {
      // An entry of the wrong shape (an edited cache) is dropped: that file is hashed again.
      const files: Record<string, CacheEntry> = {};
      for (const [file, e] of Object.entries(parsed.files)) if (validEntry(e)) files[file] = e;
      return { version: CACHE_VERSION, files };
    }
  } catch (e) {
    // absent or damaged: a cache only saves time, so start afresh
    if (!isNotFound(e) && !(e instanceof SyntaxError)) throw e;
  }
  return emptyCache();
}

function validEntry(e: unknown): e is CacheEntry {
  const x = e as Partial<CacheEntry> | null;
  return !!x && typeof x === "object" && typeof x.size === "number" &&
    typeof x.mtimeMs === "number" && typeof x.ctimeMs === "number" &&
    typeof x.sha256 === "string" && /^[0-9a-f]{64}$/.test(x.sha256) &&
    (x.external === undefined ||
      (Array.isArray(x.external) && x.external.every((l) => typeof l === "string")));
}

function emptyCache(): CacheFile {
  return { version: CACHE_VERSION, files: {} };
}

async function writeCache(path: string, cache: CacheFile): Promise<void> {
  await writeAtomic(path, JSON.stringify(cache, null, 1) + "\n");
}
