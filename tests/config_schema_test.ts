import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { fieldDocs, nodesAt, validAt, validKeys } from "../engine/config/fields.ts";
import { GENERATED, referenceText, schemaFileText } from "../engine/config/reference.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const EXPERIMENTS = join(ROOT, "experiments");
const COMMENT = "# yaml-language-server: $schema=../schema/experiment.schema.json";

Deno.test("the JSON Schema file and the field reference are what the schema gives", async () => {
  assert.equal(
    await readFile(join(ROOT, GENERATED.schema), "utf8"),
    schemaFileText(),
    "schema/experiment.schema.json is stale: run deno task schema",
  );
  assert.equal(
    await readFile(join(ROOT, GENERATED.doc), "utf8"),
    referenceText(),
    "docs/experiment-file.md is stale: run deno task schema",
  );
});

Deno.test("the reference documents every field the schema has, with its default", () => {
  const doc = referenceText();
  const fields = fieldDocs();
  assert.ok(fields.length >= 45, `only ${fields.length} fields`);
  for (const f of fields) {
    assert.ok(f.description.length > 10, `${f.path}: no description`);
    assert.ok(doc.includes(`| \`${f.path}\` |`), `${f.path} missing from the reference`);
  }
  const byPath = new Map(fields.map((f) => [f.path, f]));
  assert.equal(byPath.get("batch_size")?.default, 64);
  assert.equal(byPath.get("memorization.context")?.default, 32);
  assert.equal(byPath.get("rows")?.default, "seen");
  assert.equal(byPath.get("suite.models[].name")?.required, true);
  assert.equal(byPath.get("target")?.required, false);
  assert.equal(byPath.get("devices[].workers")?.type, "integer [1, 256]");
  assert.match(
    doc,
    /\| `batch_size` \| a positive integer: rows per forward pass \| integer \[1, 65536\] \| `64` \|/,
  );
});

Deno.test("field descriptions and valid keys come from the schema's metadata", () => {
  assert.match(validAt(["suite", "models", 3, "parameters"])!, /total parameter count/);
  assert.match(validAt(["rows", "sample"])!, /how many rows/);
  assert.match(validAt(["rows", "range", 1])!, /row index/);
  assert.match(
    validAt(["suite", "models", 0, "checkpoints", "143"])!,
    /ONNX file or Hugging Face model folder path/,
  );
  assert.match(validAt(["target", "step"])!, /target model's steps/);
  assert.equal(validAt(["nonsense", "deeper"]), undefined);
  assert.deepEqual(validKeys(["rows"]), ["range", "sample", "seed"]);
  assert.deepEqual(validKeys(["target"]), ["model", "step"]);
  assert.deepEqual(validKeys(["devices", 2]), ["device", "workers", "threads"]);
  assert.equal(nodesAt(["suite", "models", 0, "rows"])[0].enum?.join(","), "seen,all");
});

Deno.test("every example experiment names the schema and validates against it", async () => {
  const schema = JSON.parse(await readFile(join(ROOT, GENERATED.schema), "utf8"));
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
  const files = (await readdir(EXPERIMENTS)).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 3, files.join(", "));
  for (const f of files) {
    const text = await readFile(join(EXPERIMENTS, f), "utf8");
    assert.equal(text.split("\n")[0], COMMENT, `${f}: first line`);
    assert.ok(validate(parse(text)), `${f}: ${JSON.stringify(validate.errors)}`);
  }
  // What an editor would flag: a misspelt key, a wrong type, a bound, a bad enum value.
  const nano = parse(await readFile(join(EXPERIMENTS, "nano.yaml"), "utf8"));
  const bad = [
    { ...nano, batch_sise: 3 },
    { ...nano, batch_size: "64" },
    { ...nano, devices: [{ device: "cpu", workers: 100000000 }] },
    { ...nano, memorization: { mode: "greedy" } },
    { ...nano, rows: "everything" },
    { ...nano, target: "nobody" },
  ];
  for (const value of bad) assert.ok(!validate(value), JSON.stringify(value).slice(-80));
  assert.ok(validate({ ...nano, target: "none", rows: "all" }), JSON.stringify(validate.errors));
});
