//! The patient consent portal (issue 4 item 7), for signed-in users with
//! the `patient` role whose `fhir_user` is a `Patient/<id>`:
//!
//! - `GET /portal`: the patient's privacy-scope Consents (from the decision
//!   index, `consent::index::ConsentIndex::list`) in plain words
//!   ([`words`]) with their status and a `Revoke` button each; the grant
//!   form; "Who looked at your record" from the audit ledger
//!   (`audit::read::history_for_patient`, [`history`]). Not signed in: to
//!   `/login?next=/portal`; signed in but not a patient: the readable 403.
//! - `POST /portal/consents`: the grant form ([`build`]): deny, or allow
//!   only, by app (a registered OAuth client, actor `Device/<client_id>`), by
//!   organization or practitioner (picked from a short list read from the
//!   upstream, or typed as `Organization/x` / `Practitioner/y`, which must
//!   exist), by sensitive category, by purpose, with an optional end date.
//! - `POST /portal/consents/{id}/revoke`: the Consent is read and updated
//!   with `status` `inactive` (`If-Match` its version).
//! - `POST /portal/research`: the research choice ([`research`]): whether
//!   the patient's data enters de-identified exports.
//!
//! Every write and the read before a revoke go through the FHIR pipeline
//! as the patient (`pipeline::handle_as` with the [`caller`] context:
//! client [`PORTAL_CLIENT`], scope [`PORTAL_SCOPE`], the patient's id,
//! fhirUser and role, a jti derived from the session), so scopes, the
//! consent stage, the decision index update and the ledger's FHIR event all
//! apply as for any app; the UI route's own audit event carries a
//! `RouteNote` saying who did what about whom. Every form carries the
//! session's CSRF token. After a grant or revoke the browser is sent back
//! to `/portal?saved=<id>` / `?revoked=<id>`, where the page says in words
//! what was done and what the choice means.

use std::collections::{BTreeSet, HashMap};

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::Value;
use smart_launch::{context::AccessContext, scope::ScopeSet};

pub(crate) use super::{
    page, patients, request_id, see_other, session, session::SignedIn, Fields, UiError,
};
use crate::{
    audit::{self, RouteNote},
    consent::{index::patient_key, BasePolicy},
    error::FhirResult,
    fhir::{is_valid_id, FhirRequest, FhirResponse, Interaction, Reference},
    pipeline::{self, Disclosure},
    state::oauth::ClientRecord,
    AppState,
};

pub mod build;
pub mod history;
pub mod receipt;
pub mod research;
pub mod vocab;
pub mod words;

use build::{Entered, Party};
use words::Names;

/// The OAuth client id the portal acts as in the pipeline and the ledger.
pub const PORTAL_CLIENT: &str = "fhirgate-portal";
/// The scopes the portal acts with.
pub const PORTAL_SCOPE: &str = "patient/Consent.cruds";
/// Where the portal lives.
const PATH: &str = "/portal";
/// Organizations and practitioners offered in each list.
const PARTY_COUNT: &str = "20";
/// Access history rows shown.
const HISTORY_ROWS: usize = 50;
/// Name look-ups per page (people and organizations not otherwise known).
const MAX_NAME_LOOKUPS: usize = 25;

/// The signed-in user's own Patient id, or the readable 403.
fn require_patient(signed: &SignedIn) -> Result<String, UiError> {
    signed.own_patient().ok_or_else(|| {
        UiError::Forbidden(
            "The privacy portal is for patients: it shows a patient their own consents and who \
             looked at their record. This account is not linked to a patient record. Sign in \
             with a patient account to use it."
                .into(),
        )
    })
}

