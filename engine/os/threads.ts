/**
 * Worker threads that take jobs from one queue: the pool ({@link ThreadPool},
 * this thread) and the serving side ({@link serveThread}, the worker module).
 * Used by the report's readers and the features step's threads.
 *
 * The protocol: a worker says `{ ready: true }` once it listens, and is sent
 * nothing before (a message that arrives while its modules are still
 * evaluating, one of them with a top-level await, finds no handler and is
 * lost); then `{ init }` once, then `{ id, job }`; it answers
 * `{ id, result }` or `{ id, error }` (engine/errors.ts `toThread`: a
 * UserError stays one), doing its jobs one after the other in the order given.
 *
 * @module
 */
import { fromThread, type ThreadError, toThread } from "../errors.ts";

/** A worker's message to the pool. */
type Reply<R> = { ready: true } | { id: number; result: R } | { id: number; error: ThreadError };

/** A job waiting for its answer. */
interface Waiting<R> {
  slot: Slot;
  done: PromiseWithResolvers<R>;
}

/** A worker and the jobs it holds. */
interface Slot {
  worker: Worker;
  jobs: number;
  ready: boolean;
}

/**
 * `threads` workers of the module at `url`, each told `init` first and then
 * given jobs from one queue, at most `held` at a time (default 2: the one it
 * does and the next, so it never waits for this thread to start another;
 * Infinity: all at once, for a caller that cannot answer meanwhile). The
 * first failed job stops the queue: what is queued and what is submitted
 * after are rejected with its error. A worker that dies rejects every job.
 */
export class ThreadPool<J, R> {
  readonly #slots: Slot[] = [];
  readonly #queue: { id: number; job: J; done: PromiseWithResolvers<R> }[] = [];
  readonly #waiting = new Map<number, Waiting<R>>();
  readonly #held: number;
  #next = 0;
  #failed: Error | null = null;
  readonly #ready = Promise.withResolvers<void>();

  constructor(url: URL, threads: number, readonly init: unknown, opts: { held?: number } = {}) {
    this.#held = opts.held ?? 2;
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(url, { type: "module" });
      const slot: Slot = { worker, jobs: 0, ready: false };
      worker.onmessage = (e: MessageEvent<Reply<R>>) => this.#answer(slot, e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(new Error(`a worker thread (${url.pathname}) failed: ${e.message}`));
      };
      this.#slots.push(slot);
    }
    this.#ready.promise.catch(() => {}); // a death before `ready()` is asked: not unhandled
  }

  /**
   * Resolves once every worker listens. A worker's `ready` reaches this
   * thread only when it waits: a caller about to compute for long without
   * waiting awaits this first, or its jobs sit in the queue until it is done.
   */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Worker threads in the pool. */
  get threads(): number {
    return this.#slots.length;
  }

  /** Runs the job on a worker (queued until one has room). */
  submit(job: J): Promise<R> {
    if (this.#failed) return Promise.reject(this.#failed);
    const done = Promise.withResolvers<R>();
    this.#queue.push({ id: this.#next++, job, done });
    this.#dispatch();
    return done.promise;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      while (slot.ready && slot.jobs < this.#held && this.#queue.length > 0) {
        const { id, job, done } = this.#queue.shift()!;
        this.#waiting.set(id, { slot, done });
        slot.jobs++;
        slot.worker.postMessage({ id, job });
      }
    }
  }

  #answer(slot: Slot, reply: Reply<R>): void {
    if ("ready" in reply) {
      slot.ready = true;
      slot.worker.postMessage({ init: this.init });
      if (this.#slots.every((x) => x.ready)) this.#ready.resolve();
    } else {
      slot.jobs--;
      const w = this.#waiting.get(reply.id)!;
      this.#waiting.delete(reply.id);
      if ("result" in reply) w.done.resolve(reply.result);
      else {
        const error = fromThread(reply.error);
        w.done.reject(error);
        this.#drop(error);
      }
    }
    this.#dispatch();
  }

  /** Rejects what is queued with `error`, and what is submitted from now on. */
  #drop(error: Error): void {
    this.#failed ??= error;
    for (const q of this.#queue) q.done.reject(error);
    this.#queue.length = 0;
  }

  /** A worker died: every job waits in vain, so all are rejected. */
  #fail(error: Error): void {
    this.#ready.reject(error);
    for (const w of this.#waiting.values()) w.done.reject(error);
    this.#waiting.clear();
    this.#drop(error);
  }

  /** Ends the workers. */
  close(): void {
    for (const { worker } of this.#slots) worker.terminate();
  }
}

/**
 * The worker side of a {@link ThreadPool}: call it last in the worker module
 * (it says the worker is ready). `setup(init)` makes the job handler (its
 * failure is every job's answer); `transfer` names the result's buffers to
 * move rather than copy.
 */
export function serveThread<I, J, R>(
  setup: (init: I) => Promise<(job: J) => Promise<R>> | ((job: J) => Promise<R>),
  transfer: (result: R) => ArrayBuffer[] = () => [],
): void {
  const scope = self as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(message: unknown, options?: { transfer: ArrayBuffer[] }): void;
  };
  let handler: Promise<(job: J) => Promise<R>> | null = null;
  let queue: Promise<void> = Promise.resolve();
  const answer = async (id: number, job: J) => {
    try {
      const result = await (await handler!)(job);
      scope.postMessage({ id, result }, { transfer: transfer(result) });
    } catch (e) {
      scope.postMessage({ id, error: toThread(e) });
    }
  };
  scope.onmessage = (e: MessageEvent<{ init: I } | { id: number; job: J }>) => {
    const m = e.data;
    if ("init" in m) {
      handler = Promise.resolve().then(() => setup(m.init));
      handler.catch(() => {}); // its failure is each job's answer
      return;
    }
    queue = queue.then(() => answer(m.id, m.job));
  };
  scope.postMessage({ ready: true });
}
