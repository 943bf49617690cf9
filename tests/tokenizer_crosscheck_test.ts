/**
 * The project's tokenizer (engine/data/tokenizer.ts) against transformers.js's
 * (a well-kept implementation of Hugging Face's tokenizers), on the nano
 * tokenizer and on a GPT-NeoX-style byte-level BPE (Pythia's tokenizer.json
 * layout: NFC normalizer, `<|endoftext|>` and `<|padding|>`, runs of spaces
 * as added tokens): the same ids for text, the same text for ids, including
 * the ids of a report's example rows.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PreTrainedTokenizer } from "@huggingface/transformers";
import { parseTokenizer } from "../engine/data/tokenizer.ts";
import { seededRandom } from "../engine/random.ts";

const NANO = join(import.meta.dirname!, "..", "experiments", "nano", "tokenizer.json");

// deno-lint-ignore no-explicit-any
type Json = any;

/** The nano tokenizer reshaped as GPT-NeoX's tokenizer.json is laid out. */
function neoxStyle(nano: Json): Json {
  const t = structuredClone(nano);
  const size = Object.keys(t.model.vocab).length;
  t.normalizer = { type: "NFC" };
  const added = (id: number, content: string, special: boolean) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: !special,
    special,
  });
  t.added_tokens = [
    added(0, "<|endoftext|>", true),
    added(size, "<|padding|>", true),
    ...Array.from({ length: 6 }, (_, i) => added(size + 1 + i, " ".repeat(24 - i), false)),
  ];
  return t;
}

const TEXTS = [
  "Hello, world! It's 2026.",
  "def f(x):\n    return x  + 1\n\n",
  "naïve café — 東京 🎉 ß",
  "<|endoftext|>The end.<|endoftext|>",
  "tabs\tand\r\nnewlines   trailing   ",
  `indented${" ".repeat(21)}code${" ".repeat(24)}`,
];

for (
  const [name, load] of [
    ["nano", (j: Json) => j],
    ["GPT-NeoX-style", neoxStyle],
  ] as const
) {
  Deno.test(`the ${name} tokenizer encodes and decodes as transformers.js's`, async () => {
    const json = load(JSON.parse(await Deno.readTextFile(NANO)));
    const ours = parseTokenizer(structuredClone(json), name);
    const theirs = new PreTrainedTokenizer(json, {});
    for (const text of TEXTS) {
      const ids = theirs.encode(text, { add_special_tokens: false });
      assert.deepEqual(ours.encode(text), ids, `encode ${JSON.stringify(text)}`);
      assert.equal(
        ours.decode(ids),
        theirs.decode(ids, { clean_up_tokenization_spaces: false }),
        `decode ${JSON.stringify(text)}`,
      );
      assert.equal(ours.decode(ids), text);
    }
    // Rows as a report shows them: any ids, cut anywhere (multi-byte characters split at the
    // ends become U+FFFD in both).
    const rand = seededRandom(5);
    const vocab = ours.vocabSize;
    for (let r = 0; r < 200; r++) {
      const ids = Array.from(
        { length: 1 + Math.floor(rand() * 64) },
        () => Math.floor(rand() * vocab),
      );
      assert.equal(
        ours.decode(ids),
        theirs.decode(ids, { clean_up_tokenization_spaces: false }),
        `decode row ${r}: ${ids}`,
      );
    }
  });
}
