/**
 * Heatmap charts of the report: score correlations between models and
 * between checkpoints, and models predicting each other.
 *
 * @module
 */
import type { Chart } from "./chart_style.ts";
import { fmt, nom, type Row, unit } from "./chart_style.ts";
import type { Summary } from "../analysis/summary.ts";

function heatmapSpec(values: Row[], labels: string[], title: string, facet?: string) {
  const tip = [
    nom("a", "row"),
    nom("b", "column"),
    fmt("value", title, ".3f"),
    ...(facet ? [nom(facet, facet)] : []),
  ];
  const inner = {
    width: facet ? 200 : 320,
    height: facet ? 200 : 320,
    encoding: {
      x: { field: "b", type: "ordinal", title: null, sort: labels, axis: { labelAngle: -40 } },
      y: { field: "a", type: "ordinal", title: null, sort: labels },
    },
    layer: [
      {
        mark: { type: "rect" },
        encoding: {
          color: {
            field: "value",
            type: "quantitative",
            title,
            scale: { scheme: "viridis", domain: [Math.min(0, ...valuesOf(values)), 1] },
          },
          tooltip: tip,
        },
      },
      {
        mark: { type: "text", fontSize: 10 },
        encoding: {
          text: { field: "value", type: "quantitative", format: ".2f" },
          color: { condition: { test: "datum.value > 0.6", value: "#000000" }, value: "#ffffff" },
          tooltip: tip,
        },
      },
    ],
  };
  if (!facet) return unit({ data: { values }, ...inner });
  return unit({
    data: { values },
    facet: { field: facet, type: "nominal", title: null },
    columns: 3,
    resolve: { scale: { x: "independent", y: "independent" } },
    spec: inner,
  });
}

function valuesOf(values: Row[]): number[] {
  return values.map((v) => v.value).filter((v): v is number => typeof v === "number");
}

function matrixRows(labels: string[], matrix: (number | null)[][], extra: Row = {}): Row[] {
  return labels.flatMap((a, i) =>
    labels.map((b, j) => ({ a, b, value: matrix[i]?.[j] ?? null, ...extra }))
  );
}

/** The correlation and pair-matrix heatmaps. */
export function correlationCharts(summary: Summary): Chart[] {
  const { models, checkpoints } = summary.correlations;
  const charts: Chart[] = [];
  if (models.labels.length > 0) {
    charts.push({
      id: "corr-models",
      title: "Score correlation between models (final steps)",
      description: `Pearson correlation of per-row scores on ${models.rows} shared rows.`,
      spec: heatmapSpec(matrixRows(models.labels, models.values), models.labels, "correlation"),
    });
  }
  if (checkpoints.length > 0) {
    const values = checkpoints.flatMap((m) => matrixRows(m.labels, m.values, { model: m.model }));
    const labels = [...new Set(checkpoints.flatMap((m) => m.labels))];
    charts.push({
      id: "corr-checkpoints",
      title: "Score correlation between checkpoints of each model",
      description: "Pearson correlation of per-row scores on the rows every checkpoint has seen.",
      spec: heatmapSpec(values, labels, "correlation", "model"),
    });
  }
  const pm = summary.pairMatrix;
  const pairs = [
    ...matrixRows(pm.labels, pm.precision, { metric: "precision" }),
    ...matrixRows(pm.labels, pm.recall, { metric: "recall" }),
  ];
  charts.push({
    id: "pair-matrix",
    title: "Models predicting each other (final steps)",
    description: "Row model's memorization as a prediction of the column model's.",
    spec: heatmapSpec(pairs, pm.labels, "value", "metric"),
  });
  return charts;
}
