/**
 * The one visual style of the report's charts and the small helpers their
 * Vega-Lite specs are built from.
 *
 * @module
 */
import type { Config, TopLevelSpec } from "vega-lite";

/** Okabe–Ito categorical colours (readable with the common colour-vision deficiencies). */
export const OKABE_ITO = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
];

/** The one visual style every chart shares. */
export const CHART_CONFIG: Config = {
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  background: "#ffffff",
  padding: 8,
  view: { stroke: "#cccccc" },
  range: { category: OKABE_ITO, heatmap: { scheme: "viridis" }, ordinal: { scheme: "viridis" } },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e8e8e8", titleFontWeight: 600 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 220, symbolStrokeWidth: 2 },
  header: { labelFontSize: 12, titleFontSize: 12, labelLimit: 300 },
  line: { strokeWidth: 2 },
  point: { size: 50, filled: true },
  mark: { invalid: "filter" },
};

/** One chart of the report. */
export interface Chart {
  /** Stable id (the page's element id is `chart-<id>`). */
  id: string;
  /** Heading shown above the chart. */
  title: string;
  /** One sentence saying how to read it. */
  description: string;
  /** Shown above the chart when it has nothing to plot, saying why. */
  note?: string;
  spec: TopLevelSpec;
}

/** Width of a single chart (px). */
export const WIDTH = 560;
/** Width of the report's first chart, recall against compute (px). */
export const HEADLINE_WIDTH = 720;
/** Height of a single chart (px). */
export const HEIGHT = 300;
/** The log compute axis every compute chart shares. */
export const COMPUTE_AXIS = { title: "compute C = 6·N·D (FLOPs, log scale)", format: "~s" };

/** A data row of a chart. */
export type Row = Record<string, unknown>;

/** A top-level spec with the shared style. */
export function unit(spec: Record<string, unknown>): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CHART_CONFIG,
    ...spec,
  } as TopLevelSpec;
}

/** A quantitative field definition. */
export function fmt(field: string, title: string, format?: string) {
  return { field, type: "quantitative", title, ...(format ? { format } : {}) };
}

/** A nominal field definition. */
export function nom(field: string, title: string) {
  return { field, type: "nominal", title };
}
