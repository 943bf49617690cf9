/**
 * A worker thread of the `features` step (tasks/features_threads.ts): told
 * the data and the window settings first, it opens its own reader and
 * tokenizer, then runs the tasks it is given in turn (a chunk's pieces,
 * written atomically here, or a block of a shard scanned into the shared
 * counts) and answers each with its seconds or its error. It says it is
 * ready (`{ ready: true }`) once it listens: the runner sends nothing before.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { isUserError } from "../engine/errors.ts";
import type { PieceContext } from "./features_pieces.ts";
import {
  type FeatureInit,
  type FeatureReply,
  type FeatureTask,
  openContext,
  runTask,
} from "./features_threads.ts";

let ctx: Promise<PieceContext> | null = null;
let queue: Promise<void> = Promise.resolve();

async function run(id: number, task: FeatureTask): Promise<FeatureReply> {
  try {
    return { id, seconds: await runTask(await ctx!, task) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    return { id, error: { message, user: isUserError(e) } };
  }
}

self.onmessage = (e: MessageEvent<{ init: FeatureInit } | { id: number; task: FeatureTask }>) => {
  const m = e.data;
  if ("init" in m) {
    ctx = openContext(m.init);
    ctx.catch(() => {}); // its failure is each task's answer
    return;
  }
  queue = queue.then(async () => self.postMessage(await run(m.id, m.task)));
};
// Ready only now: messages sent while the modules above were still evaluating (one has a
// top-level await) would have found no handler.
self.postMessage({ ready: true });
