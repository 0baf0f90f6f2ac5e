// What every browser suite here needs to run the real `fhirgate` binary
// and Debian's Chromium: where things are, the prerequisites check (a
// missing browser, Node package or binary fails with what to run, never a
// skip), a free port, a clean environment (no inherited FHIRGATE_*), and
// `Fhirgate`, one server on a fresh data dir: `cli(...)`, `start()` (demo
// data, five patients, ready when /fhir/metadata answers), `logTail()`,
// `stop()`. A suite configuring fhirgate differently subclasses it and
// overrides `env(extra)`. Also `launchChromium()` and `pageRunner(...)`,
// every suite's browser and its `withPage` with the failure report.

import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, "..", "..");
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function fhirgateBin() {
  return process.env.FHIRGATE_BIN || join(ROOT, "target", "debug", "fhirgate");
}

/** Throws, naming what to run, unless Chromium, `packages` (paths below node_modules) and the binary are there. */
export function prerequisites(suite, packages = ["playwright-core/package.json"]) {
  const problems = [];
  if (!existsSync(CHROMIUM)) {
    problems.push(`Chromium not found at ${CHROMIUM}: run \`apt-get install -y chromium\` (scripts/test.sh does)`);
  }
  for (const pkg of packages) {
    if (!existsSync(join(HERE, "node_modules", pkg))) {
      problems.push(`node_modules/${pkg} is missing: run \`npm ci\` in ${HERE} (scripts/test.sh does)`);
    }
  }
  if (!existsSync(fhirgateBin())) {
    problems.push(`fhirgate binary not found at ${fhirgateBin()}: run \`cargo build --bin fhirgate\` (or set FHIRGATE_BIN)`);
  }
  if (problems.length) throw new Error(`cannot run the ${suite}:\n  ` + problems.join("\n  "));
}

export function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The process environment without any inherited FHIRGATE_* variable, plus `extra`. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("FHIRGATE_")) env[k] = v;
  return { ...env, ...extra };
}

/** One fhirgate on `dir`/data, listening on 127.0.0.1:`port`. */
export class Fhirgate {
  constructor(dir, port) {
    this.dir = dir;
    this.dataDir = join(dir, "data");
    this.logPath = join(dir, "fhirgate.log");
    this.publicUrl = `http://127.0.0.1:${port}`;
    this.fhirBase = `${this.publicUrl}/fhir`;
    this.port = port;
    this.proc = null;
  }

  /** The environment of every fhirgate command: data dir and public URL, plus `extra`. */
  env(extra = {}) {
    return cleanEnv({ FHIRGATE_DATA_DIR: this.dataDir, FHIRGATE_PUBLIC_URL: this.publicUrl, ...extra });
  }

  cli(...args) {
    const out = spawnSync(fhirgateBin(), args, {
      env: this.env(),
      cwd: this.dir,
      encoding: "utf8",
      timeout: 120_000,
    });
    if (out.status !== 0) {
      throw new Error(`fhirgate ${args.join(" ")} failed (${out.status ?? out.signal}):\n${out.stderr}${out.error ?? ""}`);
    }
    return out.stdout;
  }

  async start() {
    const log = openSync(this.logPath, "a");
    this.proc = spawn(fhirgateBin(), ["serve", "--seed-patients", "5"], {
      env: this.env({ FHIRGATE_LISTEN: `127.0.0.1:${this.port}` }),
      cwd: this.dir,
      stdio: ["ignore", log, log],
    });
    closeSync(log);
    let exited = null;
    this.proc.on("exit", (code, signal) => (exited = code ?? signal));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (exited !== null) throw new Error(`fhirgate exited (${exited}) before it was ready:\n${this.logTail()}`);
      try {
        const r = await fetch(`${this.fhirBase}/metadata`, { signal: AbortSignal.timeout(3000) });
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`fhirgate did not become ready in 120 s:\n${this.logTail()}`);
  }

  log() {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  logTail(lines = 60) {
    return this.log().split("\n").slice(-lines).join("\n") || "(no log)";
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      const gone = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await Promise.race([gone, sleep(5000)]);
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
    }
  }
}

/** The Chromium flags every suite launches with: headless, no sandbox (root), and nothing that calls out to the network (refused on this machine). */
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Debian's Chromium through `playwright-core` (each launch gets its own temporary profile). */
export async function launchChromium() {
  const require = createRequire(import.meta.url);
  const { chromium } = require(join(HERE, "node_modules", "playwright-core"));
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * A suite's `withPage(name, body)`: runs `body(page)` in a fresh browser
 * context with `timeout` as the default step timeout. On failure it saves a
 * screenshot into the suite's temp dir, prints the page text, the browser
 * console (errors and HTTP answers >= 400 included) and the fhirgate log
 * tail, calls `onFail()`, and rethrows. `BROWSER_SCREENSHOTS=<dir>` also
 * keeps a screenshot of every passing page (`<prefix>-<name>.png`);
 * `BROWSER_DEBUG=1` prints every page's console. `suite()` answers
 * `{ browser, dir, gate }` (they exist only once `before` has run).
 */
export function pageRunner({ suite, timeout, prefix, onFail }) {
  return async function withPage(name, body) {
    const { browser, dir, gate } = suite();
    const context = await browser.newContext();
    context.setDefaultTimeout(timeout);
    const page = await context.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
    page.on("response", (r) => r.status() >= 400 && consoleLines.push(`[http ${r.status()}] ${r.request().method()} ${r.url()}`));
    try {
      await body(page);
      if (process.env.BROWSER_SCREENSHOTS) {
        await page.screenshot({ path: join(process.env.BROWSER_SCREENSHOTS, `${prefix}-${name}.png`), fullPage: true });
      }
      if (process.env.BROWSER_DEBUG) console.log(`# ${name} browser console:\n${consoleLines.join("\n")}`);
    } catch (e) {
      onFail();
      const shot = join(dir, `${name}.png`);
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      let text = "";
      try {
        text = (await page.locator("body").innerText({ timeout: 2000 })).slice(0, 3000);
      } catch {
        // page gone
      }
      console.log(
        `# ${name} failed at ${page.url()}\n# screenshot: ${shot}\n# page text:\n${text}\n` +
          `# browser console:\n${consoleLines.slice(-30).join("\n")}\n# fhirgate log tail:\n${gate.logTail()}`,
      );
      throw e;
    } finally {
      await context.close().catch(() => {});
    }
  };
}

/** Fills fhirgate's sign-in form as a demo user (password `demo`) and submits it. */
export async function signIn(page, username) {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill("demo");
  await page.getByRole("button", { name: "Sign in" }).click();
}
