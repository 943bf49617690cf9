/**
 * Coverage of the target's memorized rows by a predictor. A partial
 * checkpoint is compared on the rows it has scored only, so its recall over
 * those rows (`recall`) is not the share of all the target's memorized rows
 * it catches: that is `recallAll` = TP / (target's memorized rows) =
 * recall × memorizedCoverage, rows it never scored counting as missed.
 *
 * @module
 */
import type { Interval } from "./summary.ts";
import { wilson } from "./stats.ts";

/** Coverage fields of a predictor row. */
export interface Coverage {
  /** Fraction of the target's memorized rows the predictor scored. */
  memorizedCoverage: number;
  /** TP over all the target's memorized rows (null when the target memorized none). */
  recallAll: number | null;
  /** Wilson score interval (95%). */
  recallAllCI: Interval | null;
}

/**
 * Coverage of a predictor with `tp` true positives among the `covered`
 * target-memorized rows it scored, of `memorized` target-memorized rows in all.
 */
export function coverageOf(tp: number, covered: number, memorized: number): Coverage {
  return {
    memorizedCoverage: memorized > 0 ? covered / memorized : 0,
    recallAll: memorized > 0 ? tp / memorized : null,
    recallAllCI: wilson(tp, memorized),
  };
}