/// The pipeline caller for the patient (see the module docs).
pub fn caller(signed: &SignedIn, patient_id: &str) -> Result<AccessContext, UiError> {
    let scopes = ScopeSet::parse(PORTAL_SCOPE).map_err(|e| UiError::internal(e.reason))?;
    Ok(AccessContext {
        client_id: PORTAL_CLIENT.to_owned(),
        scopes,
        patient: Some(patient_id.to_owned()),
        encounter: None,
        fhir_user: Some(signed.user.fhir_user.clone()),
        role: Some("patient".to_owned()),
        jti: format!("portal-{}", session_jti(signed)),
        expires_at: crate::oauth::now() + 300,
        purpose_of_use: None,
        organization: None,
        assurance: Default::default(),
    })
}

/// A stable token id per session that reveals nothing about it: 24 hex of
/// SHA-256 over the session's stored hash with a fixed prefix.
fn session_jti(signed: &SignedIn) -> String {
    let h = ui::secrets::sha256_hex(&format!("fhirgate-portal-jti:{}", signed.id_hash()));
    h.get(..24).unwrap_or_default().to_owned()
}

/// Runs `req` through the FHIR pipeline as the patient and appends its
/// FHIR audit event to the ledger (as the `/fhir` handler does). The outer
/// error is the page failing (the ledger could not write: fail closed).
async fn as_patient(
    app: &AppState,
    signed: &SignedIn,
    patient_id: &str,
    rid: &str,
    req: FhirRequest,
) -> Result<(FhirResult<FhirResponse>, Option<u64>), UiError> {
    let who = caller(signed, patient_id)?;
    let facts = audit::FhirFacts::of(&req);
    let method = match req.interaction {
        Interaction::Create => "POST",
        Interaction::Update | Interaction::ConditionalUpdate => "PUT",
        Interaction::Delete | Interaction::ConditionalDelete => "DELETE",
        _ => "GET",
    };
    let path = match (&req.resource_type, &req.id) {
        (Some(t), Some(id)) => format!("/fhir/{t}/{id}"),
        (Some(t), None) => format!("/fhir/{t}"),
        _ => "/fhir".to_owned(),
    };
    let http = audit::HttpFacts {
        method: method.to_owned(),
        path,
        query: None,
        client_addr: None,
        recorded: audit::auditor::now_ms(),
    };
    let mut disclosure = Disclosure::of(&who);
    let result = pipeline::handle_as(app, req, &who, rid, &mut disclosure).await;
    let status = match &result {
        Ok(r) => r.status.as_u16(),
        Err(e) => e.status.as_u16(),
    };
    let recorded = app
        .audit
        .record_fhir(rid, &http, Some(&facts), &disclosure, status)
        .await
        .map_err(UiError::internal)?;
    Ok((result, recorded.seqs.last().copied()))
}

/// Issues the receipt of a consent change recorded as ledger entry `seq`;
/// the `&receipt=<id>` to add to the redirect (empty when the ledger is
/// off and nothing was recorded).
async fn issue_receipt(
    app: &AppState,
    signed: &SignedIn,
    action: &str,
    patient: &str,
    id: &str,
    version: Option<&str>,
    seq: Option<u64>,
) -> Result<String, UiError> {
    let Some(seq) = seq else {
        return Ok(String::new());
    };
    let consent = match version {
        Some(v) => format!("Consent/{id}/_history/{v}"),
        None => format!("Consent/{id}"),
    };
    let rid = receipt::issue(
        app,
        receipt::Issue {
            action,
            patient,
            consent: &consent,
            seq,
            // a store failure here only leaves the factor out of the receipt
            step_up: super::mfa::fresh_step_up(app, signed).await.ok().flatten(),
        },
    )
    .await?;
    Ok(format!("&receipt={rid}"))
}

/// The update that sets Consent `id` (read as `current`) `inactive`,
/// `If-Match` its version.
fn inactivate(id: &str, current: &Value) -> FhirRequest {
    let mut ended = current.clone();
    ended["status"] = Value::from("inactive");
    let mut update = FhirRequest::new(Interaction::Update);
    update.resource_type = Some("Consent".into());
    update.id = Some(id.to_owned());
    update.if_match = current["meta"]["versionId"]
        .as_str()
        .map(|v| format!("W/\"{v}\""));
    update.body = Some(ended);
    update
}

