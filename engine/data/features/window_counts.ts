/**
 * Exact counts of token windows over a token stream: for each query window
 * (a row's scored window, or its context), how many positions of the data
 * hold the same `width` tokens. Every position counts, not only row starts.
 *
 * The method scales to the Pile: a hash table of the (distinct) query windows
 * is built once; the data is streamed once, a rolling hash computed at every
 * position, and each position whose hash is in the table is counted (after
 * checking its tokens against the query's, unless `verify` is off). Work is
 * one hash update and one table probe per position; memory is the table (and
 * the query tokens when verifying), not the data.
 *
 * **The hash.** A 64-bit polynomial rolling hash computed as two independent
 * 32-bit lanes: lane j is Σ f_j(t_i) · B_j^(w−1−i) mod 2^32, with B_j an odd
 * seeded base and f_j(t) = mix32(t ⊕ s_j) a seeded random map of token ids
 * (so token differences are random 32-bit values, not the small differences
 * of raw ids that make plain polynomial hashing mod 2^32 collide). Updates
 * are `Math.imul` and integer adds only. With `verify` (the default) a hash
 * match whose tokens differ is rejected and counted in `rejected`, so counts
 * are exact. Without it, each of the N positions matches one of the n
 * distinct query hashes by accident with probability about n / 2^64: the
 * expected number of wrong increments is about N · n / 2^64 (the whole
 * deduplicated Pile, N = 2.99e11 positions, n = 1.46e8 windows: 2.4).
 *
 * **Bounded memory.** {@link buildWindowTable} takes a `partition`
 * `{ index, of }` (`of` a power of two): only the queries whose hash's top
 * bits equal `index` go into the table, and a scan probes only positions of
 * that partition; `of` passes over the data then cover every query with
 * 1/`of` of the memory each. {@link emptyWindowTable} and
 * {@link addWindows} build a table a chunk of queries at a time without
 * keeping their tokens (the features step: 64-bit hashes only, so nothing of
 * the queries but the table spans all rows); a table's own `counts` are
 * allocated only when used (per-shard counts come from `newCounts`).
 *
 * **Parallel by data shard.** A table's keys are read-only during a scan;
 * each shard can be scanned into its own counts array
 * ({@link WindowTable.newCounts}) and the arrays summed
 * ({@link addCounts}), or worker threads can share the table's buffers: a
 * table made `shared` keeps its arrays in shared memory, {@link tableView}
 * posts them to a thread and {@link tableFromView} scans over them there;
 * counts in shared memory are added with `Atomics.add` (several threads
 * scanning blocks of one shard into one array).
 *
 * Windows never cross segment boundaries: each call of {@link scanTokens}
 * is one contiguous piece of text (for pre-shuffled training data, one row:
 * two rows adjacent in the file were never adjacent text).
 *
 * @module
 */
import { mix32, splitmix32 } from "../../random.ts";
import { UserError } from "../../errors.ts";

/** Token ids held in memory (any integer typed array). */
export type Tokens = Uint16Array | Uint32Array | Int32Array;

/** Options of {@link buildWindowTable}. */
export interface WindowTableOptions {
  /** Seed of the hash's bases and token maps (default 0). */
  seed?: number;
  /** Keep the query tokens and check every hash match against them (default true). */
  verify?: boolean;
  /** Only queries of hash partition `index` of `of` (a power of two); default one partition. */
  partition?: { index: number; of: number };
}

/** The hash parameters of one width: two lanes, their bases, B^width and token maps. */
export interface WindowHash {
  width: number;
  b1: number;
  b2: number;
  /** B1^width, B2^width mod 2^32 (to remove the token leaving the window). */
  p1: number;
  p2: number;
  s1: number;
  s2: number;
}

/** The seeded hash of windows of `width` tokens. */
export function windowHash(width: number, seed = 0): WindowHash {
  if (!Number.isInteger(width) || width < 1) {
    throw new UserError(`window width must be a positive integer, got ${width}`);
  }
  const next = splitmix32((seed ^ 0x2545f491) | 0);
  const b1 = next() | 1, b2 = next() | 1, s1 = next() | 0, s2 = next() | 0;
  let p1 = 1, p2 = 1;
  for (let i = 0; i < width; i++) {
    p1 = Math.imul(p1, b1);
    p2 = Math.imul(p2, b2);
  }
  return { width, b1, b2, p1, p2, s1, s2 };
}

