/**
 * Facts about processes that Deno does not offer within a scoring run's
 * permissions: whether a process of this host is still running (telling a
 * stale lock or temporary file, whose writer was killed, from a live one) and
 * whether a signal was ignored at startup (`nohup`). Deno's own ways
 * need more permissions than a scoring run has (`Deno.kill` wants
 * `--allow-run`, `/proc` wants `--allow-all`), so this calls the C library's
 * `kill(pid, 0)` and `sigaction` through FFI, which the run already needs for
 * ONNX Runtime. Where that is impossible a process counts as running (never
 * take over what may be alive) and a signal as not ignored.
 *
 * @module
 */
import { isNotPermitted } from "./fs_errors.ts";

type Libc = {
  symbols: {
    kill: (pid: number, sig: number) => number;
    errno: () => Deno.PointerValue;
    sigaction: (sig: number, act: null, old: BigUint64Array) => number;
  };
};

let libc: Libc | null | undefined;

function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  const os = Deno.build.os;
  try {
    if (os === "linux") {
      libc = Deno.dlopen("libc.so.6", {
        kill: { parameters: ["i32", "i32"], result: "i32" },
        errno: { name: "__errno_location", parameters: [], result: "pointer" },
        sigaction: { parameters: ["i32", "pointer", "buffer"], result: "i32" },
      }) as unknown as Libc;
    } else if (os === "darwin") {
      libc = Deno.dlopen("libSystem.dylib", {
        kill: { parameters: ["i32", "i32"], result: "i32" },
        errno: { name: "__error", parameters: [], result: "pointer" },
        sigaction: { parameters: ["i32", "pointer", "buffer"], result: "i32" },
      }) as unknown as Libc;
    } else libc = null;
  } catch (e) {
    // No libc to call (another C library, no --allow-ffi): process checks answer "unknown".
    if (!isNotPermitted(e) && !/Could not open library|symbol/i.test((e as Error).message)) throw e;
    libc = null;
  }
  return libc;
}

const EPERM = 1;
const ESRCH = 3;

/**
 * Whether process `pid` of this host exists: true, false, or null when it
 * cannot be told (no FFI, another OS).
 */
export function processState(pid: number): boolean | null {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === Deno.pid) return true;
  const c = openLibc();
  if (!c) return null;
  if (c.symbols.kill(pid, 0) === 0) return true;
  const at = c.symbols.errno();
  const errno = at ? new Deno.UnsafePointerView(at).getInt32() : 0;
  return errno === EPERM ? true : errno === ESRCH ? false : null;
}

/** True unless process `pid` of this host is known to be gone. */
export function processAlive(pid: number): boolean {
  return processState(pid) !== false;
}

/** When this host booted (ms since the epoch, to about a second); a pid is only meaningful within one boot. */
export function bootTime(): number {
  try {
    return Math.round((Date.now() - Deno.osUptime() * 1000) / 1000) * 1000;
  } catch (e) {
    if (isNotPermitted(e)) return 0; // no --allow-sys: boot time unknown
    throw e;
  }
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

/**
 * Whether `signal` was set to be ignored when this process started (e.g.
 * SIGHUP under `nohup`), read with `sigaction` before any listener replaces
 * it; false when it cannot be told.
 */
export function signalIgnored(signal: Deno.Signal): boolean {
  const n = SIGNAL_NUMBERS[signal];
  const c = openLibc();
  if (n === undefined || !c) return false;
  // struct sigaction starts with the handler on Linux and macOS; SIG_IGN is 1.
  const old = new BigUint64Array(32);
  return c.symbols.sigaction(n, null, old) === 0 && old[0] === 1n;
}
