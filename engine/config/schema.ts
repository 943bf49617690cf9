/**
 * The schema of experiment files (snake_case keys, as written in YAML): the
 * one source of every field's type, bounds, default and description. The
 * descriptions (zod metadata) say what is valid; from them come the error
 * messages and "did you mean" hints ({@link ./fields.ts}), the JSON Schema
 * `schema/experiment.schema.json` and `docs/experiment-file.md`
 * (`deno task schema`).
 *
 * Every count that sizes an allocation has an upper bound ({@link LIMITS}), so
 * a hostile or mistyped file is refused before anything is allocated.
 *
 * @module
 */
import { z } from "zod";

/** Names of models and experiments: used as folder names. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Device strings: `cpu`, `cuda:N`, `webgpu:N`. */
export const DEVICE_RE = /^(cpu|cuda:\d+|webgpu:\d+)$/;

/** Analysis budgets used when the file gives none (fractions of the target's compute). */
export const DEFAULT_BUDGETS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1];
/** Default recalls whose compute the analysis reports. */
export const DEFAULT_RECALLS = [0.5, 0.8, 0.9, 0.95];

/** Folds of rows for cross-fitting, when the experiment file names none (`analysis.folds`). */
export const DEFAULT_FOLDS = 5;

/** Upper bounds on everything in an experiment file that sizes an allocation or a loop. */
export const LIMITS = {
  /** Bytes of an experiment file (the paper's setup is ~6 KB). */
  fileBytes: 1024 * 1024,
  /** Levels of lists and mappings inside each other. */
  depth: 64,
  /** Nodes that YAML aliases (`*name`) may add to the document, all aliases together. */
  aliasNodes: 10_000,
  /** Models of a suite. */
  models: 1000,
  /** Entries of one steps list or checkpoints mapping. */
  steps: 10_000,
  /** Checkpoints of the suite, all models together. */
  checkpoints: 100_000,
  /** Training step of a checkpoint. */
  step: 100_000_000,
  /** Rows per optimizer step, tokens per row and similar per-row counts. */
  perStep: 16_777_216,
  /** Parameters of a model. */
  parameters: 1e15,
  /** Entries of the devices list. */
  devices: 64,
  /** Workers of one device entry. */
  workers: 256,
  /** Worker slots, all devices together. */
  slots: 1024,
  /** Intra-op threads per worker. */
  threads: 1024,
  /** Rows per forward pass. */
  batchSize: 65_536,
  /** Rows per shard. */
  shardSize: 16_777_216,
  /** Jobs of a plan (checkpoints × shards), checked before the plan is built. */
  jobs: 1_000_000,
  /** Row indices and sample sizes (the store addresses rows with 32 bits). */
  rows: 2 ** 32,
  /** Token ids. */
  tokenId: 2 ** 32 - 1,
  /** Entries of memorization.suppressed_tokens. */
  suppressedTokens: 65_536,
  /** Tokens of the context (and of the offset). */
  contextTokens: 1_048_576,
  /** Entries of analysis.budgets. */
  budgets: 1000,
  /** Bootstrap resamples. */
  bootstrap: 100_000,
} as const;

const int = (min: number, max: number) => z.int().min(min).max(max);
const text = z.string().min(1);
const step = int(1, LIMITS.step);