/** The two 32-bit lanes of the hash of `tokens[start, start + width)` (unsigned). */
export function hashWindow(h: WindowHash, tokens: Tokens, start: number): [number, number] {
  let x1 = 0, x2 = 0;
  for (let i = start; i < start + h.width; i++) {
    x1 = (Math.imul(x1, h.b1) + mix32(tokens[i] ^ h.s1)) | 0;
    x2 = (Math.imul(x2, h.b2) + mix32(tokens[i] ^ h.s2)) | 0;
  }
  return [x1 >>> 0, x2 >>> 0];
}

/** The table slot a hash starts probing at. */
function slotOf(lo: number, hi: number, mask: number): number {
  return (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
}

/**
 * A hash table of query windows: open addressing over distinct windows, a
 * count per distinct window, each query's slot, and a bit filter in front.
 *
 * Layout for a table larger than the CPU caches (the Pile's is gigabytes):
 * almost every position of the data is a miss, so a position first tests one
 * bit of `filter` (16 bits per query, indexed by the high lane: about 6% of
 * misses pass it), and a probe reads one 16-byte slot of `keys` (low lane,
 * high lane, representative query + 1, 0 for empty): one cache miss each.
 */
export interface WindowTable {
  readonly hash: WindowHash;
  /** Queries (all, including those outside the partition). */
  readonly queries: number;
  /** Distinct windows in the table. */
  distinct: number;
  /** Slot mask (capacity − 1). */
  readonly mask: number;
  /** Per slot, 4 words: low lane, high lane, representative query + 1 (0: empty), unused. */
  readonly keys: Uint32Array;
  /** Bit filter over the high lane (bit `hi & filterMask` is set for every query's hash). */
  readonly filter: Uint32Array;
  readonly filterMask: number;
  /** Per query: its slot (−1: the query is outside this table's partition). */
  readonly slot: Int32Array;
  /** Per slot: positions counted so far (allocated when first used). */
  readonly counts: Uint32Array;
  /** Query tokens (stride `stride`), kept when verifying. */
  readonly tokens: Tokens | null;
  readonly stride: number;
  /** Hash partition: a position is probed when `hi >>> shift === index` (shift 32: always). */
  readonly shift: number;
  readonly index: number;
  /** Hash matches whose tokens differed (verification only). */
  rejected: number;
  /** A fresh zero counts array (one per data shard), summed with {@link addCounts}. */
  newCounts(): Uint32Array;
  /** Bytes held by the table (keys, filter, slots, counts; not the query tokens). */
  readonly bytes: number;
}

function partitionShift(of: number): number {
  if (!Number.isInteger(of) || of < 1 || (of & (of - 1)) !== 0) {
    throw new UserError(`the number of hash partitions must be a power of two, got ${of}`);
  }
  return 32 - Math.log2(of);
}

/** The partition (of `of`, a power of two) a query of the given hash falls in. */
export function partitionOfHash(hi: number, of: number): number {
  const shift = partitionShift(of);
  return shift === 32 ? 0 : hi >>> shift;
}

/**
 * Builds the table of query windows: query q is `windows[q · stride, q ·
 * stride + width)` (a row's window of `stride` tokens, of which the first
 * `width` are counted: the context table uses the scored windows' tokens).
 */
export function buildWindowTable(
  windows: Tokens,
  stride: number,
  width: number,
  options: WindowTableOptions = {},
): WindowTable {
  checkQueryShape(windows, stride, width);
  const hash = windowHash(width, options.seed ?? 0);
  const verify = options.verify ?? true;
  const part = tablePartition(options.partition);
  const n = windows.length / stride;
  const { qLo, qHi, inPart } = hashQueries(hash, windows, stride, n, part.shift, part.index);
  const table = newTable(hash, n, inPart, part, verify ? windows : null, stride);
  insertQueries(table, qLo, qHi, 0);
  return table;
}

/**
 * An empty table for `queries` query windows of `width` tokens, filled in
 * pieces by {@link addWindows} (the features step reads the selected rows'
 * windows a chunk at a time): one partition, no verification, so the table
 * keeps 64-bit hashes only, never query tokens (the expected number of wrong
 * counts is the module's N · n / 2^64; two distinct query windows share a
 * slot with probability about n² / 2^65).
 */
export function emptyWindowTable(
  width: number,
  queries: number,
  options: { seed?: number; shared?: boolean } = {},
): WindowTable {
  const hash = windowHash(width, options.seed ?? 0);
  return newTable(hash, queries, queries, { shift: 32, index: 0 }, null, width, options.shared);
}

/**
 * Inserts queries `first, first + 1, …` of an {@link emptyWindowTable}:
 * query `first + i` is `windows[i · stride, i · stride + width)`.
 */
export function addWindows(
  table: WindowTable,
  windows: Tokens,
  stride: number,
  first: number,
): void {
  if (table.tokens !== null) throw new Error("addWindows: a verifying table is built whole");
  checkQueryShape(windows, stride, table.hash.width);
  const n = windows.length / stride;
  if (!Number.isInteger(first) || first < 0 || first + n > table.queries) {
    throw new RangeError(`addWindows: queries ${first}…${first + n} of ${table.queries}`);
  }
  const { qLo, qHi } = hashQueries(table.hash, windows, stride, n, table.shift, table.index);
  insertQueries(table, qLo, qHi, first);
}

/**
 * The two hash lanes of each of `n` query windows (`windows[q · stride, q ·
 * stride + h.width)`): what {@link addWindows} inserts, computed apart so
 * that they can be kept (the features step writes them per chunk of rows and
 * builds its tables from them, {@link addHashes}, without reading the windows
 * again).
 */
export function hashLanes(
  h: WindowHash,
  windows: Tokens,
  stride: number,
): { lo: Uint32Array; hi: Uint32Array } {
  checkQueryShape(windows, stride, h.width);
  const { qLo, qHi } = hashQueries(h, windows, stride, windows.length / stride, 32, 0);
  return { lo: qLo, hi: qHi };
}

/**
 * Inserts queries `first, first + 1, …` of an {@link emptyWindowTable} from
 * their lanes ({@link hashLanes} of the table's hash): the same table as
 * {@link addWindows} of their windows.
 */
export function addHashes(
  table: WindowTable,
  lo: Uint32Array,
  hi: Uint32Array,
  first: number,
): void {
  if (table.tokens !== null) throw new Error("addHashes: a verifying table is built whole");
  if (lo.length !== hi.length || first < 0 || first + lo.length > table.queries) {
    throw new RangeError(`addHashes: queries ${first}…${first + lo.length} of ${table.queries}`);
  }
  insertQueries(table, lo, hi, first);
}

/**
 * What a scan needs of a table, as plain values that can be posted to a
 * worker thread (its arrays shared when the table was made `shared`).
 */
export interface TableView {
  hash: WindowHash;
  queries: number;
  mask: number;
  keys: Uint32Array;
  filter: Uint32Array;
  filterMask: number;
  slot: Int32Array;
  stride: number;
}

/** The view of a one-partition table without query tokens (the features step's). */
export function tableView(t: WindowTable): TableView {
  if (t.tokens !== null || t.shift !== 32) throw new Error("tableView: a hash-only table only");
  const { hash, queries, mask, keys, filter, filterMask, slot, stride } = t;
  return { hash, queries, mask, keys, filter, filterMask, slot, stride };
}

/** A table over a view's arrays (a worker thread's scan reads them; nothing is copied). */
export function tableFromView(v: TableView): WindowTable {
  const cap = v.mask + 1;
  return {
    ...v,
    distinct: 0,
    get counts(): Uint32Array {
      throw new Error("tableFromView: count into newCounts() or given arrays");
    },
    tokens: null,
    shift: 32,
    index: 0,
    rejected: 0,
    newCounts: () => new Uint32Array(cap),
    bytes: cap * 20 + v.filter.byteLength + v.queries * 4,
  };
}

/**
 * A table of `queries` queries, `inPart` of them in its partition, with no
 * query inserted yet. Its `counts` are allocated when first used (a scan
 * into per-shard {@link WindowTable.newCounts} never needs them).
 */
function newTable(
  hash: WindowHash,
  queries: number,
  inPart: number,
  part: { shift: number; index: number },
  tokens: Tokens | null,
  stride: number,
  shared = false,
): WindowTable {
  const { cap, bits } = tableSizes(inPart);
  const filter = sharedArray(Uint32Array, bits / 32, shared);
  let counts: Uint32Array | null = null;
  return {
    hash,
    queries,
    distinct: 0,
    mask: cap - 1,
    keys: sharedArray(Uint32Array, cap * 4, shared),
    filter,
    filterMask: bits - 1,
    slot: sharedArray(Int32Array, queries, shared).fill(-1),
    get counts() {
      return counts ??= new Uint32Array(cap);
    },
    tokens,
    stride,
    shift: part.shift,
    index: part.index,
    rejected: 0,
    newCounts: () => new Uint32Array(cap),
    bytes: cap * 20 + filter.byteLength + queries * 4,
  };
}

/**
 * A zeroed typed array of `n` elements, in shared memory when `shared`
 * (worker threads read it without a copy; per-shard counts of several
 * threads are added into one with `Atomics.add`).
 */
export function sharedArray<T extends Uint32Array | Int32Array>(
  type: { new (b: ArrayBufferLike, at: number, n: number): T; BYTES_PER_ELEMENT: number },
  n: number,
  shared: boolean,
): T {
  const bytes = n * type.BYTES_PER_ELEMENT;
  return new type(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes), 0, n);
}

