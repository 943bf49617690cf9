/**
 * Import as a library: scores produced elsewhere (the reference script's
 * per-rank `index,accuracy` CSVs, the Hugging Face `pythia-memorized-evals`
 * Parquet files, this harness's exports) become a run folder the analysis and
 * the report read like a scored one. `importAndReport` (the `./report`
 * entry point) also renders it.
 *
 * @example Import the reference script's CSVs of two runs
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdir, writeFile } from "node:fs/promises";
 * import { join } from "node:path";
 * import { importRuns, parseExperiment } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const experiment = parseExperiment(
 *   `suite:
 *   sequences_per_step: 4
 *   steps: [2]
 *   models:
 *     - {name: small, parameters: 1000, path: "small/{step}.onnx"}
 *     - {name: big, parameters: 8000, path: "big/{step}.onnx"}
 * data: {format: raw, path: data.bin, row_length: 64}
 * `,
 *   join(dir, "suite.yaml"),
 * );
 * // Step 2 has seen rows [0, 8): one line per row, accuracy = matched tokens / 32.
 * for (const [model, memorized] of [["small", [0, 5]], ["big", [0, 1, 2]]] as const) {
 *   const folder = join(dir, "evals", `memorization_${model}_2`);
 *   await mkdir(folder, { recursive: true });
 *   const lines = Array.from({ length: 8 }, (_, r) => `${r},${(memorized as readonly number[]).includes(r) ? 1 : 0.25}`);
 *   await writeFile(join(folder, "rank-0.csv"), `index,accuracy\n${lines.join("\n")}\n`);
 * }
 * const record = await importRuns({
 *   inputs: [join(dir, "evals")],
 *   experiment,
 *   output: join(dir, "run"),
 *   command: "example",
 *   log: () => {},
 * });
 * assert.deepEqual(
 *   record.runs.map((r) => [r.model, r.step, r.memorized]),
 *   [["small", 2, 2], ["big", 2, 3]],
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export { type ImportOptions, importRuns } from "./import.ts";
export { type ImportRecord, readImportRecord } from "./imported.ts";
export { loadExperiment, parseExperiment } from "../config/config.ts";
export type { Experiment } from "../types.ts";
export type { ImportedCheckpoint } from "./imported.ts";
export type { AnalysisSettings } from "../types.ts";
export type { DataSpec } from "../types.ts";
export type { DeviceSlot } from "../types.ts";
export type { ImportedFile } from "./imported.ts";
export type { InputKind } from "./layout.ts";
export type { MemorizationSettings } from "../types.ts";
export type { RowSelection } from "../types.ts";
export type { Suite } from "../types.ts";
export type { DataFormat } from "../types.ts";
export type { InputFile } from "./layout.ts";
export type { ModelSpec } from "../types.ts";
export type { Checkpoint } from "../types.ts";
export type { LoadOptions } from "../config/config.ts";