/// The id of the Consent a create answered (its `Location`, else its body).
fn created_id(app: &AppState, resp: &FhirResponse) -> Result<String, UiError> {
    let base = app.config.fhir_base();
    resp.location
        .as_deref()
        .and_then(|l| Reference::parse(l, Some(&base)))
        .map(|r| r.id)
        .or_else(|| {
            resp.body
                .as_ref()
                .and_then(|b| b["id"].as_str().map(str::to_owned))
        })
        .filter(|id| is_valid_id(id))
        .ok_or_else(|| UiError::internal("the Consent create answered no id"))
}

/// The route's audit note: the patient, acting on their own record.
fn note(signed: &SignedIn, patient_id: &str, what: String) -> RouteNote {
    RouteNote {
        client_id: Some(PORTAL_CLIENT.to_owned()),
        user: Some(signed.user.fhir_user.clone()),
        role: Some(signed.user.role.clone()),
        patient: Some(format!("Patient/{patient_id}")),
        what: Some(what),
    }
}

/// A response with the route's audit note attached.
fn noted(mut res: Response, n: RouteNote) -> Response {
    res.extensions_mut().insert(n);
    res
}

/// `GET /portal[?saved=<id>|revoked=<id>|unchanged=<id>]`.
pub async fn portal_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let patient_id = require_patient(&signed)?;
    if let Err(page) = super::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let notice = [
        (Done::Saved, "saved"),
        (Done::Revoked, "revoked"),
        (Done::Unchanged, "unchanged"),
        (Done::Research, "research"),
    ]
    .into_iter()
    .find_map(|(d, k)| {
        q.get(k)
            .filter(|id| is_valid_id(id))
            .map(|id| (d, id.to_owned()))
    });
    let view = View {
        app: &app,
        signed: &signed,
        patient_id: &patient_id,
        rid: request_id(&headers),
        receipt: match q.get("receipt") {
            Some(r) => receipt::load(&app, r, &format!("Patient/{patient_id}"))
                .await?
                .map(|b| receipt_view(&b)),
            None => None,
        },
    };
    let res = view
        .render(StatusCode::OK, &Entered::default(), None, notice)
        .await?;
    Ok(noted(
        res,
        note(&signed, &patient_id, "consent portal viewed".into()),
    ))
}

/// `POST /portal/consents`: records a new Consent from the grant form.
pub async fn grant_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    if let Err(to_stepup) = super::mfa::require_stepup(&app, &signed, PATH).await? {
        return Ok(to_stepup);
    }
    let patient_id = require_patient(&signed)?;
    if let Err(page) = super::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let view = View {
        app: &app,
        signed: &signed,
        patient_id: &patient_id,
        rid: request_id(&headers),
        receipt: None,
    };
    let entered = Entered::parse(&f);
    let choices = view.choices().await?;
    let today = today();
    let grant = match view
        .parties(&entered, &choices)
        .await
        .and_then(|parties| entered.check(parties, &today))
    {
        Ok(g) => g,
        Err(why) => {
            return view
                .render(StatusCode::BAD_REQUEST, &entered, Some(why), None)
                .await
        }
    };
    let opt_in = app.consent.policy.base == BasePolicy::OptIn;
    let patient_ref = format!("Patient/{patient_id}");
    let consent = build::consent(&patient_ref, &grant, &crate::fhir::now_instant(), opt_in);
    let mut req = FhirRequest::new(Interaction::Create);
    req.resource_type = Some("Consent".into());
    req.body = Some(consent);
    let (result, seq) = as_patient(&app, &signed, &patient_id, &view.rid, req).await?;
    match result {
        Ok(resp) => {
            let id = created_id(&app, &resp)?;
            tracing::info!(consent = %id, patient = %patient_ref, "consent granted in the portal");
            let version = resp
                .body
                .as_ref()
                .and_then(|b| b["meta"]["versionId"].as_str());
            let rec =
                issue_receipt(&app, &signed, "granted", &patient_ref, &id, version, seq).await?;
            let res = see_other(&format!("{PATH}?saved={id}{rec}"))?;
            Ok(noted(
                res,
                note(
                    &signed,
                    &patient_id,
                    format!("consent granted Consent/{id}"),
                ),
            ))
        }
        Err(e) if e.status.is_server_error() => Err(UiError::internal(e)),
        Err(e) => {
            let why = format!("Your choice could not be saved: {}", e.message);
            view.render(StatusCode::BAD_REQUEST, &entered, Some(why), None)
                .await
        }
    }
}

