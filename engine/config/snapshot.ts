/**
 * The schema of a run folder's `experiment.json`: the validated, typed
 * {@link Experiment} a run (or an import) snapshots into its folder, read back
 * by the report, export and forecast. It is read as input from outside (a
 * folder may be edited, damaged or copied from elsewhere), so every field is
 * checked with the bounds of the experiment file ({@link LIMITS}) before a
 * number of it reaches a report. The schema's output type is checked against
 * {@link Experiment} at compile time, so the two cannot drift apart.
 *
 * @module
 */
import { z } from "zod";
import type { Experiment } from "../types.ts";
import { DEVICE_RE, LIMITS, NAME_RE } from "./schema.ts";

const int = (min: number, max: number) => z.int().min(min).max(max);
const path = z.string().min(1).max(4096);
const fraction = z.number().gt(0).lte(1);

const checkpoint = z.strictObject({ step: int(0, LIMITS.step), path });

const model = z.strictObject({
  name: z.string().regex(NAME_RE).max(255),
  parameters: int(1, LIMITS.parameters),
  nonEmbeddingParameters: int(1, LIMITS.parameters).optional(),
  vocabSize: int(1, LIMITS.perStep).optional(),
  rows: z.enum(["seen", "all"]).optional(),
  checkpoints: z.array(checkpoint).max(LIMITS.steps),
});

const rows = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("seen") }),
  z.strictObject({ kind: z.literal("all") }),
  z.strictObject({
    kind: z.literal("range"),
    start: int(0, LIMITS.rows),
    end: int(0, LIMITS.rows),
  }),
  z.strictObject({
    kind: z.literal("sample"),
    count: int(1, LIMITS.rows),
    seed: int(0, Number.MAX_SAFE_INTEGER),
  }),
]);

/** `experiment.json`: a snapshot of the {@link Experiment} that made the run folder. */
export const experimentSnapshotSchema = z.strictObject({
  name: z.string().regex(NAME_RE).max(255),
  file: path,
  suite: z.strictObject({
    models: z.array(model).min(1).max(LIMITS.models),
    sequencesPerStep: int(1, LIMITS.perStep),
    tokensPerSequence: int(1, LIMITS.perStep),
    endOfTextId: int(0, LIMITS.tokenId),
    tokenizer: path.optional(),
  }),
  data: z.strictObject({
    format: z.enum(["megatron", "raw", "npy"]),
    path,
    rowLength: int(1, LIMITS.perStep).optional(),
    dtype: z.enum(["uint16", "int32", "int64", "uint32"]).optional(),
    duplicates: path.optional(),
  }),
  memorization: z.strictObject({
    offset: int(0, LIMITS.contextTokens),
    context: int(1, LIMITS.contextTokens),
    continuation: int(1, 255),
    mode: z.enum(["extractable", "full"]),
    suppressedTokens: z.array(int(0, LIMITS.tokenId)).max(LIMITS.suppressedTokens),
  }),
  rows,
  target: z.strictObject({ model: z.string().max(255), step: int(0, LIMITS.step) }).optional(),
  devices: z.array(z.strictObject({
    device: z.string().regex(DEVICE_RE),
    threads: int(1, LIMITS.threads),
  })).max(LIMITS.slots),
  devicesAuto: z.boolean().optional(),
  batchSize: int(1, LIMITS.batchSize),
  shardSize: int(1, LIMITS.shardSize),
  output: path,
  analysis: z.strictObject({
    minPrecision: fraction,
    budgets: z.array(fraction).min(1).max(LIMITS.budgets),
    bootstrap: int(0, LIMITS.bootstrap),
    seed: int(0, Number.MAX_SAFE_INTEGER),
    parameterCount: z.enum(["total", "non-embedding"]),
    folds: int(1, 100),
    recallOver: z.enum(["all", "covered"]),
    recalls: z.array(fraction).min(1).max(LIMITS.budgets),
  }),
  locations: z.record(z.string().max(1000), z.string().max(5000)).optional(),
}).superRefine((exp, ctx) => {
  const names = new Set(exp.suite.models.map((m) => m.name));
  if (names.size !== exp.suite.models.length) {
    ctx.addIssue({ code: "custom", path: ["suite", "models"], message: "two models share a name" });
  }
  const t = exp.target;
  if (
    t &&
    !exp.suite.models.some((m) =>
      m.name === t.model && m.checkpoints.some((c) => c.step === t.step)
    )
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["target"],
      message: `${t.model}@${t.step} is not a checkpoint of the suite`,
    });
  }
  if (exp.rows.kind === "range" && exp.rows.start >= exp.rows.end) {
    ctx.addIssue({ code: "custom", path: ["rows"], message: "the range is empty (start ≥ end)" });
  }
});

// The snapshot's schema and the Experiment type describe the same value.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameType: Same<z.output<typeof experimentSnapshotSchema>, Experiment> = true;
void _sameType;
