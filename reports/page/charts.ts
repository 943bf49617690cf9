/**
 * The report's charts as Vega-Lite specs: pure functions from a
 * {@link Summary} to specs carrying their data inline, one shared visual
 * style (reports/page/chart_style.ts: colour-blind-safe Okabe–Ito colours) and a
 * tooltip on every mark. {@link compileChart} turns a spec into the Vega spec
 * the page renders (so the page ships Vega only, not Vega-Lite).
 *
 * @module
 */
import { compile } from "vega-lite";
import type { Spec as VegaSpec } from "vega";
import {
  type Chart,
  COMPUTE_AXIS,
  fmt,
  HEADLINE_WIDTH,
  HEIGHT,
  nom,
  type Row,
  unit,
  WIDTH,
} from "./chart_style.ts";
import { correlationCharts } from "./heatmaps.ts";
import { duplicatesChart, rateByRowChart } from "./rate_charts.ts";
import { OKABE_ITO } from "./chart_style.ts";
import type { Summary } from "../analysis/summary.ts";
import { checkpointLabel } from "../../engine/types.ts";
import { predictorLabel } from "../analysis/recommend.ts";

export { type Chart, CHART_CONFIG, OKABE_ITO } from "./chart_style.ts";

/**
 * The compute up to which a family's law is drawn: what the family can spend.
 * A smaller model's checkpoints cannot go past its last one; sizes, the
 * target model's checkpoints and `all` reach the target's compute.
 */
export function lawLimit(fit: Summary["scaling"][number], summary: Summary): number {
  const models = new Set(fit.points.map((p) => p.model));
  const [only] = models;
  return models.size === 1 && only !== summary.target.model
    ? Math.max(...fit.points.map((p) => p.compute)) * (1 + 1e-9)
    : Infinity;
}

/** Family colours where black is taken (the headline's frontier): Okabe–Ito without black and yellow, then greys. */
const FAMILY_COLOURS = [
  ...OKABE_ITO.filter((c) => c !== "#000000" && c !== "#F0E442"),
  "#777777",
  "#BBBBBB",
];