/// `POST /portal/consents/{id}/revoke`: sets the Consent's status to `inactive`.
pub async fn revoke_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    if let Err(to_stepup) = super::mfa::require_stepup(&app, &signed, PATH).await? {
        return Ok(to_stepup);
    }
    let patient_id = require_patient(&signed)?;
    if let Err(page) = super::assurance::gate_page(&app, &signed, PATH).await? {
        return Ok(page);
    }
    let not_yours = || UiError::NotFound("You have no consent with that id.".into());
    if !is_valid_id(&id) {
        return Err(not_yours());
    }
    let rid = request_id(&headers);
    let mut read = FhirRequest::new(Interaction::Read);
    read.resource_type = Some("Consent".into());
    read.id = Some(id.clone());
    let current = match as_patient(&app, &signed, &patient_id, &rid, read).await?.0 {
        Ok(r) => r.body.ok_or_else(not_yours)?,
        Err(e) if e.status.is_server_error() => return Err(UiError::internal(e)),
        Err(_) => return Err(not_yours()),
    };
    let patient_ref = format!("Patient/{patient_id}");
    let owner = current["patient"]["reference"]
        .as_str()
        .and_then(patient_key);
    if owner.as_deref() != Some(patient_ref.as_str()) {
        return Err(not_yours());
    }
    if current["status"] != "active" {
        let res = see_other(&format!("{PATH}?unchanged={id}"))?;
        return Ok(noted(
            res,
            note(
                &signed,
                &patient_id,
                format!("consent already inactive Consent/{id}"),
            ),
        ));
    }
    let update = inactivate(&id, &current);
    let (result, seq) = as_patient(&app, &signed, &patient_id, &rid, update).await?;
    match result {
        Ok(resp) => {
            tracing::info!(consent = %id, patient = %patient_ref, "consent revoked in the portal");
            let version = resp
                .body
                .as_ref()
                .and_then(|b| b["meta"]["versionId"].as_str());
            let rec =
                issue_receipt(&app, &signed, "revoked", &patient_ref, &id, version, seq).await?;
            let res = see_other(&format!("{PATH}?revoked={id}{rec}"))?;
            Ok(noted(
                res,
                note(
                    &signed,
                    &patient_id,
                    format!("consent revoked Consent/{id}"),
                ),
            ))
        }
        Err(e) if matches!(e.status.as_u16(), 409 | 412) => Err(UiError::BadRequest(
            "This consent changed while you were looking at it. Go back, reload the page and \
             try again."
                .into(),
        )),
        Err(e) if e.status.is_server_error() => Err(UiError::internal(e)),
        Err(e) => Err(UiError::Forbidden(format!(
            "This consent could not be revoked: {}",
            e.message
        ))),
    }
}

/// What the last action did (the `/portal` query after a redirect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Saved,
    Revoked,
    Unchanged,
    /// The research choice (`?research=in|out`).
    Research,
}

/// The apps, organizations and practitioners the form offers.
struct Choices {
    clients: Vec<ClientRecord>,
    organizations: Vec<(String, String)>,
    practitioners: Vec<(String, String)>,
    loaded: bool,
}

/// Today, `YYYY-MM-DD` (UTC).
fn today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}

