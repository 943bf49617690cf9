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
  HEIGHT,
  nom,
  type Row,
  unit,
  WIDTH,
} from "./chart_style.ts";
import { correlationCharts } from "./heatmaps.ts";
import { duplicatesChart, rateByRowChart } from "./rate_charts.ts";
import type { Summary } from "../analysis/summary.ts";
import { checkpointLabel } from "../../engine/types.ts";

export { type Chart, CHART_CONFIG, OKABE_ITO } from "./chart_style.ts";

function scalingChart(
  summary: Summary,
  metric: "recall" | "precision",
  kind: "binary" | "thresholded" = "binary",
): Chart {
  const fits = summary.scaling.filter((s) => s.metric === metric && (s.kind ?? "binary") === kind);
  const { band, points } = scalingRows(fits);
  const x = { field: "compute", type: "quantitative", scale: { type: "log" }, axis: COMPUTE_AXIS };
  // One colour per family on every layer; the band's `fill` (no legend) reads a copy of the
  // family field so that its hidden legend is not merged with the visible one.
  const domain = [...new Set(fits.map((f) => f.family))];
  const color = { ...nom("family", "family"), scale: { domain } };
  const y = { type: "quantitative", title: metric, scale: { domain: [0, 1] } };
  const lineTip = [
    nom("family", "family"),
    nom("form", "fitted form"),
    fmt("compute", "compute", ".3~s"),
    fmt("value", `fitted ${metric}`, ".3f"),
    fmt("lo", "band low", ".3f"),
    fmt("hi", "band high", ".3f"),
  ];
  return {
    ...(points.length === 0
      ? { note: `Nothing to plot: no predictor has a defined ${metric} against the target.` }
      : {}),
    id: kind === "binary" ? `scaling-${metric}` : `scaling-${metric}-thresholded`,
    title: `${metric[0].toUpperCase()}${metric.slice(1)} against compute` +
      (kind === "binary" ? "" : " (thresholded signals)"),
    description: `Measured ${metric} of each predictor family (points: ${
      kind === "binary"
        ? "each run's own memorization"
        : "each run's best thresholded signal, chosen and measured out of sample"
    }), the fitted law (line) and its bootstrap band; the dashed rule is the target's compute.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values: band },
          mark: { type: "area", opacity: 0.18, clip: true },
          encoding: {
            x,
            y: { ...y, field: "lo" },
            y2: { field: "hi" },
            fill: { ...nom("band", "family"), scale: { domain }, legend: null },
            tooltip: lineTip,
          },
        },
        {
          data: { values: band },
          mark: { type: "line", clip: true },
          encoding: { x, y: { ...y, field: "value" }, color, tooltip: lineTip },
        },
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

/** The fitted curves with their bands, and the measured points (each run once). */
function scalingRows(fits: Summary["scaling"]): { band: Row[]; points: Row[] } {
  const band: Row[] = [];
  const points: Row[] = [];
  for (const fit of fits) {
    const form = fit.chosen ?? "none";
    for (const c of fit.curve) {
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
      x: { field: "compute", type: "quantitative", scale: { type: "log" }, axis: COMPUTE_AXIS },
      tooltip: [nom("run", "target"), fmt("compute", "compute", ".3~s")],
    },
  };
}

function frontierChart(summary: Summary): Chart {
  const min = summary.experiment.minPrecision;
  const { all, frontier, picks, budgets } = frontierRows(summary);
  const x = { field: "compute", type: "quantitative", scale: { type: "log" }, axis: COMPUTE_AXIS };
  const y = {
    field: "recall",
    type: "quantitative",
    title: "recall of the target's memorization",
    scale: { domain: [0, 1] },
  };
  const runTip = [
    nom("run", "run"),
    fmt("compute", "compute", ".3~s"),
    fmt("recall", "recall", ".3f"),
    fmt("precision", "precision", ".3f"),
  ];
  return {
    ...(all.length === 0
      ? { note: "Nothing to plot: recall is undefined while the target memorizes no compared row." }
      : {}),
    id: "frontier",
    title: "Equi-compute frontier",
    description:
      `Every measured predictor (binary memorization); the step line is the recall reached at precision ≥ ${min} for a given compute, held out (the choice of predictor and threshold cross-fitted over folds of rows); diamonds are the recommended picks on that line, grey rules the budgets.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values: budgets },
          mark: { type: "rule", color: "#999999", strokeDash: [2, 3] },
          encoding: {
            x,
            tooltip: [
              fmt("budget", "budget (fraction of target)", ".3~g"),
              fmt("compute", "budget", ".3~s"),
            ],
          },
        },
        {
          data: { values: all },
          mark: { type: "point", strokeWidth: 1.5 },
          encoding: {
            x,
            y,
            color: nom("model", "model"),
            shape: nom("meets", "precision"),
            tooltip: runTip,
          },
        },
        {
          data: { values: frontier },
          mark: { type: "line", interpolate: "step-after", color: "#000000" },
          encoding: { x, y, tooltip: runTip },
        },
        {
          data: { values: picks },
          mark: { type: "point", shape: "diamond", size: 160, filled: false, color: "#000000" },
          encoding: {
            x,
            y,
            tooltip: [
              fmt("budget", "budget", ".3~g"),
              nom("signal", "signal"),
              ...runTip,
              fmt("own", "the pick's own compute", ".3~s"),
            ],
          },
        },
      ],
    }),
  };
}

