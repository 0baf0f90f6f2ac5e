//! Read-back: `GET /fhir/AuditEvent` and `GET /fhir/AuditEvent/<seq>`,
//! answered from the ledger's decrypted payloads (never the upstream), and
//! the patient portal's access history.
//!
//! Access ([`search_audit`]):
//! - a token with `system/AuditEvent.rs` (read / search letters, no
//!   granular constraint): the auditor role, every event;
//! - a patient: fhirUser `Patient/X`, launch patient `X`, and a `patient/`
//!   scope granting AuditEvent (`patient/AuditEvent.rs`, `patient/*.rs`):
//!   only events about X (their pseudonym); a search naming another patient
//!   finds nothing and a read of another's event is 404;
//! - anyone else: 403.
//!
//! Search parameters: `patient` (reference or id), `_id` (seq), `date`
//! (`eq ge gt le lt`, any precision from year to milliseconds), `agent`
//! (`Practitioner/7`, the user's fhirUser; or a bare OAuth client id),
//! `entity-type` (an entity type code, e.g. `1`, `2`, `XrequestId`, or a
//! resource type such as `Observation`; `system|code` accepted), `action`,
//! `outcome`, `_count`, `_offset`. Comma-separated values are OR-ed. Other
//! parameters are ignored. Newest first. Events whose key was erased are
//! left out (and out of `total`).

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use smart_launch::{
    context::AccessContext,
    scope::{Op, ScopeContext},
};

use super::{
    error::AuditError,
    pseudonym::patient_reference,
    store::{self, Cmp, Filter, PayloadRow},
    vault::{self, Sealed, VaultError},
    Auditor,
};
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, FhirResponse, Interaction},
    AppState,
};

/// Who may see what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditAccess {
    /// Every event (the auditor role).
    All,
    /// Only the events about this patient (`Patient/<id>`).
    Patient(String),
}

/// Decides what `caller` may see for `op`, or refuses with 403.
pub fn access(caller: &AccessContext, op: Op) -> FhirResult<AuditAccess> {
    let grants = caller.scopes.grants("AuditEvent", op);
    if grants
        .iter()
        .any(|g| g.context == ScopeContext::System && g.constraints.is_empty())
    {
        return Ok(AuditAccess::All);
    }
    if let (Some(user), Some(patient)) = (caller.fhir_user.as_deref(), caller.patient.as_deref()) {
        let me = format!("Patient/{patient}");
        if patient_reference(user) == me
            && grants
                .iter()
                .any(|g| g.context == ScopeContext::Patient && g.constraints.is_empty())
        {
            return Ok(AuditAccess::Patient(me));
        }
    }
    Err(FhirError::new(
        StatusCode::FORBIDDEN,
        IssueType::Forbidden,
        "AuditEvents are readable by the auditor role (system/AuditEvent.rs) and by a patient for their own record (patient/AuditEvent.rs) only",
    ))
}

/// Answers an AuditEvent interaction (read or search-type) for `caller`.
pub async fn search_audit(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
) -> FhirResult<FhirResponse> {
    match req.interaction {
        Interaction::Read => {
            let who = access(caller, Op::Read)?;
            read(app, &who, req.id.as_deref().unwrap_or("")).await
        }
        Interaction::SearchType => {
            let who = access(caller, Op::Search)?;
            search(app, &who, &req.params).await
        }
        _ => Err(FhirError::method_not_allowed(
            "AuditEvents are written by fhirgate only; read and search are supported",
        )),
    }
}

fn store_error(e: impl std::fmt::Display) -> FhirError {
    FhirError::unavailable(format!("audit read-back: {e}"))
}

/// Decrypts rows (one key lookup for all); erased keys give `Erased`.
pub async fn open_rows(
    auditor: &Auditor,
    rows: &[PayloadRow],
) -> Result<Vec<Result<Value, VaultError>>, AuditError> {
    let mut pseudonyms: Vec<&str> = rows.iter().map(|r| r.pseudonym.as_str()).collect();
    pseudonyms.sort_unstable();
    pseudonyms.dedup();
    let keys = auditor.vault().existing(&pseudonyms).await?;
    Ok(rows.iter().map(|r| open_row(&keys, r)).collect())
}