/// A person's or organization's name as the resource gives it.
fn resource_name(v: &Value) -> Option<String> {
    if let Some(n) = v["name"].as_str().filter(|n| !n.trim().is_empty()) {
        return Some(n.to_owned());
    }
    let n = v["name"].as_array()?.first()?;
    if let Some(t) = n["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(t.to_owned());
    }
    let strings = |k: &str| -> Vec<String> {
        n[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut parts = strings("prefix");
    parts.extend(strings("given"));
    parts.extend(n["family"].as_str().map(str::to_owned));
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// One page's worth of context.
struct View<'a> {
    app: &'a AppState,
    signed: &'a SignedIn,
    patient_id: &'a str,
    rid: String,
    /// The receipt of the change just made, shown with the notice.
    receipt: Option<ui::ConsentReceipt>,
}

impl View<'_> {
    /// Registered apps, and up to [`PARTY_COUNT`] organizations and
    /// practitioners from the upstream (a failed list is reported, not fatal).
    async fn choices(&self) -> Result<Choices, UiError> {
        let clients = self
            .app
            .state
            .client_list()
            .await
            .map_err(UiError::internal)?;
        let mut loaded = true;
        let mut lists = Vec::new();
        for t in ["Organization", "Practitioner"] {
            let mut req = FhirRequest::new(Interaction::SearchType);
            req.resource_type = Some(t.to_owned());
            req.params = vec![("_count".to_owned(), PARTY_COUNT.to_owned())];
            let ctx = self.app.request_context(&self.rid);
            let mut found: Vec<(String, String)> = match self.app.upstream.execute(&req, &ctx).await
            {
                Ok(res) => res
                    .body
                    .as_ref()
                    .and_then(|b| b["entry"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|e| &e["resource"])
                    .filter(|r| r["resourceType"] == t)
                    .filter_map(|r| {
                        let id = r["id"].as_str()?;
                        Some((format!("{t}/{id}"), resource_name(r)?))
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, resource_type = t, "portal party list failed");
                    loaded = false;
                    Vec::new()
                }
            };
            found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            lists.push(found);
        }
        let practitioners = lists.pop().unwrap_or_default();
        let organizations = lists.pop().unwrap_or_default();
        Ok(Choices {
            clients,
            organizations,
            practitioners,
            loaded,
        })
    }

    /// The parties the form names, each checked: a registered app, or an
    /// Organization or Practitioner that exists. The error is a sentence.
    async fn parties(&self, e: &Entered, c: &Choices) -> Result<Vec<Party>, String> {
        let mut out = Vec::new();
        for r in e.references() {
            if let Some(client_id) = r.strip_prefix("Device/") {
                let client = c
                    .clients
                    .iter()
                    .find(|k| k.client_id == client_id)
                    .ok_or("That app is not registered here. Pick an app from the list.")?;
                out.push(Party {
                    reference: r.clone(),
                    display: client.client_name.clone(),
                });
                continue;
            }
            let listed = c
                .organizations
                .iter()
                .chain(c.practitioners.iter())
                .find(|(reference, _)| *reference == r);
            if let Some((reference, name)) = listed {
                out.push(Party {
                    reference: reference.clone(),
                    display: name.clone(),
                });
                continue;
            }
            let typed = r.split_once('/').filter(|(t, id)| {
                (*t == "Organization" || *t == "Practitioner") && is_valid_id(id)
            });
            let Some((t, id)) = typed else {
                return Err(format!(
                    "“{r}” is not a reference this form understands. Type it as \
                     Organization/<id> or Practitioner/<id>, or pick from the lists."
                ));
            };
            let found = patients::read(self.app, &self.rid, t, id)
                .await
                .map_err(|_| {
                    "The reference could not be checked just now. Try again.".to_owned()
                })?;
            let Some(resource) = found else {
                return Err(format!(
                    "There is no {r} here. Check the reference, or pick from the lists."
                ));
            };
            out.push(Party {
                reference: r.clone(),
                display: resource_name(&resource).unwrap_or_else(|| r.clone()),
            });
        }
        Ok(out)
    }

    /// Display names for the references in `wanted`: apps from the client
    /// list, people and organizations from the lists or read upstream.
    async fn names(&self, c: &Choices, wanted: BTreeSet<String>) -> Names {
        let mut names: Names = HashMap::new();
        for k in &c.clients {
            names.insert(format!("Device/{}", k.client_id), k.client_name.clone());
        }
        for (r, n) in c.organizations.iter().chain(c.practitioners.iter()) {
            names.insert(r.clone(), n.clone());
        }
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|r| !names.contains_key(r) && !r.starts_with("Device/"))
            .take(MAX_NAME_LOOKUPS)
            .collect();
        for r in missing {
            let Some((t, id)) = r.split_once('/') else {
                continue;
            };
            if let Ok(Some(v)) = patients::read(self.app, &self.rid, t, id).await {
                if let Some(n) = resource_name(&v) {
                    names.insert(r, n);
                }
            }
        }
        names
    }

    /// The portal page.
    async fn render(
        &self,
        status: StatusCode,
        entered: &Entered,
        error: Option<String>,
        done: Option<(Done, String)>,
    ) -> Result<Response, UiError> {
        let patient_ref = format!("Patient/{}", self.patient_id);
        let stored = self
            .app
            .consent
            .index
            .list(&patient_ref)
            .await
            .map_err(UiError::internal)?;
        let research = research::view(self.app, &stored);
        let privacy: Vec<Value> = stored.into_iter().filter(is_privacy).collect();
        let choices = self.choices().await?;
        let (history, history_note) =
            match audit::history_for_patient(self.app, &patient_ref, HISTORY_ROWS).await {
                Ok(rows) if rows.is_empty() => (
                    Vec::new(),
                    Some("Nobody has opened your record through this server yet.".to_owned()),
                ),
                Ok(rows) => (rows, None),
                Err(e) => {
                    tracing::warn!(error = %e, "portal access history failed");
                    (
                        Vec::new(),
                        Some(
                            "Your access history could not be loaded just now. Try again later."
                                .to_owned(),
                        ),
                    )
                }
            };
        let mut wanted: BTreeSet<String> = history.iter().filter_map(|r| r.who.clone()).collect();
        for c in &privacy {
            collect_actors(&c["provision"], &mut wanted);
        }
        let names = self.names(&choices, wanted).await;
        let now = crate::oauth::now();
        let mut rows: Vec<(String, ui::ConsentRow)> = privacy
            .iter()
            .map(|c| {
                (
                    c["dateTime"].as_str().unwrap_or_default().to_owned(),
                    consent_row(c, &names, now),
                )
            })
            .collect();
        rows.sort_by(|(da, a), (db, b)| {
            b.in_force
                .cmp(&a.in_force)
                .then_with(|| db.cmp(da))
                .then_with(|| a.id.cmp(&b.id))
        });
        // Only about one of the patient's own Consents (a crafted link
        // cannot make the page claim something was done).
        let done = done.and_then(|(d, id)| {
            if d == Done::Research {
                // the page's research section says where the patient stands
                return Some((d, Vec::new()));
            }
            privacy
                .iter()
                .find(|c| c["id"].as_str() == Some(id.as_str()))
                .map(|c| (d, words::describe(c, &names)))
        });
        let (notice, notice_detail) = match done {
            Some((d, detail)) => {
                let text = match d {
                    Done::Saved => "Your choice is saved and applies from now on:",
                    Done::Revoked => {
                        "You revoked this choice. It no longer applies, from now on; your other \
                         choices and the usual rules still do:"
                    }
                    Done::Unchanged => "This choice was already revoked; nothing changed:",
                    Done::Research => "Your research choice is saved and applies from now on.",
                };
                (Some(text.to_owned()), detail)
            }
            None => (None, Vec::new()),
        };
        let history = history
            .iter()
            .map(|r| history::line(r, &patient_ref, &names))
            .collect();
        page(
            status,
            &ui::PortalPage {
                chrome: session::chrome(Some(self.signed)),
                patient_name: self.signed.user.display_name.clone(),
                notice,
                notice_detail,
                error,
                consents: rows.into_iter().map(|(_, r)| r).collect(),
                default_policy: default_policy(self.app.consent.policy.base),
                form: form(entered, &choices),
                history,
                history_note,
                csrf: self.signed.csrf(),
                receipt: self.receipt.clone(),
                research,
            },
        )
    }
}

/// What the page says of a receipt.
fn receipt_view(b: &Value) -> ui::ConsentReceipt {
    let proof = &b["inclusion_proof"];
    let size = proof["tree_size"].as_u64().unwrap_or(0);
    ui::ConsentReceipt {
        id: b["id"].as_str().unwrap_or_default().to_owned(),
        consent: b["consent"].as_str().unwrap_or_default().to_owned(),
        seq: b["ledger_seq"].as_u64().unwrap_or(0),
        root: proof["root_hash"].as_str().unwrap_or_default().to_owned(),
        against: if proof["checkpoint"].is_object() {
            format!("the signed checkpoint of {size} entries")
        } else {
            format!("the ledger as of {size} entries")
        },
    }
}

/// Whether a stored Consent has scope patient-privacy.
fn is_privacy(c: &Value) -> bool {
    c["scope"]["coding"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|k| k["code"] == "patient-privacy"))
}

