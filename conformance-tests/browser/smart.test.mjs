// SMART App Launch in a real browser: the SMART JavaScript client
// (npm `fhirclient`) runs inside a page served to Debian's headless Chromium
// (driven by `playwright-core`) and completes, against the real `fhirgate`
// binary:
//   1. an EHR launch started from fhirgate's `/launcher`,
//   2. a standalone patient launch,
//   3. a launch the user denies (the app gets `error=access_denied`),
// reading the Patient and searching Observations through the facade, and
//   4. refreshing the token as fhirclient does by default for a public
//      client (`grant_type=refresh_token&refresh_token=…`, no client_id:
//      SMART App Launch lets public apps refresh without authenticating).
//
// Run: `node --test conformance-tests/browser/smart.test.mjs` after
// `npm ci` in conformance-tests/browser and `cargo build --bin fhirgate`
// (`scripts/test.sh` does both). Nothing here skips: a missing browser,
// missing Node packages or a missing binary fails with what to run.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { Fhirgate, HERE, freePort, prerequisites, launchChromium, pageRunner, signIn } from "./harness.mjs";

const APP_NAME = "fhirclient.js browser app";
const STEP_TIMEOUT = 30_000;

// ---------------------------------------------------------------- prerequisites

// ---------------------------------------------------------------- the SMART app

const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };

/** Serves app/*.html, fhirclient's browser bundle and config.js on its own origin. */
function startAppServer(config) {
  const files = {
    "/launch.html": join(HERE, "app", "launch.html"),
    "/index.html": join(HERE, "app", "index.html"),
    "/fhir-client.js": join(HERE, "node_modules", "fhirclient", "build", "fhir-client.js"),
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/config.js") {
      res.writeHead(200, { "content-type": MIME[".js"], "cache-control": "no-store" });
      res.end(`window.APP_CONFIG = ${JSON.stringify(config)};\n`);
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204);
      res.end();
      return;
    }
    const file = files[path];
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    res.writeHead(200, { "content-type": MIME[extname(file)], "cache-control": "no-store" });
    res.end(readFileSync(file));
  });
  return new Promise((ok, fail) => {
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => ok(server));
  });
}

// ---------------------------------------------------------------- fhirgate

// ---------------------------------------------------------------- the suite