/**
 * The frontier chart's rows: every measured predictor, the held-out frontier,
 * the recommended picks on it and the budgets.
 */
function frontierRows(
  summary: Summary,
): { all: Row[]; frontier: Row[]; picks: Row[]; budgets: Row[] } {
  const min = summary.experiment.minPrecision;
  const covered = summary.experiment.recallOver === "covered";
  const all = summary.predictors
    .filter((p) => (covered ? p.recall : p.recallAll) !== null)
    .map((p) => ({
      run: checkpointLabel(p),
      model: p.model,
      compute: p.compute,
      recall: covered ? p.recall : p.recallAll,
      precision: p.precision,
      meets: (p.precision ?? 0) >= min ? `precision ≥ ${min}` : `precision < ${min}`,
    }));
  // The held-out frontier: the recommendation at every candidate compute.
  const frontier: Row[] = (summary.frontier ?? []).flatMap((f) =>
    f.measured
      ? [{
        run: checkpointLabel(f.measured),
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
    for (const f of summary.frontier ?? []) if (f.budget <= budget * (1 + 1e-12)) at = f.budget;
    return at;
  };
  const picks = summary.recommendations.flatMap((r) => {
    const at = r.measured ? stepOf(r.budget) : null;
    return r.measured && at !== null
      ? [{
        run: checkpointLabel(r.measured),
        budget: r.budgetFraction,
        signal: r.measured.signal,
        compute: at,
        own: r.measured.compute,
        recall: r.measured.recall,
        precision: r.measured.precision,
      }]
      : [];
  });
  const budgets = summary.recommendations.map((r) => ({
    budget: r.budgetFraction,
    compute: r.budget,
  }));
  return { all, frontier, picks, budgets };
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

function prChart(summary: Summary): Chart {
  const best = bestCurves(summary);
  const values = summary.curves.flatMap((c) =>
    c.points.filter((p) => p.precision !== null).map((p) => ({
      run: checkpointLabel(c),
      curve: `${checkpointLabel(c)} ${c.signal}`,
      best: best.has(`${checkpointLabel(c)} ${c.signal}`),
      model: c.model,
      step: c.step,
      signal: c.signal,
      threshold: p.threshold,
      precision: p.precision,
      recall: p.recall,
    }))
  );
  const min = summary.experiment.minPrecision;
  return {
    ...(values.length === 0
      ? { note: "Nothing to plot: no threshold gives a defined precision and recall." }
      : {}),
    id: "pr-curves",
    title: "Precision–recall of thresholded predictors",
    description:
      `Each cheap run's continuous signal (score, matched prefix, or likelihood) thresholded at every level, against the target's memorization (recall over the rows it scored). Shown: per model, the run and signal with the highest held-out recall at precision ≥ ${min}; the menu below the chart shows every curve.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      data: { values },
      params: [{
        name: "show",
        value: SHOW_BEST,
        bind: { input: "select", options: [SHOW_BEST, SHOW_ALL], name: "curves: " },
      }],
      transform: [{ filter: `show === '${SHOW_ALL}' || datum.best` }],
      mark: { type: "line", point: { size: 14 } },
      encoding: {
        x: { field: "recall", type: "quantitative", title: "recall", scale: { domain: [0, 1] } },
        y: {
          field: "precision",
          type: "quantitative",
          title: "precision",
          scale: { domain: [0, 1] },
        },
        color: nom("model", "model"),
        strokeDash: nom("signal", "signal"),
        detail: nom("curve", "curve"),
        order: { field: "threshold", type: "quantitative" },
        tooltip: [
          nom("run", "run"),
          nom("signal", "signal"),
          fmt("threshold", "threshold", ".3~g"),
          fmt("precision", "precision", ".3f"),
          fmt("recall", "recall", ".3f"),
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

/** All charts of the report, in page order (absent data gives no chart). */
export function buildCharts(summary: Summary): Chart[] {
  const charts: (Chart | null)[] = [
    scalingChart(summary, "recall"),
    scalingChart(summary, "precision"),
    ...(summary.scaling.some((f) => f.kind === "thresholded")
      ? [
        scalingChart(summary, "recall", "thresholded"),
        scalingChart(summary, "precision", "thresholded"),
      ]
      : []),
    frontierChart(summary),
    summary.curves.length > 0 ? prChart(summary) : null,
    summary.distributions.length > 0 ? distributionChart(summary) : null,
    ...correlationCharts(summary),
    summary.rateByRow.length > 0 ? rateByRowChart(summary) : null,
    duplicatesChart(summary),
  ];
  return charts.filter((c): c is Chart => c !== null);
}

/**
 * Compiles a chart's Vega-Lite spec to the Vega spec the page renders;
 * Vega-Lite's warnings go to `warnings` (default: dropped).
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
  return compile(chart.spec, { logger }).spec as VegaSpec;
}
