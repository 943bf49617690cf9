import assert from "node:assert/strict";
import {
  compressFeatures,
  compressionRatio,
  distinctShare,
  tokenBytes,
} from "../engine/data/features/compress.ts";
import { loadTokenizer } from "../engine/data/tokenizer.ts";
import { NANO_K, NANO_L, nanoPath, nanoRows } from "./fixtures/nano_data.ts";

const enc = new TextEncoder();

Deno.test("repeated text compresses far below prose; DEFLATE overhead keeps short prose near 1", () => {
  const repeated = compressionRatio(enc.encode("INFO  heartbeat ok\n".repeat(10)));
  const prose = compressionRatio(
    enc.encode("The quick brown fox jumps over the lazy dog while a zebra quietly hums."),
  );
  assert.ok(repeated < 0.2, `repeated ${repeated}`);
  assert.ok(prose > 0.9, `prose ${prose}`);
  assert.ok(Number.isNaN(compressionRatio(new Uint8Array())));
});

Deno.test("distinct share and token bytes", () => {
  assert.equal(distinctShare([1, 2, 3, 4]), 1);
  assert.equal(distinctShare([7, 7, 7, 8]), 0.5);
  assert.deepEqual(Array.from(tokenBytes([1, 258])), [1, 0, 2, 1]);
  assert.deepEqual(Array.from(tokenBytes([70000])), [0x70, 0x11, 1, 0]);
});

Deno.test("nano data: the low-entropy windows compress best, on decoded text", async () => {
  const { rows, rowLength, tokens } = await nanoRows();
  const tok = await loadTokenizer(nanoPath("tokenizer.json"));
  const w = NANO_K + NANO_L;
  const windows = new Uint16Array(rows * w);
  for (let r = 0; r < rows; r++) {
    windows.set(tokens.subarray(r * rowLength, r * rowLength + w), r * w);
  }
  const f = compressFeatures(windows, w, (ids) => tok.decode(ids));
  assert.equal(f.of, "text");
  const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) =>
    f.compression[a] - f.compression[b]
  );
  // the ten most compressible windows are banners, zero tables, table rules or repeated log lines
  for (const r of order.slice(0, 10)) {
    const text = tok.decode(Array.from(windows.subarray(r * w, (r + 1) * w)));
    assert.match(
      text,
      /(0, 0, 0|####|====|----|\*\*\*\*|N\/A|heartbeat|no new events|retrying|health check)/,
      text,
    );
    assert.ok(f.distinct[r] < 0.5, `row ${r}: distinct ${f.distinct[r]}`);
  }
  const byTokens = compressFeatures(windows.subarray(0, 10 * w), w);
  assert.equal(byTokens.of, "tokens");
  assert.equal(byTokens.compression.length, 10);
});
