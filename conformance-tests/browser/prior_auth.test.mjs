// The provider-to-payer prior-authorization loop of issue 7 end to end,
// black box: the real `fhirgate` binary on a fresh demo data dir, spoken to
// over HTTP and through its command line only, and Debian's headless
// Chromium (driven by `playwright-core`) for the human reviewer, who uses
// only what a person sees (labels, button texts, the sentences the page
// shows). The steps run in order and hand their results on:
//   1. setup: the config file trusts a CDS client (the EHR) by `iss` with an
//      inline ES384 JWKS (`[crd] clients`) and maps the provider's Backend
//      Services client to the clinic (`[payer] provider_clients`); that
//      client reads the seeded member (Pat Jones), her Coverage and the
//      clinic's and payer's Organizations;
//   2. the provider subscribes to the PAS topic (rest-hook to a Node `http`
//      subscriber on 127.0.0.1, filtered by the clinic's NPI, full-resource):
//      the handshake arrives and the Subscription is `active`;
//   3. CRD `order-sign` for an MRI of the knee (CPT 73722, the demo rules'
//      `needs-doc` code) with the patient and coverage prefetched: the
//      coverage-information systemAction says prior authorization and
//      clinical documentation are needed and names the DTR Questionnaire;
//      the same client JWT again is a replay (401);
//   4. DTR: the `$questionnaire-package` for that coverage and order; its
//      draft QuestionnaireResponse is answered, `completed` and stored;
//   5. `Claim/$submit` with a PAS Request Bundle whose Claim names the stored
//      QuestionnaireResponse (`supportingInfo.valueReference`) is pended for
//      a reviewer (X12 306 A4, no longer asking for documentation); the
//      subscriber gets an event notification for it; the metrics count it
//      as pending;
//   6. the demo administrator signs in, opens the review queue
//      (/admin/prior-auth), clicks "Approve" on the request's item and the
//      page says so in words;
//   7. the subscriber gets an event notification whose focus is the decided
//      ClaimResponse (certified, A1); `Claim/$inquire` answers the approval
//      with a `preAuthRef` and period; the CMS-0057-F metrics
//      (`GET /admin/api/prior-auth/metrics`) count one decided, approved
//      standard request (and refuse the provider's token).
//   A last subtest resends the submitted Bundle (with its reference to the
//   stored QuestionnaireResponse) as an inquiry: `$inquire` resolves stored
//   references as `$submit` does.
//
// Tokens:
// - The provider organization's backend system (PAS `$submit`/`$inquire`,
//   the Subscription, and the reads of the Patient, Coverage and
//   Organizations it builds its requests from) is a SMART Backend Services
//   client registered with `fhirgate client add --auth private_key_jwt` and
//   gets its token by `client_credentials` with an RS384 client assertion
//   signed here with Node's `crypto` (the flow of
//   conformance-tests/src/oauth.rs): the PAS/Subscription loop is the
//   machine-to-machine loop Da Vinci PAS describes, and the client id is
//   what `[payer] provider_clients` maps to the clinic's Organization (so
//   it may own a Subscription and is notified about its requests). It
//   sends `X-Purpose-Of-Use: HPAYMT` (payment): a Backend Services client
//   stating no purpose gets no Texas HB 300 exemption, and Pat Jones is a
//   Texas resident (README, "Consent").
// - The DTR app (a clinician-launched SMART app whose launch is proven in
//   smart.test.mjs) and the metrics caller (an auditor, `system/AuditEvent.rs`)
//   get tokens from `fhirgate token issue --any-client`: for them the OAuth
//   flow is not the point here, only what they may do with the token.
// - The CDS client's own JWT (CDS Hooks "Trusting CDS Clients") is ES384,
//   signed here, with `iss`, `aud` = the service URL, `exp`, `iat`, `jti`.
//
// Run: `node --test conformance-tests/browser/prior_auth.test.mjs` after
// `npm ci` in conformance-tests/browser and `cargo build --bin fhirgate`
// (`scripts/test.sh` does both). Nothing here skips: a missing browser,
// missing Node packages or a missing binary fails with what to run.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Fhirgate, cleanEnv, freePort, prerequisites, sleep, launchChromium } from "./harness.mjs";

const STEP_TIMEOUT = 30_000;

const CPT = "http://www.ama-assn.org/go/cpt";
const MRI_KNEE = "73722";
const KNEE_QUESTIONNAIRE = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";
const COVERAGE_INFO = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information";
const PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";
const FILTER_EXT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
const CONTENT_EXT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
const REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction";
const X12_306 = "https://codesystem.x12.org/005010/306";
const CLAIM_ID = "PA-MRI-KNEE-0001";
const CDS_ISS = "https://ehr.riverside-clinic.example.org";
const CDS_KID = "ehr-es384-1";
/// The provider organization (seeded): dr.lee's clinic.
const CLINIC = "Organization/org-riverside-clinic";
const PAYER = "Organization/org-acme-health-plan";
const PAS_SCOPES =
  "system/Claim.crs system/Subscription.cruds system/Patient.rs system/Coverage.rs system/Organization.rs";

