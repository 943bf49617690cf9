/**
 * The scored checkpoints of any run folder: an import's (engine/import,
 * `import.json` checked against the experiment snapshot beside it) or a
 * scoring run's store. Imported runs serve wherever scored ones do (as the
 * calibration of a forecast above all).
 *
 * @module
 */
import {
  checkImportAgainst,
  readImportedCheckpoints,
  readImportRecord,
} from "../engine/import/imported.ts";
import type { ScoredCheckpoint } from "../engine/store/scored_checkpoint.ts";
import { readStoredCheckpoints } from "../engine/store/stored_checkpoints.ts";
import type { Experiment, ProgressSink } from "../engine/types.ts";

/** The checkpoints of a run folder whose experiment snapshot is `exp`. */
export async function readRunCheckpoints(
  runDir: string,
  exp: Experiment,
  progress?: ProgressSink,
): Promise<ScoredCheckpoint[]> {
  const record = await readImportRecord(runDir);
  if (!record) return await readStoredCheckpoints(runDir, undefined, progress);
  checkImportAgainst(runDir, record, exp);
  return await readImportedCheckpoints(runDir, record);
}
