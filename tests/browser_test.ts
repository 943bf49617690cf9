/**
 * Opens a rendered report in headless Chromium from a `file:` URL with the
 * network offline and checks: every chart is a Vega view with data and marks,
 * no console error (CSP violations included), no request besides the page,
 * and planted HTML/script in a model name and in training text shows as text
 * and runs nothing. Saves a PNG screenshot to $TEST_ARTIFACTS (default
 * runs/test-artifacts/report.png).
 *
 * Needs Debian's `chromium`: installed with apt-get when missing and this is
 * root, else the tests are skipped with one line saying what to install; set
 * SKIP_BROWSER=1 to skip them.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BrowserPage, ensureChromium, launchChromium } from "./browser.ts";
import { writeReport } from "../reports/page/report_files.ts";
import { buildCharts } from "../reports/page/charts.ts";
import { forecastPage } from "../reports/page/forecast_page.ts";
import { EVIL_MODEL, fixtureSummary, PLANTED } from "./fixtures/report_summary.ts";
import { fixtureForecast } from "./fixtures/forecast_file.ts";

const chromium = await ensureChromium();
if (!chromium.ok) console.log(chromium.line);
const skip = !chromium.ok;

/** What the page reports about itself once its charts are drawn. */
interface PageFacts {
  rendered: string | null;
  views: { id: string; marks: number; rows: number }[];
  chartDivs: number;
  chartErrors: string[];
  bodyText: string;
  sampleText: string;
  evilImages: number;
  scripts: number;
  pwned: unknown;
  /** Text of the tooltip shown when hovering the first chart's first point. */
  tooltip?: string;
}

/** Hovers the first point of the recall-against-compute chart and returns the tooltip's text. */
async function hoverFirstPoint(page: BrowserPage): Promise<string> {
  const at = await page.evaluate<{ x: number; y: number } | null>(`(() => {
    const el = document.querySelector("#chart-recall-compute g.mark-symbol path");
    if (!el) return null;
    el.scrollIntoView({ block: "center" });
    const r = el.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  })()`);
  if (!at) return "";
  await page.hover(at.x, at.y);
  await page.waitFor(`document.querySelector(".report-tooltip").style.display === "block"`, 5000)
    .catch(() => {});
  return await page.evaluate<string>(`document.querySelector(".report-tooltip").textContent`);
}

const FACTS = `(() => {
  const r = window.__report;
  const views = r.views.map(({ id, view }) => {
    const el = document.getElementById("chart-" + id);
    const marks = el.querySelectorAll(
      "g.mark-symbol path, g.mark-line path, g.mark-area path, g.mark-rect path, g.mark-rule line, g.mark-text text"
    ).length;
    const state = view.getState({ data: vega.truthy, signals: vega.falsy, recurse: true });
    let rows = 0;
    const count = (d) => {
      for (const k of Object.keys(d || {})) {
        const v = d[k];
        if (Array.isArray(v)) rows += v.length;
        else if (v && typeof v === "object") count(v);
      }
    };
    count(state.data);
    return { id, marks, rows };
  });
  return {
    rendered: document.documentElement.getAttribute("data-rendered"),
    views,
    chartDivs: document.querySelectorAll("div.chart").length,
    chartErrors: r.errors,
    bodyText: document.body.textContent,
    sampleText: Array.from(document.querySelectorAll("pre.sample")).map((e) => e.textContent).join("\\n"),
    evilImages: document.querySelectorAll("img").length,
    scripts: document.querySelectorAll("script").length,
    pwned: window.__pwned,
  };
})()`;

/** Opens a report file offline and returns what the page says about itself. */
async function inspect(
  htmlPath: string,
  screenshot: string,
): Promise<{ facts: PageFacts; requests: string[]; errors: string[] }> {
  const browser = await launchChromium();
  try {
    const page = await BrowserPage.open(browser.endpoint);
    try {
      const url = pathToFileURL(htmlPath).href;
      await page.goto(url);
      await page.waitFor("window.__report && window.__report.done");
      const facts = await page.evaluate<PageFacts>(FACTS);
      facts.tooltip = await hoverFirstPoint(page);
      await mkdir(join(screenshot, ".."), { recursive: true });
      await writeFile(screenshot, await page.screenshot());
      const requests = page.log.requests.filter((u) => u !== url);
      return { facts, requests, errors: page.log.errors };
    } finally {
      page.close();
    }
  } finally {
    await browser.close();
  }
}

