import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadExperiment, parseExperiment } from "../engine/config/config.ts";
import { editDistance, nearest } from "../engine/config/messages.ts";
import { validKeys } from "../engine/config/fields.ts";
import { UserError } from "../engine/errors.ts";
import { formatPlan, makePlan } from "../engine/plan/plan.ts";
import { selectRows } from "../engine/data/rows.ts";

const FILE = "/tmp/exp/dir/exp.yaml";

const BASE = `suite:
  sequences_per_step: 16
  tokens_per_sequence: 128
  steps: [23, 43, 143]
  models:
    - name: s1
      parameters: 1000
      path: s1/step{step}.onnx
    - name: s2
      parameters: 5000
      path: s2/step{step}.onnx
data:
  format: raw
  path: data.bin
  row_length: 129
`;

function errorOf(text: string): string {
  try {
    parseExperiment(text, FILE, { display: "exp.yaml" });
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    return e.message;
  }
  throw new assert.AssertionError({ message: "expected an error" });
}

Deno.test("defaults are the paper's settings", () => {
  const exp = parseExperiment(BASE, FILE);
  assert.equal(exp.name, "exp");
  assert.equal(exp.file, FILE);
  assert.deepEqual(exp.memorization, {
    offset: 0,
    context: 32,
    continuation: 32,
    mode: "extractable",
    suppressedTokens: [0],
  });
  assert.deepEqual(exp.rows, { kind: "seen" });
  assert.deepEqual(exp.target, { model: "s2", step: 143 });
  assert.equal(exp.batchSize, 64);
  assert.equal(exp.shardSize, 65536);
  assert.equal(exp.output, resolve("runs", "exp"));
  assert.deepEqual(exp.data, {
    format: "raw",
    path: "/tmp/exp/dir/data.bin",
    rowLength: 129,
    dtype: "uint16",
  });
  assert.deepEqual(exp.analysis, {
    minPrecision: 0.9,
    budgets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.6, 1],
    bootstrap: 200,
    seed: 0,
    parameterCount: "total",
    folds: 5,
    recallOver: "all",
    recalls: [0.5, 0.8, 0.9, 0.95],
  });
  assert.equal(exp.devices.length, 1);
  assert.equal(exp.devices[0].device, "cpu");
  assert.equal(exp.devices[0].threads, Math.max(1, navigator.hardwareConcurrency));
  assert.deepEqual(exp.suite.models[0].checkpoints.map((c) => c.path), [
    "/tmp/exp/dir/s1/step23.onnx",
    "/tmp/exp/dir/s1/step43.onnx",
    "/tmp/exp/dir/s1/step143.onnx",
  ]);
  assert.equal(exp.suite.sequencesPerStep, 16);
  assert.equal(exp.suite.tokensPerSequence, 128);
  assert.equal(exp.suite.endOfTextId, 0);
});

Deno.test("every field is read and converted to the typed experiment", () => {
  const text = `name: full
suite:
  sequences_per_step: 1024
  tokens_per_sequence: 2048
  end_of_text_id: 2
  tokenizer: tok/tokenizer.json
  models:
    - name: a
      parameters: 100
      non_embedding_parameters: 60
      vocab_size: 512
      steps: [5, 10]
      path: a/{step}.onnx
    - name: b
      parameters: 50
      checkpoints: {20: b20.onnx, 7: b7.onnx}
data:
  format: megatron
  path: ../data/train
  row_length: 65
  duplicates: dup.csv
memorization: {offset: 1, context: 16, continuation: 8, mode: full, suppressed_tokens: [2, 3]}
rows: {sample: 100, seed: 7}
target: {model: b, step: 7}
devices:
  - {device: cpu, workers: 2, threads: 3}
  - {device: "cuda:1"}
  - webgpu:0
batch_size: 8
shard_size: 10
output: out/run
analysis: {min_precision: 0.5, budgets: [0.1], bootstrap: 0, seed: 3, parameter_count: total,
  folds: 3, recall_over: covered, recalls: [0.5]}
`;
  const exp = parseExperiment(text.replace("  - webgpu:0\n", ""), FILE);
  assert.equal(exp.name, "full");
  assert.equal(exp.suite.tokenizer, "/tmp/exp/dir/tok/tokenizer.json");
  assert.equal(exp.suite.endOfTextId, 2);
  assert.deepEqual(exp.suite.models[0], {
    name: "a",
    parameters: 100,
    nonEmbeddingParameters: 60,
    vocabSize: 512,
    checkpoints: [{ step: 5, path: "/tmp/exp/dir/a/5.onnx" }, {
      step: 10,
      path: "/tmp/exp/dir/a/10.onnx",
    }],
  });
  assert.deepEqual(exp.suite.models[1].checkpoints, [
    { step: 7, path: "/tmp/exp/dir/b7.onnx" },
    { step: 20, path: "/tmp/exp/dir/b20.onnx" },
  ]);
  assert.deepEqual(exp.data, {
    format: "megatron",
    path: "/tmp/exp/data/train",
    rowLength: 65,
    duplicates: "/tmp/exp/dir/dup.csv",
  });
  assert.deepEqual(exp.memorization, {
    offset: 1,
    context: 16,
    continuation: 8,
    mode: "full",
    suppressedTokens: [2, 3],
  });
  assert.deepEqual(exp.rows, { kind: "sample", count: 100, seed: 7 });
  assert.deepEqual(exp.target, { model: "b", step: 7 });
  assert.deepEqual(exp.devices, [
    { device: "cpu", threads: 3 },
    { device: "cpu", threads: 3 },
    { device: "cuda:1", threads: 1 },
  ]);
  assert.equal(exp.batchSize, 8);
  assert.equal(exp.shardSize, 10);
  assert.equal(exp.output, "/tmp/exp/dir/out/run");
  assert.deepEqual(exp.analysis, {
    minPrecision: 0.5,
    budgets: [0.1],
    bootstrap: 0,
    seed: 3,
    parameterCount: "total",
    folds: 3,
    recallOver: "covered",
    recalls: [0.5],
  });
});