fn open_row(keys: &HashMap<String, vault::DataKey>, r: &PayloadRow) -> Result<Value, VaultError> {
    let key = keys
        .get(&r.pseudonym)
        .filter(|k| k.key_id == r.key_id)
        .ok_or(VaultError::Erased)?;
    let sealed = Sealed {
        nonce: r.nonce.clone(),
        ciphertext: r.payload.clone(),
    };
    let bytes = vault::open(key, r.seq as u64, &r.pseudonym, &sealed)?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| VaultError::Crypto(format!("payload of seq {} is not JSON: {e}", r.seq)))?;
    Ok(with_id(v, r.seq))
}

/// The AuditEvent with `id` = its seq (right after `resourceType`).
fn with_id(v: Value, seq: i64) -> Value {
    let Value::Object(m) = v else { return v };
    let mut out = Map::new();
    out.insert("resourceType".into(), json!("AuditEvent"));
    out.insert("id".into(), json!(seq.to_string()));
    for (k, v) in m {
        if k != "resourceType" && k != "id" {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

fn restrict(app: &AppState, who: &AuditAccess) -> Option<String> {
    match who {
        AuditAccess::All => None,
        AuditAccess::Patient(p) => Some(app.audit.pseudonym(p)),
    }
}

async fn read(app: &AppState, who: &AuditAccess, id: &str) -> FhirResult<FhirResponse> {
    let not_found = || FhirError::not_found(format!("AuditEvent/{id} is not known"));
    let seq: i64 = id.parse().map_err(|_| not_found())?;
    let filter = Filter {
        seqs: vec![seq],
        restrict: restrict(app, who),
        ..Filter::default()
    };
    let (rows, _) = store::search(app.audit.store(), &filter, 1, 0)
        .await
        .map_err(store_error)?;
    let opened = open_rows(&app.audit, &rows).await.map_err(store_error)?;
    match opened.into_iter().next() {
        None => Err(not_found()),
        Some(Ok(ev)) => Ok(FhirResponse::ok(ev)),
        Some(Err(VaultError::Erased)) => Err(FhirError::gone(format!(
            "AuditEvent/{id} was erased (its patient's payload key was destroyed)"
        ))),
        Some(Err(e)) => Err(FhirError::internal(e)),
    }
}

fn values<'a>(params: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn code(token: &str) -> String {
    token.rsplit('|').next().unwrap_or(token).to_owned()
}

/// The filter of a search's parameters.
fn filter_of(app: &AppState, who: &AuditAccess, params: &[(String, String)]) -> FhirResult<Filter> {
    let pz = &app.audit.builder().pz;
    let mut f = Filter {
        restrict: restrict(app, who),
        readable_only: true,
        ..Filter::default()
    };
    f.pseudonyms = values(params, "patient")
        .into_iter()
        .map(|p| pz.patient(p))
        .collect();
    for id in values(params, "_id") {
        match id.parse::<i64>() {
            Ok(s) => f.seqs.push(s),
            Err(_) => f.nothing = true,
        }
    }
    for (_, v) in params.iter().filter(|(k, _)| k == "date") {
        f.recorded.extend(date_bounds(v)?);
    }
    f.agents = values(params, "agent")
        .into_iter()
        .map(|a| {
            let parts: Vec<&str> = a.rsplitn(3, '/').collect();
            if let [id, ty, ..] = parts.as_slice() {
                pz.agent(&format!("{ty}/{id}"))
            } else {
                pz.agent(&format!("client:{a}"))
            }
        })
        .collect();
    f.entity_types = values(params, "entity-type")
        .into_iter()
        .map(code)
        .collect();
    f.actions = values(params, "action").into_iter().map(code).collect();
    f.outcomes = values(params, "outcome").into_iter().map(code).collect();
    Ok(f)
}

async fn search(
    app: &AppState,
    who: &AuditAccess,
    params: &[(String, String)],
) -> FhirResult<FhirResponse> {
    let filter = filter_of(app, who, params)?;
    let number = |name: &str| -> FhirResult<Option<i64>> {
        match params.iter().find(|(k, _)| k == name) {
            None => Ok(None),
            Some((_, v)) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| FhirError::processing(format!("{name} must be a whole number"))),
        }
    };
    let max = i64::from(app.config.limits.max_page_size);
    let count = number("_count")?
        .unwrap_or(i64::from(app.config.limits.default_page_size))
        .min(max);
    let offset = number("_offset")?.unwrap_or(0);
    let (rows, total) = store::search(app.audit.store(), &filter, count, offset)
        .await
        .map_err(store_error)?;
    let opened = open_rows(&app.audit, &rows).await.map_err(store_error)?;
    let base = app.config.fhir_base();
    let mut entries = Vec::new();
    let mut unreadable = 0usize;
    for (row, ev) in rows.iter().zip(opened) {
        match ev {
            Ok(ev) => entries.push(json!({
                "fullUrl": format!("{base}/AuditEvent/{}", row.seq),
                "resource": ev,
                "search": {"mode": "match"},
            })),
            Err(e) => {
                tracing::error!(seq = row.seq, error = %e, "audit payload cannot be read");
                unreadable += 1;
            }
        }
    }
    if unreadable > 0 {
        entries.push(json!({
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "exception", "diagnostics": format!("{unreadable} matching AuditEvent(s) could not be decrypted (see `fhirgate ledger verify-payloads`)")}],
            },
            "search": {"mode": "outcome"},
        }));
    }
    let link = |offset: i64| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count")
        {
            ser.append_pair(k, v);
        }
        ser.append_pair("_count", &count.to_string());
        ser.append_pair("_offset", &offset.to_string());
        format!("{base}/AuditEvent?{}", ser.finish())
    };
    let mut links = vec![json!({"relation": "self", "url": link(offset)})];
    if count > 0 && offset + count < total {
        links.push(json!({"relation": "next", "url": link(offset + count)}));
    }
    Ok(FhirResponse::ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    })))
}

