/**
 * The result store of a run folder: one binary file per finished shard under
 * `<run>/scores/<model>/step<step>/shard<k>.bin`, written atomically (temporary
 * name, fsync, rename), plus `<run>/manifest.json` recording what produced the
 * scores (a hash of every setting that affects them, and a fingerprint per
 * checkpoint). A shard counts as finished only when its file is complete and
 * carries the key (settings hash + checkpoint fingerprint) of the current run,
 * so results of different settings are never mixed. The file format is in
 * engine/store/shard_file.ts; every read verifies a shard's checksum, and a
 * shard that fails (flipped bytes, truncated, not a shard) is reported with its
 * path and moved to `<run>/stale/corrupt/`, so it is rescored.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.ts";
import { readJsonFile } from "../os/json_file.ts";
import { appendLine, writeAtomic } from "../os/atomic.ts";
import {
  checkpointKey,
  type Experiment,
  type Job,
  type ModelFingerprint,
  type RowScores,
} from "../types.ts";
import { decodeShard, encodeShard, isShardProblem, STORE_VERSION } from "./shard_file.ts";
import { isNotFound } from "../os/fs_errors.ts";

/** A checkpoint as recorded in the manifest. */
export interface CheckpointRecord {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** ONNX path of the checkpoint. */
  path: string;
  /** The shards' key part for the model (engine/model/fingerprint.ts). */
  fingerprint: string;
  /** SHA-256 of the model's weights (its file and external data), to spot identical checkpoints. */
  weights?: string;
}

export { writeAtomic } from "../os/atomic.ts";

/** `<run>/manifest.json`: what produced the stored scores. */
export interface Manifest {
  /** Version of the store format. */
  version: number;
  /** The experiment's name. */
  experiment: string;
  /** Hash of {@link Manifest.settings}. */
  settingsHash: string;
  /** Everything besides the model that affects a score. */
  settings: Record<string, unknown>;
  /** Every checkpoint that has stored scores. */
  checkpoints: CheckpointRecord[];
}

/**
 * Builds the manifest of an experiment from its data and model fingerprints
 * (by checkpoint path: a {@link ModelFingerprint}, or only the key part).
 * A checkpoint without a fingerprint (one this shard group does not score) is
 * listed with an empty one, meaning unknown: {@link Store.prepare} keeps its
 * stored record, and the list keeps the experiment's order.
 */
export function makeManifest(
  exp: Experiment,
  dataFingerprint: string,
  fingerprints: ReadonlyMap<string, string | ModelFingerprint>,
): Manifest {
  const settings = {
    storeVersion: STORE_VERSION,
    data: dataFingerprint,
    memorization: exp.memorization,
    rows: exp.rows,
    // Models scoring unseen rows (rows: all) have other shards; absent when none, so that
    // runs from before this setting keep their settings hash.
    ...unseenRowsSetting(exp),
    shardSize: exp.shardSize,
    sequencesPerStep: exp.suite.sequencesPerStep,
  };
  const checkpoints: CheckpointRecord[] = [];
  for (const m of exp.suite.models) {
    for (const c of m.checkpoints) {
      const f = fingerprints.get(c.path);
      const record: CheckpointRecord = {
        model: m.name,
        step: c.step,
        path: c.path,
        fingerprint: "",
      };
      if (typeof f === "string") record.fingerprint = f;
      else if (f) Object.assign(record, { fingerprint: f.fingerprint, weights: f.weights });
      checkpoints.push(record);
    }
  }
  return {
    version: STORE_VERSION,
    experiment: exp.name,
    settingsHash: sha256(stableJson(settings)),
    settings,
    checkpoints,
  };
}

function unseenRowsSetting(exp: Experiment): { unseenRows?: string[] } {
  const names = exp.suite.models.filter((m) => m.rows === "all").map((m) => m.name);
  return names.length > 0 ? { unseenRows: names } : {};
}

/** The 32-byte key stamped into every shard of a checkpoint (hex). */
export function shardKey(settingsHash: string, fingerprint: string): string {
  return sha256(`${settingsHash}\n${fingerprint}`);
}

/** Relative path of a job's shard file inside the run folder. */
export function shardPath(model: string, step: number, shard: number): string {
  return join("scores", model, `step${step}`, `shard${String(shard).padStart(5, "0")}.bin`);
}

/**
 * Reads the run folder's manifest, or null when there is none; a manifest
 * that is not JSON or not a manifest is a UserError naming it.
 */
