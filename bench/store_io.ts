/**
 * The disk baselines of `deno task bench store`, run in their own process
 * (under `/usr/bin/time`, like the commands they are compared with):
 *
 * - `read DIR`: reads every file under DIR sequentially (sorted paths) with
 *   one reused 16 MiB buffer, nothing else; prints the bytes read;
 * - `write PATH BYTES`: writes BYTES bytes to PATH in 16 MiB writes, fsyncs,
 *   deletes the file; prints the bytes written.
 *
 * Usage: deno run -P=bench bench/store_io.ts read DIR | write PATH BYTES
 *
 * @module
 */
import { join } from "node:path";

const BUFFER = 16 << 20;

/** Every file under a folder, sorted paths. */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await filesUnder(path));
    else if (e.isFile) out.push(path);
  }
  return out.sort();
}

async function readAll(dir: string): Promise<number> {
  const buffer = new Uint8Array(BUFFER);
  let bytes = 0;
  for (const path of await filesUnder(dir)) {
    using file = await Deno.open(path);
    for (let n; (n = await file.read(buffer)) !== null;) bytes += n;
  }
  return bytes;
}

async function writeBytes(path: string, bytes: number): Promise<number> {
  const buffer = new Uint8Array(BUFFER).fill(0x5a);
  {
    using file = await Deno.open(path, { write: true, create: true, truncate: true });
    for (let at = 0; at < bytes; at += BUFFER) {
      const part = buffer.subarray(0, Math.min(BUFFER, bytes - at));
      for (let done = 0; done < part.length;) done += await file.write(part.subarray(done));
    }
    await file.sync();
  }
  await Deno.remove(path);
  return bytes;
}

if (import.meta.main) {
  const [mode, path, bytes] = Deno.args;
  const n = mode === "read"
    ? await readAll(path)
    : mode === "write"
    ? await writeBytes(path, Number(bytes))
    : NaN;
  if (Number.isNaN(n)) {
    console.error("usage: store_io.ts read DIR | write PATH BYTES");
    Deno.exit(2);
  }
  console.log(n);
}
