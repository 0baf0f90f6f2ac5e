//! Who sees which Group (Provider Access and Payer-to-Payer).
//!
//! - Groups made by `$bulk-member-match` are owned by the requesting client:
//!   `managingEntity` is a logical reference whose identifier has system
//!   [`OWNER_SYSTEM`] and the client id as value ([`owner_reference`]).
//!   Only that client sees them.
//! - A provider client (`[payer] provider_clients`, client id →
//!   `Organization/<id>`) sees only Groups whose `managingEntity` references
//!   its organization (the attribution Groups), and in them only current
//!   members (no `inactive`, `period` covering today) who did not opt out of
//!   Provider Access by Consent ([`consent::opted_out`]). The attribution
//!   Group of a configured provider organization is hidden from every other
//!   client except those exempt from consent (trusted internal pipelines).
//! - Other callers see other Groups as their scopes allow.
//!
//! Applied to Group read, vread, search and history ([`applies`],
//! [`route`], [`filter`]) after the authorize stage: a hidden Group reads
//! as 404; searches drop hidden Groups and lower `total` by the hidden
//! matches of the page (a search with several pages may have short pages).
//! `_include`d Groups from searches of other types are not filtered.
//! Provider clients get no `_include`d resources with their Groups (they
//! bypass the consent stage; members' data comes through the export).

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::consent;
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    pipeline::{authorize, Disclosure},
    upstream::RequestContext,
    AppState,
};

/// Identifier system of the owning client id in `Group.managingEntity`.
pub const OWNER_SYSTEM: &str = "https://fhirgate.dev/oauth-client";

/// The `managingEntity` of a Group owned by `client_id`.
pub fn owner_reference(client_id: &str) -> Value {
    json!({
        "type": "Organization",
        "identifier": {"system": OWNER_SYSTEM, "value": client_id},
        "display": format!("OAuth client {client_id}")
    })
}

/// The owning client of a Group, if it has one.
pub fn owner_of(group: &Value) -> Option<&str> {
    let id = &group["managingEntity"]["identifier"];
    (id["system"] == OWNER_SYSTEM)
        .then(|| id["value"].as_str())
        .flatten()
}

fn managed_by(group: &Value, org: &str) -> bool {
    group["managingEntity"]["reference"]
        .as_str()
        .is_some_and(|r| r == org || r.ends_with(&format!("/{org}")))
}

/// Whether `client_id` may see this Group at all.
pub fn visible(app: &AppState, client_id: &str, group: &Value) -> bool {
    if let Some(org) = app.config.payer.provider_org(client_id) {
        return managed_by(group, org);
    }
    if let Some(owner) = owner_of(group) {
        return owner == client_id;
    }
    let attribution = app
        .config
        .payer
        .provider_clients
        .values()
        .any(|org| managed_by(group, org));
    !attribution || app.consent.is_exempt(client_id)
}

/// Whether a request reads Groups (and so needs [`filter`]).
pub fn applies(req: &FhirRequest) -> bool {
    use Interaction::*;
    req.resource_type.as_deref() == Some("Group")
        && req.compartment.is_none()
        && matches!(
            req.interaction,
            Read | Vread | SearchType | HistoryInstance | HistoryType
        )
}

/// Removes members a provider client must not see (ended, inactive, or
/// opted out for its organization); nothing for other callers.
pub async fn narrow_members(app: &AppState, client_id: &str, group: &mut Value) -> FhirResult<()> {
    let Some(org) = app.config.payer.provider_org(client_id).map(str::to_owned) else {
        return Ok(());
    };
    let Some(members) = group.get("member").and_then(Value::as_array).cloned() else {
        return Ok(());
    };
    let day = consent::today();
    let mut kept = Vec::new();
    for m in members {
        if m["inactive"] == true || !consent::covers(&m["period"], &day) {
            continue;
        }
        let Some(patient) = m["entity"]["reference"].as_str() else {
            continue;
        };
        if patient.starts_with("Patient/") && consent::opted_out(app, patient, &org).await? {
            continue;
        }
        kept.push(m);
    }
    if let Some(o) = group.as_object_mut() {
        o.insert("quantity".into(), json!(kept.len()));
        if kept.is_empty() {
            o.remove("member");
        } else {
            o.insert("member".into(), Value::Array(kept));
        }
    }
    Ok(())
}

