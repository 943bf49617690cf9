/**
 * THE seeded randomness of the harness: deterministic across platforms
 * (32-bit integer math only), so a seed names the same rows, folds and
 * bootstrap resamples everywhere. One mixing function (the murmur3 / SplitMix32
 * finalizer) underlies a SplitMix32 stream, the xoshiro128** generator of the
 * row sample, uniform numbers in [0, 1) for the bootstrap and a seeded hash of
 * row indices for cross-fitting folds.
 *
 * @module
 */

/** A deterministic uniform generator in [0, 1). */
export type Random = () => number;

const GOLDEN = 0x9e3779b9;

/** The murmur3 / SplitMix32 finalizer: a bijective mix of a 32-bit integer (unsigned result). */
export function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A SplitMix32 stream of unsigned 32-bit integers from a 32-bit state (a Weyl sequence, mixed). */
export function splitmix32(state: number): () => number {
  let s = state | 0;
  return () => {
    s = (s + GOLDEN) | 0;
    return mix32(s);
  };
}

/** Folds a seed of up to 2^53 into 32 bits (both halves count). */
function seed32(seed: number): number {
  return ((seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, GOLDEN)) | 0;
}

/** Uniform numbers in [0, 1) from a seed: the same seed gives the same stream. */
export function seededRandom(seed: number): Random {
  const next = splitmix32((seed >>> 0) ^ GOLDEN);
  return () => next() / 4294967296;
}

/** A xoshiro128** generator of unsigned 32-bit integers, seeded through SplitMix32. */
export function xoshiro128(seed: number): () => number {
  const split = splitmix32(seed32(seed));
  let a = split(), b = split(), c = split(), d = split();
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r;
  };
}

/** A seeded 32-bit hash of a non-negative integer (e.g. a row index), unsigned. */
export function hash32(value: number, seed: number): number {
  return mix32(value ^ hashKey(seed));
}

/** The seed's part of {@link hash32}: `hash32(v, seed) = mix32(v ^ hashKey(seed))`. */
export function hashKey(seed: number): number {
  return Math.imul((seed >>> 0) ^ Math.floor(seed / 2 ** 32), GOLDEN);
}

function rotl(v: number, k: number): number {
  return (v << k) | (v >>> (32 - k));
}
