/**
 * `deno task bench`: every benchmark, each measuring ratios side by side in
 * one run (scoring vs the reference algorithm and a MatMul peak; 1 vs 2
 * workers; analysis at scale; a Pythia-shape model against transformers.js and
 * the reference; workers × threads chosen by trial). Select some with arguments:
 * `deno task bench scoring pool analysis pythia devices`; `deno task bench
 * import` (import at the published size, bench/import.ts), `deno task bench
 * store` (report and export of a paper-shape store against the disk,
 * bench/store.ts), `deno task bench features` (exact window counts,
 * bench/features.ts, then the row-feature record and its models at 10M rows,
 * bench/features_record.ts, then the features step itself on a few million
 * selected rows, bench/features_step.ts), `deno task bench features-record`
 * and `deno task bench features-step` (the second or third part alone) run
 * only when named.
 *
 * @module
 */
import { runScoringBench } from "./scoring.ts";
import { runPoolBench } from "./pool.ts";
import { runAnalysisBench } from "./analysis.ts";
import { runPythiaBench } from "./pythia.ts";
import { runDevicesBench } from "./devices.ts";
import { runImportBench } from "./import.ts";
import { runFeaturesBench } from "./features.ts";
import { runRecordBench } from "./features_record.ts";
import { runStepBench } from "./features_step.ts";
import { runStoreBench } from "./store.ts";

const benches: Record<string, () => Promise<Record<string, number>>> = {
  scoring: () => runScoringBench(),
  pool: () => runPoolBench(),
  analysis: () => runAnalysisBench(),
  pythia: () => runPythiaBench(),
  devices: () => runDevicesBench(),
  import: () => runImportBench(),
  features: async () => ({
    ...await runFeaturesBench(),
    ...await runRecordBench(),
    ...await runStepBench(),
  }),
  "features-record": () => runRecordBench(),
  "features-step": () => runStepBench(),
  store: () => runStoreBench(),
};

// The import, features and store benchmarks write GBs of synthetic data: only when named
// (`deno task bench import`, `deno task bench features`, `features-record`, `features-step`,
// `store`).
const NAMED_ONLY = ["import", "features", "features-record", "features-step", "store"];
const chosen = Deno.args.length > 0
  ? Deno.args
  : Object.keys(benches).filter((b) => !NAMED_ONLY.includes(b));
const unknown = chosen.filter((name) => !Object.hasOwn(benches, name));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark "${unknown[0]}"; expected one of: ${Object.keys(benches).join(", ")}`,
  );
  Deno.exitCode = 2;
} else {
  for (const name of chosen) {
    console.log(`\n== ${name} ==`);
    const results = await benches[name]();
    console.log(JSON.stringify({ bench: name, ...results }));
  }
}