/// Routes a Group read, vread, search or history ([`applies`]).
///
/// Provider clients: the authorize stage (scopes), then the upstream, the
/// scope post-filter and [`filter`]; the consent stage is not asked,
/// because it judges a Group by all its members (one member's deny would
/// hide the whole attribution list): opted-out members are removed here
/// instead. Every other caller: the usual route (with consent), then
/// [`filter`].
pub async fn route(
    app: &AppState,
    caller: &AccessContext,
    mut req: FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    if app.config.payer.provider_org(&caller.client_id).is_none() {
        let mut resp = authorize::route_as(app, caller, req, ctx, disclosure).await?;
        filter(app, caller, &mut resp).await?;
        return Ok(resp);
    }
    let auth = authorize::authorize(caller, &mut req)?;
    if auth.answer_empty {
        return Ok(authorize::empty_searchset(&ctx.base, &req));
    }
    let mut resp = app.upstream.execute(&req, ctx).await?;
    authorize::filter_response(caller, &auth, &mut resp)?;
    filter(app, caller, &mut resp).await?;
    disclose(&resp, disclosure);
    Ok(resp)
}

/// Names every member of every released Group in the audit record.
fn disclose(resp: &FhirResponse, disclosure: &mut Disclosure) {
    let Some(body) = &resp.body else { return };
    let groups: Vec<&Value> = if body["resourceType"] == "Group" {
        vec![body]
    } else {
        body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Group")
            .collect()
    };
    for g in groups {
        let gref = format!("Group/{}", g["id"].as_str().unwrap_or_default());
        let members: Vec<&str> = g["member"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["entity"]["reference"].as_str())
            .filter(|r| r.starts_with("Patient/"))
            .collect();
        if members.is_empty() {
            disclosure.other.push(gref);
            continue;
        }
        for p in members {
            disclosure.patient(p).released.push(gref.clone());
        }
    }
}

/// The member Patient ids of a Group `client_id` may export: 404 when it
/// may not see the Group; for a provider client only current members who
/// did not opt out. For the Bulk Data core's Group `$export` too.
pub async fn exportable_members(
    app: &AppState,
    client_id: &str,
    group: &Value,
) -> FhirResult<Vec<String>> {
    if !visible(app, client_id, group) {
        return Err(FhirError::not_found("Group not found"));
    }
    let mut g = group.clone();
    narrow_members(app, client_id, &mut g).await?;
    let mut ids: Vec<String> = g["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["inactive"] != true)
        .filter_map(|m| m["entity"]["reference"].as_str())
        .filter_map(|r| r.strip_prefix("Patient/"))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Applies visibility and member narrowing to an answer about Groups.
pub async fn filter(
    app: &AppState,
    caller: &AccessContext,
    resp: &mut FhirResponse,
) -> FhirResult<()> {
    let client = caller.client_id.as_str();
    let Some(body) = resp.body.as_mut() else {
        return Ok(());
    };
    if body["resourceType"] == "Group" {
        if !visible(app, client, body) {
            return Err(FhirError::not_found("Group not found"));
        }
        return narrow_members(app, client, body).await;
    }
    if body["resourceType"] != "Bundle" {
        return Ok(());
    }
    let Some(entries) = body.get("entry").and_then(Value::as_array).cloned() else {
        return Ok(());
    };
    let provider = app.config.payer.provider_org(client).is_some();
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    for mut e in entries {
        let is_match = e["search"]["mode"] != "include" && e["search"]["mode"] != "outcome";
        if e["resource"]["resourceType"] == "Group" {
            if !visible(app, client, &e["resource"]) {
                dropped += u64::from(is_match);
                continue;
            }
            narrow_members(app, client, &mut e["resource"]).await?;
        } else if provider && e["resource"].is_object() && e["search"]["mode"] != "outcome" {
            // provider clients read Groups without the consent stage: no
            // `_include`d resources (members' data goes through the export)
            continue;
        }
        kept.push(e);
    }
    if dropped > 0 {
        if let Some(t) = body["total"].as_u64() {
            body["total"] = json!(t.saturating_sub(dropped));
        }
    }
    body["entry"] = Value::Array(kept);
    Ok(())
}
