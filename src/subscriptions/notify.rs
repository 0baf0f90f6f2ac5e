//! What is sent when: the handshake (synchronous, once, when a
//! subscription is created or re-requested) and event notifications
//! (asynchronous, with retries, when a PAS request changes). Every status
//! change goes through [`super::state::transition`] and a compare-and-set in the
//! store.

use std::time::Duration;

use super::{
    delivery::{self, Target},
    instant,
    model::{self, Spec},
    notification::{self, About, Event, Kind},
    state::{transition, Event as Ev, Status},
    store::Stored,
};
use crate::{prior_auth::store::Record, AppState};

fn target(app: &AppState, spec: &Spec) -> Target {
    Target {
        endpoint: spec.endpoint.clone(),
        headers: spec.headers.clone(),
        allow_private: app.config.subscriptions.allow_private_endpoints,
    }
}

/// Sends the handshake for a subscription just stored as `requested` and
/// records the outcome (`active` on 2xx, `error` with the reason
/// otherwise). Only a store failure is an `Err`.
pub async fn handshake(app: &AppState, s: &Stored, spec: &Spec) -> Result<(), sqlx::Error> {
    let now = crate::audit::auditor::now_ms();
    if let Some(why) = unserved(app, spec) {
        // PAS 2.2 serves full-resource subscriptions only: no handshake
        let to = transition(Status::Requested, Ev::HandshakeFailed);
        if let Ok(Some(to)) = to {
            let changed = app
                .state
                .sub_transition(&s.id, s.version, (Status::Requested, to), Some(why), now)
                .await?;
            tracing::info!(subscription = %s.id, status = to.as_str(), changed, reason = why, "PAS subscription refused");
        }
        return Ok(());
    }
    let base = app.config.fhir_base();
    let about = About {
        base: &base,
        id: &s.id,
        status: Status::Requested,
        events_since_start: s.events,
        content: spec.content,
        error: None,
    };
    let body = notification::bundle(&about, Kind::Handshake, None, &instant(now));
    let timeout = app.config.subscriptions.timeout();
    let sent = delivery::post(&target(app, spec), &body, timeout).await;
    let (event, error) = match &sent {
        Ok(()) => (Ev::HandshakeOk, None),
        Err(why) => (
            Ev::HandshakeFailed,
            Some(format!("handshake failed: {why}")),
        ),
    };
    if let Ok(Some(to)) = transition(Status::Requested, event) {
        let done = crate::audit::auditor::now_ms();
        let changed = app
            .state
            .sub_transition(
                &s.id,
                s.version,
                (Status::Requested, to),
                error.as_deref(),
                done,
            )
            .await?;
        tracing::info!(subscription = %s.id, status = to.as_str(), changed, "PAS subscription handshake");
    }
    Ok(())
}

/// A PAS request changed (pended by `$submit`, or decided): notify the
/// active subscriptions of its organization whose filter matches its
/// provider. Returns at once; delivery runs in the background and never
/// fails the caller.
pub fn pas_event(app: &AppState, rec: &Record) {
    let Some(org) = rec.organization.clone() else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(request = %rec.id, "no runtime: PAS subscription notifications not sent");
        return;
    };
    let app = app.clone();
    let provider = rec.provider_key.clone();
    let (focus_url, focus) = app.config.prior_auth.pas_version().notification_focus(
        rec,
        &app.config.fhir_base(),
        &instant(crate::audit::auditor::now_ms()),
    );
    let id = rec.id.clone();
    rt.spawn(async move {
        if let Err(e) = fan_out(&app, &org, &provider, &focus_url, &focus).await {
            tracing::warn!(request = %id, error = %e, "PAS subscription notifications not sent");
        }
    });
}

async fn fan_out(
    app: &AppState,
    org: &str,
    provider_key: &str,
    focus_url: &str,
    focus: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let base = app.config.fhir_base();
    for s in app.state.sub_of_org_in(org, Status::Active).await? {
        let Ok(spec) = model::parse(&s.resource) else {
            continue;
        };
        if !spec.matches(provider_key) {
            continue;
        }
        if let Some(why) = unserved(app, &spec) {
            // e.g. an id-only subscription made before the switch to PAS 2.2
            let now = crate::audit::auditor::now_ms();
            if let Ok(Some(to)) = transition(Status::Active, Ev::DeliveryFailed) {
                let saved = app
                    .state
                    .sub_transition(&s.id, s.version, (Status::Active, to), Some(why), now)
                    .await;
                if let Err(e) = saved {
                    tracing::warn!(subscription = %s.id, error = %e, "PAS subscription status not saved");
                }
            }
            continue;
        }
        let Some(number) = app.state.sub_next_event(&s.id).await? else {
            continue;
        };
        let now = instant(crate::audit::auditor::now_ms());
        let event = Event {
            number,
            timestamp: now.clone(),
            focus_url: focus_url.to_owned(),
            focus: focus.clone(),
        };
        let about = About {
            base: &base,
            id: &s.id,
            status: Status::Active,
            events_since_start: number,
            content: spec.content,
            error: None,
        };
        let body = notification::bundle(&about, Kind::EventNotification, Some(&event), &now);
        let app = app.clone();
        let target = target(&app, &spec);
        tokio::spawn(async move { deliver(&app, &s, &target, &body).await });
    }
    Ok(())
}

/// Why a subscription is not served by the PAS version answered (PAS 2.2:
/// "PAS Clients and Intermediaries SHALL only support subscriptions with
/// content='full-resource'"; see `prior_auth::version`), if it is not.
fn unserved(app: &AppState, spec: &Spec) -> Option<&'static str> {
    (app.config.prior_auth.pas_version().full_resource_only()
        && spec.content != model::Content::FullResource)
        .then_some("PAS 2.2 serves only subscriptions with payload content full-resource")
}

/// Delivers one event notification with retries; on total failure the
/// subscription goes `active` → `error` (unless it changed meanwhile).
async fn deliver(app: &AppState, s: &Stored, target: &Target, body: &serde_json::Value) {
    let cfg = &app.config.subscriptions;
    let sent = delivery::post_with_retries(
        target,
        body,
        cfg.timeout(),
        cfg.attempts,
        Duration::from_millis(cfg.retry_delay_ms),
    )
    .await;
    let event = if sent.is_ok() {
        Ev::Delivered
    } else {
        Ev::DeliveryFailed
    };
    let Ok(Some(to)) = transition(Status::Active, event) else {
        return;
    };
    if let Err(why) = sent {
        let why = format!(
            "event notification failed after {} attempts: {why}",
            cfg.attempts.max(1)
        );
        let now = crate::audit::auditor::now_ms();
        match app
            .state
            .sub_transition(&s.id, s.version, (Status::Active, to), Some(&why), now)
            .await
        {
            Ok(changed) => {
                tracing::warn!(subscription = %s.id, changed, reason = %why, "PAS subscription delivery failed")
            }
            Err(e) => {
                tracing::warn!(subscription = %s.id, error = %e, "PAS subscription status not saved")
            }
        }
    }
}