function scalingChart(
  summary: Summary,
  metric: "recall" | "precision",
  kind: "binary" | "thresholded" = "binary",
): Chart {
  const fits = summary.scaling.filter((s) => s.metric === metric && (s.kind ?? "binary") === kind);
  const { band, points } = scalingRows(fits, summary);
  const x = computeX();
  const { domain, color } = familyColours(fits);
  const y = { type: "quantitative", title: metric, scale: { domain: [0, 1] } };
  return {
    ...(points.length === 0
      ? { note: `Nothing to plot: no predictor has a defined ${metric} against the target.` }
      : {}),
    id: kind === "binary" ? `scaling-${metric}` : `scaling-${metric}-thresholded`,
    title: `${metric[0].toUpperCase()}${metric.slice(1)} against compute: ` +
      (kind === "binary" ? "each run's own memorization" : "thresholded signals"),
    description: `Measured ${metric} of each predictor family (points: ${
      kind === "binary"
        ? "each run's own memorization"
        : "each run's best thresholded signal, chosen and measured out of sample"
    }), the fitted law (line) and its bootstrap band; the dashed rule is the target's compute.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        ...bandLayers(band, { x, y, domain, color, tooltip: lawTooltip(metric), opacity: 0.18 }),
        {
          data: { values: points },
          mark: { type: "point", stroke: "#222222", strokeWidth: 0.6 },
          encoding: {
            x,
            y: { ...y, field: "value" },
            color,
            shape: { ...nom("family", "family"), scale: { domain } },
            tooltip: [
              nom("run", "run"),
              nom("family", "family"),
              fmt("compute", "compute", ".3~s"),
              fmt("value", metric, ".3f"),
            ],
          },
        },
        targetRule(summary),
      ],
    }),
  };
}

/**
 * The fitted curves with their bands, each within what its family can spend
 * ({@link lawLimit}), and the measured points (each run once).
 */
function scalingRows(fits: Summary["scaling"], summary: Summary): { band: Row[]; points: Row[] } {
  const band: Row[] = [];
  const points: Row[] = [];
  for (const fit of fits) {
    const form = fit.chosen ?? "none";
    const limit = lawLimit(fit, summary);
    for (const c of fit.curve.filter((c) => c.compute <= limit)) {
      band.push({
        family: fit.family,
        band: fit.family,
        form,
        compute: c.compute,
        value: c.value,
        lo: c.lo,
        hi: c.hi,
      });
    }
    for (const p of fit.points) {
      // A run in several families (e.g. `all`) is drawn once, in its first family.
      if (points.some((q) => q.run === checkpointLabel(p))) continue;
      points.push({
        family: fit.family,
        run: checkpointLabel(p),
        compute: p.compute,
        value: p.value,
      });
    }
  }
  return { band, points };
}

function targetRule(summary: Summary) {
  return {
    data: {
      values: [{
        run: `target ${checkpointLabel(summary.target)}`,
        compute: summary.target.compute,
      }],
    },
    mark: { type: "rule", strokeDash: [4, 4], color: "#555555" },
    encoding: {
      x: computeX(),
      tooltip: [nom("run", "target"), fmt("compute", "compute", ".3~s")],
    },
  };
}

/** The compute axis of the compute charts (log scale), a fresh object per chart. */
function computeX() {
  return { field: "compute", type: "quantitative", scale: { type: "log" }, axis: COMPUTE_AXIS };
}

/**
 * One colour per family of the fits, on every layer; the band's `fill` (no
 * legend, {@link bandLayers}) reads a copy of the family field so that its
 * hidden legend is not merged with the visible one.
 */
function familyColours(fits: Summary["scaling"]): { domain: string[]; color: unknown } {
  const domain = [...new Set(fits.map((f) => f.family))];
  return {
    domain,
    color: { ...nom("family", "family"), scale: { domain, range: FAMILY_COLOURS } },
  };
}

/** The tooltip of a fitted law's line and band. */
function lawTooltip(metric: string) {
  return [
    nom("family", "family"),
    nom("form", "fitted form"),
    fmt("compute", "compute", ".3~s"),
    fmt("value", `fitted ${metric}`, ".3f"),
    fmt("lo", "band low", ".3f"),
    fmt("hi", "band high", ".3f"),
  ];
}

/** The kind of the headline's laws: thresholded when such recall laws were fitted, else binary. */
export function headlineKind(summary: Summary): "binary" | "thresholded" {
  return summary.scaling.some((f) =>
      f.metric === "recall" && f.kind === "thresholded" && f.points.length > 0
    )
    ? "thresholded"
    : "binary";
}

/**
 * The report's first chart: recall against compute, with each family's fitted
 * law and band (of the {@link headlineKind}), the runs they were fitted to, the
 * measured frontier (held out) as a step line and the recommended picks on it.
 */
function recallComputeChart(summary: Summary): Chart {
  const min = summary.experiment.minPrecision;
  const kind = headlineKind(summary);
  const fits = summary.scaling.filter((f) =>
    f.metric === "recall" && (f.kind ?? "binary") === kind
  );
  const { band, points } = scalingRows(fits, summary);
  const { frontier, picks } = frontierRows(summary);
  const x = computeX();
  const y = {
    field: "recall",
    type: "quantitative",
    title: "recall of the target's memorization",
    scale: { domain: [0, 1] },
  };
  const { domain, color } = familyColours(fits);
  const what = kind === "binary"
    ? "each run's own memorization"
    : "each run's best thresholded signal, held out";
  return {
    ...(frontier.length === 0 && points.length === 0
      ? { note: "Nothing to plot: recall is undefined while the target memorizes no compared row." }
      : {}),
    id: "recall-compute",
    title: "Recall against compute",
    description: `Black steps: the recall reached at precision ≥ ${min} within each compute, ` +
      `held out; diamonds: the recommended picks. Colours: each family's fitted law with its ` +
      `95% band and its runs (${what}); dashed: the target's compute.` +
      ((summary.frontier ?? []).some((f) => f.budget === 0 && f.measured)
        ? " The data-only model over the row features needs no model compute, so it has no " +
          "place on the log axis: it is in the budget table and the row-features section."
        : ""),
    spec: unit({
      width: HEADLINE_WIDTH,
      height: HEIGHT,
      layer: [
        ...bandLayers(band, {
          x,
          y,
          domain,
          color,
          tooltip: lawTooltip("recall"),
          opacity: 0.15,
          strokeWidth: 1.5,
        }),
        familyRunsLayer(points, { x, y, color, what }),
        frontierLayer(frontier, x, y),
        picksLayer(picks, x, y),
        targetRule(summary),
      ],
    }),
  };
}

