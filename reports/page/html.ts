/**
 * The report page: one self-contained HTML file, answer first. Pure except
 * for hashing: takes the {@link Summary}, the compiled chart specs and the
 * inlined scripts and returns the page text.
 *
 * Safety: every string from the data (model names, paths, decoded training
 * text) is untrusted. Text goes through {@link escapeHtml}; chart specs travel
 * in a `<script type="application/json">` escaped by {@link jsonForScript};
 * the page script writes only with `textContent`; a Content-Security-Policy
 * allows exactly the inline scripts (by SHA-256) and no network at all.
 *
 * @module
 */
import type { Spec as VegaSpec } from "vega";
import type { Chart } from "./charts.ts";
import {
  type Interval,
  isFeatureSignal,
  type PredictorRow,
  type Summary,
} from "../analysis/summary.ts";
import { type PickId, predictorLabel } from "../analysis/recommend.ts";
import { floorGap } from "../analysis/floor.ts";
import { headline } from "../analysis/verdict.ts";
import type { VendorScripts } from "./vendor.ts";
import { PAGE_SCRIPT, PAGE_STYLE } from "./page_assets.ts";
import { checkpointLabel } from "../../engine/types.ts";
import { featuresSection } from "./features_section.ts";

/** A chart ready for the page. */
export interface CompiledChart {
  chart: Chart;
  vega: VegaSpec;
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe to place inside a `<script>` element (no `<`, `>`, `&`, U+2028/2029 verbatim). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The CSP source expression (`'sha256-…'`) of an inline script's text. */
export async function scriptHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const bytes = new Uint8Array(digest);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `'sha256-${btoa(bin)}'`;
}

const e = escapeHtml;

function num(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);
}

function pct(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x)
    ? "—"
    : `${(x * 100).toFixed(digits)}%`;
}

function sci(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toExponential(2);
}

/** A threshold: integers as such, else up to 3 decimals. */
function thr(x: number | null): string {
  return x === null || !Number.isFinite(x) ? "—" : String(Number(x.toFixed(3)));
}

function ci(x: number | null, interval: Interval | null): string {
  if (x === null) return "—";
  const range = interval
    ? ` <span class="ci">[${num(interval.lo)}, ${num(interval.hi)}]</span>`
    : "";
  return `${num(x)}${range}`;
}

