/**
 * Byte-level BPE from a Hugging Face `tokenizer.json` (GPT-2, Pythia/GPT-NeoX, the
 * nano suite): decoding ids to text, and encoding text to ids (GPT-2 pre-tokenizer
 * regex, merges by rank, added tokens such as `<|endoftext|>` matched first).
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { UserError } from "../errors.ts";

/** A loaded byte-level BPE tokenizer. */
export interface Tokenizer {
  /** Number of ids (model vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Text of the ids: bytes of each token concatenated, then decoded as UTF-8 (invalid bytes → U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /** Raw bytes of the ids (added tokens as their UTF-8 content). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
  /** Ids of the text, as the Hugging Face tokenizer produces them. */
  encode(text: string): number[];
}

/** GPT-2's reversible mapping from bytes to printable characters. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  }
  return table;
}

const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | string[])[] };
  added_tokens?: { id: number; content: string }[];
}

/** Builds a tokenizer from the parsed JSON of a `tokenizer.json` (`where` names it in errors). */
export function parseTokenizer(json: unknown, where = "tokenizer.json"): Tokenizer {
  const doc = json as TokenizerJson;
  const model = doc?.model;
  if (!model || model.type !== "BPE" || typeof model.vocab !== "object" || !model.vocab) {
    throw new UserError(
      `${where}: field "model" must be a BPE model with "vocab" and "merges" (a Hugging Face byte-level BPE tokenizer.json such as Pythia's)`,
    );
  }
  const bpe: Bpe = {
    where,
    ...readVocabulary(model.vocab, doc.added_tokens ?? []),
    ranks: mergeRanks(model.merges ?? []),
    table: bytesToUnicode(),
    cache: new Map(),
  };
  return {
    vocabSize: bpe.tokens.length,
    decode: (ids) => new TextDecoder().decode(decodeBytes(bpe, ids)),
    decodeBytes: (ids) => decodeBytes(bpe, ids),
    encode: (text) => encode(bpe, text),
  };
}

/** A byte-level BPE tokenizer's tables. */
interface Bpe {
  /** The tokenizer file, in errors. */
  where: string;
  /** Bytes per token id. */
  tokens: (Uint8Array | undefined)[];
  /** Id per token (as byte-level unicode). */
  vocab: Map<string, number>;
  /** Id per added (special) token's text. */
  added: Map<string, number>;
  /** Rank per merge (`a b`). */
  ranks: Map<string, number>;
  /** Byte → its byte-level unicode character. */
  table: string[];
  /** Ids per word already encoded. */
  cache: Map<string, number[]>;
}

/** The bytes of every token id (vocabulary and added tokens) and the ids by text. */
function readVocabulary(
  vocabulary: Record<string, number>,
  addedTokens: { id: number; content: string }[],
): Pick<Bpe, "tokens" | "vocab" | "added"> {
  const byteOf = new Map<string, number>();
  bytesToUnicode().forEach((ch, b) => byteOf.set(ch, b));
  const tokens: (Uint8Array | undefined)[] = [];
  const vocab = new Map<string, number>();
  for (const [tok, id] of Object.entries(vocabulary)) {
    vocab.set(tok, id);
    const bytes = new Uint8Array([...tok].length);
    let ok = true;
    [...tok].forEach((ch, i) => {
      const b = byteOf.get(ch);
      if (b === undefined) ok = false;
      else bytes[i] = b;
    });
    tokens[id] = ok ? bytes : new TextEncoder().encode(tok);
  }
  const added = new Map<string, number>();
  for (const t of addedTokens) {
    tokens[t.id] = new TextEncoder().encode(t.content);
    added.set(t.content, t.id);
  }
  return { tokens, vocab, added };
}

/** Merge rank by pair (`a b`), from the list's order. */
function mergeRanks(merges: (string | string[])[]): Map<string, number> {
  const ranks = new Map<string, number>();
  merges.forEach((m, i) => {
    const [a, b] = Array.isArray(m) ? m : m.split(" ");
    ranks.set(`${a} ${b}`, i);
  });
  return ranks;
}

function decodeBytes(bpe: Bpe, ids: ArrayLike<number>): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; i < ids.length; i++) {
    const t = bpe.tokens[ids[i]];
    if (t === undefined) {
      throw new UserError(
        `${bpe.where}: token id ${ids[i]} is not in the vocabulary (ids 0..${
          bpe.tokens.length - 1
        }); the data and tokenizer do not match`,
      );
    }
    parts.push(t);
    size += t.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function bpeWord(bpe: Bpe, word: string): number[] {
  const hit = bpe.cache.get(word);
  if (hit) return hit;
  let parts = [...word];
  while (parts.length > 1) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = bpe.ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) [bestRank, best] = [r, i];
    }
    if (best < 0) break;
    const [a, b] = [parts[best], parts[best + 1]];
    const next: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
        next.push(a + b);
        i++;
      } else next.push(parts[i]);
    }
    parts = next;
  }
  const ids = parts.map((p) => {
    const id = bpe.vocab.get(p);
    if (id === undefined) throw new UserError(`${bpe.where}: piece "${p}" has no id in "vocab"`);
    return id;
  });
  bpe.cache.set(word, ids);
  return ids;
}

function encodePlain(bpe: Bpe, text: string, out: number[]) {
  for (const m of text.matchAll(GPT2_PATTERN)) {
    const mapped = Array.from(new TextEncoder().encode(m[0]), (b) => bpe.table[b]).join("");
    out.push(...bpeWord(bpe, mapped));
  }
}

function encode(bpe: Bpe, text: string): number[] {
  const out: number[] = [];
  const specials = [...bpe.added.keys()].sort((a, b) => b.length - a.length);
  let rest = text;
  while (rest.length > 0) {
    let at = -1;
    let which = "";
    for (const s of specials) {
      const i = rest.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) [at, which] = [i, s];
    }
    if (at < 0) {
      encodePlain(bpe, rest, out);
      break;
    }
    encodePlain(bpe, rest.slice(0, at), out);
    out.push(bpe.added.get(which)!);
    rest = rest.slice(at + which.length);
  }
  return out;
}

/** Loads a Hugging Face byte-level BPE `tokenizer.json` (throws UserError naming the file). */
export async function loadTokenizer(path: string): Promise<Tokenizer> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(
      `${path}: cannot read the tokenizer (${
        (e as Error).message
      }); give the path of a tokenizer.json`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseTokenizer(json, path);
}

/**
 * A decode function for the tokenizer at `path` (none given: undefined); a
 * tokenizer that does not load is noted through `log` and gives undefined, so
 * a report shows token ids instead.
 */
export async function loadDecoder(
  path: string | undefined,
  log: (line: string) => void,
): Promise<((ids: number[]) => string) | undefined> {
  if (!path) return undefined;
  try {
    const tokenizer = await loadTokenizer(path);
    return (ids) => tokenizer.decode(ids);
  } catch (e) {
    log(`Note: tokenizer not loaded (${(e as Error).message}); examples show token ids.`);
    return undefined;
  }
}
