/**
 * What a run without a trained target (`target: none`) can report: every
 * scored (model, step) with its compute, the rows it scored, the rows it
 * memorized and which continuous signals it carries. The predictor table,
 * curves, laws and recommendations all need a target; such a run is what
 * `deno task forecast CALIBRATION_RUN RUN` applies a calibration to.
 *
 * @module
 */
import type { Experiment } from "../../engine/types.ts";
import type { ScoredCheckpoint } from "../../engine/store/scored_checkpoint.ts";
import { analysedFrom } from "./checkpoints.ts";
import { signalsOf } from "./histograms.ts";

/** Version of {@link NoTargetSummary}; bump when a field changes meaning or is removed. */
export const NO_TARGET_SUMMARY_VERSION = 1;

/** `summary.json` of a run without a trained target. */
export interface NoTargetSummary {
  schemaVersion: number;
  /** Distinguishes it from a target's {@link import("./summary.ts").Summary}. */
  kind: "runs";
  experiment: { name: string; file: string };
  /** Every scored run in suite order. */
  runs: {
    model: string;
    step: number;
    parameters: number;
    /** C = 6 · N · D (FLOPs). */
    compute: number;
    rowsScored: number;
    memorized: number;
    /** memorized / rowsScored (0 when nothing was scored). */
    rate: number;
    /** Continuous signals stored per row (binary only for imported memorized-row lists). */
    signals: string[];
  }[];
  /** One paragraph in plain language. */
  note: string;
}

/** The runs summary of an experiment's scored runs. */
export function noTargetSummary(
  exp: Experiment,
  data: readonly ScoredCheckpoint[],
): NoTargetSummary {
  const order = new Map(exp.suite.models.map((m, i) => [m.name, i]));
  const runs = [...data]
    .sort((a, b) => (order.get(a.model) ?? 1e9) - (order.get(b.model) ?? 1e9) || a.step - b.step)
    .map((d) => {
      const r = analysedFrom(d, exp);
      return {
        model: d.model,
        step: d.step,
        parameters: r.parameters,
        compute: r.compute,
        rowsScored: d.scored.size,
        memorized: d.memorized.length,
        rate: d.scored.size > 0 ? d.memorized.length / d.scored.size : 0,
        signals: d.source ? signalsOf(d.source) : [],
      };
    });
  return {
    schemaVersion: NO_TARGET_SUMMARY_VERSION,
    kind: "runs",
    experiment: { name: exp.name, file: exp.file },
    runs,
    note: `${exp.name} has no trained target (target: none): ${runs.length} runs scored. ` +
      "To predict which rows its target will memorize, apply a calibration run (one with a " +
      "trained target) with `deno task forecast CALIBRATION_RUN RUN`.",
  };
}
