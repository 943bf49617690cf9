/**
 * A worker thread of the `features` step (tasks/features_threads.ts, served
 * by engine/os/threads.ts `serveThread`): told the data and the window
 * settings first, it opens its own reader and tokenizer, then runs the tasks
 * it is given in turn (a chunk's pieces, written atomically here, or a block
 * of a shard scanned into the shared counts) and answers each with its
 * seconds or its error.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { serveThread } from "../engine/os/threads.ts";
import { type FeatureInit, type FeatureTask, openContext, runTask } from "./features_threads.ts";

serveThread<FeatureInit, FeatureTask, number>(async (init) => {
  const ctx = await openContext(init);
  return (task) => runTask(ctx, task);
});
