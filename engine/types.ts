/**
 * Domain types shared by the stages of the harness (config → plan → pool →
 * worker → scoring → store → analysis → report). Every stage takes and returns
 * these plain values, so each can be run and tested alone.
 *
 * @module
 */

/** The one key of a (model, step) in maps and sets (no model name holds a NUL). */
export function checkpointKey(model: string, step: number): string {
  return `${model}\0${step}`;
}

/** How a (model, step) is written for people: `model@step`, as `--predictor MODEL@STEP` takes it. */
export function checkpointLabel(c: { model: string; step: number }): string {
  return `${c.model}@${c.step}`;
}

/** How memorization is measured (the paper's settings are the defaults). */
export interface MemorizationSettings {
  /** First token of the context within a row (paper: 0). */
  offset: number;
  /** Context length k (paper: 32). */
  context: number;
  /** Continuation length l (paper: 32). */
  continuation: number;
  /**
   * `extractable`: one teacher-forced pass gives `prefix` and `memorized`
   * exactly; `matches` is then the teacher-forced match count.
   * `full`: additionally free-running greedy generation after the first
   * mismatch, so `matches` is the paper's score × l.
   */
  mode: "extractable" | "full";
  /** Token ids never chosen by greedy generation (Pythia: end-of-text id 0). */
  suppressedTokens: number[];
}

/** One checkpoint of one model of the suite. */
export interface Checkpoint {
  /** Training step; the checkpoint has seen rows [0, step · sequencesPerStep). */
  step: number;
  /** Absolute path of the ONNX file. */
  path: string;
}

/** One model (size) of the suite. */
export interface ModelSpec {
  /** Name used in messages, run folders and `target:` (no slash). */
  name: string;
  /** Total parameter count (used for compute C = 6·N·D by default). */
  parameters: number;
  /** Parameters without embeddings, when known. */
  nonEmbeddingParameters?: number;
  /** Vocabulary size, when declared; otherwise read from the ONNX graph. */
  vocabSize?: number;
  /**
   * Which selected rows this model's checkpoints score: `seen` (absent: the
   * rows below step · sequencesPerStep) or `all` (every selected row, also
   * those the checkpoint has not been trained on yet: its continuous signals
   * as a forecast, see issue 15).
   */
  rows?: "seen" | "all";
  /** Checkpoints in ascending step order. */
  checkpoints: Checkpoint[];
}

/** The suite: models × checkpoints plus how steps map to training rows. */
export interface Suite {
  /** The models of the suite, in the experiment file's order. */
  models: ModelSpec[];
  /** Rows (training sequences) consumed per optimizer step (Pythia: 1024). */
  sequencesPerStep: number;
  /** Tokens counted per row for compute D (Pythia: 2048). */
  tokensPerSequence: number;
  /** End-of-text token id (Pythia: 0). */
  endOfTextId: number;
  /** Absolute path of a Hugging Face `tokenizer.json`, when given. */
  tokenizer?: string;
}

/** Token data formats understood by {@link TokenReader}s. */
export type DataFormat = "megatron" | "raw" | "npy";

/** Where the training rows are. */
export interface DataSpec {
  /** The file layout of the token data. */
  format: DataFormat;
  /** Absolute path: the `.bin` (megatron: the prefix or `.bin`/`.idx`), the raw `.bin`, or the `.npy`. */
  path: string;
  /** Tokens per row (raw format: required; others: checked when given). */
  rowLength?: number;
  /** Element type of the raw format (megatron and npy carry their own). */
  dtype?: "uint16" | "int32" | "int64" | "uint32";
  /** Optional per-row duplicate counts (a `.npy` of one integer per row, or a CSV `row,count`). */
  duplicates?: string;
}

/**
 * Which rows are scored. `seen`: every row some checkpoint has seen; `all`:
 * every row of the data. Each checkpoint scores the selected rows it has seen,
 * unless its model's {@link ModelSpec.rows} is `all` (the default under `all`).
 */
export type RowSelection =
  | { kind: "seen" }
  | { kind: "all" }
  | { kind: "range"; start: number; end: number }
  | { kind: "sample"; count: number; seed: number };

/** One device slot of the worker pool, e.g. `cpu`, `cuda:0`, `webgpu:0`. */
export interface DeviceSlot {
  /** `cpu`, `cuda:N` or `webgpu:N`. */
  device: string;
  /** Intra-op threads of the ONNX session. */
  threads: number;
}