/** The headline's runs the laws were fitted to: a point per run, coloured by family. */
function familyRunsLayer(
  points: Row[],
  o: { x: unknown; y: Record<string, unknown>; color: unknown; what: string },
) {
  return {
    data: { values: points },
    mark: { type: "point", size: 30, opacity: 0.7 },
    encoding: {
      x: o.x,
      y: { ...o.y, field: "value" },
      color: o.color,
      tooltip: [
        nom("run", "run"),
        nom("family", "family"),
        fmt("compute", "compute", ".3~s"),
        fmt("value", `recall (${o.what})`, ".3f"),
      ],
    },
  };
}

/** The tooltip of a frontier row: the run recommended there and what it measured. */
function frontierTooltip() {
  return [
    nom("run", "run"),
    fmt("compute", "compute", ".3~s"),
    fmt("recall", "recall", ".3f"),
    fmt("precision", "precision", ".3f"),
  ];
}

/** The held-out frontier: a black step line of the recall reached within each compute. */
function frontierLayer(frontier: Row[], x: unknown, y: unknown) {
  return {
    data: { values: frontier },
    mark: { type: "line", interpolate: "step-after", color: "#000000", strokeWidth: 2.5 },
    encoding: { x, y, tooltip: frontierTooltip() },
  };
}

/** The recommended picks: open diamonds on the frontier at their budgets' steps. */
function picksLayer(picks: Row[], x: unknown, y: unknown) {
  return {
    data: { values: picks },
    mark: {
      type: "point",
      shape: "diamond",
      size: 170,
      filled: false,
      color: "#000000",
      strokeWidth: 2,
    },
    encoding: {
      x,
      y,
      tooltip: [
        fmt("budget", "budget (fraction of target)", ".3~g"),
        nom("signal", "signal"),
        ...frontierTooltip(),
        fmt("own", "the pick's own compute", ".3~s"),
      ],
    },
  };
}

/** The held-out frontier (the recommendation at every candidate compute) and the picks on it. */
function frontierRows(summary: Summary): { frontier: Row[]; picks: Row[] } {
  // Compute 0 (the data-only model) has no place on the log axis: the step starts at the first
  // candidate with compute; the data-only predictor is in the budget table and the features section.
  const frontier: Row[] = (summary.frontier ?? []).flatMap((f) =>
    f.measured && f.budget > 0
      ? [{
        run: predictorLabel(f.measured),
        signal: f.measured.signal,
        compute: f.budget,
        recall: f.measured.recall,
        precision: f.measured.precision,
      }]
      : []
  );
  // A pick sits on the frontier at the budget's step: the largest candidate compute within it.
  const stepOf = (budget: number) => {
    let at = null as number | null;
    for (const f of summary.frontier ?? []) {
      if (f.budget > 0 && f.budget <= budget * (1 + 1e-12)) at = f.budget;
    }
    return at;
  };
  const picks = summary.recommendations.flatMap((r) => {
    const at = r.measured ? stepOf(r.budget) : null;
    return r.measured && at !== null
      ? [{
        run: predictorLabel(r.measured),
        budget: r.budgetFraction,
        signal: r.measured.signal,
        compute: at,
        own: r.measured.compute,
        recall: r.measured.recall,
        precision: r.measured.precision,
      }]
      : [];
  });
  return { frontier, picks };
}

