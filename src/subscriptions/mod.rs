//! PAS subscriptions (issue 7, item 2): R4 topic-based `Subscription`s
//! (Subscriptions R5 Backport IG 1.1.0) on the Da Vinci PAS 2.0.1 topic
//! `PASSubscriptionTopic`, answered by the facade itself in the route stage
//! (`pipeline::handle_as` calls [`applies`] and [`route`]); no Subscription
//! ever reaches the upstream.
//!
//! This module owns:
//! - the REST interactions on `Subscription` ([`api`]): create, read,
//!   search, update, delete and `Subscription/{id}/$status`;
//! - parsing and validation of a Subscription ([`model`]): the PAS topic
//!   only, a `backport-filter-criteria` on `orgIdentifier` ([`filter`]), a
//!   `rest-hook` channel ([`channel`]) to an `https` endpoint (plain `http` only to a loopback
//!   address, for local subscribers and tests);
//! - the status machine ([`state`]), persistence ([`store`], table
//!   `pas_subscriptions`, migration 0012), notification Bundles
//!   ([`notification`]), the rest-hook POST ([`delivery`], to public
//!   addresses only unless configured otherwise: [`guard`]) and what is sent
//!   when ([`notify`]): the handshake on create/update, and an event
//!   notification whenever a PAS request is pended by `$submit` or decided
//!   by a reviewer (`prior_auth::submit`, `prior_auth::decide` call
//!   [`notify::pas_event`]).
//!
//! `channel.header` values are sent with every notification and never shown
//! again: answers carry them as `Name: [redacted]`, and an update sending
//! one back that way keeps the stored value ([`secrets`]).
//!
//! Ownership (PAS: subscriptions "are only created or modified by that
//! sending system"): a Subscription belongs to the organization of the
//! caller that created it (`AppState::organization_of`: the token's
//! organization, else `[payer] provider_clients`). A caller acting for no
//! organization cannot subscribe (403); another organization's
//! subscription does not exist for the caller (404, never 403, so ids are
//! no oracle). Events go only to active subscriptions of the organization
//! that submitted the PAS request, and only when the request's provider
//! identifier passes the subscription's `orgIdentifier` filter.
//!
//! Authorization: a `system/` scope on Subscription with `c` (create),
//! `r` (read, `$status`), `s` (search), `u` (update) or `d` (delete).
//! Subscriptions are reached only this way: an entry on `Subscription`
//! inside a batch or transaction, or a system search with `_type`
//! naming it, is refused ([`refuse_indirect`]) rather than passed to the
//! upstream.

use smart_launch::context::AccessContext;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    payer::require_system,
    pipeline::{authorize::forbidden, Disclosure},
    AppState,
};

pub mod api;
pub mod channel;
pub mod config;
pub mod delivery;
pub mod filter;
pub mod guard;
pub mod model;
pub mod notification;
pub mod notify;
pub mod secrets;
pub mod state;
pub mod store;

pub use notify::pas_event;

/// Whether this module answers `req` (every non-compartment request on
/// the `Subscription` type).
pub fn applies(req: &FhirRequest) -> bool {
    req.resource_type.as_deref() == Some("Subscription") && req.compartment.is_none()
}

/// Refuses (400) the ways to Subscription that would bypass this module:
/// a batch or transaction entry whose URL is on `Subscription`, and a
/// system-level search whose `_type` names it.
pub fn refuse_indirect(req: &FhirRequest) -> FhirResult<()> {
    let on_subscription = |url: &str| {
        url.trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .is_some_and(|t| t == "Subscription")
    };
    let in_bundle = req.interaction == Interaction::BatchOrTransaction
        && req
            .body
            .as_ref()
            .and_then(|b| b["entry"].as_array())
            .is_some_and(|es| {
                es.iter().any(|e| {
                    e["request"]["url"].as_str().is_some_and(on_subscription)
                        || e["resource"]["resourceType"] == "Subscription"
                })
            });
    if in_bundle {
        return Err(FhirError::bad_request(
            "Subscription requests are answered one at a time at /fhir/Subscription, \
             not inside a batch or transaction",
        ));
    }
    let typed = req.interaction == Interaction::SearchSystem
        && req
            .params
            .iter()
            .filter(|(k, _)| k == "_type")
            .any(|(_, v)| v.split(',').any(|t| t.trim() == "Subscription"));
    if typed {
        return Err(FhirError::bad_request(
            "search Subscriptions at /fhir/Subscription, not through a system-level _type search",
        ));
    }
    Ok(())
}

/// Answers a Subscription request for `caller`.
pub async fn route(
    app: &AppState,
    caller: &AccessContext,
    req: FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    const R: &str = "Subscription";
    let org = || {
        app.organization_of(caller).ok_or_else(|| {
            forbidden(
                "subscriptions belong to an organization; this client acts for none \
                 (a token organization or [payer] provider_clients is needed)",
            )
        })
    };
    let id = req.id.as_deref();
    match (req.interaction, id, req.operation.as_deref()) {
        (Interaction::Create, None, _) => {
            require_system(caller, R, |p| p.c, "create (c)")?;
            api::create(app, caller, &org()?, &req, disclosure).await
        }
        (Interaction::Read, Some(id), _) => {
            require_system(caller, R, |p| p.r, "read (r)")?;
            api::read(app, &org()?, id, disclosure).await
        }
        (Interaction::SearchType, None, _) => {
            require_system(caller, R, |p| p.s, "search (s)")?;
            api::search(app, &org()?, &req, disclosure).await
        }
        (Interaction::Update, Some(id), _) => {
            require_system(caller, R, |p| p.u, "update (u)")?;
            api::update(app, &org()?, id, &req, disclosure).await
        }
        (Interaction::Delete, Some(id), _) => {
            require_system(caller, R, |p| p.d, "delete (d)")?;
            api::delete(app, &org()?, id, disclosure).await
        }
        (Interaction::Operation, Some(id), Some("status")) => {
            require_system(caller, R, |p| p.r, "read (r)")?;
            api::status(app, &org()?, id, disclosure).await
        }
        _ => Err(FhirError::method_not_allowed(
            "Subscription supports create, read, search, update, delete and $status only",
        )),
    }
}

/// Milliseconds as a FHIR instant.
pub(crate) fn instant(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(crate::fhir::types::format_instant)
        .unwrap_or_else(|_| crate::fhir::now_instant())
}