const modelSchema = z.strictObject({
  name: z.string().regex(NAME_RE).meta({
    description: "a model name of letters, digits, '.', '_' and '-', e.g. pythia-70m",
    examples: ["pythia-70m"],
  }),
  parameters: int(1, LIMITS.parameters).meta({
    description: "a positive integer: the total parameter count, e.g. 70426624",
    examples: [70426624],
  }),
  non_embedding_parameters: int(1, LIMITS.parameters).optional().meta({
    description: "a positive integer parameter count without embeddings, e.g. 18915328",
    examples: [18915328],
  }),
  vocab_size: int(1, LIMITS.perStep).optional().meta({
    description: "a positive integer vocabulary size (default: read from the ONNX graph), " +
      "e.g. 50304",
    examples: [50304],
  }),
  path: text.optional().meta({
    description: "a path template containing {step} to an ONNX file or a Hugging Face model " +
      "folder (holding config.json), e.g. 70m/step{step}/model.onnx or 70m/step{step} " +
      "(relative to the experiment file)",
    examples: ["pythia-70m/step{step}/model.onnx"],
  }),
  checkpoints: z.record(
    z.string(),
    text.meta({ description: "an ONNX file or Hugging Face model folder path" }),
  )
    .optional().meta({
      description: "a mapping from step to ONNX path (instead of path), e.g. " +
        "{23: a.onnx, 43: b.onnx}",
      examples: [{ "23": "s1/a.onnx", "43": "s1/b.onnx" }],
    }),
  hub: z.strictObject({
    repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/).meta({
      description: "a Hugging Face repository id ORG/NAME, e.g. EleutherAI/pythia-70m-deduped",
      examples: ["EleutherAI/pythia-70m-deduped"],
    }),
    revision: text.default("step{step}").meta({
      description: "a revision template containing {step} (a branch, tag or commit; default " +
        "step{step}, Pythia's branches)",
      examples: ["step{step}"],
    }),
  }).optional().meta({
    description: "a mapping {repo: ORG/NAME, revision: step{step}} (instead of path or " +
      "checkpoints): each step's checkpoint is that revision's folder in the local Hugging Face " +
      "cache ($HF_HOME/hub, default ~/.cache/huggingface/hub), as `huggingface-cli download " +
      "ORG/NAME --revision step{step}` leaves it; nothing is ever downloaded",
    examples: [{ repo: "EleutherAI/pythia-70m-deduped", revision: "step{step}" }],
  }),
  steps: z.array(step.meta({ description: "a positive integer step" })).min(1)
    .max(LIMITS.steps).optional().meta({
      description: "an ascending list of positive integer steps (overrides suite.steps)",
      examples: [[23000, 143000]],
    }),
  rows: z.enum(["seen", "all"]).optional().meta({
    description: "seen or all: which selected rows this model's checkpoints score (all: also " +
      "rows not trained on yet, so its continuous signals forecast them, see docs/analysis.md; " +
      "default: all under rows: all, else seen)",
    examples: ["all"],
  }),
}).meta({
  description: "a mapping {name, parameters, path: 'dir/step{step}.onnx'} " +
    "(or checkpoints: {STEP: file.onnx}, or hub: {repo: ORG/NAME})",
});

const suiteSchema = z.strictObject({
  sequences_per_step: int(1, LIMITS.perStep).default(1024).meta({
    description: "a positive integer: rows consumed per optimizer step (Pythia 1024)",
    examples: [1024],
  }),
  tokens_per_sequence: int(1, LIMITS.perStep).default(2048).meta({
    description: "a positive integer: tokens counted per row for compute (Pythia 2048)",
    examples: [2048],
  }),
  end_of_text_id: int(0, LIMITS.tokenId).default(0).meta({
    description: "a non-negative integer token id (Pythia 0)",
    examples: [0],
  }),
  tokenizer: text.optional().meta({
    description: "a path to a Hugging Face tokenizer.json (relative to the experiment file), " +
      "used to show example rows as text (default: the tokenizer.json of a Hugging Face model " +
      "folder among the checkpoints, the target's first)",
    examples: ["pythia/tokenizer.json"],
  }),
  steps: z.array(step.meta({ description: "a positive integer step" })).min(1)
    .max(LIMITS.steps).optional().meta({
      description: "an ascending list of positive integer checkpoint steps, e.g. [23000, 143000]",
      examples: [[23000, 43000, 63000, 83000, 103000, 123000, 143000]],
    }),
  models: z.array(modelSchema).min(1).max(LIMITS.models).meta({
    description: "a non-empty list of models, each {name, parameters, path, checkpoints or hub}",
  }),
}).meta({ description: "a mapping with the models and how steps map to training rows" });