/** Per model, the curve whose held-out recall at the floor is highest (then average precision). */
function bestCurves(summary: Summary): Set<string> {
  const score = (c: Summary["curves"][number]) => [
    c.heldOut?.recall ?? -1,
    c.averagePrecision ?? -1,
  ];
  const best = new Map<string, Summary["curves"][number]>();
  for (const c of summary.curves) {
    const b = best.get(c.model);
    const [r, ap] = score(c);
    if (!b) best.set(c.model, c);
    else {
      const [br, bap] = score(b);
      if (r > br || (r === br && ap > bap)) best.set(c.model, c);
    }
  }
  return new Set([...best.values()].map((c) => `${checkpointLabel(c)} ${c.signal}`));
}

const SHOW_BEST = "the best run and signal per model";
const SHOW_ALL = "every run and signal";
/** Points per curve shown only on the menu's "every run and signal" (the best curves keep all). */
const MENU_POINTS = 30;

/** At most `n` points of a curve, evenly spaced, its first and last kept. */
function thin<T>(points: T[], n: number): T[] {
  if (points.length <= n) return points;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(points[Math.round((i * (points.length - 1)) / (n - 1))]);
  return out;
}

function prChart(summary: Summary): Chart {
  const best = bestCurves(summary);
  // Each point names its curve by index; the curve's labels are joined in by a lookup, so the
  // strings travel once per curve rather than once per point.
  const curves = summary.curves.map((c, i) => ({
    c: i,
    curve: `${checkpointLabel(c)} ${c.signal}`,
    best: best.has(`${checkpointLabel(c)} ${c.signal}`),
    model: c.model,
    signal: c.signal,
  }));
  const values = summary.curves.flatMap((c, i) =>
    thin(
      c.points.filter((p) => p.precision !== null),
      curves[i].best ? Infinity : MENU_POINTS,
    ).map((p) => ({ c: i, t: p.threshold, p: p.precision, r: p.recall }))
  );
  const min = summary.experiment.minPrecision;
  return {
    ...(values.length === 0
      ? { note: "Nothing to plot: no threshold gives a defined precision and recall." }
      : {}),
    id: "pr-curves",
    title: "Precision–recall of thresholded predictors",
    description:
      `Each cheap run's continuous signal (score, matched prefix, or likelihood) thresholded at every level, against the target's memorization (recall over the rows it scored). Shown: per model, the run and signal with the highest held-out recall at precision ≥ ${min}; the menu below the chart shows every curve (at most ${MENU_POINTS} points each; summary.json has them all).`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      params: [{
        name: "show",
        value: SHOW_BEST,
        bind: { input: "select", options: [SHOW_BEST, SHOW_ALL], name: "curves: " },
      }],
      transform: [
        {
          lookup: "c",
          from: {
            data: { values: curves },
            key: "c",
            fields: ["curve", "best", "model", "signal"],
          },
        },
        { filter: `show === '${SHOW_ALL}' || datum.best` },
      ],
      mark: { type: "line", point: { size: 14 } },
      encoding: {
        // Short field names (t, p, r: threshold, precision, recall): thousands of points.
        x: { field: "r", type: "quantitative", title: "recall", scale: { domain: [0, 1] } },
        y: { field: "p", type: "quantitative", title: "precision", scale: { domain: [0, 1] } },
        color: nom("model", "model"),
        strokeDash: nom("signal", "signal"),
        detail: nom("curve", "curve"),
        order: { field: "t", type: "quantitative" },
        tooltip: [
          nom("curve", "run and signal"),
          fmt("t", "threshold", ".3~g"),
          fmt("p", "precision", ".3f"),
          fmt("r", "recall", ".3f"),
        ],
      },
    }),
  };
}