/// `date` bounds: a prefix (`eq` default, `ge gt le lt`) and a FHIR date
/// or dateTime of any precision, as `(Cmp, ms)` bounds on `recorded`.
pub fn date_bounds(value: &str) -> FhirResult<Vec<(Cmp, i64)>> {
    let (prefix, rest) = match value.get(..2) {
        Some(p) if p.chars().all(|c| c.is_ascii_alphabetic()) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let (start, end) = date_range(rest).ok_or_else(|| {
        FhirError::processing(format!("date '{value}' is not a FHIR date or dateTime"))
    })?;
    Ok(match prefix {
        "eq" => vec![(Cmp::Ge, start), (Cmp::Lt, end)],
        "ge" => vec![(Cmp::Ge, start)],
        "gt" => vec![(Cmp::Ge, end)],
        "le" => vec![(Cmp::Lt, end)],
        "lt" => vec![(Cmp::Lt, start)],
        other => {
            return Err(FhirError::processing(format!(
                "date prefix '{other}' is not supported on AuditEvent (use eq, ge, gt, le, lt)"
            )))
        }
    })
}

/// The `[start, end)` milliseconds a FHIR date/dateTime stands for.
pub fn date_range(s: &str) -> Option<(i64, i64)> {
    use time::{format_description::well_known::Rfc3339, Date, Month, OffsetDateTime, Time};
    let ms = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    let day = |y: i32, m: u8, d: u8| -> Option<OffsetDateTime> {
        let month = Month::try_from(m).ok()?;
        Some(
            Date::from_calendar_date(y, month, d)
                .ok()?
                .with_time(Time::MIDNIGHT)
                .assume_utc(),
        )
    };
    let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [y] if y.len() == 4 && digits(y) => {
            let y: i32 = y.parse().ok()?;
            Some((ms(day(y, 1, 1)?), ms(day(y + 1, 1, 1)?)))
        }
        [y, m] if y.len() == 4 && digits(y) && m.len() == 2 && digits(m) => {
            let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
            let next = if m == 12 {
                day(y + 1, 1, 1)?
            } else {
                day(y, m + 1, 1)?
            };
            Some((ms(day(y, m, 1)?), ms(next)))
        }
        [y, m, d] if digits(y) && digits(m) && digits(d) && d.len() == 2 => {
            let start = day(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            Some((ms(start), ms(start + time::Duration::days(1))))
        }
        _ => {
            let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
            let frac = s.split('T').nth(1).is_some_and(|t| t.contains('.'));
            let start = ms(t);
            Some((start, start + if frac { 1 } else { 1000 }))
        }
    }
}

/// One line of a patient's access history (the portal).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessRow {
    /// The AuditEvent id (ledger seq).
    pub seq: u64,
    /// When (FHIR instant).
    pub when: String,
    /// Who: the user's fhirUser, if a user acted.
    pub who: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// The OAuth client (app).
    pub client: Option<String>,
    /// What was done: the restful-interaction code.
    pub interaction: Option<String>,
    /// Resource types involved.
    pub resource_types: Vec<String>,
    /// Purposes of use (v3-ActReason codes).
    pub purpose: Vec<String>,
    /// AuditEvent.outcome (0 success, 4 refused, 8 failed).
    pub outcome: String,
    /// Break-the-glass was used.
    pub break_glass: bool,
}