/** Polls `probe` (sync or async) until it returns a truthy value; fails with `what` after `ms`. */
async function eventually(what, probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- JWTs with Node's crypto ----

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** A compact JWS: RS384 (PKCS#1 v1.5) or ES384 (raw r||s signature). */
function jwt(header, claims, privateKey) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = header.alg === "ES384" ? { key: privateKey, dsaEncoding: "ieee-p1363" } : privateKey;
  return `${input}.${b64url(sign("sha384", Buffer.from(input), key))}`;
}

const nowSecs = () => Math.floor(Date.now() / 1000);

// ---- TOML for the config file (inline tables from JSON values) ----

function toml(v) {
  if (Array.isArray(v)) return `[${v.map(toml).join(", ")}]`;
  if (v && typeof v === "object") {
    return `{ ${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)} = ${toml(x)}`).join(", ")} }`;
  }
  return JSON.stringify(v);
}

/** fhirgate configured by a file: listen, public URL and data dir, then this suite's sections. */
class ConfiguredFhirgate extends Fhirgate {
  constructor(dir, port) {
    super(dir, port);
    this.configPath = join(dir, "fhirgate.toml");
    this.writeConfig("");
  }

  /** Writes the config file: listen/public URL/data dir, then `sections`. */
  writeConfig(sections) {
    writeFileSync(
      this.configPath,
      // step-up (on by default in demo mode) is mfa.test.mjs's subject
      `listen = "127.0.0.1:${this.port}"\npublic_url = "${this.publicUrl}"\ndata_dir = ${JSON.stringify(this.dataDir)}\n[mfa]\nstepup = "off"\n${sections}`,
    );
  }

  /** Everything comes from the config file. */
  env() {
    return cleanEnv({ FHIRGATE_CONFIG: this.configPath });
  }

  /** `fhirgate token issue --any-client ...` against this server's settings. */
  issue(...args) {
    return this.cli("token", "issue", "--any-client", ...args).trim();
  }
}

/** The test subscriber: records every POST (path, headers, JSON body) and answers 200. */
function startSubscriber() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {
        body = { unparsed: text };
      }
      if (req.method === "POST") got.push({ path: req.url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    });
  });
  return new Promise((ok, fail) => {
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}/pas-notifications`;
      ok({ server, url, got });
    });
  });
}

/** A parameter of a notification's SubscriptionStatus (entry 0). */
function statusParam(bundle, name) {
  return (bundle?.entry?.[0]?.resource?.parameter ?? []).find((p) => p.name === name) ?? {};
}

function eventPart(bundle, name) {
  return (statusParam(bundle, "notification-event").part ?? []).find((p) => p.name === name) ?? {};
}

const kindOf = (n) => statusParam(n.body, "type").valueCode;

/** `{url-suffix: value}` of the coverage-information extension on `resource`. */
function coverageInfo(resource) {
  const ext = (resource?.extension ?? []).find((e) => e.url === COVERAGE_INFO);
  assert.ok(ext, `no ${COVERAGE_INFO} on ${JSON.stringify(resource)}`);
  const out = {};
  for (const part of ext.extension) {
    const key = Object.keys(part).find((k) => k.startsWith("value"));
    out[part.url] = part[key];
  }
  return out;
}

/** The X12 306 review action code of ClaimResponse item `i`. */
function reviewAction(cr, i = 0) {
  const ra = (cr?.item?.[i]?.adjudication?.[0]?.extension ?? []).find((e) => e.url === REVIEW_ACTION);
  assert.ok(ra, `no reviewAction on item ${i} of ${JSON.stringify(cr)}`);
  const code = ra.extension.find((e) => e.url.endsWith("extension-reviewActionCode"));
  const coding = code.valueCodeableConcept.coding[0];
  assert.equal(coding.system, X12_306);
  return coding.code;
}

function ageOn(birthDate, today = new Date()) {
  const b = new Date(`${birthDate}T00:00:00Z`);
  let age = today.getUTCFullYear() - b.getUTCFullYear();
  const m = today.getUTCMonth() - b.getUTCMonth();
  if (m < 0 || (m === 0 && today.getUTCDate() < b.getUTCDate())) age -= 1;
  return age;
}

const plain = ({ system, value }) => ({ system, value });

