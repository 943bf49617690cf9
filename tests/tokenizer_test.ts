import assert from "node:assert/strict";
import { bytesToUnicode, parseTokenizer } from "../engine/data/tokenizer.ts";
import { UserError } from "../engine/errors.ts";

/** A tiny byte-level BPE: all 256 bytes, merges "Ġ t" → "Ġt", "Ġt h" → "Ġth", "Ġth e" → "Ġthe". */
function tiny() {
  const table = bytesToUnicode();
  const vocab: Record<string, number> = { "<|endoftext|>": 0 };
  table.forEach((ch, b) => vocab[ch] = b + 1);
  vocab["Ġt"] = 257;
  vocab["Ġth"] = 258;
  vocab["Ġthe"] = 259;
  return parseTokenizer({
    model: { type: "BPE", vocab, merges: ["Ġ t", ["Ġt", "h"], "Ġth e"] },
    added_tokens: [{ id: 0, content: "<|endoftext|>" }],
  });
}

Deno.test("bytesToUnicode is GPT-2's mapping", () => {
  const t = bytesToUnicode();
  assert.equal(t[32], "Ġ");
  assert.equal(t[10], "Ċ");
  assert.equal(t[65], "A");
  assert.equal(new Set(t).size, 256);
});

Deno.test("encode applies merges by rank and splits added tokens; decode inverts it", () => {
  const tok = tiny();
  const ids = tok.encode("in the<|endoftext|>é");
  // "in" → i, n; " the" → Ġthe; end-of-text; "é" → two bytes
  assert.deepEqual(ids, [106, 111, 259, 0, 0xc3 + 1, 0xa9 + 1]);
  assert.equal(tok.decode(ids), "in the<|endoftext|>é");
  assert.equal(tok.vocabSize, 260);
});

Deno.test("decode of a cut multi-byte character yields U+FFFD, decodeBytes keeps the bytes", () => {
  const tok = tiny();
  assert.equal(tok.decode([0xc3 + 1]), "\ufffd");
  assert.deepEqual(tok.decodeBytes([0xc3 + 1, 0xa9 + 1]), new Uint8Array([0xc3, 0xa9]));
});

Deno.test("unknown ids and non-BPE files are user errors", () => {
  assert.throws(() => tiny().decode([999]), UserError);
  assert.throws(() => parseTokenizer({ model: { type: "WordPiece" } }, "x.json"), /x\.json/);
});