describe("SMART App Launch with fhirclient.js in headless Chromium", () => {
  let tmp, gate, appServer, appOrigin, browser, client, failed = false;
  const appConfig = {};
  let patJonesId = null;
  const outcomes = {}; // test name → what the app page showed

  before(async () => {
    try {
      await setUp();
    } catch (e) {
      failed = true;
      if (gate) console.log(`# fhirgate log tail:\n${gate.logTail()}`);
      throw e;
    }
  });

  async function setUp() {
    prerequisites("browser suite", ["fhirclient/build/fhir-client.js", "playwright-core/package.json"]);

    tmp = mkdtempSync(join(tmpdir(), "fhirgate-browser-"));
    appServer = await startAppServer(appConfig);
    // `localhost`, not 127.0.0.1: the app is on another site as well as another origin.
    appOrigin = `http://localhost:${appServer.address().port}`;

    gate = new Fhirgate(tmp, await freePort());
    client = JSON.parse(
      gate.cli(
        "client", "add",
        "--name", APP_NAME,
        "--auth", "none",
        "--redirect-uri", `${appOrigin}/index.html`,
        "--launch-url", `${appOrigin}/launch.html`,
        "--grant", "authorization_code",
        "--grant", "refresh_token",
        "--scope", "launch launch/patient openid fhirUser profile patient/*.rs offline_access",
      ),
    );
    assert.ok(client.client_id, `client add printed no client_id: ${JSON.stringify(client)}`);
    appConfig.clientId = client.client_id;
    await gate.start();

    browser = await launchChromium();
  }

  after(async () => {
    await browser?.close().catch(() => {});
    await gate?.stop();
    await new Promise((r) => (appServer ? appServer.close(r) : r()));
    if (tmp) {
      if (failed) console.log(`# kept ${tmp} (screenshots, fhirgate.log)`);
      else rmSync(tmp, { recursive: true, force: true });
    }
  });

  const withPage = pageRunner({
    suite: () => ({ browser, dir: tmp, gate }),
    timeout: STEP_TIMEOUT,
    prefix: "smart",
    onFail: () => (failed = true),
  });

  /** Waits for the app's index.html to show a result (or an error) and returns it. */
  async function appOutcome(page, t) {
    await page.waitForURL((u) => u.origin === appOrigin && u.pathname === "/index.html");
    await page.waitForFunction(
      () => document.getElementById("result")?.textContent || document.getElementById("error")?.textContent,
    );
    const error = await page.locator("#error").textContent();
    const result = await page.locator("#result").textContent();
    t.diagnostic(`app page: ${error ? "error " + error : result.replace(/\s+/g, " ")}`);
    outcomes[t.name] = { error: error || null, result: result ? JSON.parse(result) : null };
    if (process.env.BROWSER_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.BROWSER_SCREENSHOTS, `${t.name.replace(/\W+/g, "-")}.png`) });
    }
    return { error: error || null, result: result ? JSON.parse(result) : null };
  }

  test("EHR launch from /launcher as dr.lee", async (t) => {
    await withPage("ehr-launch", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/launcher`);
      await signIn(page, "dr.lee");
      await page.waitForURL((u) => u.pathname === "/launcher");

      const row = page.getByRole("row").filter({ hasText: "Jones" });
      await assert.doesNotReject(row.first().waitFor(), "the launcher lists Pat Jones");
      assert.equal(await row.count(), 1, "exactly one patient row mentions Jones");
      patJonesId = (await row.locator("code").first().textContent()).trim();
      await row.getByRole("button", { name: "Select" }).click();

      await page.getByLabel("App").selectOption({ label: APP_NAME });
      await page.getByRole("button", { name: "Launch" }).click();

      // launcher → launch.html?iss&launch → fhirclient → /auth/authorize → approval page
      await page.waitForURL((u) => u.origin === gate.publicUrl && u.pathname !== "/launcher");
      await page.getByRole("button", { name: "Allow" }).click();

      const { error, result } = await appOutcome(page, t);
      assert.equal(error, null, `the app reported an error: ${error}`);
      assert.equal(result.patientId, patJonesId, "the app read the launched patient");
      assert.equal(result.contextPatient, patJonesId);
      assert.match(result.patientName, /Jones/);
      assert.ok(result.observationCount > 0, `Observation search returned ${result.observationCount} entries`);
      assert.deepEqual(result.observationTypes, ["Observation"]);
      assert.equal(result.serverUrl, gate.fhirBase, "fhirclient talked to the iss from the launch");
      assert.equal(result.tokenResponse.patient, patJonesId);
      assert.equal(result.tokenResponse.need_patient_banner, true);
      assert.equal(result.tokenResponse.token_type, "Bearer");
      assert.ok(result.tokenResponse.has_id_token, "openid fhirUser gave an id_token");
      assert.equal(result.userType, "Practitioner", `fhirUser ${result.fhirUser}`);
      assert.match(result.fhirUser, /^Practitioner\/[^/]+$/);
      assert.ok(result.tokenResponse.scope.split(" ").includes("launch"), result.tokenResponse.scope);
    });
  });

  test("standalone patient launch as pat.jones", async (t) => {
    await withPage("standalone-launch", async (page) => {
      await page.goto(`${appOrigin}/launch.html?iss=${encodeURIComponent(gate.fhirBase)}`);
      // fhirclient → /auth/authorize → sign-in (no session in this fresh context)
      await page.waitForURL((u) => u.origin === gate.publicUrl);
      await signIn(page, "pat.jones");
      // A patient user gets their own record: no picker, straight to approval.
      const allow = page.getByRole("button", { name: "Allow" });
      await allow.waitFor();
      assert.equal(await page.getByRole("button", { name: "Select" }).count(), 0, "no patient picker for a patient user");
      await allow.click();

      const { error, result } = await appOutcome(page, t);
      assert.equal(error, null, `the app reported an error: ${error}`);
      assert.match(result.patientName, /Jones/);
      if (patJonesId) assert.equal(result.patientId, patJonesId, "the same record the launcher showed");
      assert.equal(result.tokenResponse.patient, result.patientId);
      assert.ok(result.observationCount > 0, `Observation search returned ${result.observationCount} entries`);
      assert.equal(result.userType, "Patient", `fhirUser ${result.fhirUser}`);
      assert.equal(result.fhirUser, `Patient/${result.patientId}`);
      assert.ok(result.tokenResponse.has_refresh_token, "offline_access gave a refresh token");
      const granted = result.tokenResponse.scope.split(" ");
      for (const s of ["launch/patient", "openid", "fhirUser", "patient/*.rs", "offline_access"]) {
        assert.ok(granted.includes(s), `granted scope lacks ${s}: ${result.tokenResponse.scope}`);
      }
    });
  });

  test("fhirclient refreshes a public client's tokens (no client_id, its default)", () => {
    const launches = ["EHR launch from /launcher as dr.lee", "standalone patient launch as pat.jones"];
    for (const name of launches) {
      const r = outcomes[name]?.result;
      assert.ok(r, `needs the result of "${name}"`);
      const refresh = r.refresh;
      assert.equal(refresh.attempted, true, `${name}: no refresh token to refresh with`);
      assert.equal(refresh.ok, true, `${name}: client.refresh() failed: ${refresh.error}`);
      assert.equal(refresh.newAccessToken, true, `${name}: the refresh gave the same access token`);
      assert.equal(refresh.rotatedRefreshToken, true, `${name}: refresh tokens rotate`);
      assert.equal(refresh.scope, r.tokenResponse.scope, `${name}: the refresh kept the granted scope`);
      assert.equal(refresh.readAfterRefresh, r.patientId, `${name}: the new access token reads the patient`);
    }
  });

  test("a denied authorization reaches the app as access_denied", async (t) => {
    await withPage("denied-launch", async (page) => {
      await page.goto(`${appOrigin}/launch.html?iss=${encodeURIComponent(gate.fhirBase)}`);
      await page.waitForURL((u) => u.origin === gate.publicUrl);
      await signIn(page, "pat.jones");
      await page.getByRole("button", { name: "Deny" }).click();

      await page.waitForURL((u) => u.origin === appOrigin && u.pathname === "/index.html");
      const url = new URL(page.url());
      assert.equal(url.searchParams.get("error"), "access_denied", `redirected to ${page.url()}`);
      assert.ok(url.searchParams.get("state"), "the state comes back with the error");
      const { error, result } = await appOutcome(page, t);
      assert.equal(result, null);
      assert.match(error, /access_denied/);
    });
  });
});
