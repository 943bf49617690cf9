/**
 * Out-of-sample selection by cross-fitting. A threshold (or a choice among
 * candidate predictors) that maximizes recall at a precision floor on the
 * rows that then measure it is an optimistic, selected number. Here the rows
 * are split into K folds by a seeded hash of the row index (histograms.ts
 * `foldOf`); for each fold the
 * choice is made on the other K − 1 folds and measured on the fold itself, and
 * the held-out counts of the K folds are summed. The rule one would deploy is
 * the choice made on all rows; its honest performance is the held-out one.
 *
 * Everything here works on per-fold binned counts (histograms per fold, per
 * label), never on per-row values, so it scales with bins × folds, not rows.
 *
 * @module
 */

/** The counts precision and recall need. */
export interface Counts {
  /** Predicted memorized, memorized by the target. */
  tp: number;
  /** Predicted memorized, not memorized by the target. */
  fp: number;
  /** Memorized by the target, not predicted (recall's denominator is tp + fn). */
  fn: number;
}

/**
 * A predictor's evidence per fold, binned from the strongest evidence of
 * memorization (bin 0) to the weakest; the rule "bins 0 … b" predicts
 * memorized. A binary predictor is two bins (memorized, not) with its rule
 * fixed at bin 0.
 */
export interface FoldedSignal {
  /** pos[k][b]: rows of fold k in bin b that the target memorized. */
  pos: Float64Array[];
  /** neg[k][b]: rows of fold k in bin b that the target did not memorize. */
  neg: Float64Array[];
  /**
   * Recall's denominator per fold: the target's memorized rows of the fold
   * (all of them, or only those the predictor scored: see `recall_over`).
   */
  positives: number[];
  /** Threshold value of each bin (shown to users). */
  thresholds: number[];
  /** True for a binary predictor: its only rule is bin 0. */
  fixed: boolean;
}

/** One fold of a cross-fit: the rule chosen on the other folds, its counts there and on the fold. */
export interface FoldFit {
  /** Chosen bin (null when no rule reaches the floor on the training folds). */
  bin: number | null;
  /** Counts of the rule on the training folds. */
  train: Counts;
  /** Counts of the rule on the held-out fold. */
  test: Counts;
}

/** A cross-fitted signal: the rule per fold and the held-out sum; the rule chosen on all rows. */
export interface CrossFit {
  folds: FoldFit[];
  /** Σ over folds of the held-out counts. */
  heldOut: Counts;
  /** The rule chosen on all rows (what one deploys) and its in-sample counts. */
  inSample: { bin: number | null; counts: Counts };
  /** Threshold value of each bin (the signal's). */
  thresholds: readonly number[];
}

const EPS = 1e-12;

/** Precision of counts (NaN when nothing is predicted). */
export function precisionOf(c: Counts): number {
  return c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : NaN;
}

/** Recall of counts (NaN when the target memorized nothing). */
export function recallOf(c: Counts): number {
  return c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : NaN;
}

/** Sum of counts. */
export function addCounts(a: Counts, b: Counts): Counts {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn };
}

/** Whether counts meet the floor with some recall (the eligibility of a rule). */
export function meetsFloor(c: Counts, floor: number): boolean {
  return precisionOf(c) >= floor - EPS && recallOf(c) > 0;
}

/**
 * The rule maximizing recall at precision ≥ floor on cumulative counts
 * (ties: the strictest bin); null when none qualifies.
 */
export function bestBin(
  cumPos: ArrayLike<number>,
  cumNeg: ArrayLike<number>,
  positives: number,
  floor: number,
): number | null {
  let best: number | null = null;
  let bestTp = 0;
  for (let b = 0; b < cumPos.length; b++) {
    const tp = cumPos[b], fp = cumNeg[b];
    if (tp <= 0 || tp / (tp + fp) < floor - EPS) continue;
    if (best === null || tp > bestTp) {
      best = b;
      bestTp = tp;
    }
  }
  return positives > 0 ? best : null;
}

function cumulative(h: Float64Array): Float64Array {
  const c = new Float64Array(h.length);
  let s = 0;
  for (let b = 0; b < h.length; b++) c[b] = s += h[b];
  return c;
}

function countsAt(
  cumPos: ArrayLike<number>,
  cumNeg: ArrayLike<number>,
  bin: number | null,
  positives: number,
): Counts {
  if (bin === null) return { tp: 0, fp: 0, fn: positives };
  return { tp: cumPos[bin], fp: cumNeg[bin], fn: positives - cumPos[bin] };
}

/**
 * Cross-fits a signal's threshold: for each fold, the rule with the highest
 * recall at precision ≥ floor on the other folds, counted on the fold. A
 * fixed (binary) signal has no choice: its held-out counts equal its
 * in-sample ones. With one fold the rule is chosen on all rows (in-sample).
 */
