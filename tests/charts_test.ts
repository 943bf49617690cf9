import assert from "node:assert/strict";
import * as vega from "vega";
import {
  buildCharts,
  type Chart,
  CHART_CONFIG,
  compileChart,
  OKABE_ITO,
} from "../reports/page/charts.ts";
import type { Summary } from "../reports/analysis/summary.ts";
import { EVIL_MODEL, fixtureSummary, PLANTED } from "./fixtures/report_summary.ts";

type Node = Record<string, unknown>;
type Row = Record<string, unknown>;

/** Every unit (a spec with a mark) with the data it sees and the encodings it inherits. */
function units(spec: Node, data: Row[] | null = null, inherited: Node = {}): {
  mark: unknown;
  data: Row[] | null;
  encoding: Node;
  facetFields: string[];
}[] {
  const own = (spec.data as { values?: Row[] } | undefined)?.values ?? data;
  const encoding = { ...inherited, ...(spec.encoding as Node | undefined) };
  const out: ReturnType<typeof units> = [];
  const facet = spec.facet as Node | undefined;
  const facetFields = facet
    ? (typeof facet.field === "string"
      ? [facet.field]
      : Object.values(facet).map((f) => (f as { field: string }).field))
    : [];
  if (spec.mark) out.push({ mark: spec.mark, data: own, encoding, facetFields });
  for (const child of (spec.layer as Node[] | undefined) ?? []) {
    out.push(...units(child, own, encoding));
  }
  if (spec.spec) {
    for (const u of units(spec.spec as Node, own, encoding)) {
      out.push({ ...u, facetFields: [...u.facetFields, ...facetFields] });
    }
  }
  return out;
}

/** Field names an encoding refers to (tooltips, conditions and sort arrays included). */
function fields(encoding: Node): string[] {
  const out: string[] = [];
  const visit = (def: unknown) => {
    if (Array.isArray(def)) def.forEach(visit);
    else if (def && typeof def === "object") {
      const d = def as Node;
      if (typeof d.field === "string") out.push(d.field);
      if (d.condition) visit(d.condition);
    }
  };
  Object.values(encoding).forEach(visit);
  return out;
}

function compileAll(summary: Summary): { chart: Chart; warnings: string[] }[] {
  return buildCharts(summary).map((chart) => {
    const warnings: string[] = [];
    compileChart(chart, warnings);
    return { chart, warnings };
  });
}

Deno.test("every chart of the fixture compiles with Vega-Lite without warnings", () => {
  const compiled = compileAll(fixtureSummary());
  assert.deepEqual(compiled.map((c) => c.chart.id), [
    "scaling-recall",
    "scaling-precision",
    "scaling-recall-thresholded",
    "scaling-precision-thresholded",
    "frontier",
    "pr-curves",
    "distributions",
    "corr-models",
    "corr-checkpoints",
    "pair-matrix",
    "rate-by-row",
    "rate-by-duplicates",
  ]);
  for (const c of compiled) assert.deepEqual(c.warnings, [], c.chart.id);
});

Deno.test("every encoded field exists in every row of the data it reads", () => {
  for (const chart of buildCharts(fixtureSummary())) {
    const us = units(chart.spec as unknown as Node);
    assert.ok(us.length > 0, chart.id);
    for (const u of us) {
      assert.ok(u.data, `${chart.id}: a mark without inline data`);
      assert.ok(u.data.length > 0, `${chart.id}: empty data`);
      for (const field of [...fields(u.encoding), ...u.facetFields]) {
        for (const row of u.data) {
          assert.ok(
            field in row,
            `${chart.id}: field "${field}" missing in ${JSON.stringify(row)}`,
          );
        }
      }
    }
  }
});

Deno.test("every mark has a tooltip and all charts share one colour-blind-safe style", () => {
  for (const chart of buildCharts(fixtureSummary())) {
    const spec = chart.spec as unknown as Node;
    assert.equal(spec.config, CHART_CONFIG);
    for (const u of units(spec)) {
      assert.ok(Array.isArray(u.encoding.tooltip), `${chart.id}: a mark without tooltip`);
    }
  }
  assert.deepEqual((CHART_CONFIG.range as { category: string[] }).category, OKABE_ITO);
});

