import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { COMMANDS } from "../main.ts";
import { parse } from "../cli/command.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const flags = (text: string) =>
  new Set([...text.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
const sorted = (s: Iterable<string>) => [...s].sort();

/** The options each command parses: its declared `options` (what `parse` is given), sorted. */
const declared = Object.fromEntries(
  Object.entries(COMMANDS).map(([name, c]) => [name, sorted(Object.keys(c.options))]),
);

Deno.test("every command's --help lists exactly the options it parses", () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    const section = command.help.split("\noptions:\n")[1]?.split("\n\n")[0];
    assert.ok(section, `${name}: --help has an options: section`);
    // Options are the lines that start with one (continuation lines are indented further).
    const listed = section.split("\n").filter((l) => /^ {2}(-h, )?--/.test(l)).map((l) =>
      /--([a-z][a-z0-9-]*)/.exec(l)![1]
    );
    assert.deepEqual(sorted(listed.filter((o) => o !== "help")), declared[name], name);
    assert.ok(listed.includes("help"), `${name}: -h, --help`);
  }
});

Deno.test("the README's Commands section and docs/architecture.md name every option", async () => {
  const readme = await readFile(`${ROOT}README.md`, "utf8");
  const commands = readme.split("\n## Commands\n")[1].split("```")[1];
  const architecture = await readFile(`${ROOT}docs/architecture.md`, "utf8");
  for (const name of Object.keys(COMMANDS)) {
    // A command's lines: those starting `deno task <name>` and their indented continuations.
    const lines: string[] = [];
    let mine = false;
    for (const line of commands.split("\n")) {
      if (line.startsWith("deno task ")) mine = line.startsWith(`deno task ${name} `);
      else if (!line.startsWith(" ")) mine = false;
      if (mine) lines.push(line.replace(/#.*/, ""));
    }
    assert.deepEqual(sorted(flags(lines.join("\n"))), declared[name], `README: ${name}`);
    const row = architecture.split("\n").find((l) => l.startsWith(`| \`${name}\``));
    assert.ok(row, `docs/architecture.md: a row for ${name}`);
    const cells = row.split("|");
    assert.deepEqual(
      sorted(flags(cells[cells.length - 2])),
      declared[name],
      `architecture: ${name}`,
    );
  }
});

Deno.test("each command's declared options are what its parser accepts", () => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    for (const [option, spec] of Object.entries(command.options)) {
      const args = spec.type === "string" ? [`--${option}`, "x"] : [`--${option}`];
      assert.doesNotThrow(() => parse(args, command.options), `${name} --${option}`);
    }
    assert.throws(() => parse(["--no-such-option"], command.options), /see --help/);
  }
});
