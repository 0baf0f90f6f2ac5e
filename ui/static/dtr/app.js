// fhirgate's DTR SMART app (Da Vinci DTR 2.0.1), the page at /dtr/app: a
// small SMART App Launch 2.2 client without a framework. /dtr/launch left
// `state`, the PKCE verifier, `iss` and the redirect URI in a cookie; they
// move to sessionStorage here, the code is exchanged at the token endpoint,
// and the documentation the payer needs is fetched with
// `Questionnaire/$questionnaire-package`, shown as a form, and stored as a
// `completed` QuestionnaireResponse about the patient.
//
// Context, in order: the token response's `appContext` (a CRD card's:
// `coverage`, `order`, `questionnaire`), its `fhirContext` references
// (orders, Coverage), else the patient's active Coverage and active or
// draft ServiceRequests (DTR "launch outside of CRD").
"use strict";

(() => {
  const COOKIE = "fhirgate_dtr_launch";
  const KEY = "fhirgate-dtr";
  const ORDER_TYPES = ["ServiceRequest", "DeviceRequest", "MedicationRequest", "NutritionOrder",
    "VisionPrescription", "SupplyRequest", "CommunicationRequest", "Appointment", "Encounter"];
  const ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive";
  const $ = (id) => document.getElementById(id);
  let S = null; // { state, verifier, iss, redirect_uri, client_id, token }

  const progress = (t) => { $("progress").textContent = t; };
  function fail(e) {
    const box = $("error");
    box.textContent = e instanceof Error ? e.message : String(e);
    box.hidden = false;
    progress("The documentation app stopped.");
  }

  /** Creates an element with attributes and children (text or nodes). */
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function takeLaunchCookie() {
    const c = document.cookie.split("; ").find((x) => x.startsWith(COOKIE + "="));
    if (!c) return null;
    document.cookie = `${COOKIE}=; Path=/dtr; Max-Age=0; SameSite=Lax`;
    try {
      const b64 = c.slice(COOKIE.length + 1).replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    } catch {
      return null;
    }
  }
  const save = () => sessionStorage.setItem(KEY, JSON.stringify(S));

  async function http(method, url, { body, headers = {} } = {}) {
    const r = await fetch(url, { method, headers, body });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: r.status, ok: r.ok, json, text, location: r.headers.get("location") };
  }

  function problem(r) {
    const j = r.json;
    if (j && j.resourceType === "OperationOutcome") {
      return (j.issue || []).map((i) => i.diagnostics || (i.details && i.details.text) || i.code).join("; ");
    }
    if (j && (j.error_description || j.error)) return j.error_description || j.error;
    return r.text.slice(0, 300) || `HTTP ${r.status}`;
  }

  /** A FHIR interaction with the access token; `path` relative to iss. */
  async function fhir(method, path, resource) {
    const headers = { authorization: `Bearer ${S.token.access_token}`, accept: "application/fhir+json" };
    if (resource) headers["content-type"] = "application/fhir+json";
    const r = await http(method, `${S.iss}/${path}`, { headers, body: resource && JSON.stringify(resource) });
    if (!r.ok) throw new Error(`The FHIR server refused ${method} ${path.split("?")[0]} (${r.status}): ${problem(r)}`);
    return r;
  }
  const read = async (ref) => (await fhir("GET", relative(ref))).json;
  const relative = (ref) => (ref.startsWith(S.iss + "/") ? ref.slice(S.iss.length + 1) : ref);
  const entries = (bundle, type) => (bundle.entry || []).map((e) => e.resource).filter((r) => r && r.resourceType === type);
  const list = (v) => (v == null ? [] : Array.isArray(v) ? v : [v]);

  async function authorize() {
    const params = new URLSearchParams(location.search);
    const launched = takeLaunchCookie();
    S = launched || JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (params.get("error")) {
      throw new Error(`The authorization was not given: ${params.get("error_description") || params.get("error")}.`);
    }
    if (params.get("code")) {
      if (!S || !S.verifier || params.get("state") !== S.state) {
        throw new Error("This sign-in answer does not belong to a launch started in this browser tab (state mismatch). Launch the app again.");
      }
      progress("Signing in…");
      const conf = await http("GET", `${S.iss}/.well-known/smart-configuration`, { headers: { accept: "application/json" } });
      if (!conf.ok || !conf.json.token_endpoint) throw new Error(`The server's SMART configuration could not be read: ${problem(conf)}`);
      const body = new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"),
        redirect_uri: S.redirect_uri, client_id: S.client_id, code_verifier: S.verifier });
      const t = await http("POST", conf.json.token_endpoint, { body,
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" } });
      if (!t.ok || !t.json.access_token) throw new Error(`The token request failed: ${problem(t)}`);
      S.token = t.json;
      delete S.verifier;
      save();
      history.replaceState(null, "", location.pathname);
    } else if (!S || !S.token) {
      throw new Error("This app was opened without a launch. Open it from the EHR launcher (or a CRD card's link) for a patient.");
    }
  }

  function context() {
    const t = S.token;
    let app = t.appContext || {};
    if (typeof app === "string") {
      try { app = JSON.parse(app); } catch { app = Object.fromEntries(new URLSearchParams(app)); }
    }
    const refs = list(t.fhirContext).map((c) => c.reference).filter(Boolean);
    const typeOf = (r) => relative(r).split("/")[0];
    return {
      coverages: [...list(app.coverage), ...refs.filter((r) => typeOf(r) === "Coverage")],
      orders: [...list(app.order), ...refs.filter((r) => ORDER_TYPES.includes(typeOf(r)))],
      questionnaires: list(app.questionnaire),
    };
  }

  function author() {
    try {
      const claims = JSON.parse(atob(S.token.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return claims.fhirUser ? relative(claims.fhirUser) : null;
    } catch {
      return null;
    }
  }

  async function run() {
    await authorize();
    const patientId = S.token.patient;
    if (!patientId) throw new Error("The launch named no patient, so there is nothing to document.");
    progress("Reading the patient, coverage and orders…");
    const patient = await read(`Patient/${encodeURIComponent(patientId)}`);
    const n = (patient.name || [])[0] || {};
    const name = n.text || [...(n.given || []), n.family].filter(Boolean).join(" ") || `Patient ${patientId}`;
    const p = $("patient");
    p.textContent = `Patient: ${name}${patient.birthDate ? `, born ${patient.birthDate}` : ""}`;
    p.hidden = false;
    const ctx = context();
    let coverages = await Promise.all(ctx.coverages.map(read));
    if (!coverages.length) {
      coverages = entries((await fhir("GET", `Coverage?patient=${encodeURIComponent(patientId)}&status=active`)).json, "Coverage");
    }
    if (!coverages.length) throw new Error("No active coverage was found for this patient, so the payer cannot say what documentation it needs.");
    let orders = await Promise.all(ctx.orders.map(read));
    if (!orders.length && !ctx.questionnaires.length) {
      const b = (await fhir("GET", `ServiceRequest?patient=${encodeURIComponent(patientId)}&status=active,draft`)).json;
      orders = entries(b, "ServiceRequest");
    }
    if (!orders.length && !ctx.questionnaires.length) {
      throw new Error("Nothing to document: the launch named no order or form, and this patient has no active or draft service orders.");
    }
    progress("Asking the payer which documentation it needs…");
    const parameter = [
      ...coverages.map((c) => ({ name: "coverage", resource: c })),
      ...orders.map((o) => ({ name: "order", resource: o })),
      ...ctx.questionnaires.map((q) => ({ name: "questionnaire", valueCanonical: q })),
    ];
    const out = (await fhir("POST", "Questionnaire/$questionnaire-package", { resourceType: "Parameters", parameter })).json;
    const packages = (out.parameter || []).filter((x) => x.name === "PackageBundle").map((x) => x.resource);
    if (!packages.length) throw new Error("The payer needs no documentation for these orders.");
    packages.forEach((b, i) => renderPackage(b, i, patientId));
    progress(packages.length === 1 ? "Complete the form and press Save." : `Complete the ${packages.length} forms; save each one.`);
  }

  function renderPackage(bundle, n, patientId) {
    const res = (bundle.entry || []).map((e) => e.resource).filter(Boolean);
    const q = res.find((r) => r.resourceType === "Questionnaire");
    if (!q) return;
    const draft = res.find((r) => r.resourceType === "QuestionnaireResponse") || {};
    const sets = {};
    for (const vs of res.filter((r) => r.resourceType === "ValueSet")) {
      const codes = ((vs.expansion && vs.expansion.contains) || []).map((c) => ({ system: c.system, code: c.code, display: c.display }));
      sets[vs.url] = codes;
      if (vs.version) sets[`${vs.url}|${vs.version}`] = codes;
    }
    const prefill = {};
    (function walk(items) {
      for (const it of items || []) { if (it.answer) prefill[it.linkId] = it.answer; walk(it.item); }
    })(draft.item);
    const title = q.title || q.name || "Documentation";
    const form = el("form", { class: "card", novalidate: true, "aria-labelledby": `f${n}-title` },
      el("h2", { id: `f${n}-title` }, title),
      el("p", { class: "muted" }, "Questions marked * are required."));
    const errors = el("div", { class: "error", role: "alert", hidden: true });
    form.append(errors);
    if (list(q.extension).some((x) => x.url === ADAPTIVE)) {
      form.append(el("p", {}, "This is an adaptive form; this app cannot fill adaptive forms yet."));
      $("forms").append(form);
      return;
    }
    const controls = [];
    renderItems(q.item, form, { n, sets, prefill, controls });
    form.append(el("div", { class: "buttons" }, el("button", { type: "submit" }, "Save")));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit({ form, errors, q, draft, controls, patientId }).catch((e) => {
        errors.textContent = e.message;
        errors.hidden = false;
      });
    });
    $("forms").append(form);
  }

  function renderItems(items, parent, opts) {
    for (const item of items || []) {
      const id = `f${opts.n}-${String(item.linkId).replace(/[^A-Za-z0-9_-]/g, "_")}`;
      if (item.type === "group") {
        const fs = el("fieldset", { class: "card" }, el("legend", {}, item.text || ""));
        parent.append(fs);
        renderItems(item.item, fs, opts);
        continue;
      }
      if (item.type === "display") { parent.append(el("p", {}, item.text || "")); continue; }
      const answered = opts.prefill[item.linkId];
      const locked = Boolean(item.readOnly && answered);
      const mark = item.required ? [el("span", { "aria-hidden": "true" }, " *"), el("span", { class: "sr-only" }, " (required)")] : [];
      const hint = item.readOnly && !answered ? el("span", { class: "muted" }, " (not filled in automatically; please enter it)") : null;
      const ctl = { item, id, kind: item.type };
      const first = answered && answered[0];
      if (item.type === "boolean") {
        const fs = el("fieldset", { class: "narrow", "aria-required": item.required ? "true" : false }, el("legend", {}, item.text || item.linkId, ...mark, hint));
        for (const [label, v] of [["Yes", true], ["No", false]]) {
          fs.append(el("div", {}, el("input", { type: "radio", name: id, id: `${id}-${label}`, value: String(v),
            checked: first && first.valueBoolean === v, disabled: locked }), el("label", { for: `${id}-${label}` }, label)));
        }
        ctl.group = fs;
        parent.append(fs);
      } else {
        let input;
        if (item.type === "choice" || item.type === "open-choice") {
          ctl.options = item.answerValueSet ? opts.sets[item.answerValueSet] || [] : list(item.answerOption).map((o) =>
            o.valueCoding || (o.valueString != null ? { display: o.valueString, string: o.valueString } : { display: String(o.valueInteger), integer: o.valueInteger }));
          const picked = first && first.valueCoding ? ctl.options.findIndex((o) => o.code === first.valueCoding.code && o.system === first.valueCoding.system) : -1;
          input = el("select", { id, disabled: locked }, el("option", { value: "" }, "Choose…"),
            ...ctl.options.map((o, i) => el("option", { value: String(i), selected: i === picked }, o.display || o.code)));
        } else if (item.type === "text") {
          input = el("textarea", { id, rows: "3", readonly: locked }, first ? first.valueString || "" : "");
        } else {
          // Numbers as text with a numeric keyboard (checked on Save), dates with the date picker.
          const type = { date: "date", dateTime: "datetime-local" }[item.type] || "text";
          const inputmode = { integer: "numeric", decimal: "decimal" }[item.type];
          const v = first && (first.valueInteger ?? first.valueDecimal ?? first.valueDate ?? first.valueDateTime ?? first.valueString);
          input = el("input", { id, type, inputmode, value: v != null ? String(v) : null, readonly: locked });
        }
        if (item.required) input.setAttribute("aria-required", "true");
        ctl.input = input;
        parent.append(el("p", {}, el("label", { for: id }, item.text || item.linkId, ...mark, hint), el("br"), input));
      }
      opts.controls.push(ctl);
    }
  }

  /** The answer of one control, or null when unanswered; throws on a malformed value. */
  function answerOf(c) {
    if (c.kind === "boolean") {
      const r = c.group.querySelector("input:checked");
      return r ? { valueBoolean: r.value === "true" } : null;
    }
    const v = c.input.value.trim();
    if (v === "") return null;
    const label = c.item.text || c.item.linkId;
    switch (c.kind) {
      case "choice": case "open-choice": {
        const o = c.options[Number(v)];
        if (o.string != null) return { valueString: o.string };
        if (o.integer != null) return { valueInteger: o.integer };
        return { valueCoding: { system: o.system, code: o.code, display: o.display } };
      }
      case "integer":
        if (!/^-?\d+$/.test(v)) throw new Error(`“${label}” needs a whole number.`);
        return { valueInteger: Number(v) };
      case "decimal":
        if (Number.isNaN(Number(v))) throw new Error(`“${label}” needs a number.`);
        return { valueDecimal: Number(v) };
      case "date": return { valueDate: v };
      case "dateTime": return { valueDateTime: new Date(v).toISOString() };
      default: return { valueString: v };
    }
  }

  /** QuestionnaireResponse items for `items`, answered from the controls. */
  function responseItems(items, byLink) {
    const out = [];
    for (const item of items || []) {
      if (item.type === "group") {
        const inner = responseItems(item.item, byLink);
        if (inner.length) out.push({ linkId: item.linkId, text: item.text, item: inner });
      } else if (byLink[item.linkId]) {
        out.push({ linkId: item.linkId, text: item.text, answer: [byLink[item.linkId]] });
      }
    }
    return out;
  }

  async function submit({ form, errors, q, draft, controls, patientId }) {
    errors.hidden = true;
    const byLink = {};
    const missing = [];
    for (const c of controls) {
      const a = answerOf(c);
      if (a) byLink[c.item.linkId] = a;
      else if (c.item.required) missing.push(c.item.text || c.item.linkId);
    }
    if (missing.length) throw new Error(`Please answer the required questions: ${missing.join("; ")}.`);
    const qr = {
      resourceType: "QuestionnaireResponse",
      questionnaire: draft.questionnaire || (q.version ? `${q.url}|${q.version}` : q.url),
      status: "completed",
      subject: { reference: `Patient/${patientId}` },
      authored: new Date().toISOString(),
      item: responseItems(q.item, byLink),
    };
    if (draft.meta) qr.meta = { profile: draft.meta.profile };
    if (draft.extension) qr.extension = draft.extension;
    const who = author();
    if (who) qr.author = { reference: who };
    form.querySelector("button[type=submit]").disabled = true;
    progress("Saving…");
    let r;
    try {
      r = await fhir("POST", "QuestionnaireResponse", qr);
    } finally {
      form.querySelector("button[type=submit]").disabled = false;
    }
    const id = (r.json && r.json.id) || ((r.location || "").match(/QuestionnaireResponse\/([^/]+)/) || [])[1];
    for (const e of form.elements) e.disabled = true;
    const done = $("saved");
    done.replaceChildren(
      el("p", {}, "Saved. The documentation is stored as ", el("strong", { id: "saved-id" }, `QuestionnaireResponse/${id}`), "."),
      el("p", {}, "It can be attached to the prior-authorization request: reference it from the Claim's supporting information when you submit."));
    done.hidden = false;
    progress(`Saved “${q.title || q.name || "the form"}”.`);
    done.focus();
  }

  document.addEventListener("DOMContentLoaded", () => run().catch(fail));
})();