Deno.test("charts render to SVG with Vega, drawing untrusted names as escaped text", async () => {
  for (const chart of buildCharts(fixtureSummary())) {
    const view = new vega.View(vega.parse(compileChart(chart)), { renderer: "none" });
    const svg = await view.toSVG();
    view.finalize();
    assert.match(svg, /^<svg/, chart.id);
    assert.ok(!svg.includes("<img"), `${chart.id}: raw markup in the SVG`);
    assert.ok(!svg.includes("<script>"), `${chart.id}: raw markup in the SVG`);
    const marks = svg.match(/<(path|line|text|rect)\b/g)?.length ?? 0;
    assert.ok(marks > 10, `${chart.id}: only ${marks} SVG elements`);
  }
  const frontier = buildCharts(fixtureSummary()).find((c) => c.id === "frontier")!;
  const svg = await new vega.View(vega.parse(compileChart(frontier)), { renderer: "none" }).toSVG();
  assert.ok(
    svg.includes("s1&lt;img src=x"),
    "the evil model name should be in the legend, escaped",
  );
  assert.ok(EVIL_MODEL.includes(PLANTED));
});

Deno.test("the frontier line is the held-out frontier, and every recommended pick lies on it", () => {
  const summary = fixtureSummary();
  const frontier = buildCharts(summary).find((c) => c.id === "frontier")!;
  const layers = (frontier.spec as unknown as {
    layer: {
      mark: { type: string; interpolate?: string; shape?: string };
      data: { values: Row[] };
    }[];
  }).layer;
  const line = layers.find((l) => l.mark.interpolate === "step-after")!.data.values;
  assert.deepEqual(
    line.map((r) => [r.run, r.compute, r.recall]),
    summary.frontier.map((f) => [
      `${f.measured!.model}@${f.measured!.step}`,
      f.budget,
      f.measured!.recall,
    ]),
  );
  const picks = layers.find((l) => l.mark.shape === "diamond")!.data.values;
  assert.equal(picks.length, summary.recommendations.filter((r) => r.measured).length);
  for (const p of picks) {
    assert.ok(
      line.some((l) => l.compute === p.compute && l.recall === p.recall),
      `pick ${p.run} at budget ${p.budget} is on the line`,
    );
  }
});

Deno.test("optional sections give no chart, and an empty summary still compiles", () => {
  const s = fixtureSummary();
  s.rateByDuplicates = null;
  s.curves = [];
  const ids = buildCharts(s).map((c) => c.id);
  assert.ok(!ids.includes("rate-by-duplicates"));
  assert.ok(!ids.includes("pr-curves"));

  const empty: Summary = {
    ...fixtureSummary(),
    predictors: [],
    curves: [],
    scaling: [],
    recommendations: [],
    distributions: [],
    rateByRow: [],
    rateByDuplicates: null,
    correlations: { models: { labels: [], values: [], rows: 0 }, checkpoints: [] },
    pairMatrix: { labels: [], precision: [], recall: [] },
  };
  const compiled = compileAll(empty);
  assert.deepEqual(compiled.map((c) => c.chart.id), [
    "scaling-recall",
    "scaling-precision",
    "frontier",
    "pair-matrix",
  ]);
  for (const c of compiled) assert.deepEqual(c.warnings, [], c.chart.id);
  const notes = compiled.filter((c) => c.chart.note).map((c) => c.chart.id);
  assert.deepEqual(notes, ["scaling-recall", "scaling-precision", "frontier"]);
  assert.ok(buildCharts(fixtureSummary()).every((c) => c.note === undefined));
});

Deno.test("rate charts split runs into panels so each needs few colours", () => {
  const chart = buildCharts(fixtureSummary()).find((c) => c.id === "rate-by-row")!;
  const values = (chart.spec as unknown as { data: { values: Row[] } }).data.values;
  const panels = new Map<string, Set<unknown>>();
  for (const v of values) {
    const runs = panels.get(v.group as string) ?? new Set();
    runs.add(v.run);
    panels.set(v.group as string, runs);
  }
  assert.deepEqual(Object.fromEntries([...panels].map(([g, r]) => [g, [...r]])), {
    "final step of each model": [`${EVIL_MODEL}@143`, "nano-s3@143", "nano-s5@143"],
    "checkpoints of nano-s5": ["nano-s5@143"],
  });
});

Deno.test("precision–recall curves show the best run and signal per model, the rest on a menu", () => {
  const summary = fixtureSummary();
  const pr = buildCharts(summary).find((c) => c.id === "pr-curves")!;
  const spec = pr.spec as unknown as {
    data: { values: Row[] };
    params: { name: string; bind: { input: string; options: string[] } }[];
    transform: { filter: string }[];
  };
  assert.equal(spec.params[0].bind.input, "select");
  assert.equal(spec.params[0].bind.options.length, 2);
  assert.match(spec.transform[0].filter, /datum\.best/);
  const best = new Map<string, Set<string>>();
  for (const v of spec.data.values) {
    if (!v.best) continue;
    best.set(v.model as string, (best.get(v.model as string) ?? new Set()).add(v.curve as string));
  }
  const models = new Set(summary.curves.map((c) => c.model));
  assert.equal(best.size, models.size);
  for (const curves of best.values()) assert.equal(curves.size, 1);
});
