import assert from "node:assert/strict";
import {
  eta,
  formatBar,
  formatDuration,
  formatLogLine,
  formatOverall,
  formatRate,
  formatSlot,
  type ProgressSnapshot,
  startProgress,
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