impl AccessRow {
    /// The row of a RESTful AuditEvent payload.
    pub fn of(seq: i64, ev: &Value) -> Self {
        let agents = ev["agent"].as_array().cloned().unwrap_or_default();
        let agent_with = |code: &str| {
            agents
                .iter()
                .find(|a| a["type"]["coding"][0]["code"] == code)
                .cloned()
        };
        let user = agent_with("IRCP");
        let client = agents
            .iter()
            .find(|a| a["who"]["identifier"]["system"] == super::balp::CLIENT_ID_SYSTEM)
            .and_then(|a| a["who"]["identifier"]["value"].as_str().map(str::to_owned));
        let mut types: Vec<String> = ev["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["role"]["code"] == "4")
            .filter_map(|e| e["what"]["reference"].as_str())
            .filter_map(|r| r.split('/').next().map(str::to_owned))
            .collect();
        types.sort();
        types.dedup();
        let purpose = ev["purposeOfEvent"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["coding"][0]["code"].as_str().map(str::to_owned))
            .collect();
        Self {
            seq: seq as u64,
            when: ev["recorded"].as_str().unwrap_or("").to_owned(),
            who: user
                .as_ref()
                .and_then(|u| u["who"]["reference"].as_str().map(str::to_owned)),
            role: user.as_ref().and_then(|u| {
                u["role"][0]["coding"][0]["code"]
                    .as_str()
                    .map(str::to_owned)
            }),
            client,
            interaction: ev["subtype"][0]["code"].as_str().map(str::to_owned),
            resource_types: types,
            purpose,
            outcome: ev["outcome"].as_str().unwrap_or("").to_owned(),
            break_glass: ev["meta"]["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|c| c["code"] == "BTG")),
        }
    }
}

/// Who accessed `patient`'s record (`Patient/<id>` or an id), newest
/// first, at most `limit` rows: the patient portal's access history.
pub async fn history_for_patient(
    app: &AppState,
    patient: &str,
    limit: usize,
) -> Result<Vec<AccessRow>, AuditError> {
    let filter = Filter {
        restrict: Some(app.audit.pseudonym(&patient_reference(patient))),
        kinds: vec!["rest".into()],
        readable_only: true,
        ..Filter::default()
    };
    let (rows, _) = store::search(app.audit.store(), &filter, limit as i64, 0).await?;
    let opened = open_rows(&app.audit, &rows).await?;
    Ok(rows
        .iter()
        .zip(opened)
        .filter_map(|(r, ev)| ev.ok().map(|ev| AccessRow::of(r.seq, &ev)))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_of_every_precision() {
        let (s, e) = date_range("2024").unwrap();
        assert_eq!(e - s, 366 * 86_400_000);
        let (s, e) = date_range("2024-02").unwrap();
        assert_eq!(e - s, 29 * 86_400_000);
        let (s2, _) = date_range("2024-02-01").unwrap();
        assert_eq!(s, s2);
        let (s, e) = date_range("2024-12").unwrap();
        assert_eq!(e - s, 31 * 86_400_000);
        let (s, e) = date_range("2024-02-01T10:00:00Z").unwrap();
        assert_eq!((s - s2, e - s), (10 * 3_600_000, 1000));
        let (s3, e) = date_range("2024-02-01T12:00:00.5+02:00").unwrap();
        assert_eq!((s3 - s, e - s3), (500, 1));
        assert!(date_range("yesterday").is_none());
        assert!(date_range("2024-13").is_none());
        assert_eq!(
            date_bounds("ge2024").unwrap(),
            vec![(Cmp::Ge, date_range("2024").unwrap().0)]
        );
        assert_eq!(date_bounds("lt2024").unwrap()[0].0, Cmp::Lt);
        assert_eq!(date_bounds("2024").unwrap().len(), 2);
        assert!(date_bounds("sa2024").is_err());
    }
}