/** The query tokens are whole windows of `stride` tokens, each holding the `width` counted. */
function checkQueryShape(windows: Tokens, stride: number, width: number): void {
  if (width > stride) throw new UserError(`window width ${width} exceeds the stride ${stride}`);
  if (windows.length % stride !== 0) {
    throw new UserError(
      `${windows.length} query tokens are not a multiple of the stride ${stride}`,
    );
  }
}

/** The hash partition a table holds: its top-bits shift (32: every query) and its index. */
function tablePartition(
  partition: WindowTableOptions["partition"],
): { shift: number; index: number } {
  const of = partition?.of ?? 1;
  const index = partition?.index ?? 0;
  const shift = partitionShift(of);
  if (!Number.isInteger(index) || index < 0 || index >= of) {
    throw new UserError(`partition index ${index} is outside 0…${of - 1}`);
  }
  return { shift, index };
}

/** Each query's two hash lanes, and how many queries fall in the table's partition. */
function hashQueries(
  hash: WindowHash,
  windows: Tokens,
  stride: number,
  n: number,
  shift: number,
  index: number,
): { qLo: Uint32Array; qHi: Uint32Array; inPart: number } {
  const qLo = new Uint32Array(n), qHi = new Uint32Array(n);
  let inPart = 0;
  for (let q = 0; q < n; q++) {
    const [lo, hi] = hashWindow(hash, windows, q * stride);
    qLo[q] = lo;
    qHi[q] = hi;
    if (shift === 32 || hi >>> shift === index) inPart++;
  }
  return { qLo, qHi, inPart };
}