Deno.test("rows range, target default step, output override", () => {
  const exp = parseExperiment(
    BASE + "rows: {range: [5, 20]}\ntarget: {model: s1}\noutput: /abs/out\n",
    FILE,
    { output: "elsewhere" },
  );
  assert.deepEqual(exp.rows, { kind: "range", start: 5, end: 20 });
  assert.deepEqual(exp.target, { model: "s1", step: 143 });
  assert.equal(exp.output, resolve("elsewhere"));
  assert.equal(parseExperiment(BASE + "output: /abs/out\n", FILE).output, "/abs/out");
});

Deno.test("each field's error names its path, line and column and what is valid", () => {
  const cases: [string, string, string][] = [
    [BASE + "name: a/b\n", "exp.yaml:16:7: name:", "letters, digits"],
    [
      BASE.replace("sequences_per_step: 16", "sequences_per_step: 0"),
      "2:23: suite.sequences_per_step:",
      "positive integer",
    ],
    [
      BASE.replace("tokens_per_sequence: 128", "tokens_per_sequence: x"),
      "3:24: suite.tokens_per_sequence:",
      "wrong type",
    ],
    [
      BASE.replace("steps: [23, 43, 143]", "steps: [23, 4.5]"),
      "4:15: suite.steps[1]:",
      "positive integer step",
    ],
    [BASE.replace("name: s2", "name: 7"), "9:13: suite.models[1].name:", "wrong type"],
    [
      BASE.replace("parameters: 5000", "parameters: -1"),
      "10:19: suite.models[1].parameters:",
      "total parameter count",
    ],
    [BASE.replace("path: s1/step{step}.onnx", "path: ''"), "8:13: suite.models[0].path:", "{step}"],
    [BASE.replace("format: raw", "format: []"), "13:11: data.format:", "megatron, raw, npy"],
    [BASE.replace("path: data.bin", "path: 3"), "14:9: data.path:", "data file"],
    [
      BASE.replace("row_length: 129", "row_length: 1.5"),
      "15:15: data.row_length:",
      "tokens per row",
    ],
    [
      BASE.replace("row_length: 129", "row_length: 129\n  dtype: float32"),
      "16:10: data.dtype:",
      "uint16",
    ],
    [BASE + "memorization: {offset: -1}\n", "16:24: memorization.offset:", "non-negative"],
    [BASE + "memorization: {context: 0}\n", "16:25: memorization.context:", "context length k"],
    [
      BASE + "memorization: {suppressed_tokens: [x]}\n",
      "16:36: memorization.suppressed_tokens[0]:",
      "token id",
    ],
    [BASE + "rows: {sample: 0}\n", "16:16: rows.sample:", "how many rows"],
    [BASE + "rows: {sample: 5, seed: -2}\n", "16:25: rows.seed:", "seed of the sample"],
    [BASE + "rows: {range: [1]}\n", "16:15: rows.range:", "START < END"],
    [BASE + "target: {model: s2, step: 0}\n", "16:27: target.step:", "target model's steps"],
    [BASE + "devices: [{device: cpu, threads: 0}]\n", "16:34: devices[0].threads:", "intra-op"],
    [BASE + "batch_size: 0\n", "16:13: batch_size:", "rows per forward pass"],
    [BASE + "output: ''\n", "16:9: output:", "folder"],
    [BASE + "analysis: {budgets: []}\n", "16:21: analysis.budgets:", "non-empty"],
    [BASE + "analysis: {budgets: [2]}\n", "16:22: analysis.budgets[0]:", "fraction"],
    [BASE + "analysis: {bootstrap: 1.5}\n", "16:23: analysis.bootstrap:", "resamples"],
    [BASE + "analysis: {seed: x}\n", "16:18: analysis.seed:", "seed"],
    [
      BASE + "analysis: {parameter_count: all}\n",
      "16:29: analysis.parameter_count:",
      "total, non-embedding",
    ],
  ];
  const wrong = cases.map(([text, where, valid]) => [where, valid, errorOf(text)])
    .filter(([where, valid, message]) => !message.includes(where) || !message.includes(valid));
  assert.deepEqual(wrong, []);
});

