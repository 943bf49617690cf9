/**
 * `deno task bench`: every benchmark, each measuring ratios side by side in
 * one run (scoring vs the reference algorithm and a MatMul peak; 1 vs 2
 * workers; analysis at scale; a Pythia-shape model against transformers.js and
 * the reference; workers × threads chosen by trial). Select some with arguments:
 * `deno task bench scoring pool analysis pythia devices`.
 *
 * @module
 */
import { runScoringBench } from "./scoring.ts";
import { runPoolBench } from "./pool.ts";
import { runAnalysisBench } from "./analysis.ts";
import { runPythiaBench } from "./pythia.ts";
import { runDevicesBench } from "./devices.ts";

const benches: Record<string, () => Promise<Record<string, number>>> = {
  scoring: () => runScoringBench(),
  pool: () => runPoolBench(),
  analysis: () => runAnalysisBench(),
  pythia: () => runPythiaBench(),
  devices: () => runDevicesBench(),
};

const chosen = Deno.args.length > 0 ? Deno.args : Object.keys(benches);
for (const name of chosen) {
  const bench = benches[name];
  if (!bench) {
    console.error(
      `unknown benchmark "${name}"; expected one of: ${Object.keys(benches).join(", ")}`,
    );
    Deno.exit(2);
  }
  console.log(`\n== ${name} ==`);
  const results = await bench();
  console.log(JSON.stringify({ bench: name, ...results }));
}
