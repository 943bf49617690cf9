/**
 * Paths named inside a file from outside (an ONNX model's external-data
 * `location`, a weight file of a model folder's index) must stay inside the
 * folder of that file: an absolute location, `..` segments or a symbolic link
 * that leads out of the folder (to `/etc/passwd`, to `/dev/zero`) is refused
 * before any byte of it is read, as is anything that is not a regular file
 * (a FIFO would block a read forever). {@link containedFile} is the one check;
 * engine/model/fingerprint.ts calls it for every external-data file it hashes.
 *
 * @module
 */
import { realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { excerpt, UserError } from "../errors.ts";

function inside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
}

/**
 * The file `location` names inside `folder`, checked: relative, inside the
 * folder also after following symbolic links, a regular file. A missing file
 * is returned as is (the caller says it is missing). `owner` names the file
 * that holds the location, for the message.
 */
export function containedFile(folder: string, location: string, owner: string): string {
  const refuse = (why: string) =>
    new UserError(
      `${owner}: the external-data location ${excerpt(location)} ${why}; every external-data ` +
        `file must be a regular file inside the model's folder ${folder} (re-export the model, ` +
        "or copy the file there)",
    );
  if (location === "" || location.includes("\0")) throw refuse("is not a file name");
  if (isAbsolute(location)) throw refuse("is an absolute path");
  const target = resolve(folder, location);
  if (!inside(resolve(folder), target)) throw refuse("leads out of the folder (..)");
  let real: string;
  try {
    real = realpathSync(target);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT") return target;
    if (code === "ELOOP") throw refuse("is a loop of symbolic links");
    throw e;
  }
  if (!inside(realpathSync(folder), real)) {
    throw refuse(`is a symbolic link to ${excerpt(real, 200)}, outside the folder`);
  }
  if (!statSync(real).isFile()) throw refuse("is not a regular file");
  return target;
}