export async function readManifest(runDir: string): Promise<Manifest | null> {
  const path = join(runDir, "manifest.json");
  return await readJsonFile(path, {
    schema: manifestSchema,
    damaged: (why) =>
      new UserError(
        `${path}: ${why}: the manifest is damaged. It records which settings and models made ` +
          "the stored scores; delete it (or restore it from a backup) and rerun the experiment: " +
          "every shard carries its own key and checksum, so only shards of the current settings " +
          "and models are reused.",
      ),
  });
}

/** `manifest.json` as it may be read (unknown fields are kept: they enter no number). */
const manifestSchema: z.ZodType<Manifest> = z.looseObject({
  version: z.int().min(0).max(1000),
  experiment: z.string().max(255),
  settingsHash: z.string().max(128),
  settings: z.record(z.string(), z.unknown()),
  checkpoints: z.array(z.looseObject({
    model: z.string().max(255),
    step: z.int().min(0).max(100_000_000),
    path: z.string().max(4096),
    fingerprint: z.string().max(128),
    weights: z.string().max(128).optional(),
  })).max(100_000),
});

/** The result store of one run folder. */
export interface Store {
  readonly runDir: string;
  /**
   * Records the manifest; moves aside (into `<run>/stale/`) the scores of other
   * settings or of checkpoints whose file changed. Returns one notice per move.
   */
  prepare(manifest: Manifest): Promise<string[]>;
  /** The manifest in use: as {@link prepare} wrote it (merged with the stored one), or null. */
  readonly manifest: Manifest | null;
  /** Uses a manifest read from disk as is (read-only access: nothing is moved or written). */
  use(manifest: Manifest): void;
  /** Whether the job's shard is finished with the current manifest's key and rows. */
  isDone(job: Job): Promise<boolean>;
  /** Writes a finished job's shard atomically. */
  writeShard(job: Job, scores: RowScores): Promise<void>;
}

/** Options of {@link openStore}. */
export interface StoreOptions {
  /** Where notices about corrupt shards go (default: stderr). */
  onNotice?: (message: string) => void;
}

