import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { buildCharts, compileChart } from "../reports/page/charts.ts";
import { escapeHtml, jsonForScript, renderHtml, scriptHash } from "../reports/page/html.ts";
import { predictorsCsv, writeReport } from "../reports/page/report_files.ts";
import { vendorScripts, wrapInterpreter } from "../reports/page/vendor.ts";
import type { Summary } from "../reports/analysis/summary.ts";
import { EVIL_MODEL, fixtureSummary, PLANTED } from "./fixtures/report_summary.ts";
import { floorGap } from "../reports/analysis/floor.ts";
import { wilson } from "../reports/analysis/stats.ts";

async function page(summary: Summary = fixtureSummary()): Promise<string> {
  const charts = buildCharts(summary).map((chart) => ({ chart, vega: compileChart(chart) }));
  return renderHtml(summary, charts, await vendorScripts());
}

/** The page without its inline scripts and JSON block: what the HTML parser builds elements from. */
function markup(html: string): string {
  return html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/g, "<script></script>");
}

Deno.test("escapeHtml escapes the five HTML-significant characters", () => {
  assert.equal(
    escapeHtml(`<a href="x" onclick='y'>&amp;</a>`),
    "&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;amp;&#60;/a&#62;",
  );
});

Deno.test("jsonForScript hides <, >, &, U+2028 and U+2029 and round-trips", () => {
  const value = { s: "</script><!-- & \u2028\u2029 -->", n: [1, null, 2.5] };
  const text = jsonForScript(value);
  assert.ok(!/[<>&\u2028\u2029]/.test(text), text);
  assert.deepEqual(JSON.parse(text), value);
});

Deno.test("planted markup never reaches the page as markup", async () => {
  const html = await page();
  const body = markup(html);
  assert.ok(!body.includes("<img"), "an <img> element in the page");
  assert.equal((html.match(/<script\b/gi) ?? []).length, 4);
  assert.ok(body.includes(escapeHtml(EVIL_MODEL)));
  assert.ok(body.includes(escapeHtml(PLANTED)));
  // The JSON block carries the name, escaped for a script element.
  const json = html.match(
    /<script type="application\/json" id="report-specs">([\s\S]*?)<\/script>/,
  )!;
  assert.ok(json[1].includes("s1\\u003cimg src=x"));
  // No resource is referenced by the page's markup.
  assert.ok(!/<[a-z][^>]*\s(src|href)=/i.test(body), "the page references a resource");
});

Deno.test("the Content-Security-Policy allows exactly the page's inline scripts and no network", async () => {
  const html = await page();
  const csp = html.match(/http-equiv="Content-Security-Policy" content="([^"]*)"/)![1];
  assert.match(csp, /default-src 'none'/);
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  assert.equal(scripts.length, 3);
  const allowed = csp.match(/script-src ([^;]*)/)![1].split(" ");
  assert.deepEqual(allowed, await Promise.all(scripts.map(scriptHash)));
  assert.ok(!csp.includes("unsafe-eval") && !csp.includes("script-src 'unsafe-inline'"));
});

Deno.test("the answer comes first and missing shards raise a banner", async () => {
  const html = await page();
  const order = [
    'id="answer"',
    'id="verdict"',
    'id="chart-recall-compute"',
    'id="budgets"',
    'id="charts"',
    'id="details"',
    'id="examples"',
    'id="run"',
  ].map((s) => html.indexOf(s));
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  assert.ok(order[0] > 0);
  assert.match(html, /class="banner"[\s\S]*nano-s5\/step143\/shard00002/);
  const complete = fixtureSummary();
  complete.run.missingShards = [];
  assert.ok(!(await page(complete)).includes(`class="banner"`));
});

Deno.test("every chart has its container and the reproduce command is shown", async () => {
  const summary = fixtureSummary();
  const html = await page(summary);
  for (const c of buildCharts(summary)) assert.ok(html.includes(`id="chart-${c.id}"`), c.id);
  assert.ok(html.includes("deno task experiment experiments/nano.yaml # &#60;img"));
});

Deno.test("predictorsCsv quotes untrusted names and leaves undefined cells empty", () => {
  const s = fixtureSummary();
  s.predictors[1].model = "=HYPERLINK(1)";
  s.predictors[1].precision = null;
  const lines = predictorsCsv(s).split("\r\n");
  assert.equal(lines.length, s.predictors.length + 2);
  assert.equal(lines[lines.length - 1], "");
  assert.match(lines[0], /^model,step,final,parameters,rows_compared,/);
  assert.ok(lines[1].startsWith(`"s1<img src=x onerror=""window.__pwned=1"">`));
  const cells = lines[2].split(",");
  assert.equal(cells[0], "'=HYPERLINK(1)");
  assert.equal(cells[1], "83");
  assert.equal(cells[10], "");
});

Deno.test("wrapInterpreter turns the ES module into a classic script, or says what changed", () => {
  const src = "import { a, b } from 'vega-util';\nfunction f () { return a + b; }\n" +
    "export { f as expressionInterpreter };\n//# sourceMappingURL=x.map\n";
  const out = wrapInterpreter(src);
  const g = { vega: { a: 1, b: 2 } } as Record<string, unknown>;
  new Function("globalThis", "vega", out)(g, g.vega);
  assert.equal((g.vegaInterpreter as () => number)(), 3);
  assert.ok(!out.includes("sourceMappingURL"));
  assert.throws(() => wrapInterpreter("import x from 'y';\n" + src), /unexpected module shape/);
});

Deno.test("writeReport writes the page, the summary and the CSV", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const summary = fixtureSummary();
    const out = await writeReport(summary, dir);
    assert.deepEqual(JSON.parse(await readFile(out.summary, "utf8")), summary);
    assert.equal(await readFile(out.csv, "utf8"), predictorsCsv(summary));
    assert.match(await readFile(out.html, "utf8"), /^<!DOCTYPE html>/);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "predictors.csv",
      "report.html",
      "summary.json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one table row per budget, why the floor fails under it, long tables collapsed", async () => {
  const s = fixtureSummary();
  const r = s.recommendations[1];
  r.floorHolds = false;
  r.measured!.precision = 93 / 100;
  r.measured!.precisionCI = wilson(93, 100);
  const html = await page(s);
  const budgets = html.match(/<table class="budgets">[\s\S]*?<\/table>/)![0];
  assert.equal((budgets.match(/<tr>/g) ?? []).length, s.recommendations.length + 1);
  assert.equal((budgets.match(/<details>/g) ?? []).length, s.recommendations.length);
  const why = html.match(/<ul class="why">([\s\S]*?)<\/ul>/)![1];
  assert.equal((why.match(/<li>/g) ?? []).length, 1);
  assert.ok(why.includes(escapeHtml(floorGap(r.measured!, 0.9)!.sentence)), why);
  assert.match(
    why,
    /^<li><strong>10%<\/strong> \(memorized <span class="muted">by<\/span> s1&#60;img/,
  );
  // The verdict's three lines come before the first chart.
  const verdict = html.match(/<ul class="verdict" id="verdict">([\s\S]*?)<\/ul>/)![1];
  assert.equal((verdict.match(/<li>/g) ?? []).length, 3);
  // Six fitted laws: a plain table; twelve: collapsed behind its heading.
  assert.match(html, /<h3>Fitted scaling laws<\/h3>\n<div class="table-wrap">/);
  s.scaling = [...s.scaling, ...s.scaling];
  assert.match(
    await page(s),
    /<details class="table"><summary><h3>Fitted scaling laws<\/h3> <span class="muted">\(12 rows\)<\/span><\/summary>/,
  );
});