/// Every actor reference of a provision tree.
fn collect_actors(p: &Value, out: &mut BTreeSet<String>) {
    for a in p["actor"].as_array().into_iter().flatten() {
        if let Some(r) = a["reference"]["reference"].as_str() {
            out.insert(r.to_owned());
        }
    }
    for c in p["provision"].as_array().into_iter().flatten() {
        collect_actors(c, out);
    }
}

/// One Consent as a row: sentences, status in words, whether it is in
/// force and whether it can be revoked. `now` in Unix seconds.
fn consent_row(c: &Value, names: &Names, now: i64) -> ui::ConsentRow {
    let period = crate::consent::time::parse_period(&c["provision"]["period"]).ok();
    let (status, in_force, revocable) = match c["status"].as_str().unwrap_or_default() {
        "active" => match period {
            Some(p) if p.end.is_some_and(|e| e <= now) => ("Expired".to_owned(), false, false),
            Some(p) if p.start.is_some_and(|s| s > now) => {
                let start = c["provision"]["period"]["start"]
                    .as_str()
                    .map(|s| s.get(..10).unwrap_or(s).to_owned())
                    .unwrap_or_default();
                (format!("Starts on {start}"), false, true)
            }
            _ => ("Active".to_owned(), true, true),
        },
        "inactive" => ("Revoked".to_owned(), false, false),
        "draft" => ("Draft (not in force)".to_owned(), false, false),
        "proposed" => ("Proposed (not in force)".to_owned(), false, false),
        "rejected" => ("Rejected (not in force)".to_owned(), false, false),
        "entered-in-error" => ("Withdrawn as a mistake".to_owned(), false, false),
        other => (format!("Status “{other}”"), false, false),
    };
    ui::ConsentRow {
        id: c["id"].as_str().unwrap_or_default().to_owned(),
        sentences: words::describe(c, names),
        status,
        in_force,
        revocable,
        given: c["dateTime"]
            .as_str()
            .map(|d| d.get(..10).unwrap_or(d).to_owned())
            .unwrap_or_default(),
    }
}