function distributionChart(summary: Summary): Chart {
  const l = summary.experiment.memorization.continuation;
  const values = summary.distributions.flatMap((d) =>
    d.counts.flatMap((count, matches) =>
      count > 0 ? [{ run: checkpointLabel(d), model: d.model, step: d.step, matches, count }] : []
    )
  );
  return {
    id: "distributions",
    title: "Score distributions",
    description:
      `How many rows each run matched in 0…${l} continuation tokens (log count); the right end is memorization.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      mark: { type: "line", point: true, opacity: 0.85 },
      encoding: {
        x: {
          field: "matches",
          type: "quantitative",
          title: `matched tokens (of ${l})`,
          scale: { domain: [0, l], nice: false },
        },
        y: {
          field: "count",
          type: "quantitative",
          title: "rows (log scale)",
          scale: { type: "log" },
        },
        color: nom("model", "model"),
        detail: nom("run", "run"),
        tooltip: [nom("run", "run"), fmt("matches", "matched tokens"), fmt("count", "rows")],
      },
    }),
  };
}

/** All charts of the report, in page order (absent data gives no chart); the first is the headline. */
export function buildCharts(summary: Summary): Chart[] {
  const headline = headlineKind(summary);
  const thresholded = summary.scaling.some((f) => f.kind === "thresholded");
  const charts: (Chart | null)[] = [
    recallComputeChart(summary),
    headline === "binary" ? null : scalingChart(summary, "recall"),
    scalingChart(summary, "precision"),
    thresholded && headline !== "thresholded"
      ? scalingChart(summary, "recall", "thresholded")
      : null,
    thresholded ? scalingChart(summary, "precision", "thresholded") : null,
    summary.curves.length > 0 ? prChart(summary) : null,
    summary.distributions.length > 0 ? distributionChart(summary) : null,
    ...correlationCharts(summary),
    summary.rateByRow.length > 0 ? rateByRowChart(summary) : null,
    duplicatesChart(summary),
  ];
  return charts.filter((c): c is Chart => c !== null);
}

/**
 * Compiles a chart's Vega-Lite spec to the Vega spec the page renders, its
 * inline numbers rounded to {@link CHART_DIGITS} significant digits (what the
 * page can show; summary.json keeps every digit); Vega-Lite's warnings go to
 * `warnings` (default: dropped).
 */
export function compileChart(chart: Chart, warnings: string[] = []): VegaSpec {
  const note = (...args: unknown[]) => {
    warnings.push(`${chart.id}: ${args.map(String).join(" ")}`);
    return logger;
  };
  // deno-lint-ignore no-explicit-any
  const logger: any = {
    level: () => logger,
    error: note,
    warn: note,
    info: () => logger,
    debug: () => logger,
  };
  const spec = compile(chart.spec, { logger }).spec as VegaSpec;
  for (const d of spec.data ?? []) {
    const values = (d as { values?: unknown }).values;
    if (Array.isArray(values)) (d as { values: unknown }).values = values.map(roundRow);
  }
  return spec;
}

/** Significant digits of the numbers in a page's chart data (tooltips show at most 3). */
export const CHART_DIGITS = 4;

/** A data row with its numbers rounded to {@link CHART_DIGITS} significant digits. */
function roundRow(row: unknown): unknown {
  if (row === null || typeof row !== "object" || Array.isArray(row)) return row;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === "number" && Number.isFinite(v) && !Number.isInteger(v)
      ? Number(v.toPrecision(CHART_DIGITS))
      : v;
  }
  return out;
}

/**
 * A fitted law's two layers: its bootstrap band (an area coloured by family,
 * without a legend of its own) and its line.
 */
function bandLayers(
  band: readonly Record<string, unknown>[],
  o: {
    x: unknown;
    y: Record<string, unknown>;
    domain: readonly string[];
    color: unknown;
    tooltip: unknown;
    opacity: number;
    strokeWidth?: number;
  },
): unknown[] {
  const { x, y, color, tooltip } = o;
  return [
    {
      data: { values: band },
      mark: { type: "area", opacity: o.opacity, clip: true },
      encoding: {
        x,
        y: { ...y, field: "lo" },
        y2: { field: "hi" },
        fill: {
          ...nom("band", "family"),
          scale: { domain: o.domain, range: FAMILY_COLOURS },
          legend: null,
        },
        tooltip,
      },
    },
    {
      data: { values: band },
      mark: { type: "line", clip: true, ...(o.strokeWidth ? { strokeWidth: o.strokeWidth } : {}) },
      encoding: { x, y: { ...y, field: "value" }, color, tooltip },
    },
  ];
}