/** Every chart drawn with data, nothing fetched, nothing logged as an error. */
function assertRendered(facts: PageFacts, requests: string[], errors: string[], ids?: string[]) {
  assert.deepEqual(errors, []);
  assert.deepEqual(requests, []);
  assert.equal(facts.rendered, "ok");
  assert.deepEqual(facts.chartErrors, []);
  assert.ok(facts.views.length >= 5, `only ${facts.views.length} charts`);
  assert.equal(facts.chartDivs, facts.views.length);
  if (ids) assert.deepEqual(facts.views.map((v) => v.id).sort(), [...ids].sort());
  for (const v of facts.views) {
    assert.ok(v.marks > 0, `chart ${v.id} drew no marks`);
    assert.ok(v.rows > 0, `chart ${v.id} has no data`);
  }
  assert.equal(facts.evilImages, 0);
  assert.equal(facts.scripts, 4, "one JSON block and three inline scripts, no more");
  assert.equal(facts.pwned, undefined);
}

Deno.test({
  name: "report page renders offline, draws every chart and shows planted HTML as text",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "report-browser-" });
    try {
      const summary = fixtureSummary();
      const out = await writeReport(summary, dir);
      const artifacts = Deno.env.get("TEST_ARTIFACTS") ?? "runs/test-artifacts";
      const png = join(artifacts, "report.png");
      const { facts, requests, errors } = await inspect(out.html, png);
      assertRendered(facts, requests, errors, buildCharts(summary).map((c) => c.id));
      // Planted markup is visible as text, and nothing of it ran or became an element.
      assert.ok(facts.bodyText.includes(EVIL_MODEL), "the model name should show as text");
      assert.ok(facts.sampleText.includes(PLANTED), "the training text should show as text");
      assert.equal(facts.evilImages, 0);
      assert.equal(facts.scripts, 4, "one JSON block and three inline scripts, no more");
      assert.equal(facts.pwned, undefined);
      assert.match(facts.tooltip ?? "", /^run.+family.+compute.+recall/);
      const size = (await Deno.stat(png)).size;
      assert.ok(size > 10_000, `screenshot ${png} is only ${size} bytes`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const given = Deno.env.get("REPORT_HTML");

Deno.test({
  name: "a given report (env REPORT_HTML, e.g. runs/nano/report.html) renders offline",
  ignore: skip || !given,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const artifacts = Deno.env.get("TEST_ARTIFACTS") ?? "runs/test-artifacts";
    const png = join(artifacts, "given-report.png");
    const path = await Deno.realPath(given!);
    const { facts, requests, errors } = await inspect(path, png);
    assertRendered(facts, requests, errors);
    const { page, close } = await openAtFirstScreen(path);
    try {
      await assertOnFirstScreen(page, FIRST_SCREEN);
      await writeFile(
        join(artifacts, "given-report-first-screen.png"),
        await page.screenshotViewport(),
      );
    } finally {
      await close();
    }
  },
});

/** The first screen: the viewport at the top of the page. */
const SCREEN = { width: 1280, height: 800 };

/** Elements that must lie wholly inside the first screen of the report. */
const FIRST_SCREEN = ["h1", "#verdict", "#chart-recall-compute svg"];

/** Opens a page offline at 1280×800, waits for its charts; returns the page and browser to close. */
async function openAtFirstScreen(htmlPath: string) {
  const browser = await launchChromium();
  const page = await BrowserPage.open(browser.endpoint);
  await page.setViewport(SCREEN.width, SCREEN.height);
  const url = pathToFileURL(htmlPath).href;
  await page.goto(url);
  await page.waitFor("window.__report && window.__report.done");
  return {
    page,
    url,
    async close() {
      page.close();
      await browser.close();
    },
  };
}

/** Asserts each selector's box is inside the first screen; returns the boxes. */
async function assertOnFirstScreen(page: BrowserPage, selectors: string[]) {
  const boxes = await page.boxes(selectors);
  for (const sel of selectors) {
    const b = boxes[sel];
    assert.ok(b, `${sel}: no such element`);
    assert.ok(
      b.bottom - b.top > 10 && b.right - b.left > 10,
      `${sel}: empty box ${JSON.stringify(b)}`,
    );
    assert.ok(
      b.top >= 0 && b.left >= 0 && b.bottom <= SCREEN.height && b.right <= SCREEN.width,
      `${sel} is not inside the first ${SCREEN.width}×${SCREEN.height} screen: ${
        JSON.stringify(b)
      }`,
    );
  }
  return boxes;
}

const ARTIFACTS = Deno.env.get("TEST_ARTIFACTS") ?? "runs/test-artifacts";

Deno.test({
  name:
    "the report's first screen (1280×800) holds the title, the verdict and recall against compute",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "report-first-screen-" });
    try {
      const out = await writeReport(fixtureSummary(), dir);
      const { page, close } = await openAtFirstScreen(out.html);
      try {
        const boxes = await assertOnFirstScreen(page, FIRST_SCREEN);
        // The verdict comes before the chart, and the chart drew its laws, frontier and picks.
        assert.ok(boxes["#verdict"]!.bottom <= boxes["#chart-recall-compute svg"]!.top);
        const lines = await page.evaluate<number>(
          `document.querySelectorAll("#verdict li").length`,
        );
        assert.equal(lines, 3);
        const marks = await page.evaluate<Record<string, number>>(`(() => {
          const svg = document.querySelector("#chart-recall-compute svg");
          return {
            lines: svg.querySelectorAll("g.mark-line path").length,
            areas: svg.querySelectorAll("g.mark-area path").length,
            symbols: svg.querySelectorAll("g.mark-symbol path").length,
          };
        })()`);
        assert.ok(
          marks.lines >= 2 && marks.areas >= 1 && marks.symbols >= 3,
          JSON.stringify(marks),
        );
        assert.deepEqual(page.log.errors, []);
        await mkdir(ARTIFACTS, { recursive: true });
        const png = join(ARTIFACTS, "report-first-screen.png");
        await writeFile(png, await page.screenshotViewport());
        assert.ok((await Deno.stat(png)).size > 10_000);
      } finally {
        await close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the forecast page renders its flagged rows and both charts offline, planted text as text",
  ignore: skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "forecast-browser-" });
    try {
      const f = fixtureForecast();
      const html = join(dir, "forecast.html");
      await writeFile(html, await forecastPage(f));
      const { page, url, close } = await openAtFirstScreen(html);
      try {
        const facts = await page.evaluate<PageFacts>(FACTS);
        const flaggedRows = await page.evaluate<number>(
          `document.querySelectorAll("table.flagged tbody tr").length`,
        );
        const cells = await page.evaluate<string[]>(
          `Array.from(document.querySelectorAll("table.flagged tbody tr:first-child td"))
            .map((td) => td.textContent)`,
        );
        assert.deepEqual(page.log.errors, []);
        assert.deepEqual(page.log.requests.filter((u) => u !== url), []);
        assert.equal(facts.rendered, "ok");
        assert.deepEqual(facts.views.map((v) => v.id), ["forecast-distribution", "forecast-pr"]);
        for (const v of facts.views) {
          assert.ok(v.marks > 5, `chart ${v.id} drew ${v.marks} marks`);
          assert.ok(v.rows > 0, `chart ${v.id} has no data`);
        }
        assert.equal(flaggedRows, f.examples.length);
        // Row, signal value, then the decoded text with line breaks shown as ↵.
        assert.equal(cells[0], "100");
        assert.equal(cells[1], "0.05");
        assert.equal(
          cells[2],
          `def f0():↵    return ${PLANTED}  # line 0↵</pre><b>bold</b> & done`,
        );
        assert.ok(facts.bodyText.includes(PLANTED));
        assert.equal(facts.evilImages, 0);
        assert.equal(facts.scripts, 4, "one JSON block and three inline scripts, no more");
        assert.equal(facts.pwned, undefined);
        await mkdir(ARTIFACTS, { recursive: true });
        const png = join(ARTIFACTS, "forecast.png");
        await writeFile(png, await page.screenshot());
        assert.ok((await Deno.stat(png)).size > 10_000);
      } finally {
        await close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
