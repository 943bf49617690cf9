/**
 * Files from outside are untrusted (issue 24): hostile or careless inputs,
 * each written by the test, through the command line. Every case checks the
 * exit status, the message (it names the file and what is wrong, quotes at
 * most a short excerpt, is one paragraph without a stack trace), the bounds
 * it implies, and that the user's other files are unchanged. The classes and
 * what the harness does with each are tabled in docs/reliability.md.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { parquetMetadata } from "hyparquet";
import { ByteWriter, parquetWriteBuffer } from "hyparquet-writer";
import { writeMetadata } from "hyparquet-writer/src/metadata.js";
import { writePageHeader } from "hyparquet-writer/src/datapage.js";
import { parquetHeader } from "hyparquet/src/column.js";
import { main } from "../main.ts";
import { isUserError } from "../engine/errors.ts";
import { excerpt } from "../engine/errors.ts";
import { modelFingerprints } from "../engine/model/fingerprint.ts";
import { encodeModel, parseModel } from "../engine/model/onnx_proto.ts";
import { matchPaths, patternProblem } from "../engine/import/pattern.ts";
import { writeHfParquet } from "./fixtures/hf_files.ts";
import { buildTinyLM } from "./tiny_lm.ts";
import { ROOT } from "./cli.ts";

/** Runs the CLI in-process; returns the exit status and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [], out: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" "));
  try {
    return { code: await main(args), err: err.join("\n"), out: out.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** The contract of a refusal: exit 2, one paragraph naming `file`, no stack, a bounded length. */
function assertRefused(
  r: { code: number; err: string },
  file: string,
  pattern: RegExp,
  what: string,
): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}: ${r.err}`);
  const message = r.err.split("\n").filter((l) => l.startsWith("error: ")).join("\n");
  assert.ok(message.includes(file), `${what}: names ${file}: ${r.err}`);
  assert.match(message, pattern, `${what}: ${message}`);
  assert.ok(!/\n\s+at /.test(r.err), `${what}: a stack trace: ${r.err}`);
  assert.ok(!/\n\s*\n/.test(message), `${what}: more than one paragraph`);
  assert.ok(message.length < 1500, `${what}: a message of ${message.length} characters`);
}

/** Every entry under `dir` with the SHA-256 of each file (a folder's files unchanged = equal). */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const visit = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name), r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        out[r] = "dir";
        await visit(p, r);
      } else if (e.isFile) {
        out[r] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
      } else out[r] = "link";
    }
  };
  await visit(dir, "");
  return out;
}

/** A small suite: models small and big, step 10 of 100 rows per step (rows [0, 1000)), l = 32. */
async function experiment(dir: string, extra = ""): Promise<string> {
  const path = join(dir, "tiny.yaml");
  await Deno.writeTextFile(
    path,
    `name: tiny
suite:
  sequences_per_step: 100
  steps: [10]
  models:
    - {name: small, parameters: 1000, path: "m/small/{step}.onnx"}
    - {name: big, parameters: 8000, path: "m/big/{step}.onnx"}
