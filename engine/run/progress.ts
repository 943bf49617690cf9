/**
 * Progress displays: pure formatting functions; the scoring display, which
 * redraws one line per device slot plus an overall bar on a terminal, or prints
 * a plain line every few seconds when stderr is not a terminal (logs, CI); and
 * {@link startWork}, one line for any other long step (import, export, report,
 * forecast), fed through a {@link ProgressSink} by the stages that do the work.
 *
 * @module
 */

import type { ProgressSink } from "../types.ts";

/** What one device slot is doing. */
export interface SlotStatus {
  /** e.g. `cpu#0`, `cuda:3`. */
  label: string;
  /** Id of the job in flight, or null when idle. */
  job: string | null;
  /** Rows of the job in flight, and how many of them are scored. */
  jobRows: number;
  jobDone: number;
  /** Rows this slot scored since the run started. */
  rows: number;
}

/** The state of a run at one instant. */
export interface ProgressSnapshot {
  /** Rows to score in this invocation, and rows scored so far. */
  totalRows: number;
  doneRows: number;
  jobsTotal: number;
  jobsDone: number;
  /** Seconds since scoring started. */
  elapsed: number;
  slots: SlotStatus[];
}

/** Formats seconds as `42s`, `3m05s` or `2h07m`; `--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Formats a rate as `812 rows/s`, `12.3 rows/s`, `4.1k rows/s` or `2.3M rows/s` (any unit). */
export function formatRate(rowsPerSecond: number, unit = "rows"): string {
  if (!Number.isFinite(rowsPerSecond) || rowsPerSecond <= 0) return `0 ${unit}/s`;
  if (rowsPerSecond >= 1_000_000) return `${(rowsPerSecond / 1e6).toFixed(1)}M ${unit}/s`;
  if (rowsPerSecond >= 10_000) return `${(rowsPerSecond / 1000).toFixed(1)}k ${unit}/s`;
  if (rowsPerSecond >= 100) return `${Math.round(rowsPerSecond)} ${unit}/s`;
  if (rowsPerSecond >= 1) return `${rowsPerSecond.toFixed(1)} ${unit}/s`;
  return `${rowsPerSecond.toFixed(2)} ${unit}/s`;
}

/** A text bar of `width` cells filled to `fraction` (clamped to [0, 1]). */
export function formatBar(fraction: number, width = 30): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${"#".repeat(full)}${".".repeat(width - full)}]`;
}

/** Seconds left at the average rate so far (Infinity when nothing is scored yet). */
export function eta(s: ProgressSnapshot): number {
  const rate = s.elapsed > 0 ? s.doneRows / s.elapsed : 0;
  return rate > 0 ? (s.totalRows - s.doneRows) / rate : Infinity;
}

/** The overall line: bar, percentage, rows, shards, rate and ETA. */
export function formatOverall(s: ProgressSnapshot): string {
  const f = s.totalRows > 0 ? s.doneRows / s.totalRows : 1;
  const rate = s.elapsed > 0 ? s.doneRows / s.elapsed : 0;
  return `${formatBar(f)} ${(100 * f).toFixed(1).padStart(5)}% ` +
    `${s.doneRows}/${s.totalRows} rows, ${s.jobsDone}/${s.jobsTotal} shards, ` +
    `${formatRate(rate)}, elapsed ${formatDuration(s.elapsed)}, ETA ${formatDuration(eta(s))}`;
}

/** One slot's line: label, job in flight with its progress, and the slot's rate. */
export function formatSlot(slot: SlotStatus, elapsed: number): string {
  const rate = elapsed > 0 ? slot.rows / elapsed : 0;
  const job = slot.job ? `${slot.job} ${slot.jobDone}/${slot.jobRows}` : "idle";
  return `  ${slot.label.padEnd(8)} ${formatRate(rate).padStart(14)}  ${job}`;
}

/** One plain log line (for non-terminal stderr). */
export function formatLogLine(s: ProgressSnapshot): string {
  const f = s.totalRows > 0 ? s.doneRows / s.totalRows : 1;
  const rate = s.elapsed > 0 ? s.doneRows / s.elapsed : 0;
  const busy = s.slots.filter((x) => x.job).map((x) => `${x.label}=${x.job}`).join(" ");
  return `progress: ${(100 * f).toFixed(1)}% ${s.doneRows}/${s.totalRows} rows, ` +
    `${s.jobsDone}/${s.jobsTotal} shards, ${formatRate(rate)}, ETA ${formatDuration(eta(s))}` +
    (busy ? ` [${busy}]` : "");
}

/** Options of {@link startProgress}. */
export interface ProgressOptions {
  /** Redraw interval on a terminal (ms, default 250). */
  redrawMs?: number;
  /** Interval of plain log lines when not on a terminal (ms, default 10000). */
  logMs?: number;
  /** Force terminal (true) or log (false) mode; default: `Deno.stderr.isTerminal()`. */
  terminal?: boolean;
  /** Where text goes (default: stderr). */
  write?: (text: string) => void;
}

/** A running progress display. */
export interface ProgressDisplay {
  /** Prints a message above the live lines. */
  note(message: string): void;
  /** Draws the final state and stops redrawing (later calls do nothing). */
  stop(): void;
}

/** Starts redrawing `snapshot()` until {@link ProgressDisplay.stop}. */
export function startProgress(
  snapshot: () => ProgressSnapshot,
  opts: ProgressOptions = {},
): ProgressDisplay {
  const encoder = new TextEncoder();
  const write = opts.write ?? ((t: string) => Deno.stderr.writeSync(encoder.encode(t)));
  const terminal = opts.terminal ?? Deno.stderr.isTerminal();
  let drawn = 0;
  let stopped = false;
  const clear = () => {
    if (drawn > 0) write(`\x1b[${drawn}F\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    const s = snapshot();
    if (!terminal) return write(formatLogLine(s) + "\n");
    const lines = [formatOverall(s), ...s.slots.map((x) => formatSlot(x, s.elapsed))];
    clear();
    write(lines.join("\n") + "\n");
    drawn = lines.length;
  };
  const timer = setInterval(draw, terminal ? (opts.redrawMs ?? 250) : (opts.logMs ?? 10_000));
  if (terminal) draw();
  return {
    note(message) {
      if (terminal) clear();
      write(message + "\n");
      if (terminal) draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (terminal) draw();
      else write(formatLogLine(snapshot()) + "\n");
    },
  };
}

