/**
 * The pool's worker thread (a piscina task module). Each worker is bound to one
 * device slot; it keeps its last loaded model and one token reader per data
 * file, reads the job's rows one batch at a time, scores them and returns the
 * scores packed into one ArrayBuffer that is moved (not copied) to the main
 * thread. Progress (rows scored of the current job) goes to a shared counter.
 *
 * @module
 */
import { move, workerData } from "piscina";
import { isUserError } from "../errors.ts";
import { checkVocab, openTokenReader, type TokenReader } from "../data/datasets.ts";
import { type LanguageModel, loadModel } from "../model/model.ts";
import { packScores, USER_ERROR_TAG, type WorkerSetup, type WorkerTask } from "./pool.ts";
import { scoreBatch } from "./scoring.ts";

const setup = workerData as WorkerSetup;
const counter = new Int32Array(setup.progress);
const readers = new Map<string, Promise<TokenReader>>();
let cached: { path: string; model: Promise<LanguageModel> } | null = null;

async function modelFor(task: WorkerTask): Promise<LanguageModel> {
  if (cached?.path !== task.path) {
    const previous = cached;
    cached = null;
    if (previous) await (await previous.model.catch(() => null))?.release();
    cached = {
      path: task.path,
      model: loadModel(task.path, {
        device: setup.device,
        threads: setup.threads,
        vocabSize: task.vocabSize,
      }),
    };
    cached.model.catch(() => (cached = null));
  }
  return await cached!.model;
}

function readerFor(task: WorkerTask): Promise<TokenReader> {
  let reader = readers.get(task.data.path);
  if (!reader) {
    reader = openTokenReader(task.data);
    reader.catch(() => readers.delete(task.data.path));
    readers.set(task.data.path, reader);
  }
  return reader;
}

/** Scores one job's rows batch by batch; returns the packed scores (moved). */
export default async function scoreJob(task: WorkerTask): Promise<unknown> {
  try {
    return await score(task);
  } catch (e) {
    // Errors lose their class between threads: tag user errors so the pool does not retry them.
    if (isUserError(e)) throw new Error(USER_ERROR_TAG + e.message);
    throw e;
  }
}

async function score(task: WorkerTask): Promise<unknown> {
  const rows = new Uint32Array(task.rows);
  const n = rows.length;
  const m = task.memorization;
  const width = m.context + m.continuation;
  const [model, reader] = await Promise.all([modelFor(task), readerFor(task)]);
  const nll = new Float32Array(n);
  const matches = new Uint8Array(n);
  const prefix = new Uint8Array(n);
  Atomics.store(counter, 0, 0);
  for (let at = 0; at < n; at += task.batchSize) {
    if (Atomics.load(counter, 1) === 1) throw new Error(`${task.id} dropped: the run is stopping`);
    const batchRows = rows.subarray(at, Math.min(n, at + task.batchSize));
    const tokens = await reader.readWindow(batchRows, m.offset, width);
    checkVocab(tokens, model.vocabSize, reader.path, { rows: batchRows, width, offset: m.offset });
    const scores = await scoreBatch(model, tokens, batchRows.length, m);
    nll.set(scores.nll, at);
    matches.set(scores.matches, at);
    prefix.set(scores.prefix, at);
    Atomics.store(counter, 0, at + batchRows.length);
  }
  return move(packScores({ nll, matches, prefix }));
}
