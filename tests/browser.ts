/**
 * A minimal headless-Chromium driver over the Chrome DevTools Protocol (Deno's
 * built-in WebSocket), for the report's browser test: opens a page with the
 * network emulated offline, records every request and console error, waits for
 * the report's charts, evaluates checks and takes a screenshot.
 *
 * @module
 */

import { type Availability, ensurePrograms } from "./system_packages.ts";

/** Where Debian's `chromium` package puts the browser (override with env CHROMIUM). */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

/**
 * Whether the browser tests can run: `SKIP_BROWSER` is not `1` and
 * {@link CHROMIUM} exists, installed with apt-get when missing (as root).
 * Otherwise the one line to print when skipping.
 */
export function ensureChromium(): Promise<Availability> {
  const what = "the browser tests (tests/browser_test.ts)";
  if (Deno.env.get("SKIP_BROWSER") === "1") {
    return Promise.resolve({ ok: false, line: `SKIPPED ${what}: SKIP_BROWSER=1` });
  }
  return ensurePrograms({
    what: `${what}${Deno.env.get("CHROMIUM") ? ` (CHROMIUM=${CHROMIUM})` : ""}`,
    programs: [CHROMIUM],
    packages: ["chromium"],
  });
}

/** What happened while a page was open. */
export interface PageLog {
  /** URLs of every request the page made. */
  requests: string[];
  /** Console errors, uncaught exceptions and browser log errors (CSP violations among them). */
  errors: string[];
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
};

/** A CDP connection to one page of a headless Chromium. */
export class BrowserPage {
  #ws: WebSocket;
  #session = "";
  #next = 1;
  #pending = new Map<
    number,
    { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  #waiters: { method: string; resolve: () => void }[] = [];
  /** Requests and errors seen so far. */
  readonly log: PageLog = { requests: [], errors: [] };

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (ev) => this.#onMessage(JSON.parse(String(ev.data)) as Message);
  }

  /** Connects to the browser endpoint and opens a blank page with the network offline. */
  static async open(endpoint: string): Promise<BrowserPage> {
    const ws = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
    });
    const page = new BrowserPage(ws);
    const { targetId } = await page.send("Target.createTarget", { url: "about:blank" }, false);
    const attached = await page.send("Target.attachToTarget", { targetId, flatten: true }, false);
    page.#session = attached.sessionId as string;
    for (const domain of ["Page", "Runtime", "Log", "Network"]) await page.send(`${domain}.enable`);
    await page.send("Network.emulateNetworkConditions", {
      offline: true,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await page.send("Emulation.setDeviceMetricsOverride", {
      width: 1280,
      height: 900,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return page;
  }

  /** Sends a CDP command (to the page session unless `toPage` is false). */
  send(
    method: string,
    params: Record<string, unknown> = {},
    toPage = true,
  ): Promise<Record<string, unknown>> {
    const id = this.#next++;
    const msg: Message & { params: Record<string, unknown> } = { id, method, params };
    if (toPage) msg.sessionId = this.#session;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify(msg));
    });
  }

  #onMessage(msg: Message): void {
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(`CDP: ${msg.error.message}`));
      else p?.resolve(msg.result ?? {});
      return;
    }
    const params = msg.params ?? {};
    switch (msg.method) {
      case "Network.requestWillBeSent":
        this.log.requests.push(String((params.request as { url: string }).url));
        break;
      case "Runtime.consoleAPICalled":
        if (params.type === "error" || params.type === "assert") {
          const args = params.args as { value?: unknown; description?: string }[];
          this.log.errors.push(`console: ${args.map((a) => a.description ?? a.value).join(" ")}`);
        }
        break;
      case "Runtime.exceptionThrown":
        this.log.errors.push(`exception: ${JSON.stringify(params.exceptionDetails)}`);
        break;
      case "Log.entryAdded": {
        const entry = params.entry as { level: string; text: string; source: string };
        if (entry.level === "error") this.log.errors.push(`${entry.source}: ${entry.text}`);
        break;
      }
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (w.method !== msg.method) return true;
      w.resolve();
      return false;
    });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string, timeoutMs = 20_000): Promise<void> {
    const loaded = new Promise<void>((resolve) =>
      this.#waiters.push({ method: "Page.loadEventFired", resolve })
    );
    await this.send("Page.navigate", { url });
    await withTimeout(loaded, timeoutMs, `loading ${url}`);
  }

  /** Evaluates an expression in the page (awaiting promises) and returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (r.exceptionDetails) throw new Error(`evaluate: ${JSON.stringify(r.exceptionDetails)}`);
    return (r.result as { value: T }).value;
  }

  /** Polls an expression until it is truthy. */
  async waitFor(expression: string, timeoutMs = 20_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await this.evaluate<boolean>(`!!(${expression})`))) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Moves the mouse to a point of the viewport (CSS pixels). */
  async hover(x: number, y: number): Promise<void> {
    await this.send("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
  }

  /** Sets the viewport (CSS pixels, device scale 1). */
  async setViewport(width: number, height: number): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
  }

  /** Bounding boxes (viewport CSS pixels, scrolled to the top) of the first element per selector. */
  async boxes(
    selectors: string[],
  ): Promise<Record<string, { top: number; left: number; bottom: number; right: number } | null>> {
    return await this.evaluate(`(() => {
      window.scrollTo(0, 0);
      const out = {};
      for (const sel of ${JSON.stringify(selectors)}) {
        const el = document.querySelector(sel);
        const r = el && el.getBoundingClientRect();
        out[sel] = r ? { top: r.top, left: r.left, bottom: r.bottom, right: r.right } : null;
      }
      return out;
    })()`);
  }

  /** A PNG of the viewport as it is (the first screen when scrolled to the top). */
  async screenshotViewport(): Promise<Uint8Array> {
    const r = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Uint8Array> {
    const metrics = await this.send("Page.getLayoutMetrics");
    const size = metrics.cssContentSize as { width: number; height: number };
    const r = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: size.width, height: size.height, scale: 1 },
    });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }

  /** Closes the connection. */
  close(): void {
    for (const p of this.#pending.values()) p.reject(new Error("connection closed"));
    this.#pending.clear();
    this.#ws.close();
  }
}

/** A running headless Chromium. */
export interface Browser {
  /** The DevTools browser endpoint (ws://127.0.0.1:PORT/devtools/browser/…). */
  endpoint: string;
  /** Stops the browser and removes its profile folder. */
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile and no background networking. */
export async function launchChromium(path: string = CHROMIUM): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "report-chromium-" });
  const child = new Deno.Command(path, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--disable-dev-shm-usage",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let endpoint = "";
  const found = (async () => {
    while (!endpoint) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`${path} exited before DevTools listened:\n${seen}`);
      seen += value;
      const m = seen.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) endpoint = m[1];
    }
    // Keep draining stderr so the browser never blocks on a full pipe.
    (async () => {
      while (!(await lines.read()).done) { /* discard */ }
    })().catch(() => {});
  })();
  try {
    await withTimeout(found, 30_000, "Chromium's DevTools endpoint");
  } catch (e) {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    endpoint,
    async close() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
