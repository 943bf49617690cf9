/**
 * How a run is asked to stop: SIGINT (Ctrl-C), SIGTERM (what Slurm, docker and
 * systemd send) and SIGHUP (the terminal went away) all stop it the same way,
 * and so does the death of the `deno task` process that started it (a
 * `deno task` parent forwards signals to its child but cannot when it is
 * SIGKILLed; the child then watches its parent pid, which the deno.json tasks
 * switch on with `MEMO_EXIT_WITH_PARENT=1`). The first stop request lets the
 * run finish or drop what is in flight; a second one exits at once.
 *
 * SIGHUP is only noted when it was ignored at startup (`nohup`), so a run
 * started with nohup keeps running after a logout. (A listener is installed
 * all the same: Deno 2.9 catches SIGHUP itself, and after one SIGHUP without a
 * listener its other signal listeners no longer fire.)
 *
 * @module
 */
import { signalIgnored } from "./process.ts";
import { isNotPermitted } from "./fs_errors.ts";

/** Why a run was asked to stop. */
export interface StopRequest {
  /** The signal, or `parent` when the `deno task` parent process died. */
  reason: "SIGINT" | "SIGTERM" | "SIGHUP" | "parent";
  /** The exit status that reports it (128 + signal number; 129 for a lost parent, like SIGHUP). */
  exitCode: number;
}

/** Exit status of each stop reason. */
export const STOP_EXIT: Record<StopRequest["reason"], number> = {
  SIGINT: 130,
  SIGTERM: 143,
  SIGHUP: 129,
  parent: 129,
};

/** The environment variable that makes a run stop when its parent process dies. */
export const EXIT_WITH_PARENT = "MEMO_EXIT_WITH_PARENT";

/** Options of {@link watchStops}. */
export interface WatchOptions {
  /** Called on the first stop request. */
  onStop: (stop: StopRequest) => void;
  /** Told when a SIGHUP is ignored because it was ignored at startup (nohup). */
  onIgnored?: (signal: Deno.Signal) => void;
  /** Called on every later request (main.ts exits at once). */
  onSecond: (stop: StopRequest) => void;
  /** Watch the parent pid (default: when {@link EXIT_WITH_PARENT} is `1`). */
  watchParent?: boolean;
  /** Parent poll interval (default 1000 ms). */
  pollMs?: number;
}

/** Stop-request listeners; `dispose()` removes them. */
export interface StopWatch {
  dispose(): void;
}

const parentAtStart = Deno.ppid;
const ignoredAtStart = new Set<Deno.Signal>(
  Deno.build.os === "windows" ? [] : (["SIGHUP"] as const).filter((s) => signalIgnored(s)),
);

/** Whether this process was started to exit with its parent (read once; the variable is then removed). */
const exitWithParent = (() => {
  try {
    const on = Deno.env.get(EXIT_WITH_PARENT) === "1";
    Deno.env.delete(EXIT_WITH_PARENT);
    return on;
  } catch (e) {
    if (isNotPermitted(e)) return false; // no --allow-env: not asked to
    throw e;
  }
})();

/** Listens for stop requests (signals and, when asked, the parent's death). */
export function watchStops(opts: WatchOptions): StopWatch {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  let first: StopRequest | null = null;
  const request = (reason: StopRequest["reason"]) => {
    const stop = { reason, exitCode: STOP_EXIT[reason] };
    if (first === null) {
      first = stop;
      opts.onStop(stop);
    } else opts.onSecond(stop);
  };
  const listeners = signals.map((s) =>
    [
      s,
      () => ignoredAtStart.has(s) ? opts.onIgnored?.(s) : request(s as StopRequest["reason"]),
    ] as const
  );
  for (const [s, fn] of listeners) Deno.addSignalListener(s, fn);
  let timer: ReturnType<typeof setInterval> | undefined;
  if (opts.watchParent ?? exitWithParent) {
    const t = setInterval(() => {
      if (Deno.ppid !== parentAtStart) {
        clearInterval(t);
        request("parent");
      }
    }, opts.pollMs ?? 1000);
    Deno.unrefTimer(t);
    timer = t;
  }
  return {
    dispose() {
      for (const [s, fn] of listeners) Deno.removeSignalListener(s, fn);
      if (timer !== undefined) clearInterval(timer);
    },
  };
}

/** How a stop reason reads in messages: `Ctrl-C`, `SIGTERM`, `the loss of the parent process`. */
export function describeStop(reason: StopRequest["reason"]): string {
  return reason === "SIGINT"
    ? "Ctrl-C (SIGINT)"
    : reason === "parent"
    ? "the end of the parent process (deno task)"
    : reason;
}