/**
 * The table's slots (a power of two at load ≤ 0.7: linear probing stays short)
 * and filter bits (a power of two, about 16 per query, at most 2^32).
 */
function tableSizes(inPart: number): { cap: number; bits: number } {
  let cap = 16;
  while (cap * 0.7 < inPart) cap *= 2;
  let bits = 1024;
  while (bits < 16 * inPart && bits < 2 ** 32) bits *= 2;
  return { cap, bits };
}

/**
 * Inserts queries `first + q` (lanes `qLo[q]`, `qHi[q]`) of the table's
 * partition: sets each one's filter bit, finds or claims the slot of its
 * distinct window (equal lanes, and equal tokens when the table keeps them)
 * and records it in `slot`; counts the new distinct windows.
 */
function insertQueries(t: WindowTable, qLo: Uint32Array, qHi: Uint32Array, first: number): void {
  const { keys, filter, filterMask, mask, slot, shift, index, tokens, stride } = t;
  const width = t.hash.width;
  for (let i = 0; i < qLo.length; i++) {
    const q = first + i, lo = qLo[i], hi = qHi[i];
    if (shift !== 32 && hi >>> shift !== index) continue;
    const bit = (hi & filterMask) >>> 0;
    filter[bit >>> 5] |= 1 << (bit & 31);
    let s = slotOf(lo, hi, mask);
    for (;;) {
      const r = keys[4 * s + 2] - 1;
      if (r < 0) {
        if (t.distinct >= mask) throw new RangeError("insertQueries: the table is full");
        keys[4 * s] = lo;
        keys[4 * s + 1] = hi;
        keys[4 * s + 2] = q + 1;
        t.distinct++;
        break;
      }
      if (
        keys[4 * s] === lo && keys[4 * s + 1] === hi &&
        (tokens === null || sameTokens(tokens, r * stride, tokens, q * stride, width))
      ) break;
      s = (s + 1) & mask;
    }
    slot[q] = s;
  }
}

function sameTokens(a: Tokens, i: number, b: Tokens, j: number, width: number): boolean {
  for (let t = 0; t < width; t++) if (a[i + t] !== b[j + t]) return false;
  return true;
}

/**
 * Counts, into `counts` (default the table's), every position p in
 * `[start, end − width]` of `tokens` whose window `tokens[p, p + width)` is
 * one of the table's queries. Returns the number of positions counted.
 */
export function scanTokens(
  table: WindowTable,
  tokens: Tokens,
  start = 0,
  end = tokens.length,
  counts: Uint32Array = table.counts,
): number {
  return scanAll([table], tokens, start, end, [counts])[0];
}

let m1 = new Int32Array(0), m2 = new Int32Array(0);