Deno.test("misspelt keys are rejected with the nearest valid key", () => {
  const message = errorOf(BASE.replace("row_length", "rowlength"));
  assert.match(
    message,
    /^exp\.yaml:15:3: unknown key "rowlength" in data; did you mean "row_length"\?/,
  );
  assert.ok(message.includes("Valid keys: format, path, row_length, dtype, duplicates."));
  assert.match(errorOf(BASE + "Analysis: {}\n"), /did you mean "analysis"/);
  assert.match(errorOf(BASE + "devices: [{device: cpu, worker: 2}]\n"), /did you mean "workers"/);
  assert.match(errorOf(BASE + "zzzzzz: 1\n"), /unknown key "zzzzzz" at the top level; Valid/);
  // Inside a field with alternatives, the alternative the misspelt key was meant for.
  assert.match(
    errorOf(BASE + "rows: {sampel: 100}\n"),
    /^exp\.yaml:16:8: unknown key "sampel" in rows; did you mean "sample"\?/,
  );
  assert.match(errorOf(BASE + "rows: {rnage: [0, 5]}\n"), /did you mean "range"\?/);
  assert.match(
    errorOf(BASE + "target: {modle: s1}\n"),
    /^exp\.yaml:16:10: unknown key "modle" in target; did you mean "model"\? Valid keys: model, step\.$/,
  );
  assert.match(
    errorOf(BASE + "rows: {}\n"),
    /^exp\.yaml:16:7: rows: a mapping is not valid; expected seen, all, \{range/,
  );
  assert.equal(nearest("shardSize", validKeys([])), "shard_size");
  assert.equal(nearest("contxt", validKeys(["memorization"])), "context");
  assert.equal(nearest("qqqq", validKeys(["memorization"])), undefined);
  assert.equal(editDistance("ab", "ba"), 1);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

Deno.test("several problems are all reported, in file order, one line each", () => {
  const message = errorOf(
    BASE.replace("parameters: 1000", "parameters: 1_000") + "batch_sise: 3\nshard_size: 0\n",
  );
  const lines = message.split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^exp\.yaml:7:19: .*write 1000/);
  assert.match(lines[1], /^exp\.yaml:16:1: unknown key "batch_sise"/);
  assert.match(lines[2], /^exp\.yaml:17:13: shard_size:/);
});

Deno.test("numbers written as strings are explained", () => {
  assert.match(errorOf(BASE.replace("parameters: 1000", 'parameters: "70,000"')), /write 70000/);
  assert.match(
    errorOf(BASE.replace("sequences_per_step: 16", "sequences_per_step: '16'")),
    /"16" is a quoted string, not a number; write 16 without quotes/,
  );
});

Deno.test("a missing file names the path", async () => {
  await assert.rejects(
    () => loadExperiment("/nonexistent/exp.yaml"),
    (e: Error) => e instanceof UserError && e.message.startsWith("/nonexistent/exp.yaml:1:1: "),
  );
});

Deno.test("bad experiment fixtures: one error each at the stated line:column", async () => {
  const dir = new URL("./fixtures/bad-experiments/", import.meta.url).pathname;
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 20, `only ${files.length} fixtures`);
  for (const f of files) {
    const path = join(dir, f);
    const text = await readFile(path, "utf8");
    const expect = /^# expect: (\d+:\d+) (.+)$/m.exec(text);
    assert.ok(/^# Bad: /m.test(text) && expect, `${f}: needs '# Bad:' and '# expect:' comments`);
    await assert.rejects(() => loadExperiment(path), (e: Error) => {
      assert.ok(e instanceof UserError, `${f}: ${e}`);
      assert.ok(e.message.startsWith(`${path}:${expect[1]}: `), `${f}: ${e.message}`);
      assert.ok(e.message.includes(expect[2]), `${f}: want "${expect[2]}" in ${e.message}`);
      assert.ok(!e.message.includes("\n"), `${f}: one problem expected: ${e.message}`);
      return true;
    });
  }
});

Deno.test("target: none is a run without a trained target; omitted, the largest model's last", () => {
  const none = parseExperiment(BASE + "target: none\n", FILE);
  assert.equal(none.target, undefined);
  assert.ok(!("target" in none), "no target key at all");
  assert.deepEqual(parseExperiment(BASE, FILE).target, { model: "s2", step: 143 });
  assert.match(
    errorOf(BASE + "target: nothing\n"),
    /^exp\.yaml:16:9: target: .*or none for a run without a trained target/,
  );
  const plan = makePlan(none, 10_000);
  assert.match(formatPlan(plan), /target none \(no trained target\)/);
  assert.ok(!formatPlan(plan).includes("(target)"));
});

Deno.test("rows: all scores every row of the data with every checkpoint; per model too", () => {
  const all = parseExperiment(BASE + "rows: all\n", FILE);
  assert.deepEqual(all.rows, { kind: "all" });
  assert.deepEqual(all.suite.models.map((m) => m.rows), ["all", "all"]);
  assert.equal(selectRows(all, 5000).length, 5000);
  const plan = makePlan(all, 5000);
  assert.deepEqual(plan.rowsPerCheckpoint.map((c) => c.rows), [5000, 5000, 5000, 5000, 5000, 5000]);

  // One model scores the seen rows it has not been trained on yet; the other only its seen rows.
  const one = parseExperiment(BASE.replace("name: s1\n", "name: s1\n      rows: all\n"), FILE);
  assert.deepEqual(one.rows, { kind: "seen" });
  assert.deepEqual(one.suite.models.map((m) => m.rows), ["all", undefined]);
  assert.deepEqual(makePlan(one, 5000).rowsPerCheckpoint.map((c) => c.rows), [
    2288,
    2288,
    2288,
    368,
    688,
    2288,
  ]);
  const back = parseExperiment(
    BASE.replace("name: s2\n", "name: s2\n      rows: seen\n") +
      "rows: all\n",
    FILE,
  );
  assert.deepEqual(back.suite.models.map((m) => m.rows), ["all", undefined]);
  assert.match(
    errorOf(BASE.replace("name: s1\n", "name: s1\n      rows: some\n")),
    /^exp\.yaml:7:13: suite\.models\[0\]\.rows: .*seen or all/,
  );
});

Deno.test("bounds are checked before anything is allocated", () => {
  const steps = Array.from({ length: 10_000 }, (_, i) => i + 1).join(", ");
  const models = Array.from(
    { length: 11 },
    (_, i) => `    - {name: m${i}, parameters: ${1000 + i}, path: "m${i}/s{step}.onnx"}`,
  ).join("\n");
  const many = BASE.replace("steps: [23, 43, 143]", `steps: [${steps}]`)
    .replace(/ {2}models:\n[\s\S]*?data:/, `  models:\n${models}\ndata:`);
  assert.match(
    errorOf(many),
    /^exp\.yaml:6:5: suite\.models: the models have 110000 checkpoints in all, more than the 100000/,
  );
  assert.match(
    errorOf(BASE + "batch_size: 1e400\n"),
    /^exp\.yaml:16:13: batch_size: a number beyond the largest double .* is not valid; expected a positive integer: rows per forward pass$/,
  );
  assert.match(
    errorOf(BASE + "analysis: {budgets: [" + Array(1001).fill("0.1").join(", ") + "]}\n"),
    /^exp\.yaml:16:21: analysis\.budgets: a list of 1001 entries is too long: at most 1000/,
  );
  assert.match(
    errorOf(BASE + "rows: {range: [0, 4294967297]}\n"),
    /^exp\.yaml:16:19: rows\.range\[1\]: 4294967297 is too large: at most 4294967296 allowed/,
  );
  assert.match(
    errorOf("x".repeat(1024 * 1024 + 1)),
    /^exp\.yaml:1:1: the experiment file has 1048577 characters, more than the 1048576 allowed/,
  );
});

Deno.test("the positions of fields checked after loading are kept", () => {
  const exp = parseExperiment(
    BASE.replace("path: s2/step{step}.onnx", "checkpoints: {7: b7.onnx}") +
      "rows: {range: [0, 9]}\n",
    FILE,
    { display: "exp.yaml" },
  );
  assert.equal(exp.locations?.["data.path"], "exp.yaml:14:9");
  assert.equal(exp.locations?.["suite.models[0].path"], "exp.yaml:8:13");
  assert.equal(exp.locations?.["suite.models[1].checkpoints.7"], "exp.yaml:11:24");
  assert.equal(exp.locations?.["rows.range"], "exp.yaml:16:15");
});
