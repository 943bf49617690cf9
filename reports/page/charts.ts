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
  runLabel,
  unit,
  WIDTH,
} from "./chart_style.ts";
import { correlationCharts } from "./heatmaps.ts";
import { duplicatesChart, rateByRowChart } from "./rate_charts.ts";
import type { Summary } from "../analysis/summary.ts";

export { type Chart, CHART_CONFIG, OKABE_ITO, runLabel } from "./chart_style.ts";

function scalingChart(summary: Summary, metric: "recall" | "precision"): Chart {
  const fits = summary.scaling.filter((s) => s.metric === metric);
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
      if (points.some((q) => q.run === runLabel(p))) continue;
      points.push({ family: fit.family, run: runLabel(p), compute: p.compute, value: p.value });
    }
  }
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
    id: `scaling-${metric}`,
    title: `${metric[0].toUpperCase()}${metric.slice(1)} against compute`,
    description:
      `Measured ${metric} of each predictor family (points), the fitted law (line) and its bootstrap band; the dashed rule is the target's compute.`,
    spec: unit({
      width: WIDTH,
      height: HEIGHT,
      layer: [
        {
          data: { values: band },
          mark: { type: "area", opacity: 0.18 },
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
          mark: { type: "line" },
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

function targetRule(summary: Summary) {
  return {
    data: {
      values: [{ run: `target ${runLabel(summary.target)}`, compute: summary.target.compute }],
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
  const all = summary.predictors
    .filter((p) => p.recall !== null)
    .map((p) => ({
      run: runLabel(p),
      model: p.model,
      compute: p.compute,
      recall: p.recall,
      precision: p.precision,
      meets: (p.precision ?? 0) >= min ? `precision ≥ ${min}` : `precision < ${min}`,
    }));
  const frontier: Row[] = [];
  let best = -1;
  for (const p of [...all].sort((a, b) => a.compute - b.compute)) {
    if ((p.precision ?? 0) < min || (p.recall ?? 0) <= best) continue;
    best = p.recall ?? 0;
    frontier.push({ run: p.run, compute: p.compute, recall: best, precision: p.precision });
  }
  const picks = summary.recommendations.flatMap((r) =>
    r.measured
      ? [{
        run: runLabel(r.measured),
        budget: r.budgetFraction,
        signal: r.measured.signal,
        compute: r.measured.compute,
        recall: r.measured.recall,
        precision: r.measured.precision,
      }]
      : []
  );
  const budgets = summary.recommendations.map((r) => ({
    budget: r.budgetFraction,
    compute: r.budget,
  }));
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
      `Every measured predictor; the step line is the best recall reachable at precision ≥ ${min} for a given compute; diamonds are the recommended picks, grey rules the budgets.`,
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
            tooltip: [fmt("budget", "budget", ".3~g"), nom("signal", "signal"), ...runTip],
          },
        },
      ],
    }),
  };
}

function prChart(summary: Summary): Chart {
  const values = summary.curves.flatMap((c) =>
    c.points.filter((p) => p.precision !== null).map((p) => ({
      run: runLabel(c),
      model: c.model,
      step: c.step,
      signal: c.signal,
      threshold: p.threshold,
      precision: p.precision,
      recall: p.recall,
    }))
  );
  return {
    ...(values.length === 0
      ? { note: "Nothing to plot: no threshold gives a defined precision and recall." }
      : {}),
    id: "pr-curves",
    title: "Precision–recall of thresholded predictors",
    description:
      "Each cheap run's continuous signal (score, matched prefix, or likelihood) thresholded at every level, against the target's memorization.",
    spec: unit({
      data: { values },
      facet: { column: nom("signal", "signal") },
      spec: {
        width: 260,
        height: 240,
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
          detail: nom("run", "run"),
          order: { field: "threshold", type: "quantitative" },
          tooltip: [
            nom("run", "run"),
            nom("signal", "signal"),
            fmt("threshold", "threshold", ".3~g"),
            fmt("precision", "precision", ".3f"),
            fmt("recall", "recall", ".3f"),
          ],
        },
      },
    }),
  };
}

function distributionChart(summary: Summary): Chart {
  const l = summary.experiment.memorization.continuation;
  const values = summary.distributions.flatMap((d) =>
    d.counts.flatMap((count, matches) =>
      count > 0 ? [{ run: runLabel(d), model: d.model, step: d.step, matches, count }] : []
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