/// What applies when the patient has made no choice.
fn default_policy(base: BasePolicy) -> String {
    match base {
        BasePolicy::OptOut => "When you have made no choice, your records are available to your \
             care team and to the apps you approve, within the law's extra protections for \
             sensitive records. Your choices here narrow that."
            .into(),
        BasePolicy::OptIn => "When you have made no choice, nobody but you may see your records. \
             Your choices here open them up."
            .into(),
    }
}

/// The form as entered (blank: "stop sharing" selected).
fn form(e: &Entered, c: &Choices) -> ui::ConsentForm {
    let decision = if e.decision.is_empty() {
        "deny"
    } else {
        e.decision.as_str()
    };
    let decisions = [
        (
            "deny",
            "Stop sharing: keep what I pick below from being seen",
        ),
        (
            "allow",
            "Share only: nobody may see my records except as I pick below",
        ),
    ]
    .into_iter()
    .map(|(value, label)| ui::Choice {
        value: value.to_owned(),
        label: label.to_owned(),
        checked: value == decision,
    })
    .collect();
    let option = |value: String, label: String, chosen: &str| ui::OptionItem {
        selected: value == chosen,
        value,
        label,
    };
    let mut apps = vec![option(String::new(), "Any app".into(), &e.app)];
    apps.extend(c.clients.iter().map(|k| {
        option(
            format!("Device/{}", k.client_id),
            k.client_name.clone(),
            &e.app,
        )
    }));
    let parties = |list: &[(String, String)]| {
        list.iter()
            .map(|(r, n)| option(r.clone(), n.clone(), &e.party))
            .collect()
    };
    let terms = |terms: &[vocab::Term], ticked: &[String]| {
        terms
            .iter()
            .map(|t| ui::Choice {
                value: t.code.to_owned(),
                label: t.label.to_owned(),
                checked: ticked.iter().any(|x| x == t.code),
            })
            .collect()
    };
    ui::ConsentForm {
        decisions,
        apps,
        organizations: parties(&c.organizations),
        practitioners: parties(&c.practitioners),
        parties_loaded: c.loaded,
        reference: e.reference.clone(),
        categories: terms(&vocab::CATEGORIES, &e.categories),
        purposes: terms(&vocab::PURPOSES, &e.purposes),
        end: e.end.clone(),
        today: today(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_say_status_in_words() {
        let now = 1_800_000_000; // 2027-01-15
        let c = |status: &str, period: Value| {
            json!({"id": "c1", "status": status, "dateTime": "2026-01-02T03:04:05Z",
                "provision": {"type": "deny", "period": period}})
        };
        let names = Names::new();
        let r = consent_row(&c("active", json!({"end": "2027-01-31"})), &names, now);
        assert_eq!(
            (r.status.as_str(), r.in_force, r.revocable),
            ("Active", true, true)
        );
        assert_eq!(r.given, "2026-01-02");
        assert_eq!(
            r.sentences,
            ["Nobody may see your records until 2027-01-31."]
        );
        let r = consent_row(&c("active", json!({"end": "2027-01-01"})), &names, now);
        assert_eq!((r.status.as_str(), r.revocable), ("Expired", false));
        let r = consent_row(&c("active", json!({"start": "2027-06-01"})), &names, now);
        assert_eq!(
            (r.status.as_str(), r.in_force, r.revocable),
            ("Starts on 2027-06-01", false, true)
        );
        let r = consent_row(&c("inactive", Value::Null), &names, now);
        assert_eq!((r.status.as_str(), r.revocable), ("Revoked", false));
    }

    #[test]
    fn names_come_from_the_resource() {
        assert_eq!(
            resource_name(&json!({"name": "Riverside Clinic"})).as_deref(),
            Some("Riverside Clinic")
        );
        assert_eq!(
            resource_name(
                &json!({"name": [{"prefix": ["Dr."], "given": ["Ada"], "family": "Lee"}]})
            )
            .as_deref(),
            Some("Dr. Ada Lee")
        );
        assert_eq!(resource_name(&json!({"name": []})), None);
    }

    #[test]
    fn only_privacy_consents_are_listed() {
        assert!(is_privacy(
            &json!({"scope": {"coding": [{"code": "patient-privacy"}]}})
        ));
        assert!(!is_privacy(
            &json!({"scope": {"coding": [{"code": "research"}]}})
        ));
        let mut refs = BTreeSet::new();
        collect_actors(
            &json!({"actor": [{"reference": {"reference": "Practitioner/1"}}],
                "provision": [{"actor": [{"reference": {"reference": "Device/x"}}]}]}),
            &mut refs,
        );
        assert_eq!(refs.len(), 2);
    }
}
