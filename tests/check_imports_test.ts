import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { check, loops, violation } from "../tools/check_imports.ts";

Deno.test("the import check flags imports against the documented order and passes this tree", () => {
  assert.match(
    violation("engine/os/lock.ts", "engine/store/store.ts") ?? "",
    /engine\/os may not depend on engine\/store/,
  );
  assert.match(violation("engine/store/store.ts", "reports/analysis/stats.ts") ?? "", /engine/);
  assert.match(violation("reports/page/html.ts", "tasks/report.ts") ?? "", /reports\/page/);
  assert.match(violation("engine/plan/plan.ts", "engine/run/pool.ts") ?? "", /engine\/plan/);
  assert.equal(violation("engine/run/run.ts", "engine/plan/plan.ts"), null);
  assert.equal(violation("tasks/report.ts", "engine/store/store.ts"), null);
  assert.equal(violation("engine/store/store.ts", "engine/store/shard_file.ts"), null);
  assert.deepEqual(check(fileURLToPath(new URL("..", import.meta.url))), []);
});

Deno.test("the import check finds every loop of imports, inside one folder too", () => {
  const graph = new Map<string, string[]>([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts", "d.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", ["e.ts"]],
    ["e.ts", []],
    ["f.ts", ["f.ts"]],
    ["g.ts", ["e.ts", "h.ts"]],
    ["h.ts", ["g.ts"]],
  ]);
  assert.deepEqual(loops(graph), [["a.ts", "b.ts", "c.ts"], ["f.ts"], ["g.ts", "h.ts"]]);
  assert.deepEqual(loops(new Map([["a.ts", ["b.ts"]], ["b.ts", []]])), []);
});
