// fhirgate's own DTR SMART app (/dtr/launch, /dtr/app) in a real browser:
// Debian's headless Chromium (driven by `playwright-core`) against the real
// `fhirgate` binary on a fresh demo data dir, using only what a person sees
// (labels, button texts, the sentences the page shows):
//   1. the EHR (a token from `fhirgate token issue`, as an EHR's own
//      backend) signs an MRI of the knee for Pat Jones (CPT 73722, the demo
//      payer rules' `needs-doc` code);
//   2. dr.lee signs in at /launcher, selects Pat Jones, picks the app
//      "DTR documentation" (the client `dtr-app` the demo start registers)
//      and presses Launch; the approval page is answered with Allow;
//   3. the app exchanges the code (PKCE S256), finds the patient's coverage
//      and the open order, fetches the payer's package
//      (`Questionnaire/$questionnaire-package`) and shows the form
//      "MRI of the knee: prior authorization documentation"; Save with
//      required answers missing names them; the form is filled and saved;
//   4. the page says which QuestionnaireResponse was stored and that it can
//      be attached to the prior-authorization request; through the FHIR
//      API that QuestionnaireResponse is `completed`, for
//      `imaging-knee|1.0`, about Pat Jones, authored by dr.lee;
//   5. launched as from a CRD card by an EHR that passes the card's
//      `appContext` in its token response (the token response is amended
//      in the browser, as fhirgate's launcher cannot carry it yet), the app
//      documents exactly the coverage and order the card named;
//   6. opened without a launch, or launched for another FHIR server, the
//      app says so in words.
//
// Run: `node --test conformance-tests/browser/dtr_app.test.mjs` after
// `npm ci` in conformance-tests/browser and `cargo build --bin fhirgate`
// (`scripts/test.sh` does both). Nothing here skips: a missing browser,
// missing Node packages or a missing binary fails with what to run.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fhirgate, freePort, prerequisites, launchChromium, pageRunner, signIn } from "./harness.mjs";

const APP_NAME = "DTR documentation";
const FORM_TITLE = "MRI of the knee: prior authorization documentation";
const KNEE = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";
const CPT = "http://www.ama-assn.org/go/cpt";
const STEP_TIMEOUT = 30_000;

/** Age in whole years on today's date. */
function ageOn(birthDate) {
  const b = new Date(`${birthDate}T00:00:00Z`);
  const now = new Date();
  let age = now.getUTCFullYear() - b.getUTCFullYear();
  const m = now.getUTCMonth() - b.getUTCMonth();
  if (m < 0 || (m === 0 && now.getUTCDate() < b.getUTCDate())) age -= 1;
  return age;
}

