// The patient consent portal in a real browser: Debian's headless Chromium
// (driven by `playwright-core`) against the real `fhirgate` binary on a
// fresh demo data dir, using only what a person sees (labels, button texts,
// the sentences the page shows):
//   1. /portal without a session → sign in as pat.jones → back on /portal,
//      no choices yet;
//   2. grant: "Stop sharing", app "Growth Chart", "Mental health", an end
//      date, "Save my choice" → the page confirms in words and lists the
//      choice as Active with a Revoke button; the access history shows the
//      portal's own write;
//   3. revoke: "Revoke" → the page confirms, the choice is Revoked and has
//      no button any more;
//   4. a clinician (dr.lee) gets the readable "Not allowed" page; the
//      landing page links the portal for the patient only.
//
// Run: `node --test conformance-tests/browser/portal.test.mjs` after
// `npm ci` in conformance-tests/browser and `cargo build --bin fhirgate`
// (`scripts/test.sh` does both). Nothing here skips: a missing browser,
// missing Node packages or a missing binary fails with what to run.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fhirgate, freePort, prerequisites, launchChromium, pageRunner, signIn } from "./harness.mjs";

const APP_NAME = "Growth Chart";
const END = "2099-12-31";
const STEP_TIMEOUT = 30_000;

describe("patient consent portal in headless Chromium", () => {
  let tmp, gate, browser, failed = false;

  before(async () => {
    try {
      prerequisites("portal browser suite");
      tmp = mkdtempSync(join(tmpdir(), "fhirgate-portal-"));
      gate = new Fhirgate(tmp, await freePort());
      // Step-up (on by default in demo mode) is mfa.test.mjs's subject;
      // this suite drives the consent pages themselves.
      writeFileSync(join(tmp, "fhirgate.toml"), '[mfa]\nstepup = "off"\n');
      gate.cli(
        "client", "add",
        "--name", APP_NAME,
        "--auth", "none",
        "--redirect-uri", "http://localhost:9/index.html",
        "--grant", "authorization_code",
      );
      await gate.start();
      browser = await launchChromium();
    } catch (e) {
      failed = true;
      if (gate) console.log(`# fhirgate log tail:\n${gate.logTail()}`);
      throw e;
    }
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await gate?.stop();
    if (tmp) {
      if (failed) console.log(`# kept ${tmp} (screenshots, fhirgate.log)`);
      else rmSync(tmp, { recursive: true, force: true });
    }
  });

  const withPage = pageRunner({
    suite: () => ({ browser, dir: tmp, gate }),
    timeout: STEP_TIMEOUT,
    prefix: "portal",
    onFail: () => (failed = true),
  });

  test("pat.jones grants and revokes a consent", async () => {
    await withPage("grant-revoke", async (page) => {
      await page.goto(`${gate.publicUrl}/portal`);
      await page.waitForURL((u) => u.pathname === "/login" && u.searchParams.get("next") === "/portal");
      await signIn(page, "pat.jones");
      await page.waitForURL((u) => u.pathname === "/portal");
      await page.getByRole("heading", { name: "Your privacy choices" }).waitFor();
      await page.getByText("You have not made any choices yet.").waitFor();
      await page.getByRole("heading", { name: "Who looked at your record" }).waitFor();

      // Grant: stop sharing mental-health records with one app, until a date.
      await page.getByLabel("Stop sharing", { exact: false }).check();
      await page.getByLabel("App", { exact: true }).selectOption({ label: APP_NAME });
      await page.getByLabel("Mental health", { exact: true }).check();
      await page.getByLabel("Until").fill(END);
      await page.getByRole("button", { name: "Save my choice" }).click();

      const sentence = `The app “${APP_NAME}” may not see your mental-health records until ${END}.`;
      const status = page.getByRole("status");
      await status.getByText("Your choice is saved and applies from now on:").waitFor();
      await status.getByText(sentence).waitFor();
      const row = page.getByRole("row").filter({ hasText: sentence });
      assert.equal(await row.count(), 1, "one row says the new choice");
      assert.equal((await row.getByRole("cell").nth(1).innerText()).trim(), "Active");
      assert.equal(await row.getByRole("button", { name: "Revoke" }).count(), 1);
      // The portal's own write is in the access history.
      const history = page.getByRole("table", { name: "Access to your record" });
      await history.getByRole("row").filter({ hasText: "Added privacy choices" }).first().waitFor();
      assert.ok(
        (await history.getByRole("row").filter({ hasText: "This privacy portal" }).count()) > 0,
        "the history names the portal as the app",
      );

      // Revoke it.
      await row.getByRole("button", { name: "Revoke" }).click();
      await page.getByRole("status").getByText("You revoked this choice.", { exact: false }).waitFor();
      const after = page.getByRole("row").filter({ hasText: sentence });
      await after.first().waitFor();
      assert.equal((await after.getByRole("cell").nth(1).innerText()).trim(), "Revoked");
      assert.equal(await after.getByRole("button", { name: "Revoke" }).count(), 0, "a revoked choice has no Revoke button");

      // The landing page links the portal for a patient.
      await page.goto(`${gate.publicUrl}/`);
      await page.getByRole("link", { name: "Your privacy choices" }).click();
      await page.waitForURL((u) => u.pathname === "/portal");
    });
  });

  test("a mistake on the form is explained and nothing is saved", async () => {
    await withPage("form-error", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/portal`);
      await signIn(page, "pat.jones");
      await page.waitForURL((u) => u.pathname === "/portal");
      await page.getByLabel("Share only", { exact: false }).check();
      await page.getByRole("button", { name: "Save my choice" }).click();
      await page.getByRole("alert").getByText("pick at least one", { exact: false }).waitFor();
      assert.equal(await page.getByRole("button", { name: "Revoke" }).count(), 0);
    });
  });

  test("a clinician gets a readable 403", async () => {
    await withPage("clinician-403", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/portal`);
      await signIn(page, "dr.lee");
      await page.getByRole("heading", { name: "Not allowed" }).waitFor();
      await page.getByText("The privacy portal is for patients", { exact: false }).waitFor();
      await page.goto(`${gate.publicUrl}/`);
      assert.equal(await page.getByRole("link", { name: "Your privacy choices" }).count(), 0);
    });
  });
});