const dataSchema = z.strictObject({
  format: z.enum(["megatron", "raw", "npy"]).meta({
    description: "one of megatron, raw, npy",
    examples: ["megatron"],
  }),
  path: text.meta({
    description: "the data file (megatron: the .bin/.idx pair or their prefix; raw: the .bin; " +
      "npy: the .npy), relative to the experiment file",
    examples: ["pile/document"],
  }),
  row_length: int(1, LIMITS.perStep).optional().meta({
    description: "a positive integer: tokens per row (Pythia 2049; required for raw)",
    examples: [2049],
  }),
  dtype: z.enum(["uint16", "int32", "int64", "uint32"]).optional().meta({
    description: "one of uint16, int32, int64, uint32 (raw format only; default uint16)",
    examples: ["uint16"],
  }),
  duplicates: text.optional().meta({
    description: "a path to per-row duplicate counts (.npy of integers, or CSV row,count)",
    examples: ["duplicates.npy"],
  }),
}).meta({ description: "a mapping {format, path, row_length, dtype, duplicates}" });

const memorizationSchema = z.strictObject({
  offset: int(0, LIMITS.contextTokens).default(0).meta({
    description: "a non-negative integer: first context token within a row (paper 0)",
    examples: [0],
  }),
  context: int(1, LIMITS.contextTokens).default(32).meta({
    description: "a positive integer context length k (paper 32)",
    examples: [32],
  }),
  continuation: int(1, 255).default(32).meta({
    description: "an integer continuation length l from 1 to 255 (paper 32)",
    examples: [32],
  }),
  mode: z.enum(["extractable", "full"]).default("extractable").meta({
    description: "one of extractable, full (extractable: one teacher-forced pass, exact " +
      "for memorized or not; full: also the paper's accuracy score by greedy generation)",
    examples: ["extractable"],
  }),
  suppressed_tokens: z.array(
    int(0, LIMITS.tokenId).meta({ description: "a non-negative integer token id" }),
  ).max(LIMITS.suppressedTokens).optional().meta({
    description: "a list of non-negative token ids never generated (default [end_of_text_id])",
    examples: [[0]],
  }),
}).prefault({}).meta({
  description: "a mapping {offset, context, continuation, mode, suppressed_tokens}",
});

const rowIndex = int(0, LIMITS.rows).meta({ description: "a non-negative integer row index" });
const rowsSchema = z.union([
  z.enum(["seen", "all"]),
  z.strictObject({
    range: z.tuple([rowIndex, rowIndex]).meta({
      description: "[START, END]: two non-negative integers with START < END (END exclusive, " +
        "within the data)",
      examples: [[0, 1000000]],
    }),
  }),
  z.strictObject({
    sample: int(1, LIMITS.rows).meta({
      description: "a positive integer: how many rows to sample uniformly from the seen rows",
      examples: [100000],
    }),
    seed: int(0, Number.MAX_SAFE_INTEGER).default(0).meta({
      description: "a non-negative integer seed of the sample",
      examples: [0],
    }),
  }),
]).default("seen").meta({
  description: "seen, all, {range: [START, END]} or {sample: N, seed: S} (seen: every row some " +
    "checkpoint has seen; all: every row of the data, scored by every checkpoint)",
  examples: ["seen", { sample: 100000, seed: 0 }],
});

const targetSchema = z.union([
  z.literal("none"),
  z.strictObject({
    model: text.meta({ description: "the name of one of the suite's models" }),
    step: step.optional().meta({
      description: "one of the target model's steps (default: its last)",
    }),
  }),
]).optional().meta({
  description: "a mapping {model: NAME, step: STEP}, or none for a run without a trained " +
    "target, which scores and reports what it has and is what deno task forecast applies a " +
    "calibration to (default: the largest model, its last step)",
  examples: [{ model: "pythia-12b", step: 143000 }, "none"],
});

const deviceSchema = z.strictObject({
  device: z.string().regex(DEVICE_RE).meta({
    description: "cpu, cuda:N or webgpu:N (N a device number, e.g. cuda:0)",
    examples: ["cuda:0"],
  }),
  workers: int(1, LIMITS.workers).default(1).meta({
    description: "a positive integer: worker threads on this device",
    examples: [2],
  }),
  threads: int(1, LIMITS.threads).optional().meta({
    description: "a positive integer: intra-op threads per worker (default: cpu shares the " +
      "cores among its workers, other devices 1)",
    examples: [4],
  }),
}).meta({ description: "a mapping {device: cpu | cuda:N | webgpu:N, workers: N, threads: N}" });

