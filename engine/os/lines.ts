/**
 * Lines of a text file from outside, streamed with a bound on the length of
 * one line: a file without newlines (a binary file, a 50 MB line) is an error
 * naming the file and the line after reading at most that many bytes of it,
 * never a string the size of the file.
 *
 * @module
 */
import { open } from "node:fs/promises";
import { excerpt, UserError } from "../errors.ts";

/** One line: its number (1-based) and its text without the line ending. */
export interface Line {
  line: number;
  text: string;
}

/** Options of {@link boundedLines}. */
export interface LineOptions {
  /** Longest line accepted, in bytes (default 4096). */
  maxBytes?: number;
  /** What the lines should look like, for the message on an over-long line. */
  expected?: string;
}

/**
 * The lines of a file (`\n` or `\r\n` endings), each at most `maxBytes`
 * bytes; a longer one is a {@link UserError} naming `path:line` with a short
 * escaped excerpt. Memory: one read buffer (1 MiB) and one line.
 */
export async function* boundedLines(path: string, opts: LineOptions = {}): AsyncGenerator<Line> {
  const max = opts.maxBytes ?? 4096;
  const file = await open(path, "r");
  const decoder = new TextDecoder();
  const buf = new Uint8Array(1 << 20);
  let carry = "";
  let line = 0;
  const tooLong = (text: string): UserError =>
    new UserError(
      `${path}:${line + 1}: the line is longer than ${max} bytes (it starts ${
        excerpt(text.slice(0, 200))
      })${opts.expected ? `; expected ${opts.expected}` : ""}`,
    );
  const strip = (t: string) => (t.endsWith("\r") ? t.slice(0, -1) : t);
  try {
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = carry + decoder.decode(buf.subarray(0, bytesRead), { stream: true });
      let start = 0;
      for (let nl = chunk.indexOf("\n"); nl >= 0; nl = chunk.indexOf("\n", start)) {
        if (nl - start > max + 1) throw tooLong(chunk.slice(start, start + 200));
        yield { line: ++line, text: strip(chunk.slice(start, nl)) };
        start = nl + 1;
      }
      carry = chunk.slice(start);
      if (carry.length > max + 1) throw tooLong(carry.slice(0, 200));
    }
    carry += decoder.decode();
    if (carry.length > max + 1) throw tooLong(carry.slice(0, 200));
    if (carry.length > 0) yield { line: ++line, text: strip(carry) };
  } finally {
    await file.close();
  }
}
