// Step-up authentication in a real browser: Debian's headless Chromium
// (driven by `playwright-core`) against the real `fhirgate` binary on a
// fresh demo data dir with `[mfa] stepup = "required"`, using what a person
// sees. The authenticator app is played by this test: it reads the key the
// page shows and computes RFC 6238 codes with Node's HMAC-SHA-1.
//   1. pat.jones tries to save a privacy choice → "Confirm it is you" says
//      no factor is set up → sets up an authenticator (QR code and key),
//      confirms with a code → sees ten recovery codes → saves the choice
//      and gets its receipt (ledger entry, download link);
//   2. in a new session the same choice's Revoke needs a step-up: the code
//      used at enrollment is refused (replay), the next step's code is
//      accepted, the revoke goes through;
//   3. a recovery code works once; wrong codes are throttled
//      ("Too many wrong codes").
//
// Run: `node --test conformance-tests/browser/mfa.test.mjs` after `npm ci`
// in conformance-tests/browser and `cargo build --bin fhirgate`
// (`scripts/test.sh` does both).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fhirgate, freePort, prerequisites, launchChromium, pageRunner, signIn } from "./harness.mjs";

const APP_NAME = "Growth Chart";
const STEP_TIMEOUT = 30_000;

/** RFC 4648 base32 (spaces ignored) to bytes. */
function unbase32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of text.replace(/\s+/g, "")) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** The 6-digit TOTP code of `key` for the 30-second step `offset` steps from now. */
function totp(key, offset = 0) {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac("sha1", key).update(counter).digest();
  const o = h[19] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

describe("step-up authentication in headless Chromium", () => {
  let tmp, gate, browser, failed = false;
  let key = null, enrollCode = null, recoveryCodes = [];

  before(async () => {
    try {
      prerequisites("step-up browser suite");
      tmp = mkdtempSync(join(tmpdir(), "fhirgate-mfa-"));
      writeFileSync(
        join(tmp, "fhirgate.toml"),
        '# mfa.test.mjs: sensitive operations need a fresh step-up\n[mfa]\nstepup = "required"\ncode_failure_limit = 4\n',
      );
      gate = new Fhirgate(tmp, await freePort());
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
    prefix: "mfa",
    onFail: () => (failed = true),
  });

  async function stopSharing(page) {
    await page.getByLabel("Stop sharing", { exact: false }).check();
    await page.getByLabel("App", { exact: true }).selectOption({ label: APP_NAME });
    await page.getByLabel("Mental health", { exact: true }).check();
    await page.getByRole("button", { name: "Save my choice" }).click();
  }

  async function enterCode(page, code) {
    await page.getByLabel("Code", { exact: true }).fill(code);
    await page.getByRole("button", { name: "Continue" }).click();
  }

  test("enrollment from the step-up page, then the sensitive action", async () => {
    await withPage("enroll", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/portal`);
      await signIn(page, "pat.jones");
      await page.waitForURL((u) => u.pathname === "/portal");
      await stopSharing(page);
      // no fresh step-up: the browser is sent to confirm, and no factor exists yet
      await page.waitForURL((u) => u.pathname === "/stepup" && u.searchParams.get("next") === "/portal");
      await page.getByRole("heading", { name: "Confirm it is you" }).waitFor();
      await page.getByRole("link", { name: "Set up an authenticator app" }).click();
      await page.waitForURL((u) => u.pathname === "/account/security");
      await page.getByText("No authenticator app is set up yet.").waitFor();
      await page.getByRole("button", { name: "Set up an authenticator app" }).click();
      await page.getByRole("heading", { name: "Set up your authenticator app" }).waitFor();
      assert.equal(await page.getByLabel("QR code for the authenticator app").locator("svg").count(), 1);
      key = unbase32(await page.locator("#totp-secret").innerText());
      assert.equal(key.length, 20);
      await page.getByLabel("Code from the app").fill("123456" === totp(key) ? "654321" : "123456");
      await page.getByRole("button", { name: "Confirm" }).click();
      await page.getByRole("alert").getByText("That code is not right", { exact: false }).waitFor();
      enrollCode = totp(key);
      await page.getByLabel("Code from the app").fill(enrollCode);
      await page.getByRole("button", { name: "Confirm" }).click();
      await page.getByRole("heading", { name: "Your recovery codes" }).waitFor();
      recoveryCodes = await page.locator("#recovery-codes code").allInnerTexts();
      assert.equal(recoveryCodes.length, 10);
      // enrolling was a step-up: the choice can be saved now
      await page.goto(`${gate.publicUrl}/portal`);
      await stopSharing(page);
      await page.getByRole("status").getByText("Your choice is saved", { exact: false }).waitFor();
      // the receipt: the Consent version and its ledger entry, downloadable
      await page.locator("#receipt").getByText("is recorded in the audit ledger as entry", { exact: false }).waitFor();
      assert.equal(await page.getByRole("link", { name: "Download the receipt" }).count(), 1);
    });
  });

  test("a new session steps up with the next code; the old one is a replay", async () => {
    assert.ok(key, "enrollment ran");
    await withPage("stepup", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/portal`);
      await signIn(page, "pat.jones");
      await page.waitForURL((u) => u.pathname === "/portal");
      await page.getByRole("button", { name: "Revoke" }).first().click();
      await page.waitForURL((u) => u.pathname === "/stepup");
      await enterCode(page, enrollCode);
      await page.getByRole("alert").getByText("used already", { exact: false }).waitFor();
      await enterCode(page, totp(key, 1));
      await page.waitForURL((u) => u.pathname === "/portal");
      await page.getByRole("button", { name: "Revoke" }).first().click();
      await page.getByRole("status").getByText("You revoked this choice.", { exact: false }).waitFor();
    });
  });

  test("a recovery code works once and wrong codes are throttled", async () => {
    assert.equal(recoveryCodes.length, 10, "enrollment ran");
    await withPage("recovery", async (page) => {
      await page.goto(`${gate.publicUrl}/login?next=/stepup?next=/portal`);
      await signIn(page, "pat.jones");
      await page.waitForURL((u) => u.pathname === "/stepup");
      await enterCode(page, recoveryCodes[0]);
      await page.waitForURL((u) => u.pathname === "/portal");
      await page.goto(`${gate.publicUrl}/stepup?next=/portal`);
      await enterCode(page, recoveryCodes[0]);
      await page.getByRole("alert").getByText("used already", { exact: false }).waitFor();
      // limit 4 in this config: the spent code above was the first wrong one
      for (let i = 0; i < 3; i++) {
        await enterCode(page, "000000" === totp(key) ? "111111" : "000000");
        await page.getByRole("alert").waitFor();
      }
      await enterCode(page, totp(key, 1));
      await page.getByRole("alert").getByText("Too many wrong codes", { exact: false }).waitFor();
    });
  });
});