const analysisSchema = z.strictObject({
  min_precision: z.number().gt(0).max(1).default(0.9).meta({
    description: "a number in (0, 1]: the precision a recommended predictor must reach",
    examples: [0.9],
  }),
  budgets: z.array(
    z.number().gt(0).max(1).meta({
      description: "a number in (0, 1]: a fraction of the target's compute",
    }),
  ).min(1).max(LIMITS.budgets).default(DEFAULT_BUDGETS).meta({
    description: "a non-empty list of compute fractions in (0, 1], e.g. [0.01, 0.1]",
    examples: [[0.01, 0.1]],
  }),
  bootstrap: int(0, LIMITS.bootstrap).default(200).meta({
    description: "a non-negative integer: bootstrap resamples",
    examples: [200],
  }),
  seed: int(0, Number.MAX_SAFE_INTEGER).default(0).meta({
    description: "a non-negative integer seed",
    examples: [0],
  }),
  parameter_count: z.enum(["total", "non-embedding"]).default("total").meta({
    description: "one of total, non-embedding: which parameter count enters compute 6·N·D",
    examples: ["total"],
  }),
  folds: int(1, 100).default(DEFAULT_FOLDS).meta({
    description: "an integer from 1 to 100: folds of rows for cross-fitting thresholds " +
      "(1 = choose and measure on the same rows)",
    examples: [5],
  }),
  recall_over: z.enum(["all", "covered"]).default("all").meta({
    description: "all (the target's memorized rows) or covered (only those the predictor " +
      "scored)",
    examples: ["all"],
  }),
  recalls: z.array(z.number().gt(0).max(1).meta({ description: "a number in (0, 1]: a recall" }))
    .min(1).max(LIMITS.budgets).default(DEFAULT_RECALLS).meta({
      description: "a non-empty list of recalls in (0, 1] whose compute is reported, " +
        "e.g. [0.5, 0.8, 0.9]",
      examples: [[0.5, 0.8, 0.9]],
    }),
}).prefault({}).meta({
  description: "a mapping {min_precision, budgets, bootstrap, seed, parameter_count, folds, " +
    "recall_over, recalls}",
});

/** The schema of an experiment file. */
export const experimentSchema = z.strictObject({
  name: z.string().regex(NAME_RE).optional().meta({
    description: "a name of letters, digits, '.', '_' and '-' (used for the run folder; " +
      "default: the file's base name), e.g. nano",
    examples: ["nano"],
  }),
  suite: suiteSchema,
  data: dataSchema,
  memorization: memorizationSchema,
  rows: rowsSchema,
  target: targetSchema,
  devices: z.union([
    z.literal("auto").meta({
      description: "auto: split this machine's CPU cores into workers × threads by a short " +
        "trial when scoring starts (kept in the run folder per host)",
    }),
    z.array(deviceSchema).min(1).max(LIMITS.devices),
  ]).optional().meta({
    description: "auto, or a non-empty list of {device, workers, threads} (default: one cpu " +
      "worker with all cores)",
    examples: ["auto", [{ device: "cuda:0", workers: 2 }]],
  }),
  batch_size: int(1, LIMITS.batchSize).default(64).meta({
    description: "a positive integer: rows per forward pass",
    examples: [64],
  }),
  shard_size: int(1, LIMITS.shardSize).default(65536).meta({
    description: "a positive integer: rows per shard, the unit of work and resume",
    examples: [65536],
  }),
  output: text.optional().meta({
    description: "a folder for the run (relative to the experiment file; default " +
      "runs/NAME in the current folder), e.g. runs/nano",
    examples: ["runs/nano"],
  }),
  analysis: analysisSchema,
}).meta({
  title: "Experiment file",
  description: "a mapping with keys suite, data, memorization, rows, target, devices, " +
    "batch_size, shard_size, output, analysis and name",
});

/** The parsed (snake_case) experiment file. */
export type RawExperiment = z.infer<typeof experimentSchema>;