export function crossFit(signal: FoldedSignal, floor: number): CrossFit {
  const k = signal.pos.length;
  const bins = signal.thresholds.length;
  const cumPos = signal.pos.map(cumulative);
  const cumNeg = signal.neg.map(cumulative);
  const allPos = new Float64Array(bins), allNeg = new Float64Array(bins);
  for (let f = 0; f < k; f++) {
    for (let b = 0; b < bins; b++) {
      allPos[b] += cumPos[f][b];
      allNeg[b] += cumNeg[f][b];
    }
  }
  const positives = signal.positives.reduce((s, v) => s + v, 0);
  const choose = (cp: ArrayLike<number>, cn: ArrayLike<number>, p: number) =>
    signal.fixed ? 0 : bestBin(cp, cn, p, floor);
  const folds: FoldFit[] = [];
  let heldOut: Counts = { tp: 0, fp: 0, fn: 0 };
  const trainPos = new Float64Array(bins), trainNeg = new Float64Array(bins);
  for (let f = 0; f < k; f++) {
    // One fold: no cross-fitting, the rule is chosen and measured on the same rows.
    const own = k === 1 ? 0 : 1;
    for (let b = 0; b < bins; b++) {
      trainPos[b] = allPos[b] - own * cumPos[f][b];
      trainNeg[b] = allNeg[b] - own * cumNeg[f][b];
    }
    const trainPositives = positives - own * signal.positives[f];
    const bin = choose(trainPos, trainNeg, trainPositives);
    const fit = {
      bin,
      train: countsAt(trainPos, trainNeg, bin, trainPositives),
      test: countsAt(cumPos[f], cumNeg[f], bin, signal.positives[f]),
    };
    folds.push(fit);
    heldOut = addCounts(heldOut, fit.test);
  }
  const bin = choose(allPos, allNeg, positives);
  return {
    folds,
    heldOut,
    inSample: { bin, counts: countsAt(allPos, allNeg, bin, positives) },
    thresholds: signal.thresholds,
  };
}

/** A candidate of a held-out selection: its compute and its cross-fit. */
export interface SelectionCandidate {
  compute: number;
  fit: CrossFit;
}

/** A held-out selection among candidates within a budget. */
export interface Selection {
  /** The candidate chosen on all rows (index into the candidates; null when none qualifies). */
  pick: number | null;
  /** Its in-sample counts. */
  inSample: Counts | null;
  /** The candidate chosen per fold on the other folds (null: none qualified there). */
  foldPicks: (number | null)[];
  /** Σ over folds of the fold pick's held-out counts: the honest value of "choose the best". */
  heldOut: Counts;
  /** Fraction of folds whose choice is the all-rows pick. */
  agreement: number;
}

/**
 * The procedure "among candidates with compute ≤ budget, take the one with
 * the highest recall at precision ≥ floor (each with its threshold chosen on
 * the same rows)", cross-fitted: each fold's choice is made from the
 * training counts of the other folds and counted on the fold. A fold where
 * nothing qualifies predicts nothing there (its `positives` count as missed).
 * Ties go to the cheaper candidate.
 */
export function selectHeldOut(
  candidates: readonly SelectionCandidate[],
  budget: number,
  floor: number,
  positives: readonly number[],
): Selection {
  const within = candidates
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.compute <= budget * (1 + EPS));
  const argBest = (countsOf: (c: SelectionCandidate) => Counts | null): number | null => {
    let best: number | null = null, bestRecall = 0, bestCompute = Infinity;
    for (const { c, i } of within) {
      const n = countsOf(c);
      if (n === null || !meetsFloor(n, floor)) continue;
      const r = recallOf(n);
      if (
        best === null || r > bestRecall + EPS ||
        (Math.abs(r - bestRecall) <= EPS && c.compute < bestCompute)
      ) {
        best = i;
        bestRecall = r;
        bestCompute = c.compute;
      }
    }
    return best;
  };
  const pick = argBest((c) => (c.fit.inSample.bin === null ? null : c.fit.inSample.counts));
  const foldPicks: (number | null)[] = [];
  let heldOut: Counts = { tp: 0, fp: 0, fn: 0 };
  for (let f = 0; f < positives.length; f++) {
    const p = argBest((c) => (c.fit.folds[f].bin === null ? null : c.fit.folds[f].train));
    foldPicks.push(p);
    heldOut = addCounts(
      heldOut,
      p === null ? { tp: 0, fp: 0, fn: positives[f] } : candidates[p].fit.folds[f].test,
    );
  }
  const agree = foldPicks.filter((p) => p !== null && p === pick).length;
  return {
    pick,
    inSample: pick === null ? null : candidates[pick].fit.inSample.counts,
    foldPicks,
    heldOut,
    agreement: positives.length > 0 ? agree / positives.length : 0,
  };
}
