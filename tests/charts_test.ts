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
  const given = (spec.data as { values?: Row[] } | undefined)?.values ?? data;
  // A lookup transform joins fields of another table into each row (by key).
  const lookups = ((spec.transform as Node[] | undefined) ?? []).filter((t) => t.lookup);
  const own = given && lookups.length > 0
    ? given.map((row) => {
      let out = { ...row };
      for (const t of lookups) {
        const from = t.from as { data: { values: Row[] }; key: string; fields: string[] };
        const hit = from.data.values.find((v) => v[from.key] === row[t.lookup as string]);
        for (const f of from.fields) if (hit && f in hit) out = { ...out, [f]: hit[f] };
      }
      return out;
    })
    : given;
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
    "recall-compute",
    "scaling-recall",
    "scaling-precision",
    "scaling-precision-thresholded",
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
  const dist = buildCharts(fixtureSummary()).find((c) => c.id === "distributions")!;
  const svg = await new vega.View(vega.parse(compileChart(dist)), { renderer: "none" }).toSVG();
  assert.ok(
    svg.includes("s1&lt;img src=x"),
    "the evil model name should be in the legend, escaped",
  );
  assert.ok(EVIL_MODEL.includes(PLANTED));
});

Deno.test("the first chart is recall against compute: held-out frontier, picks on it, each family's law", () => {
  const summary = fixtureSummary();
  const [frontier] = buildCharts(summary);
  assert.equal(frontier.id, "recall-compute");
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
  // The fixture has thresholded recall laws: those are drawn, one line per family, each family
  // within what it can spend, in colours that are not the frontier's black.
  const law = layers.find((l) => l.mark.type === "line" && !l.mark.interpolate)!.data.values;
  const fits = summary.scaling.filter((f) => f.metric === "recall" && f.kind === "thresholded");
  assert.deepEqual([...new Set(law.map((r) => r.family))], fits.map((f) => f.family));
  assert.equal(law.length, fits.reduce((n, f) => n + f.curve.length, 0));
  const spec = frontier.spec as unknown as { layer: { encoding: Node }[] };
  const range = ((spec.layer[1].encoding.color as Node).scale as { range: string[] }).range;
  assert.ok(!range.includes("#000000"));
});

Deno.test("a smaller model's checkpoint law is drawn only up to its last checkpoint", () => {
  const summary = fixtureSummary();
  const fit = summary.scaling.find((f) => f.family === "sizes (final step)")!;
  const last = Math.max(...fit.points.map((p) => p.compute));
  // The same points relabelled as the checkpoints of one smaller model.
  summary.scaling.push({
    ...fit,
    family: "checkpoints of nano-s3",
    kind: "thresholded",
    points: fit.points.map((p) => ({ ...p, model: "nano-s3" })),
  });
  const [first] = buildCharts(summary);
  const band = (first.spec as unknown as { layer: { data: { values: Row[] } }[] }).layer[0]
    .data.values.filter((r) => r.family === "checkpoints of nano-s3");
  assert.ok(band.length > 0 && band.length < fit.curve.length, `${band.length} points`);
  assert.ok(band.every((r) => (r.compute as number) <= last * (1 + 1e-9)));
});

Deno.test("the page's chart data carries four significant digits (integers exact)", () => {
  const [first] = buildCharts(fixtureSummary());
  const vg = compileChart(first) as unknown as { data: { values?: Row[] }[] };
  const numbers = vg.data.flatMap((d) => d.values ?? []).flatMap((r) =>
    Object.values(r).filter((v): v is number => typeof v === "number")
  );
  assert.ok(numbers.length > 50);
  // Integers (counts, steps, compute given exactly) are kept as they are.
  const fractional = numbers.filter((x) => !Number.isInteger(x));
  assert.ok(fractional.length > 50);
  for (const x of fractional) assert.equal(x, Number(x.toPrecision(4)));
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
    frontier: [],
    computeForRecall: [],
    distributions: [],
    rateByRow: [],
    rateByDuplicates: null,
    correlations: { models: { labels: [], values: [], rows: 0 }, checkpoints: [] },
    pairMatrix: { labels: [], precision: [], recall: [] },
  };
  const compiled = compileAll(empty);
  assert.deepEqual(compiled.map((c) => c.chart.id), [
    "recall-compute",
    "scaling-precision",
    "pair-matrix",
  ]);
  for (const c of compiled) assert.deepEqual(c.warnings, [], c.chart.id);
  const notes = compiled.filter((c) => c.chart.note).map((c) => c.chart.id);
  assert.deepEqual(notes, ["recall-compute", "scaling-precision"]);
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
    transform: { filter?: string; lookup?: string; from?: { data: { values: Row[] } } }[];
  };
  assert.equal(spec.params[0].bind.input, "select");
  assert.equal(spec.params[0].bind.options.length, 2);
  assert.match(spec.transform[1].filter!, /datum\.best/);
  // Points name their curve by index; each curve's labels come once, by a lookup.
  const curves = spec.transform[0].from!.data.values;
  assert.equal(spec.transform[0].lookup, "c");
  assert.equal(curves.length, summary.curves.length);
  const best = new Map<string, Set<string>>();
  for (const v of curves) {
    if (!v.best) continue;
    best.set(v.model as string, (best.get(v.model as string) ?? new Set()).add(v.curve as string));
  }
  for (const p of spec.data.values) assert.deepEqual(Object.keys(p), ["c", "t", "p", "r"]);
  const models = new Set(summary.curves.map((c) => c.model));
  assert.equal(best.size, models.size);
  for (const curves of best.values()) assert.equal(curves.size, 1);
});
