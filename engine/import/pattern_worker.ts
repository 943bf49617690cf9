/**
 * The worker thread of engine/import/pattern.ts: matches paths against a
 * `--pattern` and posts back each match's named groups (null: no match).
 *
 * @module
 */
/// <reference lib="deno.worker" />

self.onmessage = (e: MessageEvent<{ source: string; paths: string[] }>) => {
  try {
    const re = new RegExp(e.data.source);
    self.postMessage(e.data.paths.map((p) => {
      const m = re.exec(p);
      return m ? { ...(m.groups ?? {}) } : null;
    }));
  } catch (err) {
    self.postMessage({ error: (err as Error).message });
  }
};
