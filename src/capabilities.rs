//! `GET /fhir/metadata` (public, no token): the CapabilityStatement of
//! this instance, built by the `capability` crate from what is enabled
//! here. This module only gathers the inputs:
//!
//! - the store's own capability: the embedded store's (from its
//!   search-parameter table) or the HTTP upstream's statement, both asked
//!   through `Upstream::execute` so the two paths are one;
//! - what fhirgate forwards to the store ([`forwarding`]): the interactions
//!   its request parser forwards (`patch` is refused, 405) and every search
//!   parameter but `_format` (content negotiation, dropped before the
//!   upstream by `upstream::http::request`); canonicals on the upstream's
//!   own address are withheld (its address never reaches a client);
//! - the features that route local operations and types ([`features`]);
//! - the profiles advertised ([`profiles`], the one place to plug the
//!   profiles catalog in);
//! - the SMART security block, UDAP when `[udap]` is on, the date
//!   ([`date`]) and the version.
//!
//! `?mode=full|normative` select the statement; `mode=terminology` (or any
//! other value) is a 400 `not-supported` OperationOutcome.

use std::sync::OnceLock;

use axum::http::StatusCode;
use capability::{embedded, smart, Features, Forwarding, Inputs, Mode, Rest};

use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{FhirRequest, FhirResponse, Interaction},
    prior_auth::version::PasVersion,
    AppState,
};

/// Answers the capabilities interaction.
pub async fn statement(
    app: &AppState,
    req: &FhirRequest,
    request_id: &str,
) -> FhirResult<FhirResponse> {
    let asked = req
        .params
        .iter()
        .rev()
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.as_str());
    let mode = Mode::parse(asked)
        .map_err(|m| FhirError::new(StatusCode::BAD_REQUEST, IssueType::NotSupported, m))?;
    let ctx = app.request_context(request_id);
    let own = app
        .upstream
        .execute(&FhirRequest::new(Interaction::Capabilities), &ctx)
        .await?;
    let store = own
        .body
        .as_ref()
        .map(Rest::from_statement)
        .unwrap_or_default();
    let pas = PasVersion::parse(&app.config.prior_auth.pas_version).map_err(FhirError::internal)?;
    let profiles = profiles(pas);
    let upstream = app
        .config
        .upstream
        .url
        .as_ref()
        .map(crate::upstream::http::UpstreamBase::new);
    let private = |canonical: &str| {
        upstream
            .as_ref()
            .is_some_and(|u| u.rewrite_value(canonical, &ctx.base).is_some())
    };
    let fw = forwarding(&private);
    let uris = smart::OAuthUris::under(app.config.public_url.as_str(), &ctx.base);
    let store_name = match app.upstream.name() {
        "embedded" => "embedded store",
        _ => "HTTP upstream",
    };
    let body = capability::build(&Inputs {
        base: &ctx.base,
        software_version: env!("CARGO_PKG_VERSION"),
        date: date(),
        store_name,
        store: &store,
        forwarding: &fw,
        features: features(app),
        pas_version: pas_ig_version(pas),
        profiles: &profiles,
        security: smart::security(&uris),
        mode,
    });
    Ok(FhirResponse::ok(body))
}

/// What is switched on. Bulk Data, PAS, the payer APIs, DTR, PAS
/// subscriptions and the AuditEvent read-back have no on/off setting: the
/// route stage (`pipeline::handle_as`) always routes them, so they are
/// always declared. UDAP follows `[udap]` (`AppState::udap`).
pub fn features(app: &AppState) -> Features {
    Features {
        bulk_export: true,
        prior_auth: true,
        payer: true,
        dtr: true,
        // `$validate`, type and instance level (`crate::validation`)
        validate: true,
        subscriptions: true,
        audit_read: true,
        udap: app.udap.is_some(),
    }
}

/// Only `_format` is kept from the store (see the module docs).
fn passes_param(_rtype: &str, name: &str) -> bool {
    name != "_format"
}

/// What fhirgate forwards to the store: the interactions `fhir::request`
/// parses (every R4 interaction but `patch`, which is 405) and the search
/// parameters of [`passes_param`]; `private` tells canonicals on the HTTP
/// upstream's address (never shown to clients, as `upstream::http::rewrite`
/// guarantees for answers).
pub fn forwarding<'a>(private: &'a dyn Fn(&str) -> bool) -> Forwarding<'a> {
    Forwarding {
        type_interactions: embedded::TYPE_INTERACTIONS,
        system_interactions: embedded::SYSTEM_INTERACTIONS,
        passes_param: &passes_param,
        private_canonical: private,
    }
}

/// The `supportedProfile` list: `(resource type, canonical)`: every
/// profile of the `profiles` catalog (US Core 6.1, CARIN BB 2.0, HRex;
/// what `$validate` checks, by `profile` or `meta.profile`), with the PAS
/// profiles of the configured version (which `Claim/$submit` and
/// `Claim/$inquire` enforce) instead of the catalog's PAS 2.0.1 set.
pub fn profiles(pas: PasVersion) -> Vec<(String, String)> {
    let is_pas = |p: &profiles::Profile| {
        p.ig.as_deref()
            .is_some_and(|ig| ig.starts_with("hl7.fhir.us.davinci-pas#"))
    };
    profiles::catalog()
        .all()
        .iter()
        .filter(|p| !is_pas(p))
        .chain(pas.profiles().all())
        .map(|p| (p.resource_type.clone(), p.url.clone()))
        .collect()
}

/// The PAS IG package version answered.
fn pas_ig_version(pas: PasVersion) -> &'static str {
    match pas {
        PasVersion::V2_0_1 => "2.0.1",
        PasVersion::V2_2 => "2.2.1",
    }
}

/// `date`: when the running binary was built (its file's modification
/// time), else when this process first answered `metadata`. Never a
/// constant.
pub fn date() -> &'static str {
    static DATE: OnceLock<String> = OnceLock::new();
    DATE.get_or_init(|| {
        std::env::current_exe()
            .and_then(std::fs::metadata)
            .and_then(|m| m.modified())
            .map(|t| crate::fhir::types::format_instant(time::OffsetDateTime::from(t)))
            .unwrap_or_else(|_| crate::fhir::now_instant())
    })
}