function tableHtml(head: string[], rows: string[][], cls = ""): string {
  const th = head.map((h) => `<th scope="col">${e(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<div class="table-wrap"><table class="${cls}"><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** Tables longer than this are collapsed behind their heading. */
export const COLLAPSE_ROWS = 10;

/** A titled table, collapsed (a `<details>`) when it has more than {@link COLLAPSE_ROWS} rows. */
function table(title: string, head: string[], rows: string[][]): string {
  const t = tableHtml(head, rows);
  return rows.length > COLLAPSE_ROWS
    ? `<details class="table"><summary><h3>${
      e(title)
    }</h3> <span class="muted">(${rows.length} rows)</span></summary>\n${t}\n</details>`
    : `<h3>${e(title)}</h3>\n${t}`;
}

/** `rule · model @ step` of a pick (a feature model: `P > t · row features + M@S`), on one line. */
function pickText(m: PickId) {
  const rule = m.signal === "binary"
    ? "memorized"
    : isFeatureSignal(m.signal)
    ? `${e(m.signal)} P &gt; ${e(thr(m.threshold))}`
    : `${m.signal} ${m.signal === "nll" ? "&lt;" : "≥"} ${e(thr(m.threshold))}`;
  return `${rule} <span class="muted">by</span> ${e(predictorLabel(m))}`;
}

/**
 * The budget table, one line per budget (the note, in-sample numbers and the
 * fitted law's family on demand), then one sentence per budget whose
 * precision floor does not hold saying why.
 */
function budgetTable(s: Summary): string {
  const floor = s.experiment.minPrecision;
  const gaps: { budgets: string[]; pick: string; sentence: string }[] = [];
  const rows = s.recommendations.map((r) => {
    const m = r.measured;
    const budget = `${e(pct(r.budgetFraction, r.budgetFraction < 0.1 ? 1 : 0))}`;
    const gap = m && !r.floorHolds ? floorGap(m, floor) : null;
    if (gap) {
      const last = gaps.at(-1);
      const pick = pickText(m!);
      if (last && last.pick === pick && last.sentence === gap.sentence) last.budgets.push(budget);
      else gaps.push({ budgets: [budget], pick, sentence: gap.sentence });
    }
    const fitted = r.fitted
      ? `${num(r.fitted.expectedRecall)} <span class="ci">[${num(r.fitted.interval.lo)}, ${
        num(r.fitted.interval.hi)
      }]</span>`
      : "—";
    const more = [
      e(r.note),
      ...(r.fitted
        ? [
          `Fitted law: the ${e(r.fitted.kind)} law of ${e(r.fitted.family)} (${e(r.fitted.form)}).`,
        ]
        : []),
      ...(m
        ? [
          `In-sample (on the rows that chose it): recall ${num(m.inSample.recall)}, precision ${
            num(m.inSample.precision)
          }; ${e(pct(m.foldAgreement, 0))} of folds chose it.`,
        ]
        : []),
      ...(r.stability !== null
        ? [`Stability: the best choice in ${e(pct(r.stability, 0))} of bootstrap resamples.`]
        : []),
    ].join(" ");
    return [
      `${budget} <span class="muted">${e(sci(r.budget))}</span>`,
      m ? pickText(m) : `<span class="muted">none reaches ${e(String(floor))}</span>`,
      m ? ci(m.recall, m.recallCI) : "—",
      m ? ci(m.precision, m.precisionCI) : "—",
      m ? (r.floorHolds ? "yes" : `<strong class="warn">no</strong>`) : "—",
      fitted,
      `<details><summary>note</summary><p>${more}</p></details>`,
    ];
  });
  const table = tableHtml(
    [
      "budget (of the target's compute)",
      "predictor",
      "recall, held out [95%]",
      "precision, held out [95%]",
      `floor ${floor} holds (95%)`,
      "fitted law expects [95%]",
      "",
    ],
    rows,
    "budgets",
  );
  const why = gaps.length === 0
    ? ""
    : `<p class="why-head">Why the floor ${e(String(floor))} does not hold:</p>
<ul class="why">${
      gaps.map((g) =>
        `<li><strong>${g.budgets.join(", ")}</strong> (${g.pick}): ${e(g.sentence)}</li>`
      )
        .join("\n")
    }</ul>`;
  return table + why;
}

function computeTable(s: Summary): string {
  const f = (v: number | null) => (v === null ? "—" : e(pct(v, 2)));
  const rows = (s.computeForRecall ?? []).map((c) => {
    const m = c.measured;
    const laws = c.laws.filter((l) => l.fraction !== null || l.hi !== null);
    return [
      e(pct(c.recall, 0)),
      m.fraction === null
        ? `<span class="muted">not reached (upper end reaches it from ${f(m.lo)})</span>`
        : `${f(m.fraction)} <span class="ci">[${f(m.lo)}, ${m.hi === null ? "—" : f(m.hi)}]</span>${
          m.pick
            ? `<br><span class="muted">${e(predictorLabel(m.pick))} ${e(m.pick.signal)}${
              m.pick.threshold === null ? "" : ` ${e(thr(m.pick.threshold))}`
            }</span>`
            : ""
        }`,
      laws.length === 0
        ? "—"
        : laws.map((l) =>
          `${e(l.kind)} · ${e(l.family)}: ${
            l.fraction === null ? "beyond its range" : f(l.fraction)
          }` +
          ` <span class="ci">[${f(l.lo)}, ${l.hi === null ? "beyond" : f(l.hi)}]</span>`
        ).join("<br>"),
    ];
  });
  return table(
    `Compute needed for a recall at precision ≥ ${s.experiment.minPrecision}`,
    ["recall", "measured frontier (held out) [interval]", "fitted laws [95% bootstrap]"],
    rows,
  );
}

function predictorRows(list: PredictorRow[]): string[][] {
  return list.map((p) => [
    e(p.model),
    String(p.step),
    e(sci(p.parameters)),
    e(pct(p.computeFraction, 2)),
    String(p.rowsCompared),
    ci(p.precision, p.precisionCI),
    ci(p.recall, p.recallCI),
    `${ci(p.recallAll, p.recallAllCI)}<br><span class="muted">covers ${
      pct(p.memorizedCoverage, 0)
    }</span>`,
    num(p.f1),
    e(pct(p.predictorRate, 2)),
  ]);
}

const PREDICTOR_HEAD = [
  "model",
  "step",
  "parameters",
  "compute",
  "rows",
  "precision [95% CI]",
  "recall, rows it scored [95% CI]",
  "recall, all memorized rows [95% CI]",
  "F1",
  "memorized",
];

function predictorTables(s: Summary): string {
  const t = s.target;
  const sizes = s.predictors.filter((p) => p.final && p.model !== t.model);
  const ckpts = s.predictors.filter((p) => p.model === t.model);
  const rest = s.predictors.filter((p) => !sizes.includes(p) && !ckpts.includes(p));
  return `
${
    table(
      `Smaller models (final step) predicting ${checkpointLabel(t)}`,
      PREDICTOR_HEAD,
      predictorRows(sizes),
    )
  }
${
    table(
      `Checkpoints of ${t.model} predicting its step ${t.step}`,
      PREDICTOR_HEAD,
      predictorRows(ckpts),
    )
  }
<details class="table"><summary><h3>All other runs</h3> <span class="muted">(${rest.length} rows)</span></summary>
${tableHtml(PREDICTOR_HEAD, predictorRows(rest))}
</details>`;
}

function scalingTable(s: Summary): string {
  const rows = s.scaling.map((f) => {
    const best = f.fits[0];
    return [
      e(f.family),
      e(f.kind ?? "binary"),
      e(f.metric),
      f.chosen ? e(f.chosen) : "—",
      best ? `<code>${e(best.formula)}</code>` : "—",
      best ? num(best.rmse) : "—",
      best ? num(best.looRmse) : "—",
      f.looLargest ? `${num(f.looLargest.predicted)} vs ${num(f.looLargest.actual)}` : "—",
    ];
  });
  return table(
    "Fitted scaling laws",
    [
      "family",
      "kind",
      "metric",
      "form",
      "fit",
      "RMSE",
      "LOO RMSE",
      "largest point: predicted vs actual",
    ],
    rows,
  );
}

function curveTable(s: Summary): string {
  const rows = s.curves.map((c) => [
    e(checkpointLabel(c)),
    e(c.signal),
    num(c.averagePrecision),
    num(c.recallAtBinaryPrecision),
    c.best
      ? `${c.signal === "nll" ? "&lt;" : "≥"} ${thr(c.best.threshold)} → ${
        num(c.best.precision)
      } / ${num(c.best.recall)}`
      : "—",
  ]);
  return table(
    "Thresholded predictors",
    [
      "run",
      "signal",
      "average precision",
      "recall at the binary predictor's precision",
      `best threshold (precision ≥ ${s.experiment.minPrecision}) → precision / recall`,
    ],
    rows,
  );
}

function curveSection(s: Summary): string {
  return s.curves.length === 0 ? "" : curveTable(s);
}

function examples(s: Summary): string {
  if (s.examples.length === 0) return `<p class="muted">The target memorized no scored row.</p>`;
  // Every run but the target itself.
  const predictors =
    s.predictors.filter((p) => p.model !== s.target.model || p.step !== s.target.step).length;
  return s.examples.map((x) => {
    const caught = x.caughtBy.length > 0
      ? x.caughtBy.map((p) => `<li>${e(checkpointLabel(p))}</li>`).join("")
      : `<li class="muted">no predictor</li>`;
    const text = x.context !== null || x.continuation !== null
      ? `<pre class="sample"><span class="ctx">${e(x.context ?? "")}</span><mark>${
        e(x.continuation ?? "")
      }</mark></pre>`
      : `<pre class="sample">${e(x.tokens.join(" "))}</pre><p class="muted">${
        x.tokens.length > 0 ? "token ids (no tokenizer given)" : "no tokens available for this row"
      }</p>`;
    return `<div class="example"><h4>row ${x.row}</h4>${text}
<p>caught by ${x.caughtBy.length} of ${predictors} predictors:</p>
<ul class="caught">${caught}</ul></div>`;
  }).join("\n");
}

function runSection(s: Summary): string {
  const r = s.run;
  const m = s.experiment.memorization;
  const settings: [string, string][] = [
    ["experiment file", s.experiment.file],
    ["target", checkpointLabel(s.experiment.target)],
    [
      "memorization",
      `offset ${m.offset}, context ${m.context}, continuation ${m.continuation}, mode ${m.mode}`,
    ],
    ["suppressed tokens", m.suppressedTokens.join(", ")],
    ["minimum precision", String(s.experiment.minPrecision)],
    ["sequences per step", String(s.experiment.sequencesPerStep)],
    ["tokens per sequence", String(s.experiment.tokensPerSequence)],
    ["parameter count", s.experiment.parameterCount],
    ["data", `${r.data.path}${r.data.fingerprint ? ` (fingerprint ${r.data.fingerprint})` : ""}`],
    ["devices", r.devices.join(", ") || "—"],
    ["started", r.startedAt ?? "—"],
    ["scoring time", r.seconds === null ? "—" : `${r.seconds.toFixed(1)} s`],
    ["rows per second", r.rowsPerSecond === null ? "—" : r.rowsPerSecond.toFixed(1)],
  ];
  if (r.imported) return importedSection(s, settings.slice(0, 7), r.imported);
  const dl = settings.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join("\n");
  const models = r.models.map((x) => [
    e(x.name),
    String(x.step),
    `<code>${e(x.path)}</code>`,
    x.fingerprint ? `<code>${e(x.fingerprint)}</code>` : "—",
  ]);
  return `<dl class="settings">${dl}</dl>
<h3>Reproduce</h3>
<pre class="command">${e(r.command)}</pre>
${table("Models", ["model", "step", "path", "fingerprint"], models)}`;
}

/** The run section of an imported run folder: what came from where, which rows count as scored. */
function importedSection(
  s: Summary,
  settings: [string, string][],
  imp: NonNullable<Summary["run"]["imported"]>,
): string {
  const r = s.run;
  const dl = [
    ...settings,
    ["imported", r.startedAt ?? "—"],
    [
      "rows restricted",
      imp.rows ? `--rows ${imp.rows.start}:${imp.rows.end}` : "no (--rows not given)",
    ],
  ].map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join("\n");
  const runs = imp.runs.map((x) => [
    e(checkpointLabel(x)),
    e(x.kind),
    String(x.scoredRows),
    String(x.memorized),
    e(x.rowsReason),
  ]);
  const files = imp.files.map((f) => [
    e(checkpointLabel(f)),
    `<code>${e(f.path)}</code>`,
    e(f.layout),
    String(f.bytes),
    String(f.rows),
    `<code>${e(f.sha256)}</code>`,
  ]);
  const ignored = imp.ignored.length > 0
    ? `<p class="muted">${imp.ignored.length} file(s) under the inputs matched no layout and were not
imported, e.g. <code>${e(imp.ignored.slice(0, 3).join(", "))}</code>.</p>`
    : "";
  return `<p>These scores were not produced by this harness: they were imported from the files below
(no model was run here, so there are no model paths, devices or scoring times).</p>
<dl class="settings">${dl}</dl>
<h3>Reproduce</h3>
<pre class="command">${e(r.command)}</pre>
${
    table(
      "Runs and the rows taken as scored",
      ["run", "kind", "rows scored", "memorized", "why these rows"],
      runs,
    )
  }
${table("Files", ["run", "path", "layout", "bytes", "records", "sha256"], files)}
${ignored}`;
}

function banner(s: Summary): string {
  return warningBanner(s.run.warnings ?? []) + missingBanner(s.run.missingShards);
}

function warningBanner(warnings: string[]): string {
  if (warnings.length === 0) return "";
  if (warnings.length === 1) {
    return `<div class="banner" role="alert"><strong>Warning:</strong> ${e(warnings[0])}</div>`;
  }
  const items = warnings.map((w) => `<li>${e(w)}</li>`).join("");
  return `<div class="banner" role="alert"><details><summary><strong>${warnings.length} warnings:</strong>
${e(warnings[0])} …</summary><ul>${items}</ul></details></div>`;
}

/** One line on the first screen; the shard list on demand. */
function missingBanner(missing: string[]): string {
  if (missing.length === 0) return "";
  const shown = missing.slice(0, 20).map((m) => `<li><code>${e(m)}</code></li>`).join("");
  const more = missing.length > 20 ? `<li>… and ${missing.length - 20} more</li>` : "";
  return `<div class="banner" role="alert"><details><summary><strong>Incomplete run:</strong>
${missing.length} shard(s) are missing, so some numbers use fewer rows than planned; run the
experiment again to score them.</summary><ul>${shown}${more}</ul></details></div>`;
}

/** The three-line answer at the top of the page. */
function verdictLines(s: Summary): string {
  const h = headline(s);
  const lines = [h.memorized, h.predictors, ...(h.computeForRecall ? [h.computeForRecall] : [])];
  return `<ul class="verdict" id="verdict">${lines.map((l) => `<li>${e(l)}</li>`).join("\n")}</ul>`;
}

/** The page's policy: nothing loads, and only the scripts of these hashes run. */
function contentSecurityPolicy(scriptHashes: string[]): string {
  return [
    "default-src 'none'",
    `script-src ${scriptHashes.join(" ")}`,
    "style-src 'unsafe-inline'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

/**
 * A self-contained page drawing compiled charts: the Content-Security-Policy
 * allowing exactly its inline scripts (Vega, its interpreter, the page
 * script, by SHA-256) and no network, the style, `body` (trusted markup
 * whose data went through {@link escapeHtml}; a `<div id="chart-ID">` per
 * chart), the specs as JSON and the scripts.
 */
export async function chartPage(
  title: string,
  body: string,
  charts: CompiledChart[],
  vendor: VendorScripts,
): Promise<string> {
  const specs = jsonForScript(charts.map((c) => ({ id: c.chart.id, spec: c.vega })));
  const scripts = [vendor.vega, vendor.interpreter, PAGE_SCRIPT];
  const csp = contentSecurityPolicy(await Promise.all(scripts.map(scriptHash)));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
${body}
<script type="application/json" id="report-specs">${specs}</script>
${scripts.map((js) => `<script>${js}</script>`).join("\n")}
</body>
</html>
`;
}

/** A chart's figure: title, how to read it, a note when it has nothing to plot, its container. */
export function figure(c: CompiledChart): string {
  const id = e(c.chart.id);
  return `<figure class="chart-figure">
<h3>${e(c.chart.title)}</h3>
<p class="muted">${e(c.chart.description)}</p>
${c.chart.note ? `<p class="chart-note">${e(c.chart.note)}</p>` : ""}
<div class="chart" id="chart-${id}" data-chart="${id}"></div>
</figure>`;
}

/** Renders the report page. */
export function renderHtml(
  summary: Summary,
  charts: CompiledChart[],
  vendor: VendorScripts,
): Promise<string> {
  const s = summary;
  const t = s.target;
  const [first, ...rest] = charts;
  return chartPage(
    `Memorization forecast: ${s.experiment.name}`,
    `<header>
<h1>Memorization forecast: ${e(s.experiment.name)}</h1>
</header>
${banner(s)}
<main>
<section id="answer">
${verdictLines(s)}
${first ? figure(first) : ""}
</section>
<section id="budgets">
<h2>Budgets</h2>
<p class="muted">Per budget (a fraction of the target's compute): the predictor with the highest
recall at precision ≥ ${s.experiment.minPrecision} within it, its recall and precision on rows it
was not chosen on (cross-fitted), and whether the floor holds with 95% confidence.</p>
${budgetTable(s)}
<details><summary>The verdict in full</summary><p>${e(s.verdict)}</p></details>
</section>
${featuresSection(s)}
<section id="charts">
<h2>Charts</h2>
${
      s.distributions.length === 0
        ? `<p class="muted">The runs carry only which rows were memorized, no per-row scores, so
score distributions, score correlations and thresholded-signal curves are left out.</p>`
        : ""
    }
${rest.map(figure).join("\n")}
</section>
<section id="details">
<h2>Details</h2>
${computeTable(s)}
<p class="muted">Recall and precision are measured against ${
      e(checkpointLabel(t))
    } on the rows both runs
scored; a predictor counts only at precision ≥ ${s.experiment.minPrecision}.</p>
${predictorTables(s)}
${scalingTable(s)}
${curveSection(s)}
</section>
<section id="examples">
<h2>Rows the target memorized</h2>
${examples(s)}
</section>
<section id="run">
<h2>The run</h2>
${runSection(s)}
</section>
</main>
<footer class="muted">summary.json schema version ${s.schemaVersion}. Every number on this page is
in summary.json beside it; the predictor table is in predictors.csv.</footer>`,
    charts,
    vendor,
  );
}
