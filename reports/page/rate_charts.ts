/**
 * Memorization-rate charts of the report: the rate against the row index
 * (training order) and against the row's duplicate count. Runs are split into
 * panels (final steps of every model; checkpoints of the target; others) so
 * each panel needs at most a handful of colours.
 *
 * @module
 */
import { type Chart, fmt, nom, type Row, unit } from "./chart_style.ts";
import type { PredictorId, Summary } from "../analysis/summary.ts";
import { checkpointLabel } from "../../engine/types.ts";

/** The panels a run is drawn in. */
function groupsOf(run: PredictorId, summary: Summary): string[] {
  const t = summary.target;
  const final =
    summary.predictors.some((p) => p.final && p.model === run.model && p.step === run.step) ||
    (run.model === t.model && run.step === t.step);
  const out: string[] = [];
  if (final) out.push("final step of each model");
  if (run.model === t.model) out.push(`checkpoints of ${t.model}`);
  return out.length > 0 ? out : ["other checkpoints"];
}

function rateSpec(values: Row[], x: Record<string, unknown>, tooltip: unknown[]) {
  const top = Math.max(0.01, ...values.map((v) => v.rate as number));
  const groups = [...new Set(values.map((v) => v.group))];
  const models = [...new Set(values.map((v) => v.model))];
  const runs = [...new Set(values.map((v) => v.run))].sort((a, b) => {
    const [x, y] = [a, b].map((r) => values.find((v) => v.run === r)!);
    return models.indexOf(x.model) - models.indexOf(y.model) ||
      (x.step as number) - (y.step as number);
  });
  return unit({
    data: { values },
    facet: { field: "group", type: "nominal", title: null, sort: groups },
    columns: 2,
    resolve: { scale: { color: "independent" } },
    spec: {
      width: 300,
      height: 220,
      mark: { type: "line", point: true },
      encoding: {
        x,
        y: {
          field: "rate",
          type: "quantitative",
          title: "memorization rate",
          scale: { domain: [0, top] },
          axis: { format: ".1%" },
        },
        color: { ...nom("run", "run"), sort: runs },
        tooltip,
      },
    },
  });
}

/** Memorization rate against row index, per run. */
export function rateByRowChart(summary: Summary): Chart {
  const values = summary.rateByRow.flatMap((r) =>
    groupsOf(r, summary).flatMap((group) =>
      r.buckets.map((b) => ({
        group,
        run: checkpointLabel(r),
        model: r.model,
        step: r.step,
        start: b.start,
        end: b.end,
        rows: b.rows,
        rate: b.rate,
      }))
    )
  );
  return {
    id: "rate-by-row",
    title: "Memorization rate against row index",
    description:
      "Share of rows memorized per bucket of training order (earlier rows were seen longer ago).",
    spec: rateSpec(
      values,
      { field: "start", type: "quantitative", title: "row index (bucket start)" },
      [
        nom("run", "run"),
        fmt("start", "rows from"),
        fmt("end", "rows to"),
        fmt("rows", "rows scored"),
        fmt("rate", "rate", ".3%"),
      ],
    ),
  };
}

/** Memorization rate against duplicate count, when the data carries counts. */
export function duplicatesChart(summary: Summary): Chart | null {
  if (!summary.rateByDuplicates || summary.rateByDuplicates.length === 0) return null;
  const values = summary.rateByDuplicates.flatMap((r) =>
    groupsOf(r, summary).flatMap((group) =>
      r.bins.map((b) => ({
        group,
        run: checkpointLabel(r),
        model: r.model,
        step: r.step,
        min: Math.max(1, b.min),
        max: b.max,
        rows: b.rows,
        rate: b.rate,
      }))
    )
  );
  return {
    id: "rate-by-duplicates",
    title: "Memorization rate against duplicate count",
    description: "Share of rows memorized by how often the row occurs in the training data.",
    spec: rateSpec(
      values,
      {
        field: "min",
        type: "quantitative",
        title: "duplicate count (bin start, log scale)",
        scale: { type: "log" },
      },
      [
        nom("run", "run"),
        fmt("min", "duplicates from"),
        fmt("max", "duplicates to"),
        fmt("rows", "rows"),
        fmt("rate", "rate", ".3%"),
      ],
    ),
  };
}