data: {format: raw, path: data.bin, row_length: 64}
target: {model: big, step: 10}
analysis: {bootstrap: 10}
${extra}`,
  );
  return path;
}

/** Reference CSVs of both models: big memorizes rows ≡ 0 mod 10, small those ≡ 0 mod 20. */
async function referenceCsvs(root: string): Promise<void> {
  for (const [model, every] of [["big", 10], ["small", 20]] as const) {
    const folder = join(root, `memorization_${model}_10`);
    await Deno.mkdir(folder, { recursive: true });
    const lines = Array.from({ length: 1000 }, (_, r) => `${r},${r % every === 0 ? 1 : 0.25}`);
    await Deno.writeTextFile(join(folder, "rank-0.csv"), `index,accuracy\n${lines.join("\n")}\n`);
  }
}

/** Imports a reference folder whose `model`'s CSV is replaced by `text`; returns the result. */
async function importCsv(dir: string, name: string, text: string, model = "small") {
  const root = join(dir, name);
  await referenceCsvs(root);
  const file = join(root, `memorization_${model}_10`, "rank-0.csv");
  await Deno.writeTextFile(file, text);
  const before = await tree(root);
  const out = join(dir, `${name}-run`);
  const r = await cli("import", root, "--experiment", join(dir, "tiny.yaml"), "--output", out);
  assert.deepEqual(await tree(root), before, `${name}: the inputs are unchanged`);
  return { r, file, out };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Rewrites a Parquet file's footer through `edit` (the data pages are kept byte for byte). */
function withFooter(bytes: Uint8Array, edit: (meta: ReturnType<typeof parquetMetadata>) => void) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(bytes.length - 8, true);
  const meta = parquetMetadata(bytes.slice().buffer);
  edit(meta);
  const w = new ByteWriter();
  w.appendBytes(bytes.subarray(0, bytes.length - 8 - length));
  writeMetadata(w, meta as never);
  w.appendBytes(new TextEncoder().encode("PAR1"));
  return w.getBytes().slice();
}

Deno.test("silently wrong numbers: empty CSV fields, accuracies off the 1/l grid, a prefix beyond l, empty Parquet cells, an edited import.json are exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_numbers_" });
  await experiment(dir);
  const good = Array.from({ length: 1000 }, (_, r) => `${r},${r % 20 === 0 ? 1 : 0}`);
  // `,1` is not row 0 memorized.
  let c = await importCsv(
    dir,
    "empty-index",
    ["index,accuracy", ",1", ...good.slice(1)].join("\n"),
  );
  assertRefused(c.r, `${c.file}:2`, /index "" is not an integer/, "`,1`");
  assert.equal(await exists(join(c.out, "import.json")), false);
  // `6,` (a rank file cut mid-write) is not accuracy 0.
  c = await importCsv(
    dir,
    "empty-accuracy",
    ["index,accuracy", ...good.slice(0, 6), "6,"].join("\n"),
  );
  assertRefused(c.r, `${c.file}:8`, /accuracy "" is not a number in \[0, 1\]/, "`6,`");
  // Accuracies of continuation length 64 (63/64) are not rounded onto /32 and counted memorized.
  const l64 = Array.from({ length: 1000 }, (_, r) => `${r},${r % 7 === 0 ? 63 / 64 : 0}`);
  c = await importCsv(dir, "off-grid", ["index,accuracy", ...l64].join("\n"));
  assertRefused(
    c.r,
    c.file,
    /accuracy 0\.984375 is not a multiple of 1\/32 .*continuation/,
    "63/64 on the /32 grid",
  );
  // A 50 MB line (here 1 MiB) and a MiB of NUL bytes are refused with a short excerpt.
  c = await importCsv(dir, "long-line", `index,accuracy\n0,${"1".repeat(1 << 20)}\n`);
  assertRefused(c.r, `${c.file}:2`, /longer than 4096 bytes/, "a 1 MiB line");
  c = await importCsv(dir, "nul", "\0".repeat(1 << 20));
  assertRefused(c.r, `${c.file}:1`, /\\u0000\\u0000.*more characters/, "a MiB of NUL bytes");

  // Exports: a prefix of 1000 does not wrap in a byte to 232; an empty matches cell is not 0.
  const exportRun = async (name: string, columns: Record<string, unknown[]>) => {
    const root = join(dir, name);
    await Deno.mkdir(join(root, "big"), { recursive: true });
    await Deno.mkdir(join(root, "small"), { recursive: true });
    const rows = Array.from({ length: 100 }, (_, r) => r);
    const write = (path: string, cols: Record<string, unknown[]>) =>
      Deno.writeFile(
        path,
        new Uint8Array(parquetWriteBuffer({
          columnData: [
            { name: "index", data: BigInt64Array.from(rows, BigInt), type: "INT64" },
            ...Object.entries(cols).map(([n, data]) => ({ name: n, data, type: "INT32" as const })),
          ],
        })),
      );
    const honest = { matches: rows.map((r) => r % 10 === 0 ? 32 : 3) };
    await write(join(root, "big", "step10.parquet"), honest);
    const file = join(root, "small", "step10.parquet");
    await write(file, columns);
    const r = await cli(
      "import",
      root,
      "--experiment",
      join(dir, "tiny.yaml"),
      "--output",
      join(dir, `${name}-run`),
    );
    return { r, file };
  };
  const rows100 = Array.from({ length: 100 }, (_, r) => r);
  let e = await exportRun("prefix", {
    matches: rows100.map(() => 32),
    prefix: rows100.map((r) => (r === 17 ? 1000 : 32)),
  });
  assertRefused(
    e.r,
    `${e.file}: row 17`,
    /prefix 1000 is not an integer in \[0, matches = 32\]/,
    "prefix 1000",
  );
  e = await exportRun("null-matches", { matches: rows100.map((r) => (r === 5 ? null : 1)) });
  assertRefused(e.r, `${e.file}: row 5`, /matches is empty/, "an empty matches cell");

  // An import whose import.json was edited: 10^15 scored rows, a memorized count that lies.
  const root = join(dir, "ok");
  await referenceCsvs(root);
  const run = join(dir, "ok-run");
  const ok = await cli("import", root, "--experiment", join(dir, "tiny.yaml"), "--output", run);
  assert.equal(ok.code, 0, ok.err);
  const record = join(run, "import.json");
  const original = await Deno.readTextFile(record);
  const edit = async (change: (r: { runs: Record<string, unknown>[] }) => void) => {
    const r = JSON.parse(original);
    change(r);
    await Deno.writeTextFile(record, JSON.stringify(r));
    const others = await tree(root);
    const result = await cli("report", run);
    assert.deepEqual(await tree(root), others);
    return result;
  };
  let r = await edit((x) => (x.runs[0].scoredRows = 1e15));
  assertRefused(r, record, /field runs\[0\]\.scoredRows: .*(too big|<=|1000)/, "1e15 scored rows");
  r = await edit((x) => {
    x.runs[0].scored = [0, 1e12];
    x.runs[0].scoredRows = 1e12;
  });
  assertRefused(r, record, /runs\[0\]/, "a range of 1e12 rows");
  r = await edit((x) => (x.runs[1].memorized = 7));
  assertRefused(r, record, /runs\[1\]\.memorized/, "a memorized count that lies");
  r = await edit((x) => ((x.runs[0] as { continuation: number }).continuation = 64));
  assertRefused(r, record, /continuation|matchCounts/, "another continuation");
  await Deno.writeTextFile(record, original);
  assert.equal((await cli("report", run)).code, 0);
  // The duplicates CSV of an experiment: `,5` is not row 0, `6,` not count 0, a row twice refused.
  const { loadDuplicates } = await import("../engine/data/duplicates.ts");
  for (
    const [text, why] of [
      ["row,count\n,5\n", /:2:1: expected "row,count" .* got ",5"/],
      ["row,count\n0,1\n6,\n", /:3:1: expected "row,count" .* got "6,"/],
      ["row,count\n3,1\n3,2\n", /:3:1: row 3 is listed twice/],
      ["row,count\n99999999999,1\n", /:2:1: expected "row,count"/],
    ] as const
  ) {
    const path = join(dir, "duplicates.csv");
    await Deno.writeTextFile(path, text);
    await assert.rejects(
      () => loadDuplicates(path),
      (e: Error) => isUserError(e) && e.message.startsWith(path) && why.test(e.message),
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("user files are never lost: --output of a folder of the user's own is refused (import, experiment, forecast), report leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_files_" });
  const exp = await experiment(dir);
  const inputs = join(dir, "reference");
  await referenceCsvs(inputs);
  // A folder of the user's that happens to hold the names an import writes.
  const mine = join(dir, "mine");
  await Deno.mkdir(join(mine, "imported"), { recursive: true });
  await Deno.writeTextFile(join(mine, "imported", "notes.txt"), "my notes");
  for (const name of ["report.html", "summary.json", "predictors.csv", "thesis.tmp"]) {
    await Deno.writeTextFile(join(mine, name), `my ${name}`);
  }
  const before = await tree(mine);
  let r = await cli("import", inputs, "--experiment", exp, "--output", mine);
  assertRefused(r, mine, /already holds 5 entries .*not a run folder of this harness/, "import");
  assert.deepEqual(await tree(mine), before, "import: the user's folder is unchanged");
  // The same for scoring into it (refused before a model is read), and for report and export.
  const nano = join(ROOT, "experiments", "nano.yaml");
  r = await cli("experiment", nano, "--output", mine, "--no-report");
  assertRefused(r, mine, /not a run folder of this harness/, "experiment --output");
  for (const command of ["report", "export"]) {
    r = await cli(command, mine);
    assertRefused(r, mine, /not a run folder of this harness .*nothing was written/, command);
  }
  assert.deepEqual(await tree(mine), before, "no locks/, no marker, nothing removed");

  // Imports serve as calibration; forecast --output of the user's folder is refused.
  const run = join(dir, "run");
  r = await cli("import", inputs, "--experiment", exp, "--output", run);
  assert.equal(r.code, 0, r.err);
  r = await cli("forecast", run, run, "--output", mine);
  assertRefused(r, mine, /not a forecast folder of this harness/, "forecast --output");
  assert.deepEqual(await tree(mine), before, "forecast: the user's folder is unchanged");
  r = await cli("forecast", run, run);
  assert.equal(r.code, 0, r.err);
  const forecast = JSON.parse(await Deno.readTextFile(join(run, "forecast", "forecast.json")));
  // small memorizes rows ≡ 0 mod 20, all among big's (≡ 0 mod 10): precision 1, recall 1/2.
  assert.deepEqual(forecast.predictor, { model: "small", step: 10 });
  assert.equal(forecast.flagged, 50);
  // A second import into the run folder (ours) replaces the first.
  r = await cli("import", inputs, "--experiment", exp, "--output", run);
  assert.equal(r.code, 0, r.err);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: --pattern with nested quantifiers or backreferences is refused, and a slow one stops at its time budget", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_pattern_" });
  const exp = await experiment(dir);
  const inputs = join(dir, "in");
  await Deno.mkdir(inputs);
  await Deno.writeTextFile(join(inputs, `${"a".repeat(40)}c`), "0,1\n");
  const before = await tree(inputs);
  for (
    const [pattern, why] of [
      [String.raw`^(?<model>(a+)+)b(?<step>\d)$`, /repeated \(\+\) and holds a repeated part/],
      [String.raw`(?<model>(?:\w|\d)*)_(?<step>\d+)`, /holds an alternation/],
      [String.raw`(?<model>a+)\1(?<step>\d+)`, /backreference/],
    ] as const
  ) {
    const r = await cli(
      "import",
      inputs,
      "--experiment",
      exp,
      "--pattern",
      pattern,
      "--output",
      join(dir, "o"),
    );
    assertRefused(r, "--pattern", why, pattern);
    assert.ok(r.err.includes(excerpt(pattern)));
  }
  assert.deepEqual(await tree(inputs), before);
  assert.equal(patternProblem(String.raw`(?:^|/)(?<model>[^/]+)/step(?<step>\d+)\.txt$`), null);
  // The time budget: a budget of 0 ms ends the match at once with a message naming the pattern.
  await assert.rejects(
    () => matchPaths(String.raw`(?<model>[^/]+)/(?<step>\d+)`, ["m/1"], 0),
    (e: Error) => isUserError(e) && /took longer than 0 s/.test(e.message),
  );
  assert.deepEqual(await matchPaths(String.raw`(?<model>[^/]+)/(?<step>\d+)`, ["m/1", "x"]), [
    { model: "m", step: "1" },
    null,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: ONNX external data leaving the model's folder is refused before a byte of it is read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_onnx_" });
  const { bytes, files } = buildTinyLM({ variant: "no-cache", seed: 5, external: true });
  const outside = join(dir, "outside.bin");
  await Deno.writeFile(outside, new Uint8Array(16));
  const cases: [string, string, RegExp][] = [
    ["abs", "/dev/zero", /location "\/dev\/zero" is an absolute path/],
    ["up", "../outside.bin", /leads out of the folder/],
    ["link", "weights/link.bin", /is a symbolic link to .*outside\.bin.*outside the folder/],
  ];
  for (const [name, location, why] of cases) {
    const folder = join(dir, name);
    await Deno.mkdir(join(folder, "weights"), { recursive: true });
    for (const [loc, data] of files) await Deno.writeFile(join(folder, loc), data);
    await Deno.symlink(outside, join(folder, "weights", "link.bin"));
    const model = parseModel(bytes);
    model.graph.initializers[0].externalLocation = location;
    const path = join(folder, "m.onnx");
    await Deno.writeFile(path, encodeModel(model));
    const before = await tree(folder);
    await assert.rejects(() => modelFingerprints([path]), (e: Error) => {
      assert.ok(isUserError(e), e.message);
      assert.ok(e.message.startsWith(`${path}: the external-data location`), e.message);
      assert.match(e.message, why);
      return true;
    });
    assert.deepEqual(await tree(folder), before);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: Parquet footers and pages that claim too much, garbled thrift and many row groups", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_parquet_" });
  const exp = await experiment(dir);
  const run = async (name: string, bytes: Uint8Array) => {
    const root = join(dir, name);
    const file = join(root, "small", "step10.parquet");
    await Deno.mkdir(join(root, "small"), { recursive: true });
    await Deno.writeFile(file, bytes);
    // An honest target beside it.
    await Deno.mkdir(join(root, "big"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "big", "step10.csv"),
      Array.from({ length: 1000 }, (_, r) => `${r},${r % 10 === 0 ? 1 : 0}`).join("\n"),
    );
    const before = await tree(root);
    const r = await cli("import", root, "--experiment", exp, "--output", join(dir, `${name}-run`));
    assert.deepEqual(await tree(root), before);
    return { r, file };
  };
  const honest = new Uint8Array(parquetWriteBuffer({
    columnData: [
      {
        name: "index",
        data: BigInt64Array.from({ length: 1000 }, (_, r) => BigInt(r)),
        type: "INT64",
      },
      {
        name: "matches",
        data: Int32Array.from({ length: 1000 }, (_, r) => r % 20 === 0 ? 32 : 0),
        type: "INT32",
      },
    ],
  }));
  // A footer claiming 5e9 rows (in its row group too) is refused before an array is sized by it.
  let c = await run(
    "5e9",
    withFooter(honest, (m) => {
      m.num_rows = 5_000_000_000n;
      m.row_groups[0].num_rows = 5_000_000_000n;
    }),
  );
  assertRefused(c.r, c.file, /claims 5000000000 rows .*more than the 1000 rows/, "5e9 rows");
  // A page claiming 2 GiB decompressed.
  const meta = parquetMetadata(honest.slice().buffer);
  const chunk = meta.row_groups[0].columns[0].meta_data!;
  const start = Number(chunk.data_page_offset);
  const reader = { view: new DataView(honest.buffer, start), offset: 0 };
  const header = parquetHeader(reader);
  header.uncompressed_page_size = 2 ** 31 - 1;
  const w = new ByteWriter();
  w.appendBytes(honest.subarray(0, start));
  writePageHeader(w, header as never);
  const grown = w.offset - start - reader.offset;
  w.appendBytes(honest.subarray(start + reader.offset));
  c = await run(
    "2gib",
    withFooter(w.getBytes().slice(), (m) => {
      m.row_groups[0].columns[0].meta_data!.total_compressed_size += BigInt(grown);
      m.row_groups[0].columns[1].meta_data!.data_page_offset += BigInt(grown);
      const f = m.row_groups[0].columns[1];
      f.file_offset += BigInt(grown);
    }),
  );
  assertRefused(
    c.r,
    c.file,
    /a page claims 21474836\d\d bytes decompressed, more than its column chunk.s \d+/,
    "a 2 GiB page",
  );
  // Garbled thrift in a page header.
  const garbled = honest.slice();
  garbled.fill(0xee, start, start + 6);
  c = await run("thrift", garbled);
  assertRefused(c.r, c.file, /row group 0: not a readable Parquet file/, "garbled thrift");
  // A footer that is not thrift at all.
  const footer = honest.slice();
  footer.fill(0xff, footer.length - 40, footer.length - 8);
  c = await run("footer", footer);
  assertRefused(c.r, c.file, /the footer: not a readable Parquet file/, "a garbled footer");

  // 5,000 one-row row groups (time linear in row groups) import with the right counts.
  const many = join(dir, "many");
  const mem = Array.from({ length: 5000 }, (_, i) => i * 7);
  await writeHfParquet(join(many, "deduped.70m", "0000.parquet"), mem, {
    rowGroupSize: 1,
    tokens: 1,
  });
  await writeHfParquet(join(many, "deduped.12b", "0000.parquet"), mem.filter((r) => r % 2 === 0), {
    tokens: 1,
  });
  const r = await cli(
    "import",
    many,
    "--experiment",
    join(ROOT, "experiments", "pythia-deduped.yaml"),
    "--output",
    join(dir, "many-run"),
  );
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(await Deno.readTextFile(join(dir, "many-run", "summary.json")));
  const p = summary.predictors.find((x: { model: string }) => x.model === "pythia-70m-deduped");
  assert.deepEqual([p.tp, p.fp], [2500, 2500]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bounds: example tokens are kept only for the window the report shows, and absurd token lists are not read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_tokens_" });
  const pythia = join(ROOT, "experiments", "pythia-deduped.yaml");
  const hf = async (name: string, tokens: number, tokenIds?: (row: number) => bigint[]) => {
    const root = join(dir, name);
    const ids = tokenIds ??
      ((r: number) => Array.from({ length: tokens }, (_, j) => BigInt(((r + j) % 500) + 1)));
    await writeHfParquet(join(root, "deduped.12b", "0000.parquet"), [3, 7, 11], { tokenIds: ids });
    await writeHfParquet(join(root, "deduped.70m", "0000.parquet"), [7], { tokens: 4 });
    const out = join(dir, `${name}-run`);
    const r = await cli("import", root, "--experiment", pythia, "--output", out);
    assert.equal(r.code, 0, r.err);
    const record = JSON.parse(await Deno.readTextFile(join(out, "import.json")));
    return { r, record, bytes: (await Deno.stat(join(out, "import.json"))).size };
  };
  // Rows of 5,000 tokens: each example keeps the 64 the report shows (context 32 + continuation 32).
  const a = await hf("long", 5000);
  assert.equal(a.record.examples.length, 3);
  for (const x of a.record.examples) assert.equal(x.tokens.length, 64);
  assert.ok(a.bytes < 20_000, `import.json is ${a.bytes} bytes`);
  // Rows of 200,000 tokens (the 6M in small): the column is not read; a note says so.
  const b = await hf("huge", 200_000);
  assert.deepEqual(b.record.examples, []);
  assert.match(b.r.err, /Note: no example text from .*0000\.parquet: .*row group 0: column tokens/);
  // Token ids that are not ids (negative) give no example text for that row, and a note.
  const c = await hf("negative", 0, (r) => Array.from({ length: 64 }, (_, j) => BigInt(j - r)));
  assert.ok(c.record.examples.every((x: { row: number }) => x.row === 3 ? false : true));
  assert.match(c.r.err, /no example text for row 7: .* not token ids/);
  await Deno.remove(dir, { recursive: true });
});

/** An import of the reference CSVs into `<dir>/<name>` (a run folder to damage). */
async function importedRun(dir: string, name: string, yaml?: string): Promise<string> {
  const exp = yaml ?? join(dir, "tiny.yaml");
  const inputs = join(dir, `${name}-in`);
  await referenceCsvs(inputs);
  const run = join(dir, name);
  const r = await cli("import", inputs, "--experiment", exp, "--output", run);
  assert.equal(r.code, 0, r.err);
  return run;
}

Deno.test({
  name:
    "crashes that named no file: run-folder JSON nested, huge, of wrong types or truncated, a bad Hive escape, a damaged run log are exit 2 naming the file and field",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "untrusted_json_" });
    await experiment(dir);
    const run = await importedRun(dir, "run");
    const files = ["experiment.json", "import.json", "runs.jsonl"];
    const saved = new Map<string, string>();
    for (const f of files.slice(0, 2)) saved.set(f, await Deno.readTextFile(join(run, f)));
    const damage = async (file: string, text: string, why: RegExp, what: string) => {
      await Deno.writeTextFile(join(run, file), text);
      const r = await cli("report", run);
      assertRefused(r, join(run, file), why, what);
      if (saved.has(file)) await Deno.writeTextFile(join(run, file), saved.get(file)!);
      else await Deno.remove(join(run, file));
    };
    const snapshot = JSON.parse(saved.get("experiment.json")!);
    await damage(
      "experiment.json",
      "[".repeat(100_000) + "]".repeat(100_000),
      /nested more than 64 levels deep/,
      "deeply nested",
    );
    await damage(
      "experiment.json",
      JSON.stringify({ ...snapshot, suite: { ...snapshot.suite, sequencesPerStep: "100" } }),
      /field suite\.sequencesPerStep: .*expected number.* \(it holds "\\"100\\""\)/,
      "a number as a string",
    );
    await damage(
      "experiment.json",
      JSON.stringify({ ...snapshot, name: "x".repeat(1 << 20) }),
      /field name: .*more characters/,
      "a 1 MiB name (the message quotes an excerpt)",
    );
    await damage(
      "import.json",
      saved.get("import.json")!.slice(0, 200),
      /import\.json: not valid JSON/,
      "truncated",
    );
    // A scored run's log and manifest, edited: named with the line and field.
    const { writeReducedExperiment } = await import("./fixtures/reduced_experiment.ts");
    const scored = join(dir, "scored");
    const file = await writeReducedExperiment(dir, {
      models: 1,
      steps: 1,
      rows: 64,
      shardSize: 64,
      batchSize: 64,
      output: scored,
    });
    assert.equal((await cli("experiment", file, "--no-report")).code, 0);
    const log = join(scored, "runs.jsonl");
    const lines = await Deno.readTextFile(log);
    await Deno.writeTextFile(log, lines.replace(/"seconds":[0-9.e-]+/, '"seconds":"abc"'));
    assertRefused(
      await cli("report", scored),
      `${log}:1`,
      /field seconds: /,
      "a run log of wrong types",
    );
    await Deno.writeTextFile(log, lines);
    const manifest = join(scored, "manifest.json");
    const m = JSON.parse(await Deno.readTextFile(manifest));
    await Deno.writeTextFile(manifest, JSON.stringify({ ...m, checkpoints: "x" }));
    assertRefused(
      await cli("report", scored),
      manifest,
      /field checkpoints: /,
      "a manifest of wrong types",
    );
    // A Hive folder name with a bad percent escape.
    const hive = join(dir, "hive", "model=sm%ZZall", "step=10");
    await Deno.mkdir(hive, { recursive: true });
    const part = join(hive, "part-0.parquet");
    await Deno.writeFile(
      part,
      new Uint8Array(parquetWriteBuffer({
        columnData: [
          { name: "index", data: BigInt64Array.of(0n), type: "INT64" },
          { name: "matches", data: Int32Array.of(1), type: "INT32" },
        ],
      })),
    );
    const h = await cli(
      "import",
      join(dir, "hive"),
      "--experiment",
      join(dir, "tiny.yaml"),
      "--output",
      join(dir, "hive-run"),
    );
    assertRefused(
      h,
      part,
      /model name "sm%ZZall" in its path has a bad percent escape/,
      "Hive escape",
    );
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("exit 2 where the user can fix it: symlink loops, dangling symlinks, unreadable files, missing chunks", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_fs_" });
  const exp = await experiment(dir);
  const withLink = async (name: string, make: (folder: string) => Promise<string>) => {
    const root = join(dir, name);
    await referenceCsvs(root);
    const path = await make(join(root, "memorization_small_10"));
    const before = await tree(root);
    const r = await cli("import", root, "--experiment", exp, "--output", join(dir, `${name}-run`));
    assert.deepEqual(await tree(root), before);
    return { r, path };
  };
  let c = await withLink("loop", async (folder) => {
    await Deno.symlink(join(folder, "b.csv"), join(folder, "a.csv"));
    await Deno.symlink(join(folder, "a.csv"), join(folder, "b.csv"));
    return join(folder, "a.csv");
  });
  assertRefused(c.r, c.path, /is a loop of symbolic links/, "a symlink loop");
  c = await withLink("dangling", async (folder) => {
    await Deno.symlink(join(folder, "gone.csv"), join(folder, "rank-1.csv"));
    return join(folder, "rank-1.csv");
  });
  assertRefused(c.r, c.path, /is a symbolic link to nothing \(dangling\)/, "a dangling symlink");
  if (Deno.uid() !== 0) {
    c = await withLink("unreadable", async (folder) => {
      await Deno.chmod(join(folder, "rank-0.csv"), 0o000);
      return join(folder, "rank-0.csv");
    });
    assertRefused(c.r, c.path, /is not readable \(permission denied\)/, "an unreadable file");
  } else {
    console.error(
      "untrusted_test: running as root, which reads any file: the unreadable case is skipped",
    );
  }
  // A run folder missing a chunk of its import, or whose memorized rows were cut.
  const run = await importedRun(dir, "run");
  const chunk = join(run, "imported", "small", "step10", "chunk00000.bin");
  const bytes = await Deno.readFile(chunk);
  await Deno.remove(chunk);
  assertRefused(await cli("report", run), chunk, /does not exist/, "a missing chunk");
  await Deno.writeFile(chunk, bytes);
  const memorized = join(run, "imported", "big", "step10", "memorized.bin");
  await Deno.truncate(memorized, 8);
  assertRefused(
    await cli("report", run),
    memorized,
    /8 bytes, but import\.json records 100/,
    "a cut memorized.bin",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "exit 2 where the user can fix it: token ids beyond the model's vocabulary name the data file and the row, once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { writeReducedExperiment } = await import("./fixtures/reduced_experiment.ts");
    const { parse, stringify } = await import("yaml");
    const dir = await Deno.makeTempDir({ prefix: "untrusted_vocab_" });
    const file = await writeReducedExperiment(dir, {
      models: 1,
      steps: 1,
      rows: 64,
      shardSize: 32,
      batchSize: 16,
      output: join(dir, "run"),
    });
    const doc = parse(await Deno.readTextFile(file));
    const tokens = new Uint16Array(2400 * 65).map((_, i) => (i * 7) % 500 + 1);
    tokens[37 * 65 + 40] = 40000; // row 37, token 40: beyond the nano vocabulary of 512
    const data = join(dir, "data.bin");
    await Deno.writeFile(data, new Uint8Array(tokens.buffer));
    doc.data = { format: "raw", path: data, row_length: 65, dtype: "uint16" };
    await Deno.writeTextFile(file, stringify(doc));
    const { cli: run } = await import("./cli.ts");
    const r = await run("experiment", file, "--no-report");
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`error: ${data}: token id 40000 \\(row 37, token 40 of the row\\)`),
    );
    assert.doesNotMatch(r.stderr, /retrying|onnxruntime|\[E:/i);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("forecasts check that calibration and run are comparable; an explicit --allow-mismatch warns in the output and on the page", async () => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_forecast_" });
  const cal = await importedRun(dir, "cal", await experiment(dir));
  // The same scores under other memorization settings (continuation 16: accuracies 1 and 0.25
  // are on both grids), and under a "small" with another parameter count.
  const other = join(dir, "other");
  await Deno.mkdir(other);
  const l16 = await experiment(other, "memorization: {continuation: 16}");
  const run16 = await importedRun(dir, "run16", l16);
  const sized = join(dir, "sized");
  await Deno.mkdir(sized);
  const big = await Deno.readTextFile(await experiment(sized));
  await Deno.writeTextFile(
    join(sized, "tiny.yaml"),
    big.replace("parameters: 1000", "parameters: 1200"),
  );
  const runSized = await importedRun(dir, "runSized", join(sized, "tiny.yaml"));
  let r = await cli("forecast", cal, run16);
  assertRefused(
    r,
    run16,
    /not comparable: memorization\.continuation is 32 in .* but 16 in /,
    "l 32 vs 16",
  );
  r = await cli("forecast", cal, runSized);
  assertRefused(
    r,
    runSized,
    /the predictor small has parameters 1000 in .* but 1200 in /,
    "parameters",
  );
  assert.equal(await exists(join(run16, "forecast")), false, "nothing written when refused");
  // As a user runs it (the warning goes to stderr above the progress line).
  const { cli: command } = await import("./cli.ts");
  const allowed = await command("forecast", cal, run16, "--allow-mismatch");
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stderr, /warning: memorization\.continuation is 32/);
  const f = JSON.parse(await Deno.readTextFile(join(run16, "forecast", "forecast.json")));
  assert.equal(f.warnings.length, 1);
  const page = await Deno.readTextFile(join(run16, "forecast", "forecast.html"));
  assert.match(page, /class="banner" role="alert".*memorization\.continuation is 32/s);
  // A rule whose held-out precision misses the floor badly says so.
  const { floorWarning } = await import("../tasks/forecast.ts");
  const choice = { expected: { precision: { value: 0, lo: 0, hi: 0.6 } } };
  assert.match(
    floorWarning(choice as never, 0.9, cal)!,
    /held-out precision on .* is 0\.000 \(95% interval 0\.000–0\.600\), well below the 0\.9 floor/,
  );
  assert.equal(
    floorWarning(
      { expected: { precision: { value: 0.85, lo: 0.7, hi: 0.95 } } } as never,
      0.9,
      cal,
    ),
    null,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "a long read honours SIGTERM: the import stops at once, exit 143, the inputs untouched and nothing left behind",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "untrusted_stop_" });
    const exp = await experiment(dir, "").then(async (p) => {
      const text = await Deno.readTextFile(p);
      await Deno.writeTextFile(
        p,
        text.replace("sequences_per_step: 100", "sequences_per_step: 1000000"),
      );
      return p;
    });
    const root = join(dir, "in");
    await Deno.mkdir(join(root, "memorization_big_10"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "README.md"),
      "not imported: the note says when reading starts",
    );
    // Three million lines: seconds of reading after the note.
    const file = await Deno.open(join(root, "memorization_big_10", "rank-0.csv"), {
      write: true,
      create: true,
    });
    const enc = new TextEncoder();
    for (let a = 0; a < 3_000_000; a += 100_000) {
      await file.write(
        enc.encode(Array.from({ length: 100_000 }, (_, i) => `${a + i},0\n`).join("")),
      );
    }
    file.close();
    const before = await tree(root);
    const out = join(dir, "run");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-P=run", "main.ts", "import", root, "--experiment", exp, "--output", out],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!err.includes("match no layout")) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      err += value;
    }
    const status = await child.status;
    await child.stdout.cancel();
    assert.equal(status.code, 143, err);
    assert.match(err, /Stopped by SIGTERM/);
    assert.deepEqual(await tree(root), before);
    assert.equal(await exists(join(out, "import.json")), false);
    // The next import cleans what the stopped one left and completes.
    const names = [...Deno.readDirSync(out)].map((e) => e.name);
    assert.ok(
      names.every((n) =>
        n === ".memo-harness.json" || n.startsWith("imported.partial-") || n === "locks"
      ),
      `${names}`,
    );
    await Deno.remove(dir, { recursive: true });
  },
});