/** The state of a long step at one instant (see {@link startWork}). */
export interface WorkSnapshot {
  /** The command, e.g. `report`. */
  task: string;
  /** The phase, e.g. `reading the store`. */
  what: string;
  /** What is counted, e.g. `checkpoints`, `rows`. */
  unit: string;
  done: number;
  total: number;
  /** Seconds since the phase started. */
  elapsed: number;
}

/** `report: reading the store 41.1% 23/56 checkpoints, 1.9 checkpoints/s, elapsed 12s, ETA 17s`. */
export function formatWork(s: WorkSnapshot): string {
  const f = s.total > 0 ? Math.min(1, s.done / s.total) : 1;
  const rate = s.elapsed > 0 ? s.done / s.elapsed : 0;
  const left = s.done >= s.total ? 0 : rate > 0 ? (s.total - s.done) / rate : Infinity;
  const n = (x: number) => x.toLocaleString("en-US");
  return `${s.task}: ${s.what} ${(100 * f).toFixed(1)}% ${n(s.done)}/${n(s.total)} ${s.unit}, ` +
    `${formatRate(rate, s.unit)}, elapsed ${formatDuration(s.elapsed)}, ETA ${
      formatDuration(left)
    }`;
}

/** Options of {@link startWork}. */
export interface WorkOptions extends ProgressOptions {
  /** Nothing is drawn before this many ms since the start (default 1000): short steps stay quiet. */
  delayMs?: number;
  /** The clock in ms (default `performance.now`). */
  now?: () => number;
}

/** A running one-line display of a long step. */
export interface WorkDisplay extends ProgressSink {
  /** Prints a message (on its own line, above the progress line). */
  note(message: string): void;
  /** Draws the final state when anything was drawn, and stops (later calls do nothing). */
  stop(): void;
}

/**
 * One progress line for a long step, in phases: on a terminal redrawn in
 * place at most every `redrawMs` (default 250), otherwise a plain line every
 * `logMs` (default 10 s). It draws when the work reports (`phase`, `add`), so
 * it also moves during synchronous work (the analysis); nothing is drawn in
 * the first `delayMs`.
 */
export function startWork(task: string, opts: WorkOptions = {}): WorkDisplay {
  const encoder = new TextEncoder();
  const write = opts.write ?? ((t: string) => Deno.stderr.writeSync(encoder.encode(t)));
  const terminal = opts.terminal ?? Deno.stderr.isTerminal();
  const now = opts.now ?? (() => performance.now());
  const every = terminal ? (opts.redrawMs ?? 250) : (opts.logMs ?? 10_000);
  const begun = now();
  const delay = opts.delayMs ?? 1000;
  let phase: { what: string; unit: string; total: number; done: number; t0: number } | null = null;
  let last = -Infinity;
  let shown = false;
  let open = false;
  let stopped = false;
  const line = () =>
    formatWork({
      task,
      what: phase!.what,
      unit: phase!.unit,
      done: phase!.done,
      total: phase!.total,
      elapsed: (now() - phase!.t0) / 1000,
    });
  let lastText = "";
  const draw = () => {
    if (!phase) return;
    last = now();
    shown = true;
    lastText = line();
    if (terminal) {
      write(`\r\x1b[K${lastText}`);
      open = true;
    } else write(lastText + "\n");
  };
  /** The final state of a phase, unless a log line already says it. */
  const drawFinal = () => {
    if (shown && (terminal || line() !== lastText)) draw();
  };
  const endLine = () => {
    if (open) write("\n");
    open = false;
  };
  const maybeDraw = () => {
    const t = now();
    if (!stopped && t - begun >= delay && t - last >= every) draw();
  };
  return {
    phase(what, total, unit) {
      if (stopped) return;
      if (phase) {
        drawFinal();
        endLine();
      }
      phase = { what, unit, total, done: 0, t0: now() };
      maybeDraw();
    },
    add(n) {
      if (stopped || !phase) return;
      phase.done += n;
      maybeDraw();
    },
    note(message) {
      endLine();
      write(message + "\n");
    },
    stop() {
      if (stopped) return;
      if (phase) drawFinal();
      endLine();
      stopped = true;
    },
  };
}