describe("prior authorization end to end: CRD, DTR, PAS, review in headless Chromium, subscription, $inquire, metrics", () => {
  let tmp, gate, browser, subscriber, failed = false;
  // what each step hands on to the next
  const s = {};

  before(async () => {
    try {
      prerequisites("prior-authorization browser suite");
      tmp = mkdtempSync(join(tmpdir(), "fhirgate-prior-auth-"));
      gate = new ConfiguredFhirgate(tmp, await freePort());
      mkdirSync(gate.dataDir, { recursive: true });

      // The provider's Backend Services client: an RS384 key whose public
      // JWK is registered with `fhirgate client add`.
      const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const rsaJwk = { ...rsa.publicKey.export({ format: "jwk" }), kid: "clinic-backend-1", alg: "RS384", use: "sig" };
      const jwksFile = join(tmp, "clinic-backend-jwks.json");
      writeFileSync(jwksFile, JSON.stringify({ keys: [rsaJwk] }));
      const reg = JSON.parse(
        gate.cli(
          "client", "add",
          "--name", "Riverside Clinic PAS backend",
          "--auth", "private_key_jwt",
          "--grant", "client_credentials",
          "--scope", PAS_SCOPES,
          "--jwks-file", jwksFile,
        ),
      );
      assert.ok(reg.client_id, `no client_id in ${JSON.stringify(reg)}`);
      s.pasClient = { id: reg.client_id, key: rsa.privateKey, kid: rsaJwk.kid };

      // The CDS client (the EHR): an ES384 key, trusted by `iss` with an inline JWKS.
      const ec = generateKeyPairSync("ec", { namedCurve: "P-384" });
      const ecJwk = { ...ec.publicKey.export({ format: "jwk" }), kid: CDS_KID, alg: "ES384", use: "sig" };
      s.cdsKey = ec.privateKey;

      gate.writeConfig(
        [
          "[payer]",
          `provider_clients = ${toml({ [reg.client_id]: CLINIC })}`,
          "[crd]",
          `clients = ${toml([{ iss: CDS_ISS, jwks: { keys: [ecJwk] } }])}`,
          "[subscriptions]",
          "timeout_seconds = 3",
          "attempts = 3",
          "retry_delay_ms = 200",
          "",
        ].join("\n"),
      );
      subscriber = await startSubscriber();
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
    await new Promise((r) => (subscriber ? subscriber.server.close(r) : r()));
    if (tmp) {
      if (failed) console.log(`# kept ${tmp} (screenshots, fhirgate.log, fhirgate.toml)`);
      else rmSync(tmp, { recursive: true, force: true });
    }
  });

  /** Runs a step; on failure prints the subscriber's deliveries and the log tail. */
  async function step(body) {
    try {
      await body();
    } catch (e) {
      failed = true;
      console.log(
        `# subscriber received ${subscriber?.got.length ?? 0} POST(s): ` +
          `${JSON.stringify((subscriber?.got ?? []).map((n) => kindOf(n)))}\n# fhirgate log tail:\n${gate?.logTail()}`,
      );
      throw e;
    }
  }

  /** An HTTP call; `{status, headers, json, text}`. */
  async function call(method, path, { token, body, headers = {}, contentType = "application/fhir+json" } = {}) {
    const h = { accept: "application/fhir+json, application/json", ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h["content-type"] = contentType;
    const url = path.startsWith("http") ? path : `${gate.publicUrl}${path}`;
    const r = await fetch(url, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(STEP_TIMEOUT),
    });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: r.status, headers: r.headers, json, text };
  }

  /**
   * A call by the provider's backend system: its token and a stated purpose
   * of use (payment: prior authorization), without which the Texas pack
   * keeps a Texas resident's record from a Backend Services client.
   */
  function asProvider(method, path, opts = {}) {
    return call(method, path, {
      ...opts,
      token: s.pasToken,
      headers: { "x-purpose-of-use": "HPAYMT", ...(opts.headers ?? {}) },
    });
  }

  /** SMART Backend Services: `client_credentials` with an RS384 client assertion. */
  async function backendToken(scope) {
    const endpoint = `${gate.publicUrl}/auth/token`;
    const now = nowSecs();
    const assertion = jwt(
      { alg: "RS384", typ: "JWT", kid: s.pasClient.kid },
      { iss: s.pasClient.id, sub: s.pasClient.id, aud: endpoint, exp: now + 240, iat: now, jti: randomUUID() },
      s.pasClient.key,
    );
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      scope,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    });
    const r = await call("POST", "/auth/token", {
      body: form.toString(),
      contentType: "application/x-www-form-urlencoded",
    });
    assert.equal(r.status, 200, `token request: ${r.text}`);
    assert.equal(r.json.token_type?.toLowerCase(), "bearer");
    return r.json.access_token;
  }

  /** A CDS client JWT for `serviceUrl` (CDS Hooks 2.0: iss, aud, exp, iat, jti; ES384 with kid). */
  function cdsJwt(serviceUrl) {
    const now = nowSecs();
    return jwt(
      { alg: "ES384", typ: "JWT", kid: CDS_KID },
      { iss: CDS_ISS, sub: "riverside-ehr", aud: serviceUrl, exp: now + 120, iat: now, jti: randomUUID() },
      s.cdsKey,
    );
  }

  test("setup: the provider's backend gets a token and reads the member's Patient, Coverage and organizations", async () => {
    await step(async () => {
      s.pasToken = await backendToken(PAS_SCOPES);
      // dr.lee's Practitioner (the ordering clinician), as the banner prints it
      const m = gate.log().match(/dr\.lee \/ demo\s+\(clinician, (Practitioner\/[^,\s)]+)/);
      assert.ok(m, `the demo banner names dr.lee's Practitioner:\n${gate.logTail()}`);
      s.drLee = m[1];
      // Pat Jones (the banner names her Patient), the seeded member, and her active Coverage
      const pm = gate.log().match(/pat\.jones \/ demo\s+\(patient, Patient\/([^,\s)]+)\)/);
      assert.ok(pm, `the demo banner names pat.jones's Patient:\n${gate.logTail()}`);
      let r = await asProvider("GET", `/fhir/Patient/${pm[1]}`);
      assert.equal(r.status, 200, r.text);
      const pat = r.json;
      assert.ok(pat.identifier?.length >= 1 && pat.birthDate, `a member with an identifier: ${r.text}`);
      s.patient = pat;
      r = await asProvider("GET", `/fhir/Coverage?patient=${pat.id}&status=active`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.resourceType, "Bundle");
      assert.ok(r.json.entry?.length >= 1, `an active Coverage for Patient/${pat.id}: ${r.text}`);
      s.coverageSearch = r.json;
      s.coverage = r.json.entry[0].resource;
      r = await asProvider("GET", `/fhir/${CLINIC}`);
      assert.equal(r.status, 200, r.text);
      s.clinic = r.json;
      s.clinicNpi = s.clinic.identifier.find((i) => i.system === "http://hl7.org/fhir/sid/us-npi");
      assert.ok(s.clinicNpi, `the clinic has an NPI: ${r.text}`);
      r = await asProvider("GET", `/fhir/${PAYER}`);
      assert.equal(r.status, 200, r.text);
      s.payer = r.json;
    });
  });

  test("subscription: a rest-hook on the PAS topic, filtered to the clinic, gets its handshake and is active", async () => {
    await step(async () => {
      assert.ok(s.pasToken, "needs the setup step");
      const body = {
        resourceType: "Subscription",
        meta: { profile: ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription"] },
        status: "requested",
        reason: "Prior-authorization decisions for Riverside Primary Care Clinic",
        criteria: PAS_TOPIC,
        _criteria: {
          extension: [{ url: FILTER_EXT, valueString: `orgIdentifier=${s.clinicNpi.system}|${s.clinicNpi.value}` }],
        },
        channel: {
          type: "rest-hook",
          endpoint: subscriber.url,
          payload: "application/fhir+json",
          _payload: { extension: [{ url: CONTENT_EXT, valueCode: "full-resource" }] },
          header: ["Authorization: Bearer subscriber-secret"],
        },
      };
      let r = await asProvider("POST", "/fhir/Subscription", { body });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.resourceType, "Subscription");
      assert.equal(r.json.criteria, PAS_TOPIC);
      s.subscriptionId = r.json.id;
      assert.ok(s.subscriptionId);

      const hs = await eventually("the handshake", () => subscriber.got.find((n) => kindOf(n) === "handshake"));
      assert.equal(hs.path, "/pas-notifications");
      assert.equal(hs.headers.authorization, "Bearer subscriber-secret");
      assert.match(hs.headers["content-type"], /^application\/fhir\+json/);
      assert.equal(hs.body.resourceType, "Bundle");
      assert.equal(hs.body.type, "history");
      assert.equal(statusParam(hs.body, "topic").valueCanonical, PAS_TOPIC);
      assert.ok(
        statusParam(hs.body, "subscription").valueReference.reference.endsWith(`/Subscription/${s.subscriptionId}`),
        JSON.stringify(hs.body),
      );
      r = await eventually("the Subscription to be active", async () => {
        const got = await asProvider("GET", `/fhir/Subscription/${s.subscriptionId}`);
        return got.json?.status === "active" ? got : null;
      });
      assert.equal(r.status, 200, r.text);
    });
  });

  test("CRD order-sign: prior authorization and documentation are needed, with the DTR questionnaire", async () => {
    await step(async () => {
      assert.ok(s.coverage, "needs the setup step");
      let r = await call("GET", "/cds-services");
      assert.equal(r.status, 200, r.text);
      const service = r.json.services.find((x) => x.hook === "order-sign");
      assert.ok(service, `an order-sign service: ${r.text}`);
      assert.equal(service.prefetch.patient, "Patient/{{context.patientId}}");
      assert.equal(service.prefetch.coverage, "Coverage?patient={{context.patientId}}&status=active");
      const serviceUrl = `${gate.publicUrl}/cds-services/${service.id}`;

      s.order = {
        resourceType: "ServiceRequest",
        id: "sr-mri-knee-1",
        status: "draft",
        intent: "order",
        code: { coding: [{ system: CPT, code: MRI_KNEE, display: "MRI knee with contrast" }] },
        subject: { reference: `Patient/${s.patient.id}` },
        requester: { reference: s.drLee },
        reasonCode: [{ coding: [{ system: "http://hl7.org/fhir/sid/icd-10-cm", code: "M17.11" }] }],
        occurrenceDateTime: new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10),
      };
      const hook = {
        hook: "order-sign",
        hookInstance: randomUUID(),
        context: {
          userId: s.drLee,
          patientId: s.patient.id,
          draftOrders: { resourceType: "Bundle", type: "collection", entry: [{ resource: s.order }] },
        },
        prefetch: { patient: s.patient, coverage: s.coverageSearch },
      };
      const token = cdsJwt(serviceUrl);
      r = await call("POST", `/cds-services/${service.id}`, {
        body: hook,
        contentType: "application/json",
        headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      });
      assert.equal(r.status, 200, r.text);
      const action = (r.json.systemActions ?? []).find((a) => a.resource?.id === s.order.id);
      assert.ok(action, `a systemAction for the order: ${r.text}`);
      assert.equal(action.type, "update");
      const info = coverageInfo(action.resource);
      assert.equal(info.coverage.reference, `Coverage/${s.coverage.id}`);
      assert.equal(info.covered, "covered");
      assert.equal(info["pa-needed"], "auth-needed", "prior authorization needed");
      assert.equal(info["doc-needed"], "clinical", "documentation needed");
      assert.equal(info["doc-purpose"], "withpa");
      assert.equal(info.questionnaire, KNEE_QUESTIONNAIRE);
      assert.equal(info.billingCode.code, MRI_KNEE);
      assert.ok(info["coverage-assertion-id"]?.length >= 16);
      s.questionnaire = info.questionnaire;
      // a card for the clinician, with a DTR launch link naming the questionnaire
      const card = (r.json.cards ?? []).find((c) => (c.links ?? []).some((l) => l.type === "smart"));
      assert.ok(card, `a card with a DTR (smart) link: ${r.text}`);
      assert.ok(card.summary.length < 140);
      assert.equal(card.source.topic.code, "coverage-info");
      const appContext = JSON.parse(card.links.find((l) => l.type === "smart").appContext);
      assert.deepEqual(appContext.questionnaire, [KNEE_QUESTIONNAIRE]);

      // the same client JWT again is a replay: refused
      r = await call("POST", `/cds-services/${service.id}`, {
        body: { ...hook, hookInstance: randomUUID() },
        contentType: "application/json",
        headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      });
      assert.equal(r.status, 401, `a replayed CDS client JWT: ${r.text}`);
      assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
    });
  });

  test("DTR: the package is fetched and its draft QuestionnaireResponse is completed and stored", async () => {
    await step(async () => {
      assert.ok(s.questionnaire, "needs the CRD step");
      // the DTR app launched by dr.lee (clinic)
      s.dtrToken = gate.issue(
        "--client", "dtr-app",
        "--scope", "user/Questionnaire.rs user/QuestionnaireResponse.cru",
        "--user", s.drLee,
        "--role", "clinician",
        "--organization", CLINIC,
      );
      let r = await call("POST", "/fhir/Questionnaire/$questionnaire-package", {
        token: s.dtrToken,
        body: {
          resourceType: "Parameters",
          parameter: [
            { name: "coverage", resource: s.coverage },
            { name: "order", resource: { ...s.order, status: "active" } },
          ],
        },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.resourceType, "Parameters", r.text);
      const packages = r.json.parameter.filter((p) => p.name === "PackageBundle").map((p) => p.resource);
      assert.equal(packages.length, 1, r.text);
      const resources = packages[0].entry.map((e) => e.resource);
      const q = resources[0];
      assert.equal(q.resourceType, "Questionnaire");
      assert.equal(`${q.url}|${q.version}`, s.questionnaire, "the questionnaire CRD named");
      assert.ok(resources.some((x) => x.resourceType === "Library"), "its CQL Library");
      assert.ok(resources.some((x) => x.resourceType === "ValueSet"), "its ValueSet");
      const drafts = resources.filter((x) => x.resourceType === "QuestionnaireResponse");
      assert.equal(drafts.length, 1);
      const draft = drafts[0];
      assert.equal(draft.status, "in-progress");
      assert.equal(draft.questionnaire, s.questionnaire);
      assert.equal(draft.subject.reference, `Patient/${s.patient.id}`);

      // the clinician answers the form
      const qr = structuredClone(draft);
      delete qr.id;
      qr.status = "completed";
      qr.authored = new Date().toISOString();
      qr.author = { reference: s.drLee };
      qr.item = [
        { linkId: "1", text: "Patient information", item: [
          { linkId: "1.1", text: "Age (years)", answer: [{ valueInteger: ageOn(s.patient.birthDate) }] },
        ] },
        { linkId: "2", text: "Clinical indication", item: [
          { linkId: "2.1", answer: [{ valueCoding: {
            system: "http://hl7.org/fhir/sid/icd-10-cm", code: "M17.11",
            display: "Unilateral primary osteoarthritis, right knee" } }] },
          { linkId: "2.2", answer: [{ valueBoolean: true }] },
          { linkId: "2.3", answer: [{ valueInteger: 10 }] },
          { linkId: "2.4", answer: [{ valueBoolean: true }] },
          { linkId: "2.5", answer: [{ valueBoolean: true }] },
          { linkId: "2.6", answer: [{ valueString: "To assess cartilage and synovium" }] },
        ] },
      ];
      r = await call("POST", "/fhir/QuestionnaireResponse", { token: s.dtrToken, body: qr });
      assert.equal(r.status, 201, r.text);
      s.qrId = r.json?.id ?? r.headers.get("location")?.match(/QuestionnaireResponse\/([^/]+)/)?.[1];
      assert.ok(s.qrId, `the stored QuestionnaireResponse's id: ${r.text}`);
      r = await call("GET", `/fhir/QuestionnaireResponse/${s.qrId}`, { token: s.dtrToken });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.status, "completed");
      assert.equal(r.json.questionnaire, s.questionnaire);
      assert.equal(r.json.subject.reference, `Patient/${s.patient.id}`);
    });
  });

  /**
   * A PAS Request (or, with `inquiry`, Inquiry Request) Bundle for the MRI,
   * built from the seeded member; `documented`: the Claim's supportingInfo
   * names the stored QuestionnaireResponse.
   */
  function pasBundle({ inquiry = false, documented = true } = {}) {
    const base = gate.fhirBase;
    const full = (r) => `${base}/${r.resourceType}/${r.id}`;
    const patient = {
      resourceType: "Patient",
      id: s.patient.id,
      identifier: s.patient.identifier.map(plain),
      name: s.patient.name.map(({ family, given }) => ({ family, given })),
      gender: s.patient.gender,
      birthDate: s.patient.birthDate,
    };
    const requestor = {
      resourceType: "Organization",
      id: s.clinic.id,
      identifier: [plain(s.clinicNpi)],
      active: true,
      name: s.clinic.name,
    };
    const insurer = {
      resourceType: "Organization",
      id: s.payer.id,
      identifier: s.payer.identifier.map(plain),
      active: true,
      name: s.payer.name,
    };
    const coverage = {
      resourceType: "Coverage",
      id: s.coverage.id,
      status: "active",
      subscriberId: s.coverage.subscriberId,
      beneficiary: { reference: `Patient/${patient.id}` },
      relationship: s.coverage.relationship,
      payor: [{ reference: `Organization/${insurer.id}` }],
    };
    const order = { ...s.order, status: "active" };
    delete order.requester; // not an entry of the Bundle
    const claim = {
      resourceType: "Claim",
      id: "mri-knee-claim",
      identifier: [{ system: "urn:trnorg:riverside-clinic", value: CLAIM_ID }],
      status: "active",
      type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/claim-type", code: "professional" }] },
      use: "preauthorization",
      patient: { reference: `Patient/${patient.id}` },
      created: new Date().toISOString(),
      insurer: { reference: `Organization/${insurer.id}` },
      provider: { reference: `Organization/${requestor.id}` },
      priority: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/processpriority", code: "normal" }] },
      supportingInfo: [{
        sequence: 1,
        category: { coding: [{
          system: "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASSupportingInfoType",
          code: "additionalInformation" }] },
        valueReference: { reference: `QuestionnaireResponse/${s.qrId}` },
      }],
      diagnosis: [{ sequence: 1, diagnosisCodeableConcept: { coding: [{ system: "http://hl7.org/fhir/sid/icd-10-cm", code: "M17.11" }] } }],
      insurance: [{ sequence: 1, focal: true, coverage: { reference: `Coverage/${coverage.id}` } }],
      item: [{
        extension: [{
          url: "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService",
          valueReference: { reference: `ServiceRequest/${order.id}` },
        }],
        sequence: 1,
        category: { coding: [{ system: "https://codesystem.x12.org/005010/1365", code: "3" }] },
        productOrService: { coding: [{ system: CPT, code: MRI_KNEE }] },
        quantity: { value: 1 },
      }],
    };
    if (!documented) delete claim.supportingInfo;
    if (inquiry) {
      claim.meta = { profile: ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim-inquiry"] };
    }
    return {
      resourceType: "Bundle",
      identifier: { system: "urn:trnorg:riverside-clinic:tx", value: `${inquiry ? "iq" : "tx"}-${CLAIM_ID}` },
      type: "collection",
      timestamp: new Date().toISOString(),
      entry: [claim, patient, requestor, insurer, coverage, order].map((r) => ({ fullUrl: full(r), resource: r })),
    };
  }

  test("PAS $submit with the stored documentation is pended for review and the subscriber is notified", async () => {
    await step(async () => {
      assert.ok(s.qrId && s.subscriptionId, "needs the DTR and subscription steps");
      // before: nothing decided, nothing pending
      const auditor = gate.issue("--client", "pa-metrics-auditor", "--scope", "system/AuditEvent.rs");
      s.auditorToken = auditor;
      let r = await call("GET", "/admin/api/prior-auth/metrics", { token: auditor, headers: { accept: "application/json" } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.standard.decided, 0, r.text);
      assert.equal(r.json.standard.pending, 0, r.text);

      r = await asProvider("POST", "/fhir/Claim/$submit", { body: pasBundle() });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.resourceType, "Bundle", r.text);
      const cr = r.json.entry[0].resource;
      assert.equal(cr.resourceType, "ClaimResponse", r.text);
      assert.equal(cr.outcome, "queued", r.text);
      assert.equal(reviewAction(cr), "A4", "pended");
      assert.equal(cr.request?.identifier?.value, CLAIM_ID);
      const asking = (cr.processNote ?? []).filter((n) => (n.text ?? "").includes("imaging-knee"));
      assert.deepEqual(asking, [], "the stored QuestionnaireResponse documents the item: it no longer asks for it");
      assert.equal(cr.preAuthRef, undefined, "nothing certified yet");
      s.crId = cr.id;
      s.memberId = `${s.patient.identifier[0].system}|${s.patient.identifier[0].value}`;

      // pended: an event notification for this ClaimResponse
      const ev = await eventually("the event notification of the pend", () =>
        subscriber.got.find((n) => kindOf(n) === "event-notification"),
      );
      assert.equal(ev.body.type, "history");
      assert.ok(
        eventPart(ev.body, "focus").valueReference?.reference?.endsWith(`/ClaimResponse/${s.crId}`),
        JSON.stringify(ev.body),
      );
      assert.equal(ev.body.entry[1]?.resource?.resourceType, "ClaimResponse");
      assert.equal(reviewAction(ev.body.entry[1].resource), "A4");

      r = await call("GET", "/admin/api/prior-auth/metrics", { token: auditor, headers: { accept: "application/json" } });
      assert.equal(r.json.standard.pending, 1, r.text);
      assert.equal(r.json.standard.decided, 0, r.text);
    });
  });

  test("review: the admin approves the item in the queue in Chromium and the page says so", async () => {
    await step(async () => {
      assert.ok(s.crId, "needs the PAS step");
      const context = await browser.newContext();
      context.setDefaultTimeout(STEP_TIMEOUT);
      const page = await context.newPage();
      const consoleLines = [];
      page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
      page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`));
      try {
        await page.goto(`${gate.publicUrl}/admin/prior-auth`);
        await page.waitForURL((u) => u.pathname === "/login");
        await page.getByLabel("Username").fill("admin");
        await page.getByLabel("Password").fill("demo");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.waitForURL((u) => u.pathname === "/admin/prior-auth");
        await page.getByRole("heading", { name: "Prior-authorization review queue", level: 1 }).waitFor();

        const request = page.getByRole("region", { name: `Request ${s.crId}` });
        await request.waitFor();
        await request.getByText(s.memberId, { exact: true }).waitFor();
        await request.getByText(CLINIC, { exact: true }).waitFor();
        await request.getByText("standard", { exact: true }).waitFor();
        const item = request.getByRole("row").filter({ hasText: `${CPT}|${MRI_KNEE}` });
        assert.equal(await item.count(), 1, "one row for the MRI item");
        await item.getByRole("button", { name: "Approve" }).click();

        await page
          .getByRole("status")
          .getByText(`Request ${s.crId} item 1: approve recorded; the request is now approved.`)
          .waitFor();
        assert.equal(await page.getByRole("region", { name: `Request ${s.crId}` }).count(), 0, "no longer in the queue");
        if (process.env.BROWSER_SCREENSHOTS) {
          await page.screenshot({ path: join(process.env.BROWSER_SCREENSHOTS, "prior-auth-approved.png"), fullPage: true });
        }
      } catch (e) {
        const shot = join(tmp, "review.png");
        await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
        let text = "";
        try {
          text = (await page.locator("body").innerText({ timeout: 2000 })).slice(0, 3000);
        } catch {
          // page gone
        }
        console.log(
          `# review failed at ${page.url()}\n# screenshot: ${shot}\n# page text:\n${text}\n` +
            `# browser console:\n${consoleLines.slice(-30).join("\n")}`,
        );
        throw e;
      } finally {
        await context.close().catch(() => {});
      }
    });
  });

  test("after the decision: the subscriber is notified, $inquire answers the approval, the metrics count it", async () => {
    await step(async () => {
      assert.ok(s.crId, "needs the PAS step");
      const decided = await eventually("the event notification of the approval", () =>
        subscriber.got.find(
          (n) =>
            kindOf(n) === "event-notification" &&
            n.body.entry?.[1]?.resource?.outcome === "complete",
        ),
      );
      assert.ok(
        eventPart(decided.body, "focus").valueReference?.reference?.endsWith(`/ClaimResponse/${s.crId}`),
        JSON.stringify(decided.body),
      );
      assert.equal(eventPart(decided.body, "event-number").valueString, "2");
      assert.equal(statusParam(decided.body, "status").valueCode, "active");
      const notified = decided.body.entry[1].resource;
      assert.equal(notified.id, s.crId);
      assert.equal(reviewAction(notified), "A1", "certified");
      assert.deepEqual(
        subscriber.got.map(kindOf),
        ["handshake", "event-notification", "event-notification"],
        "one handshake and one notification per change",
      );

      // an inquiry as the PAS IG's examples make it: the same Claim,
      // member and requestor identifiers, no supportingInfo
      let r = await asProvider("POST", "/fhir/Claim/$inquire", { body: pasBundle({ inquiry: true, documented: false }) });
      assert.equal(r.status, 200, r.text);
      const cr = r.json.entry[0].resource;
      assert.equal(cr.resourceType, "ClaimResponse", r.text);
      assert.equal(cr.id, s.crId);
      assert.equal(cr.outcome, "complete");
      assert.equal(reviewAction(cr), "A1");
      assert.equal(typeof cr.preAuthRef, "string", `an authorization number: ${r.text}`);
      assert.ok(cr.preAuthRef.length > 0);
      assert.ok(cr.preAuthPeriod?.start && cr.preAuthPeriod?.end, `an authorization period: ${r.text}`);

      // the metrics: refused to the provider's client, counted for the auditor
      r = await asProvider("GET", "/admin/api/prior-auth/metrics", { headers: { accept: "application/json" } });
      assert.equal(r.status, 403, r.text);
      r = await call("GET", "/admin/api/prior-auth/metrics", { token: s.auditorToken, headers: { accept: "application/json" } });
      assert.equal(r.status, 200, r.text);
      const st = r.json.standard;
      assert.equal(st.decided, 1, r.text);
      assert.equal(st.approved, 1, r.text);
      assert.equal(st.denied, 0, r.text);
      assert.equal(st.approved_pct, 100, r.text);
      assert.equal(st.pending, 0, r.text);
      assert.equal(typeof st.avg_hours, "number", r.text);
      assert.ok(st.avg_hours < 1, r.text);
      assert.equal(r.json.expedited.decided, 0, r.text);
    });
  });

  // `$inquire` resolves a `Claim.supportingInfo.valueReference` to a
  // QuestionnaireResponse stored on this server as `$submit` does, so the
  // very Bundle `$submit` accepted can be resent as an inquiry.
  test(
    "$inquire accepts the submitted Bundle's reference to the stored QuestionnaireResponse",
    async () => {
      assert.ok(s.crId, "needs the PAS step");
      const r = await asProvider("POST", "/fhir/Claim/$inquire", { body: pasBundle({ inquiry: true, documented: true }) });
      assert.equal(r.status, 200, r.text);
      const cr = r.json.entry[0].resource;
      assert.equal(cr.id, s.crId);
      assert.equal(reviewAction(cr), "A1");
    },
  );
});