describe("the DTR SMART app in headless Chromium", () => {
  let tmp, gate, browser, failed = false;
  const s = {};

  before(async () => {
    try {
      prerequisites("DTR app browser suite");
      tmp = mkdtempSync(join(tmpdir(), "fhirgate-dtr-app-"));
      gate = new Fhirgate(tmp, await freePort());
      await gate.start();
      browser = await launchChromium();
      // The demo banner names dr.lee's Practitioner and pat.jones's Patient.
      const dm = gate.log().match(/dr\.lee \/ demo\s+\(clinician, (Practitioner\/[^,\s)]+)/);
      const pm = gate.log().match(/pat\.jones \/ demo\s+\(patient, Patient\/([^,\s)]+)\)/);
      assert.ok(dm && pm, `the demo banner names dr.lee and pat.jones:\n${gate.logTail()}`);
      s.drLee = dm[1];
      s.patientId = pm[1];
      // The EHR's own backend (not the app): writes the signed order, reads back what the app stored.
      s.ehrToken = gate.cli(
        "token", "issue", "--any-client", "--client", "ehr-backend",
        "--scope", "user/Patient.r user/Coverage.rs user/ServiceRequest.cr user/QuestionnaireResponse.rs",
        "--user", s.drLee, "--role", "clinician",
      ).trim();
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

  async function api(method, path, body) {
    const headers = { authorization: `Bearer ${s.ehrToken}`, accept: "application/fhir+json" };
    if (body) headers["content-type"] = "application/fhir+json";
    const r = await fetch(`${gate.fhirBase}/${path}`, { method, headers, body: body && JSON.stringify(body) });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, json, text };
  }

  const withPage = pageRunner({
    suite: () => ({ browser, dir: tmp, gate }),
    timeout: STEP_TIMEOUT,
    prefix: "dtr",
    onFail: () => (failed = true),
  });

  test("dr.lee launches the DTR app for Pat Jones, completes the MRI-knee form and saves it", async () => {
    await withPage("complete-form", async (page) => {
      // The EHR has signed an MRI of the knee for Pat Jones.
      let r = await api("GET", `Patient/${s.patientId}`);
      assert.equal(r.status, 200, r.text);
      const patient = r.json;
      r = await api("POST", "ServiceRequest", {
        resourceType: "ServiceRequest",
        status: "active",
        intent: "order",
        code: { coding: [{ system: CPT, code: "73722", display: "MRI joint of lower extremity, with contrast" }] },
        subject: { reference: `Patient/${s.patientId}` },
        requester: { reference: s.drLee },
        authoredOn: new Date().toISOString().slice(0, 10),
      });
      assert.equal(r.status, 201, r.text);
      s.firstOrder = `ServiceRequest/${r.json.id}`;

      // The EHR launch, as a clinician does it.
      await page.goto(`${gate.publicUrl}/login?next=/launcher`);
      await signIn(page, "dr.lee");
      await page.waitForURL((u) => u.pathname === "/launcher");
      const row = page.getByRole("row").filter({ hasText: "Jones" });
      await row.first().waitFor();
      assert.equal(await row.count(), 1, "exactly one patient row mentions Jones");
      await row.getByRole("button", { name: "Select" }).click();
      await page.getByLabel("App").selectOption({ label: APP_NAME });
      await page.getByRole("button", { name: "Launch" }).click();
      // launcher → /dtr/launch → /auth/authorize → approval page
      await page.getByRole("button", { name: "Allow" }).click();
      await page.waitForURL((u) => u.pathname === "/dtr/app");

      // The payer's form, for this patient.
      await page.getByRole("heading", { name: FORM_TITLE }).waitFor();
      assert.ok(!page.url().includes("code="), "the code is gone from the address bar");
      await page.getByText("Patient: ", { exact: false }).filter({ hasText: "Jones" }).waitFor();
      const form = page.getByRole("form", { name: FORM_TITLE });

      // Saving with required answers missing names them; nothing is stored.
      await form.getByRole("button", { name: "Save" }).click();
      const alert = form.getByRole("alert");
      await alert.getByText("Please answer the required questions", { exact: false }).waitFor();
      assert.match(await alert.innerText(), /Primary indication for the MRI/);

      // The clinician fills it in.
      await form.getByLabel("Age (years)").fill(String(ageOn(patient.birthDate)));
      await form.getByLabel("Primary indication for the MRI").selectOption({ label: "Unilateral primary osteoarthritis, right knee" });
      await form.getByRole("group", { name: "Is the indication documented" }).getByLabel("Yes").check();
      await form.getByLabel("How many weeks have the knee symptoms lasted?").fill("10");
      await form.getByRole("group", { name: "Has conservative treatment" }).getByLabel("Yes").check();
      await form.getByRole("group", { name: "Were plain radiographs" }).getByLabel("No").check();
      await form.getByLabel("Why is contrast needed?").fill("Suspected meniscal tear");
      await form.getByRole("button", { name: "Save" }).click();

      // The page says what was stored and what to do with it.
      const saved = page.locator("#saved");
      await saved.getByText("Saved. The documentation is stored as", { exact: false }).waitFor();
      await saved.getByText("It can be attached to the prior-authorization request", { exact: false }).waitFor();
      const ref = (await page.locator("#saved-id").innerText()).trim();
      const m = ref.match(/^QuestionnaireResponse\/([A-Za-z0-9.-]+)$/);
      assert.ok(m, `the page names the stored QuestionnaireResponse: ${ref}`);
      s.qrId = m[1];
      assert.equal(await form.getByRole("button", { name: "Save" }).isDisabled(), true, "saved once");
    });

    // Through the FHIR API: a completed QuestionnaireResponse for the knee form and Pat Jones.
    const r = await api("GET", `QuestionnaireResponse?patient=${s.patientId}&status=completed`);
    assert.equal(r.status, 200, r.text);
    const found = (r.json.entry || []).map((e) => e.resource).filter((q) => q.questionnaire === KNEE);
    assert.equal(found.length, 1, `one completed knee QuestionnaireResponse for Patient/${s.patientId}: ${r.text}`);
    const qr = found[0];
    assert.equal(qr.id, s.qrId);
    assert.equal(qr.status, "completed");
    assert.equal(qr.subject.reference, `Patient/${s.patientId}`);
    assert.equal(qr.author?.reference, s.drLee, "authored by the signed-in clinician (fhirUser)");
    const answers = {};
    (function walk(items) {
      for (const it of items || []) {
        if (it.answer) answers[it.linkId] = it.answer[0];
        walk(it.item);
      }
    })(qr.item);
    assert.equal(answers["2.1"]?.valueCoding?.code, "M17.11");
    assert.equal(answers["2.1"]?.valueCoding?.system, "http://hl7.org/fhir/sid/icd-10-cm");
    assert.equal(answers["2.2"]?.valueBoolean, true);
    assert.equal(answers["2.3"]?.valueInteger, 10);
    assert.equal(answers["2.5"]?.valueBoolean, false);
    assert.equal(answers["2.6"]?.valueString, "Suspected meniscal tear");
    assert.equal(typeof answers["1.1"]?.valueInteger, "number");
    assert.ok(contextOf(qr).includes(s.firstOrder), `the order found on the record: ${JSON.stringify(qr.extension)}`);
  });

  /** The `qr-context` references of a QuestionnaireResponse. */
  function contextOf(qr) {
    return (qr.extension || []).map((e) => e.valueReference?.reference).filter(Boolean);
  }

  test("launched from a CRD card, the app documents the coverage and order of the card's appContext", async () => {
    // The order being signed (a draft, as in order-sign) and the coverage CRD answered for.
    let r = await api("POST", "ServiceRequest", {
      resourceType: "ServiceRequest",
      status: "draft",
      intent: "order",
      code: { coding: [{ system: CPT, code: "73722" }] },
      subject: { reference: `Patient/${s.patientId}` },
      requester: { reference: s.drLee },
    });
    assert.equal(r.status, 201, r.text);
    const order = `ServiceRequest/${r.json.id}`;
    r = await api("GET", `Coverage?patient=${s.patientId}&status=active`);
    assert.equal(r.status, 200, r.text);
    const coverage = `Coverage/${r.json.entry[0].resource.id}`;
    // As src/crd/answer.rs builds a card link's appContext.
    const appContext = JSON.stringify({ "coverage-assertion-id": "demo", coverage, order, questionnaire: [KNEE] });

    await withPage("app-context", async (page) => {
      // The EHR puts the card's appContext into its token response.
      await page.route("**/auth/token", async (route) => {
        const real = await route.fetch();
        const body = await real.json();
        if (body.access_token) body.appContext = appContext;
        await route.fulfill({ response: real, json: body });
      });
      await page.goto(`${gate.publicUrl}/login?next=/launcher`);
      await signIn(page, "dr.lee");
      await page.waitForURL((u) => u.pathname === "/launcher");
      await page.getByRole("row").filter({ hasText: "Jones" }).getByRole("button", { name: "Select" }).click();
      await page.getByLabel("App").selectOption({ label: APP_NAME });
      await page.getByRole("button", { name: "Launch" }).click();
      await page.getByRole("button", { name: "Allow" }).click();
      const form = page.getByRole("form", { name: FORM_TITLE });
      await form.waitFor();
      assert.equal(await page.getByRole("form").count(), 1, "one form: the card's questionnaire");
      await form.getByLabel("Age (years)").fill("42");
      await form.getByLabel("Primary indication for the MRI").selectOption({ label: "Pain in left knee" });
      await form.getByLabel("How many weeks have the knee symptoms lasted?").fill("7");
      await form.getByRole("group", { name: "Has conservative treatment" }).getByLabel("No").check();
      await form.getByRole("group", { name: "Were plain radiographs" }).getByLabel("Yes").check();
      await form.getByRole("button", { name: "Save" }).click();
      const ref = (await page.locator("#saved-id").innerText()).trim();
      s.cardQr = ref;
    });

    r = await api("GET", s.cardQr);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, "completed");
    assert.equal(r.json.questionnaire, KNEE);
    const ctx = contextOf(r.json);
    assert.ok(ctx.includes(order) && ctx.includes(coverage), `the card's order and coverage: ${ctx}`);
    assert.ok(!ctx.includes(s.firstOrder), `not the other order on the record: ${ctx}`);
  });

  test("opened without a launch, or for another FHIR server, the app says so", async () => {
    await withPage("errors", async (page) => {
      await page.goto(`${gate.publicUrl}/dtr/app`);
      await page.getByRole("alert").getByText("opened without a launch", { exact: false }).waitFor();
      await page.goto(`${gate.publicUrl}/dtr/app?error=access_denied&error_description=the+user+denied+the+request`);
      await page.getByRole("alert").getByText("The authorization was not given: the user denied the request", { exact: false }).waitFor();
      await page.goto(`${gate.publicUrl}/dtr/launch?iss=${encodeURIComponent("https://ehr.example/fhir")}&launch=x`);
      await page.getByText("works only with the FHIR server", { exact: false }).waitFor();
    });
  });
});
