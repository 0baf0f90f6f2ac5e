//! De-identified search, and the rule that a client registered for
//! secondary use (`[deid.clients]`) only ever receives de-identified data.
//!
//! Such a client may:
//! - run `$export` with `_anonymizationConfig` (a plain export is 403);
//! - search a type (`GET /fhir/Observation?code=…&_anonymizationConfig=…`,
//!   optional `_anonymizationKeySet`), with the same purpose, client,
//!   profile and key-set checks as a de-identified export. Every answer is
//!   judged by consent for the stated purpose, passed through the research
//!   gate (patients kept out are recorded as withheld, not disclosed) and
//!   de-identified: entries' resources and `fullUrl`s pseudonymized,
//!   `total` removed (it would count what the gate kept out), paging links
//!   carry the profile on.
//!
//! Everything else (reads by id, history, writes, other operations, system
//! and compartment searches) is 403 for it. So that a search cannot probe
//! identified data, only these parameters are accepted: token parameters
//! not on identifiers or contact points (`code`, `status`, `gender`,
//! `category` …), quantity and number parameters, date parameters at year
//! precision (`birthdate=ge1950`, `date=2024`), and `_count`, `_offset`,
//! `_page` (fhirgate's sealed paging), `_elements`, `_format`. String,
//! reference, URI, composite and special parameters, `_id`, identifiers,
//! chains, `_has`, `_include`, `_sort`, `_summary`, `_total` are 400.
//!
//! Pseudonyms of a search come from the named key set, else from a key of
//! the client's own (`Registry::search_key`), so the same resource has the
//! same pseudonym on every page and in every search of that client
//! (tagged `PSEUDED`).

use axum::http::StatusCode;
use capability::ParamType;
use serde_json::Value;
use smart_launch::context::AccessContext;

use super::export::{authorize, Deidentification, KEY_SET_PARAM, PROFILE_PARAM};
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::Disclosure,
    AppState,
};

/// Control parameters a de-identified search accepts.
const CONTROL: &[&str] = &["_count", "_offset", "_page", "_elements", "_format"];
/// Element names a token parameter may not search (identifying values).
const IDENTIFYING: &[&str] = &[
    "identifier",
    "telecom",
    "phone",
    "email",
    "address",
    "name",
    "serialNumber",
    "udi",
];

fn forbidden(msg: impl Into<String>) -> FhirError {
    FhirError::new(StatusCode::FORBIDDEN, IssueType::Forbidden, msg)
}

/// One de-identified search.
pub struct SearchDeid {
    deid: Deidentification,
    /// The profile and key set, put back on paging links.
    params: Vec<(String, String)>,
}

impl std::fmt::Debug for SearchDeid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchDeid")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Before the pipeline: `Ok(None)` for a client not registered for
/// secondary use (and for a secondary-use client's de-identified
/// `$export`, which the bulk kick-off checks); the search's de-identifier
/// (its parameters taken off `req`) for a de-identified search; 403/400
/// for anything else such a client asks.
pub fn check(
    app: &AppState,
    caller: &AccessContext,
    req: &mut FhirRequest,
) -> FhirResult<Option<SearchDeid>> {
    if !app.config.deid.clients.contains_key(&caller.client_id) {
        return Ok(None);
    }
    if crate::bulk::is_export(req) {
        // (a key set without a profile is the kick-off's own 400)
        let asks = |name: &str| {
            req.param(name).is_some()
                || req.body.as_ref().is_some_and(|b| {
                    b["parameter"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
                })
        };
        let named = asks(PROFILE_PARAM) || asks(KEY_SET_PARAM);
        if !named {
            return Err(forbidden(format!(
                "client '{}' is registered for secondary use: its exports are de-identified (name a profile in {PROFILE_PARAM})",
                caller.client_id
            )));
        }
        return Ok(None);
    }
    if req.interaction != Interaction::SearchType || req.compartment.is_some() {
        return Err(forbidden(format!(
            "client '{}' is registered for secondary use: it may search a resource type de-identified ({PROFILE_PARAM}) and run de-identified exports, nothing else",
            caller.client_id
        )));
    }
    let profile = req.param(PROFILE_PARAM).map(str::to_owned);
    let key_set = req.param(KEY_SET_PARAM).map(str::to_owned);
    let Some(profile) = profile else {
        return Err(forbidden(format!(
            "client '{}' is registered for secondary use: name a de-identification profile in {PROFILE_PARAM}",
            caller.client_id
        )));
    };
    req.params
        .retain(|(k, _)| k != PROFILE_PARAM && k != KEY_SET_PARAM);
    let stated = req
        .purpose_of_use
        .as_deref()
        .or(caller.purpose_of_use.as_deref());
    let spec = authorize(app, caller, stated, &profile, key_set.as_deref())?;
    // the judge sees the stated purpose (research Consents apply)
    req.purpose_of_use = Some(spec.purpose.clone());
    let rtype = req.resource_type.clone().unwrap_or_default();
    for (name, value) in &req.params {
        check_param(&rtype, name, value)?;
    }
    let registry = &app.bulk.deid;
    let key = match &spec.key_set {
        Some(k) => registry.named_key(k),
        None => registry.search_key(&caller.client_id),
    }
    .map_err(|e| FhirError::unavailable(format!("de-identification key: {e}")))?;
    let deid = Deidentification::with_key(app, &spec, key, true).map_err(FhirError::unavailable)?;
    let mut params = vec![(PROFILE_PARAM.to_owned(), profile)];
    params.extend(key_set.map(|k| (KEY_SET_PARAM.to_owned(), k)));
    Ok(Some(SearchDeid { deid, params }))
}

/// Whether one parameter of a de-identified search may be asked (400 if not).
fn check_param(rtype: &str, name: &str, value: &str) -> FhirResult<()> {
    let refuse = |why: &str| {
        Err(FhirError::bad_request(format!(
            "a de-identified search does not accept '{name}': {why}"
        )))
    };
    if CONTROL.contains(&name) {
        return Ok(());
    }
    let (base, modifier) = name.split_once(':').unwrap_or((name, ""));
    if base.contains('.') || base.starts_with("_has") {
        return refuse("chains and _has could probe identified data");
    }
    if base.starts_with('_') && base != "_lastUpdated" && base != "_tag" && base != "_security" {
        return refuse("only _count, _offset, _elements and year-precision dates are offered");
    }
    if !matches!(
        modifier,
        "" | "missing" | "not" | "text" | "above" | "below"
    ) {
        return refuse("this modifier is not offered");
    }
    let Some(def) = crate::search::find_param(rtype, base) else {
        return refuse("not a search parameter of this type");
    };
    match def.kind {
        ParamType::Token => {
            let identifying = def
                .paths
                .iter()
                .any(|p| IDENTIFYING.iter().any(|i| p.contains(i)))
                || IDENTIFYING.iter().any(|i| base.contains(i));
            if identifying || modifier == "text" {
                return refuse("it searches identifiers or contact details");
            }
            Ok(())
        }
        ParamType::Quantity | ParamType::Number => Ok(()),
        ParamType::Date => {
            let year_only = value.split(',').all(|v| {
                let v = v.trim_start_matches(|c: char| c.is_ascii_lowercase());
                v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit())
            });
            if modifier == "missing" || year_only {
                Ok(())
            } else {
                refuse("dates are searched by year only (e.g. ge2020)")
            }
        }
        _ => refuse("string, reference and URI parameters could probe identified data"),
    }
}

