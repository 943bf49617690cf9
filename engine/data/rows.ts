/**
 * Which rows of the training data are scored: every row some checkpoint has
 * seen (`seen`), a range, or a seeded uniform sample of the seen rows. The
 * selection is an ascending Uint32Array of global row indices; a checkpoint at
 * step s scores the prefix of it below s · sequences_per_step.
 *
 * The sample is deterministic across platforms: xoshiro128** seeded by
 * splitmix32 (engine/random.ts), 32-bit integer math only, and a bitmap of chosen rows (Floyd's
 * algorithm), so the output is sorted without a sort and works for any N.
 *
 * @module
 */
import { UserError } from "../errors.ts";
import { xoshiro128 } from "../random.ts";
import type { Experiment, ModelSpec } from "../types.ts";

/** Rows any checkpoint of the suite has seen: max step · sequences_per_step, capped at the data. */
export function seenLimit(exp: Experiment, totalRows: number): number {
  let last = 0;
  for (const m of exp.suite.models) {
    for (const c of m.checkpoints) last = Math.max(last, c.step);
  }
  return Math.min(totalRows, last * exp.suite.sequencesPerStep);
}

/**
 * The ascending global rows the experiment scores, given the data's row count.
 * A range or sample beyond the data is a {@link UserError} at the field's line,
 * never clamped.
 */
export function selectRows(exp: Experiment, totalRows: number): Uint32Array {
  if (totalRows > 2 ** 32) {
    throw new UserError(`${exp.data.path}: ${totalRows} rows exceed the 2^32 rows supported`);
  }
  const limit = seenLimit(exp, totalRows);
  const sel = exp.rows;
  const at = (field: string) => exp.locations?.[field] ?? exp.file;
  if (sel.kind === "range") {
    if (sel.end > totalRows) {
      throw new UserError(
        `${at("rows.range")}: rows.range [${sel.start}, ${sel.end}] goes beyond the data, ` +
          `which has ${totalRows} rows (${exp.data.path}): choose START < END ≤ ${totalRows}.`,
      );
    }
    return iota(sel.start, sel.end);
  }
  if (sel.kind === "sample") {
    if (sel.count > limit) {
      throw new UserError(
        `${at("rows.sample")}: rows.sample ${sel.count} is more than the ${limit} rows the ` +
          `checkpoints have seen (of ${totalRows} in ${exp.data.path}): choose at most ` +
          `${limit}, or rows: seen for all of them.`,
      );
    }
    return sampleRows(limit, sel.count, sel.seed);
  }
  if (sel.kind === "all") return iota(0, totalRows);
  return iota(0, limit);
}

/**
 * The prefix of an ascending selection that a checkpoint of `model` at `step`
 * scores: the rows it has seen, or every selected row when the model's `rows`
 * is `all` (continuous signals on rows it has not been trained on yet).
 */
export function checkpointRows(
  selection: Uint32Array,
  model: Pick<ModelSpec, "rows">,
  step: number,
  sequencesPerStep: number,
): Uint32Array {
  return model.rows === "all" ? selection : seenRows(selection, step, sequencesPerStep);
}

/** The prefix of an ascending selection that a checkpoint at `step` has seen. */
export function seenRows(
  selection: Uint32Array,
  step: number,
  sequencesPerStep: number,
): Uint32Array {
  const bound = step * sequencesPerStep;
  let lo = 0;
  let hi = selection.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (selection[mid] < bound) lo = mid + 1;
    else hi = mid;
  }
  return selection.subarray(0, lo);
}

/** `count` distinct rows of [0, population) chosen uniformly with `seed`, ascending. */
export function sampleRows(population: number, count: number, seed: number): Uint32Array {
  if (count >= population) return iota(0, population);
  const rng = xoshiro128(seed);
  const chosen = new Uint8Array(Math.ceil(population / 8));
  const has = (i: number) => (chosen[Math.floor(i / 8)] & (1 << (i % 8))) !== 0;
  const add = (i: number) => (chosen[Math.floor(i / 8)] |= 1 << (i % 8));
  // Floyd: for j in [n − N, n): t = uniform[0, j]; take t, or j when t is taken.
  for (let j = population - count; j < population; j++) {
    const t = uniformInt(rng, j + 1);
    add(has(t) ? j : t);
  }
  const out = new Uint32Array(count);
  let k = 0;
  for (let b = 0; b < chosen.length; b++) {
    let byte = chosen[b];
    while (byte !== 0) {
      const bit = 31 - Math.clz32(byte & -byte);
      out[k++] = b * 8 + bit;
      byte &= byte - 1;
    }
  }
  return out;
}

/** Uniform integer in [0, n) for n ≤ 2^32 from 53 random bits (exact in doubles). */
function uniformInt(rng: () => number, n: number): number {
  const hi = rng() >>> 5; // 27 bits
  const lo = rng() >>> 6; // 26 bits
  return Math.min(n - 1, Math.floor(((hi * 67108864 + lo) / 9007199254740992) * n));
}

function iota(start: number, end: number): Uint32Array {
  const out = new Uint32Array(Math.max(0, end - start));
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}