/** The analysis settings of an experiment. */
export interface AnalysisSettings {
  /** Minimum precision required of a recommended predictor (default 0.9). */
  minPrecision: number;
  /** Compute budgets as fractions of the target's compute. */
  budgets: number[];
  /** Bootstrap resamples for confidence bands (Poisson weights over rows). */
  bootstrap: number;
  /** Seed of every random choice in the analysis. */
  seed: number;
  /** Which parameter count enters C = 6·N·D. */
  parameterCount: "total" | "non-embedding";
  /** Folds of rows for cross-fitting thresholds and choices (default 5; 1 = in-sample). */
  folds: number;
  /** Recall over all the target's memorized rows (default) or only those a predictor covered. */
  recallOver: "all" | "covered";
  /** Recalls whose compute is asked for (default 0.5, 0.8, 0.9, 0.95). */
  recalls: number[];
}

/** A validated experiment: everything is typed and every path is absolute. */
export interface Experiment {
  /** Name used for the run folder (default: the file's base name). */
  name: string;
  /** Absolute path of the experiment file. */
  file: string;
  /** The experiment file (absolute path). */
  suite: Suite;
  /** The models, their checkpoints and the training schedule. */
  data: DataSpec;
  /** The token data the checkpoints were trained on. */
  memorization: MemorizationSettings;
  /** Context, continuation and mode of the memorization test. */
  rows: RowSelection;
  /**
   * The model whose memorization is predicted, at a step (default: the largest
   * model, last step). Absent when the file says `target: none`: a run of cheap
   * models whose trained target does not exist yet (see `deno task forecast`).
   */
  target?: { model: string; step: number };
  /** Device slots, one worker each (with `devicesAuto`, until the trial replaces them). */
  devices: DeviceSlot[];
  /**
   * `devices: auto`: the CPU's workers × threads are chosen by a short trial when
   * scoring starts (engine/run/devices.ts).
   */
  devicesAuto?: boolean;
  /** Rows per forward pass. */
  batchSize: number;
  /** Rows per shard (the unit of work, storage and resume). */
  shardSize: number;
  /** Absolute path of the run folder (default `runs/<name>` beside main.ts's cwd). */
  output: string;
  /** Settings of the analysis (precision floor, budgets, bootstrap, folds). */
  analysis: AnalysisSettings;
  /**
   * `file:line:column` where fields that are checked after loading were
   * written, keyed by path (`data.path`, `suite.models[0].path`, `rows.range`),
   * so that a missing file or a range beyond the data is reported at its line.
   */
  locations?: Record<string, string>;
}

/** Per-row results of scoring a batch or a shard, columnar. */
export interface RowScores {
  /** Row indices in the dataset (ascending within a shard). */
  rows: Uint32Array;
  /** Matched continuation tokens, 0..l (the paper's score × l). */
  matches: Uint8Array;
  /** Length of the exact matched prefix of the continuation, 0..l. */
  prefix: Uint8Array;
  /** Teacher-forced mean negative log-likelihood of the continuation (nats/token). */
  nll: Float32Array;
}

/** One unit of work: rows of one shard scored by one checkpoint. */
export interface Job {
  /** Stable id, e.g. `m3/step143/shard0007`. */
  id: string;
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** Absolute ONNX path of the checkpoint. */
  path: string;
  /** Shard number within the experiment's row selection. */
  shard: number;
  /** Rows to score, ascending. */
  rows: Uint32Array;
  /** Estimated scoring FLOPs (2 · N · tokens), for ordering and cluster packing. */
  flops: number;
}

/** The scores of one checkpoint over all rows it scored (read from the store or imported). */
export interface CheckpointScores {
  /** Model name. */
  model: string;
  /** Checkpoint step. */
  step: number;
  /** Continuation length l the matches are out of. */
  continuation: number;
  /** Scored rows, ascending. */
  rows: Uint32Array;
  /** Matched continuation tokens per row (0..l). */
  matches: Uint8Array;
  /** Absent for imported scores that carry only accuracy. */
  prefix?: Uint8Array;
  /** Absent for imported scores. */
  nll?: Float32Array;
}

/** What the store records of one model file. */
export interface ModelFingerprint {
  /** Key of the checkpoint's shards: weights hash plus `config.json` (32 hex digits). */
  fingerprint: string;
  /** SHA-256 over the model file and its external-data files (equal ⇔ identical weights). */
  weights: string;
}

/**
 * Where a long step reports how far it is (engine/run/progress.ts `startWork`
 * draws it): `phase` starts a part of the work with its size in `unit`s,
 * `add` counts units done. Stages take one optionally and never draw.
 */
export interface ProgressSink {
  /** Starts a phase, e.g. `phase("reading the store", 56, "checkpoints")`. */
  phase(what: string, total: number, unit: string): void;
  /** `n` more units of the current phase are done. */
  add(n: number): void;
}
