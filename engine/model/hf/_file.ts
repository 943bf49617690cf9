/**
 * Positional reads of one untrusted checkpoint file (private to the readers):
 * a short read is a UserError naming the file, never a partial buffer.
 *
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UserError } from "../../errors.ts";

/** An open file; `using` closes it. */
export interface CheckpointFile extends Disposable {
  readonly path: string;
  readonly size: number;
  /** `n` bytes at `pos` (UserError when the file ends before). */
  read(pos: number, n: number): Uint8Array;
}

/** Opens `path` for positional reads (UserError naming `what` when it cannot be opened). */
export function openFile(path: string, what: string): CheckpointFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "does not exist" : `cannot be read (${(e as Error).message})`;
    throw new UserError(`${path}: the ${what} ${why}; check the checkpoint folder.`);
  }
  const size = fstatSync(fd).size;
  return {
    path,
    size,
    read(pos: number, n: number): Uint8Array {
      if (pos < 0 || n < 0 || pos + n > size) {
        throw new UserError(
          `${path}: needs bytes [${pos}, ${pos + n}) but the file has ${size}: truncated file.`,
        );
      }
      const out = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const r = readSync(fd, out, got, n - got, pos + got);
        if (r === 0) throw new UserError(`${path}: truncated at byte ${pos + got}.`);
        got += r;
      }
      return out;
    },
    [Symbol.dispose]() {
      closeSync(fd);
    },
  };
}