impl SearchDeid {
    /// After the pipeline: the research gate (correcting the disclosure
    /// before it is audited) and de-identification of the answer.
    pub async fn finish(
        &self,
        app: &AppState,
        resp: &mut FhirResponse,
        d: &mut Disclosure,
    ) -> FhirResult<()> {
        let Some(Value::Object(bundle)) = resp.body.as_mut() else {
            return Ok(());
        };
        bundle.remove("total");
        if let Some(Value::Array(entries)) = bundle.get_mut("entry") {
            self.deid
                .process(app, entries, |e| &mut e["resource"], d)
                .await
                .map_err(FhirError::unavailable)?;
            for e in entries.iter_mut() {
                let full = full_url(e["fullUrl"].as_str().unwrap_or_default(), &e["resource"]);
                if let Some(f) = e.get_mut("fullUrl") {
                    *f = Value::from(full);
                }
            }
        }
        if let Some(Value::Array(links)) = bundle.get_mut("link") {
            for l in links.iter_mut() {
                if let Some(url) = l["url"].as_str() {
                    l["url"] = Value::from(self.carry(url));
                }
            }
        }
        Ok(())
    }

    /// A paging link with the profile and key set on it.
    fn carry(&self, url: &str) -> String {
        let mut out = url.to_owned();
        for (k, v) in &self.params {
            let pair = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(k, v)
                .finish();
            if !out.contains(&format!("{k}=")) {
                out.push(if out.contains('?') { '&' } else { '?' });
                out.push_str(&pair);
            }
        }
        out
    }
}

/// An entry's `fullUrl` for its de-identified resource: the base it had,
/// then `Type/<pseudonym>` (never the real id).
fn full_url(old: &str, resource: &Value) -> String {
    let (Some(t), Some(id)) = (resource["resourceType"].as_str(), resource["id"].as_str()) else {
        return String::new();
    };
    let suffix = format!("/{t}/");
    match old.rfind(&suffix) {
        Some(at) => format!("{}/{t}/{id}", &old[..at]),
        None => format!("{t}/{id}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parameters_that_could_probe_identified_data_are_refused() {
        for (t, n, v) in [
            ("Observation", "code", "4548-4"),
            ("Observation", "status", "final"),
            ("Patient", "gender", "female"),
            ("Patient", "birthdate", "ge1950"),
            ("Observation", "date", "2024,2025"),
            ("Observation", "value-quantity", "gt7"),
            ("Observation", "_count", "10"),
            ("Observation", "_lastUpdated", "ge2024"),
        ] {
            assert!(check_param(t, n, v).is_ok(), "{t}?{n}={v}");
        }
        for (t, n, v) in [
            ("Patient", "name", "Smith"),
            ("Patient", "family", "Smith"),
            ("Patient", "identifier", "123-45-6789"),
            ("Patient", "phone", "555"),
            ("Patient", "email", "a@b"),
            ("Patient", "birthdate", "1985-03-14"),
            ("Patient", "birthdate", "ge1985-03"),
            ("Patient", "_id", "p1"),
            ("Observation", "subject", "Patient/p1"),
            ("Observation", "patient", "p1"),
            ("Observation", "subject.name", "Smith"),
            ("Patient", "_has:Observation:subject:code", "x"),
            ("Observation", "_include", "Observation:subject"),
            ("Observation", "_sort", "date"),
            ("Observation", "_summary", "count"),
            ("Observation", "code:text", "smith"),
            ("Observation", "nonsense", "1"),
        ] {
            assert!(check_param(t, n, v).is_err(), "{t}?{n}={v} must be refused");
        }
    }

    #[test]
    fn full_urls_keep_the_base_and_take_the_pseudonym() {
        let r = serde_json::json!({"resourceType": "Patient", "id": "abc"});
        assert_eq!(
            full_url("http://x/fhir/Patient/p1", &r),
            "http://x/fhir/Patient/abc"
        );
        assert_eq!(full_url("", &r), "Patient/abc");
    }
}
