/**
 * The report's section on the row features (issue 21): per budget, the
 * combined and data-only predictors beside the best single signal and the
 * paper's binary predictor, with held-out recall at the precision floor; and
 * per kind of personal data, the rows with it, what the target memorized and
 * what each predictor catches, with masked examples only.
 *
 * @module
 */
import type { FeatureSummary, Interval, Summary } from "../analysis/summary.ts";

/** Escapes text for HTML (as html.ts `escapeHtml`). */
const e = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function num(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(x < 0.001 ? 3 : 1)}%`;
}

function recall(x: number | null | undefined, interval: Interval | null | undefined): string {
  if (x === null || x === undefined) return "—";
  return `${num(x)}${
    interval ? ` <span class="ci">[${num(interval.lo)}, ${num(interval.hi)}]</span>` : ""
  }`;
}

function tableHtml(head: string[], rows: string[][]): string {
  const th = head.map((h) => `<th scope="col">${e(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<div class="table-wrap"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** The section (empty when the run folder has no row features). */
export function featuresSection(s: Summary): string {
  const f: FeatureSummary | undefined = s.features;
  if (!f) return "";
  const p = f.predictors;
  const c = f.cost;
  const share = c && c.shareOfScoring !== null
    ? `, ${pct(c.shareOfScoring)} of the ${num(c.scoringSeconds, 1)} s the scoring of every ` +
      "checkpoint took (both measured wall time on this run's machine; no FLOPs are estimated " +
      "for the features, they count 0 in the budgets)"
    : "";
  const cost = `<p class="muted">Row features of ${f.rows} rows from ${f.shards} data shards ` +
    `(${f.tokens} tokens, every position) in ${num(f.seconds, 2)} s${share}; duplicate counts ` +
    `from ${
      f.duplicates === "computed" ? "the computed window counts" : "the data.duplicates file"
    }.</p>`;
  if (!p) return `<section id="features">\n<h2>Row features</h2>\n${cost}\n</section>`;
  const budgets = budgetTable(p);
  const personal = p.personal.length === 0
    ? `<p class="muted">No personal data found in the rows' windows.</p>`
    : tableHtml(
      ["kind", "rows", "memorized by the target", "caught (held out)", "examples (masked)"],
      p.personal.map((k) => [
        e(k.kind),
        String(k.rows),
        String(k.memorized),
        k.caught.map((c) => `${e(c.predictor)}: ${c.caught} (${recall(c.recall, c.recallCI)})`)
          .join("<br>"),
        k.examples.map((x) => `row ${x.row}: <code>${e(x.masked)}</code>`).join("<br>"),
      ]),
    );
  return `<section id="features">
<h2>Row features: combined and data-only predictors</h2>
${cost}
<p class="muted">Held-out recall (95% interval) at precision ≥ ${s.experiment.minPrecision} over the
${p.memorized} memorized of ${p.rows} rows with features: what the recommendation picks among every
candidate (the one that wins, held out), the combined predictor (logistic regression on the cheap
runs' signals within the budget and the row features, cross-fitted; its compute is theirs), the row
features alone (no model compute), the best single run's signal and the paper's binary
predictor.</p>
${budgets}
<h3>Personal data</h3>
${personal}
</section>`;
}

/** Per budget: what wins, the combined and data-only predictors, the best single and binary ones. */
function budgetTable(p: NonNullable<FeatureSummary["predictors"]>): string {
  return tableHtml(
    [
      "budget",
      "recommended (wins, held out)",
      "combined",
      "runs it uses (features' share of their scoring time)",
      "data only",
      "best single signal",
      "paper's binary",
    ],
    p.budgets.map((b) => [
      e(String(b.budgetFraction)),
      b.recommended
        ? `${recall(b.recommended.recall, b.recommended.recallCI)} <span class="muted">${
          e(`${b.recommended.signal}: ${b.recommended.label}`)
        }</span>`
        : "—",
      recall(b.combined.recall, b.combined.recallCI),
      e(b.runs.map((r) => `${r.model}@${r.step}`).join(", ") || "none (data only)") +
      (b.cost && b.runs.length > 0
        ? ` <span class="muted">(scored in ${num(b.cost.scoringSeconds, 2)} s; the features are ${
          pct(b.cost.featureShare)
        } of scoring + features)</span>`
        : ""),
      recall(b.dataOnly.recall, b.dataOnly.recallCI),
      b.bestSingle
        ? `${recall(b.bestSingle.recall, b.bestSingle.recallCI)} <span class="muted">${
          e(`${b.bestSingle.model}@${b.bestSingle.step} ${b.bestSingle.signal}`)
        }</span>`
        : "—",
      b.paperBinary
        ? `${recall(b.paperBinary.recall, b.paperBinary.recallCI)} <span class="muted">${
          e(`${b.paperBinary.model}@${b.paperBinary.step}`)
        }</span>`
        : "—",
    ]),
  );
}
