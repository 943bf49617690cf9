import assert from "node:assert/strict";
import {
  eta,
  formatBar,
  formatDuration,
  formatLogLine,
  formatOverall,
  formatRate,
  formatSlot,
  formatWork,
  type ProgressSnapshot,
  startProgress,
  startWork,
} from "../engine/run/progress.ts";

const snap: ProgressSnapshot = {
  totalRows: 1000,
  doneRows: 250,
  jobsTotal: 10,
  jobsDone: 2,
  elapsed: 5,
  slots: [
    { label: "cpu#0", job: "m1/step3/shard00001", jobRows: 100, jobDone: 40, rows: 140 },
    { label: "cpu#1", job: null, jobRows: 0, jobDone: 0, rows: 110 },
  ],
};

Deno.test("formatDuration covers seconds, minutes, hours and unknown", () => {
  assert.equal(formatDuration(42.4), "42s");
  assert.equal(formatDuration(185), "3m05s");
  assert.equal(formatDuration(7620), "2h07m");
  assert.equal(formatDuration(Infinity), "--");
});

Deno.test("formatRate and formatBar", () => {
  assert.equal(formatRate(12.34), "12.3 rows/s");
  assert.equal(formatRate(812.4), "812 rows/s");
  assert.equal(formatRate(41234), "41.2k rows/s");
  assert.equal(formatRate(0), "0 rows/s");
  assert.equal(formatBar(0.5, 10), "[#####.....]");
  assert.equal(formatBar(2, 4), "[####]");
});

Deno.test("overall, slot and log lines show rows, rate and ETA", () => {
  assert.equal(eta(snap), 15);
  assert.equal(
    formatOverall(snap),
    `${formatBar(0.25)}  25.0% 250/1000 rows, 2/10 shards, 50.0 rows/s, elapsed 5s, ETA 15s`,
  );
  assert.equal(
    formatSlot(snap.slots[0], 5),
    "  cpu#0       28.0 rows/s  m1/step3/shard00001 40/100",
  );
  assert.equal(formatSlot(snap.slots[1], 5), "  cpu#1       22.0 rows/s  idle");
  assert.equal(
    formatLogLine(snap),
    "progress: 25.0% 250/1000 rows, 2/10 shards, 50.0 rows/s, ETA 15s [cpu#0=m1/step3/shard00001]",
  );
});

Deno.test("startProgress redraws in place on a terminal and logs plainly otherwise", () => {
  let tty = "";
  const t = startProgress(() => snap, { terminal: true, write: (s) => (tty += s) });
  t.note("hello");
  t.stop();
  t.stop();
  assert.ok(tty.includes("\x1b[3F\x1b[Jhello\n"));
  assert.equal(tty.split(formatOverall(snap)).length - 1, 3);
  let log = "";
  const p = startProgress(() => snap, { terminal: false, write: (s) => (log += s) });
  p.stop();
  assert.equal(log, formatLogLine(snap) + "\n");
});

Deno.test("formatWork: phase, share, counts, rate and ETA of a long step", () => {
  assert.equal(
    formatWork({
      task: "report",
      what: "reading the store",
      unit: "checkpoints",
      done: 23,
      total: 56,
      elapsed: 12,
    }),
    "report: reading the store 41.1% 23/56 checkpoints, 1.9 checkpoints/s, elapsed 12s, ETA 17s",
  );
  assert.equal(
    formatWork({
      task: "export",
      what: "exporting",
      unit: "rows",
      done: 0,
      total: 148_700_000,
      elapsed: 0,
    }),
    "export: exporting 0.0% 0/148,700,000 rows, 0 rows/s, elapsed 0s, ETA --",
  );
  assert.equal(formatRate(2.34e7), "23.4M rows/s");
  assert.equal(formatRate(0.25, "runs"), "0.25 runs/s");
});

Deno.test("startWork: quiet for short steps, a line per interval in logs, the final state at the end", () => {
  let t = 0;
  const out: string[] = [];
  const clock = { now: () => t, write: (s: string) => out.push(s), terminal: false };
  // Finished within the delay: nothing at all.
  const quick = startWork("report", { ...clock, delayMs: 1000, logMs: 10_000 });
  quick.phase("reading the store", 2, "checkpoints");
  t = 500;
  quick.add(2);
  quick.stop();
  assert.deepEqual(out, []);
  // A long one: a line when due (after the delay, then every logMs), the phase's last state
  // when the next phase starts, and the final state at stop unless a line already said it.
  t = 0;
  const w = startWork("report", { ...clock, delayMs: 1000, logMs: 10_000 });
  w.phase("reading the store", 4, "checkpoints");
  t = 2000;
  w.add(1);
  t = 4000;
  w.add(1); // not due: 2 s after the last line
  t = 8000;
  w.add(2);
  w.phase("analysing", 10, "runs");
  t = 18_000;
  w.add(5);
  w.note("Note: something");
  w.stop();
  w.add(1);
  assert.deepEqual(out, [
    "report: reading the store 25.0% 1/4 checkpoints, 0.50 checkpoints/s, elapsed 2s, ETA 6s\n",
    "report: reading the store 100.0% 4/4 checkpoints, 0.50 checkpoints/s, elapsed 8s, ETA 0s\n",
    "report: analysing 50.0% 5/10 runs, 0.50 runs/s, elapsed 10s, ETA 10s\n",
    "Note: something\n",
  ]);
});

Deno.test("startWork on a terminal redraws one line in place and ends it before notes", () => {
  let t = 5000;
  const out: string[] = [];
  const w = startWork("export", {
    now: () => t,
    write: (s) => out.push(s),
    terminal: true,
    delayMs: 0,
    redrawMs: 250,
  });
  w.phase("exporting", 100, "rows");
  t = 6000;
  w.add(50);
  w.note("exported a@1");
  w.stop();
  assert.deepEqual(out, [
    "\r\x1b[Kexport: exporting 0.0% 0/100 rows, 0 rows/s, elapsed 0s, ETA --",
    "\r\x1b[Kexport: exporting 50.0% 50/100 rows, 50.0 rows/s, elapsed 1s, ETA 1s",
    "\n",
    "exported a@1\n",
    "\r\x1b[Kexport: exporting 50.0% 50/100 rows, 50.0 rows/s, elapsed 1s, ETA 1s",
    "\n",
  ]);
});