/** Opens (creating lazily) the store of a run folder. */
export function openStore(runDir: string, opts: StoreOptions = {}): Store {
  const notice = opts.onNotice ?? ((m: string) => console.error(m));
  let manifest: Manifest | null = null;
  let writable = false;
  const keys = new Map<string, string>();
  const keyOf = (job: Job): string => {
    const key = keys.get(checkpointKey(job.model, job.step));
    if (!key) throw new Error(`store: no manifest entry for ${job.id}; call prepare() first`);
    return key;
  };
  const adopt = (next: Manifest) => {
    manifest = next;
    keys.clear();
    for (const c of next.checkpoints) {
      keys.set(checkpointKey(c.model, c.step), shardKey(next.settingsHash, c.fingerprint));
    }
  };
  return {
    runDir,
    get manifest() {
      return manifest;
    },
    async prepare(next) {
      const old = await readManifest(runDir);
      const notices = await moveStale(runDir, old, next);
      manifest = mergeManifests(old, next);
      adopt(manifest);
      writable = true;
      await writeAtomic(join(runDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
      return notices;
    },
    use(existing) {
      adopt(existing);
    },
    async isDone(job) {
      const path = join(runDir, shardPath(job.model, job.step, job.shard));
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (e) {
        // Absent, or something else than a file in its place: not a finished shard (writing it
        // then says what is in the way).
        if (isNotFound(e) || (e as { code?: unknown }).code === "EISDIR") return false;
        throw new Error(`${path}: cannot be read (${(e as Error).message})`, { cause: e });
      }
      const shard = decodeShard(bytes);
      if (isShardProblem(shard)) {
        if (!writable) {
          notice(`${path} is corrupt (${shard.problem}); a run of the experiment rescores it.`);
          return false;
        }
        const to = await quarantine(runDir, path);
        notice(`${path} is corrupt (${shard.problem}); moved it to ${to}; it is rescored.`);
        return false;
      }
      if (shard.key !== keyOf(job) || shard.rows.length !== job.rows.length) return false;
      return shard.rows.every((r, i) => r === job.rows[i]);
    },
    async writeShard(job, scores) {
      if (!manifest) throw new Error("store: call prepare() before writeShard()");
      const bytes = encodeShard(scores, continuationOf(manifest), job.shard, keyOf(job));
      await writeAtomic(join(runDir, shardPath(job.model, job.step, job.shard)), bytes);
    },
  };
}

/**
 * Moves aside (into `<run>/stale/`) the scores `next` cannot use: all of
 * them when the settings changed since `old`, else those of checkpoints whose
 * file changed. Returns one notice per move.
 */
async function moveStale(runDir: string, old: Manifest | null, next: Manifest): Promise<string[]> {
  if (!old) return [];
  const notices: string[] = [];
  const stamp = timeStamp();
  if (old.settingsHash !== next.settingsHash) {
    if (!await exists(join(runDir, "scores"))) return [];
    const to = join(runDir, "stale", `scores-${stamp}`);
    await mkdir(join(runDir, "stale"), { recursive: true });
    await rename(join(runDir, "scores"), to);
    return [
      old.version !== next.version
        ? `the stored scores are in store format ${old.version}, this harness writes format ` +
          `${next.version} (shards with checksums) and cannot verify the old ones; moved ` +
          `them to ${to}; they are rescored`
        : `settings changed since the stored scores were made; moved them to ${to}`,
    ];
  }
  const before = new Map(old.checkpoints.map((c) => [checkpointKey(c.model, c.step), c]));
  for (const c of next.checkpoints) {
    const prev = before.get(checkpointKey(c.model, c.step));
    const dir = join(runDir, "scores", c.model, `step${c.step}`);
    if (c.fingerprint && prev && prev.fingerprint !== c.fingerprint && await exists(dir)) {
      const to = join(runDir, "stale", `${c.model}-step${c.step}-${stamp}`);
      await mkdir(join(runDir, "stale"), { recursive: true });
      await rename(dir, to);
      notices.push(`${c.path} changed since its scores were made; moved them to ${to}`);
    }
  }
  return notices;
}

/**
 * `next`, keeping the records of checkpoints it does not touch (e.g. another
 * shard group's) from `old` when the settings are the same, in `next`'s order.
 */
function mergeManifests(old: Manifest | null, next: Manifest): Manifest {
  const merged = new Map<string, CheckpointRecord>();
  if (old && old.settingsHash === next.settingsHash) {
    for (const c of old.checkpoints) merged.set(checkpointKey(c.model, c.step), c);
  }
  for (const c of next.checkpoints) {
    if (c.fingerprint) merged.set(checkpointKey(c.model, c.step), c);
  }
  const order = new Map(next.checkpoints.map((c, i) => [checkpointKey(c.model, c.step), i]));
  const checkpoints = [...merged.values()].sort((a, b) =>
    (order.get(checkpointKey(a.model, a.step)) ?? 1e9) -
    (order.get(checkpointKey(b.model, b.step)) ?? 1e9)
  );
  return { ...next, checkpoints };
}

/**
 * Jobs of a plan whose shards are not finished in the run folder's store,
 * judged by the manifest on disk (read-only; a model file changed since then is
 * only noticed by a real run).
 */
export async function missingShards(
  runDir: string,
  plan: { jobs: Job[] },
  opts: StoreOptions = {},
): Promise<Job[]> {
  const manifest = await readManifest(runDir);
  if (!manifest) return plan.jobs;
  const store = openStore(runDir, opts);
  store.use(manifest);
  const missing: Job[] = [];
  for (const job of plan.jobs) {
    const known = manifest.checkpoints.some((c) => c.model === job.model && c.step === job.step);
    if (!known || !(await store.isDone(job))) missing.push(job);
  }
  return missing;
}

/** The continuation length l the manifest's settings score (0 when they name none). */
export function continuationOf(manifest: Manifest): number {
  const m = manifest.settings.memorization as { continuation?: number } | undefined;
  return m?.continuation ?? 0;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** JSON with object keys sorted, so equal settings hash equally. */
export function stableJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Writes JSON beside the store (experiment snapshot, run stats) atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Appends one JSON line to a file (run statistics); nothing partial is left on failure. */
export async function appendJsonLine(path: string, value: unknown): Promise<void> {
  await appendLine(path, JSON.stringify(value));
}

/** The error of a reader (report, export) that meets a corrupt shard: what to run to repair it. */
export function corruptShardError(path: string, problem: string): UserError {
  return new UserError(
    `${path} is corrupt (${problem}). Rerun the experiment: it moves the shard to ` +
      "stale/corrupt/ and rescores it; then render the report again.",
  );
}

/** Moves a corrupt shard to `<run>/stale/corrupt/`, keeping its name; returns where it went. */
async function quarantine(runDir: string, path: string): Promise<string> {
  const rel = path.slice(runDir.length).replace(/^[/\\]+/, "").replace(/^scores[/\\]/, "");
  const to = join(runDir, "stale", "corrupt", `${rel.replace(/[/\\]/g, "-")}.${timeStamp()}`);
  await mkdir(join(runDir, "stale", "corrupt"), { recursive: true });
  await rename(path, to);
  return to;
}

function timeStamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}
