import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { processState } from "../engine/os/process.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/stop_watch.ts", import.meta.url));

function watcher(prefix: string[] = [], env: Record<string, string> = {}) {
  const argv = [...prefix, Deno.execPath(), "run", "-P=run", FIXTURE];
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env,
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

/** Reads a child's stdout line by line. */
function lines(child: Deno.ChildProcess) {
  const reader = child.stdout.getReader();
  let buffer = "";
  return async (): Promise<string> => {
    while (!buffer.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const last = buffer;
        buffer = "";
        return last;
      }
      buffer += new TextDecoder().decode(value);
    }
    const at = buffer.indexOf("\n");
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    return line;
  };
}

for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129], ["SIGINT", 130]] as const) {
  Deno.test(`${signal} is a stop request with exit status ${code}`, async () => {
    const child = watcher();
    const line = lines(child);
    assert.equal(await line(), "sighup-ignored false");
    child.kill(signal);
    assert.equal(await line(), `stop ${signal} ${code}`);
    assert.equal((await child.status).code, code);
  });
}

Deno.test("under nohup SIGHUP stays ignored; SIGTERM still stops", async () => {
  const child = watcher(["nohup"]);
  const line = lines(child);
  assert.equal(await line(), "sighup-ignored true");
  child.kill("SIGHUP");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(processState(child.pid), true, "SIGHUP stopped a nohup run");
  child.kill("SIGTERM");
  assert.equal(await line(), "stop SIGTERM 143");
  assert.equal((await child.status).code, 143);
});

Deno.test("with MEMO_EXIT_WITH_PARENT=1 the death of the parent is a stop request (129)", async () => {
  // sh starts the watcher in the background and is killed; the watcher is reparented.
  const sh = new Deno.Command("sh", {
    args: ["-c", `"$0" run -P=run "$1" & echo $!; wait`, Deno.execPath(), FIXTURE],
    env: { MEMO_EXIT_WITH_PARENT: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const pid = Number(await lines(sh)());
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(processState(pid), true);
  sh.kill("SIGKILL");
  await sh.status;
  const deadline = Date.now() + 10_000;
  while (processState(pid) !== false) {
    assert.ok(Date.now() < deadline, "the watcher outlived its parent by 10 s");
    await new Promise((r) => setTimeout(r, 50));
  }
});