/**
 * {@link scanTokens} for several tables of the same seed (the window and the
 * context table) over one segment: the token maps are computed once per
 * token and shared. Returns the positions counted per table.
 */
export function scanAll(
  tables: readonly WindowTable[],
  tokens: Tokens,
  start = 0,
  end = tokens.length,
  counts: readonly Uint32Array[] = tables.map((t) => t.counts),
): number[] {
  const n = end - start;
  if (m1.length < n) {
    m1 = new Int32Array(Math.max(n, 2 * m1.length));
    m2 = new Int32Array(m1.length);
  }
  if (tables.length === 0) return [];
  const { s1, s2 } = tables[0].hash;
  for (let i = 0; i < n; i++) {
    m1[i] = mix32(tokens[start + i] ^ s1);
    m2[i] = mix32(tokens[start + i] ^ s2);
  }
  return tables.map((t, j) => {
    if (t.hash.s1 !== s1 || t.hash.s2 !== s2) {
      throw new Error("scanAll: the tables were built with different seeds");
    }
    return scanMapped(t, tokens, start, n, counts[j]);
  });
}

/** The scan over mapped tokens m1, m2 [0, n) of tokens [start, start + n). */
function scanMapped(
  table: WindowTable,
  tokens: Tokens,
  start: number,
  n: number,
  counts: Uint32Array,
): number {
  const { width, b1, b2, p1, p2 } = table.hash;
  const { keys, filter, filterMask, mask, shift, index, stride } = table;
  const qt = table.tokens;
  // counts shared by several threads scanning blocks of one shard: added atomically
  const atomic = counts.buffer instanceof SharedArrayBuffer;
  let x1 = 0, x2 = 0, hits = 0;
  for (let i = 0; i < n; i++) {
    x1 = (Math.imul(x1, b1) + m1[i]) | 0;
    x2 = (Math.imul(x2, b2) + m2[i]) | 0;
    const first = i - width + 1;
    if (first > 0) {
      x1 = (x1 - Math.imul(m1[first - 1], p1)) | 0;
      x2 = (x2 - Math.imul(m2[first - 1], p2)) | 0;
    } else if (first < 0) continue;
    const bit = (x2 & filterMask) >>> 0;
    if ((filter[bit >>> 5] & (1 << (bit & 31))) === 0) continue;
    const lo = x1 >>> 0, hi = x2 >>> 0;
    if (shift !== 32 && hi >>> shift !== index) continue;
    let s = slotOf(lo, hi, mask);
    for (;;) {
      const r = keys[4 * s + 2] - 1;
      if (r < 0) break;
      if (keys[4 * s] === lo && keys[4 * s + 1] === hi) {
        if (qt === null || sameTokens(qt, r * stride, tokens, start + first, width)) {
          if (atomic) Atomics.add(counts, s, 1);
          else counts[s]++;
          hits++;
          break;
        }
        table.rejected++;
      }
      s = (s + 1) & mask;
    }
  }
  return hits;
}

/** Adds `from` into `into` (per-shard counts of one table). */
export function addCounts(into: Uint32Array, from: Uint32Array): Uint32Array {
  for (let i = 0; i < into.length; i++) into[i] += from[i];
  return into;
}

/**
 * Per query, the count of its window (from `counts`, default the table's);
 * queries outside the table's partition are left as they are in `out`.
 */
export function queryCounts(
  table: WindowTable,
  counts: Uint32Array = table.counts,
  out: Uint32Array = new Uint32Array(table.queries),
): Uint32Array {
  for (let q = 0; q < table.queries; q++) {
    const s = table.slot[q];
    if (s >= 0) out[q] = counts[s];
  }
  return out;
}

/** Options of {@link countWindows}. */
export interface CountOptions {
  seed?: number;
  verify?: boolean;
  /** Passes over the data, each holding 1/passes of the queries (a power of two; default 1). */
  passes?: number;
}

/**
 * Per query window (`windows`, `stride` tokens each, the first `width`
 * counted), its occurrences at any position of the segments (each a
 * contiguous piece of text; a function so that it can be re-read per pass).
 */
export function countWindows(
  windows: Tokens,
  stride: number,
  width: number,
  segments: () => Iterable<Tokens>,
  options: CountOptions = {},
): Uint32Array {
  const passes = options.passes ?? 1;
  const out = new Uint32Array(windows.length / stride);
  for (let p = 0; p < passes; p++) {
    const table = buildWindowTable(windows, stride, width, {
      seed: options.seed,
      verify: options.verify,
      partition: { index: p, of: passes },
    });
    for (const seg of segments()) scanTokens(table, seg);
    queryCounts(table, table.counts, out);
  }
  return out;
}
