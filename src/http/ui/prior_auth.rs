//! `GET /admin/prior-auth`, `POST /admin/prior-auth/decide`: the
//! prior-authorization review queue (issue 7 item 2), for signed-in users
//! with the `admin` role only.
//!
//! The page lists the pended requests of `pa_requests`, oldest deadline
//! first, with the overdue ones flagged; each pended item has an Approve
//! form and a Deny form (the X12 reason code is required). Both post the
//! session's form token and go through `prior_auth::decide::decide`, the
//! one decision path. A refused transition (409) re-shows the queue with
//! the reason, an unknown request is a 404 page. Every decision attempt
//! carries a [`RouteNote`] naming the request, item and decision, so the
//! audit middleware's event for the POST says what was decided.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{page, session, session::SignedIn, Fields, UiError};
use crate::{
    audit::{auditor::now_ms, RouteNote},
    prior_auth::{
        adjudicate::instant,
        decide::{decide, Decision},
        review_store,
        state::ItemState,
        store::Record,
    },
    AppState,
};

/// Where the queue lives.
pub(super) const PATH: &str = "/admin/prior-auth";

/// Only administrators review requests.
pub(super) fn require_admin(signed: &SignedIn) -> Result<(), UiError> {
    if signed.user.role == "admin" {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "The prior-authorization review queue is for administrators. Sign in with an admin account to review requests."
                .into(),
        ))
    }
}

/// Every pended request, oldest deadline first.
async fn pended(app: &AppState) -> Result<Vec<Record>, UiError> {
    app.state.pa_pended().await.map_err(UiError::internal)
}

/// An item's state in words.
fn item_state(s: ItemState) -> &'static str {
    match s {
        ItemState::Pended => "pended",
        ItemState::Approved => "approved",
        ItemState::Denied => "denied",
        ItemState::NotRequired => "no authorization needed",
        ItemState::Cancelled => "cancelled",
    }
}

/// A request as the queue shows it at `now_ms`; `extended`: whether its
/// timeframe was extended.
fn row(rec: &Record, now_ms: i64, extended: bool) -> ui::PaRequestRow {
    ui::PaRequestRow {
        id: rec.id.clone(),
        patient: rec.patient_key.clone(),
        organization: rec
            .organization
            .clone()
            .unwrap_or_else(|| "none recorded".into()),
        client_id: rec.client_id.clone(),
        urgency: rec.urgency.as_str().to_owned(),
        received: instant(rec.received_ms),
        deadline: instant(rec.deadline_ms),
        overdue: rec.overdue(now_ms),
        extended,
        items: rec
            .items
            .iter()
            .map(|i| ui::PaItemRow {
                sequence: i.sequence,
                service: i.service.clone(),
                state: item_state(i.state).to_owned(),
                pended: i.state == ItemState::Pended,
                denied: i.state == ItemState::Denied,
            })
            .collect(),
    }
}

/// How many decided requests with denials the page offers appeals on.
const APPEALABLE: i64 = 25;

/// The queue page with `status`, a notice and an error.
pub(super) async fn queue_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, UiError> {
    let now = now_ms();
    let pended = pended(app).await?;
    let flags = review_store::flags(&app.state, &pended)
        .await
        .map_err(UiError::internal)?;
    let requests = pended
        .iter()
        .zip(flags)
        .map(|(r, (extended, _))| row(r, now, extended))
        .collect();
    let mut appealable = Vec::new();
    for id in review_store::appealable(&app.state, APPEALABLE)
        .await
        .map_err(UiError::internal)?
    {
        if let Some(r) = app.state.pa_get(&id).await.map_err(UiError::internal)? {
            appealable.push(row(&r, now, false));
        }
    }
    page(
        status,
        &ui::PriorAuthQueuePage {
            chrome: session::chrome(Some(signed)),
            requests,
            appealable,
            max_extension_days: app.config.prior_auth.max_extension_days,
            notice,
            error,
            csrf: signed.csrf(),
        },
    )
}

/// `GET /admin/prior-auth`.
pub async fn queue_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_admin(&signed)?;
    queue_page(&app, &signed, StatusCode::OK, None, None).await
}

/// The decision form as posted.
struct Posted {
    id: String,
    sequence: u32,
    decision: Decision,
    reason: Option<String>,
}

impl Posted {
    /// Reads the form, or says what is wrong with it.
    fn parse(f: &Fields) -> Result<Self, String> {
        let id = f.get("id").unwrap_or("").trim().to_owned();
        if id.is_empty() {
            return Err("The form names no request.".into());
        }
        let sequence = f
            .get("sequence")
            .and_then(|s| s.trim().parse().ok())
            .ok_or("The form names no item.")?;
        let decision = match f.get("decision") {
            Some("approve") => Decision::Approve,
            Some("deny") => Decision::Deny,
            _ => return Err("Choose Approve or Deny.".into()),
        };
        let reason = f
            .get("reason")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        if decision == Decision::Deny && reason.is_none() {
            return Err(format!(
                "A denial needs a reason: enter the X12 reason code for item {sequence} of request {id}."
            ));
        }
        Ok(Self {
            id,
            sequence,
            decision,
            reason,
        })
    }

    /// The decision in words (`approve`, `deny (reason 0U)`).
    fn words(&self) -> String {
        match (self.decision, &self.reason) {
            (Decision::Approve, _) => "approve".into(),
            (Decision::Deny, Some(r)) => format!("deny (reason {r})"),
            (Decision::Deny, None) => "deny".into(),
        }
    }
}

/// The route's audit note: the reviewer and what was decided about which
/// request.
pub(super) fn note(signed: &SignedIn, what: String) -> RouteNote {
    RouteNote {
        user: Some(signed.user.fhir_user.clone()),
        role: Some(signed.user.role.clone()),
        what: Some(what),
        ..RouteNote::default()
    }
}

/// A response with the route's audit note attached.
pub(super) fn noted(res: Result<Response, UiError>, n: RouteNote) -> Result<Response, UiError> {
    res.map(|mut r| {
        r.extensions_mut().insert(n);
        r
    })
}

/// `POST /admin/prior-auth/decide`: approves or denies one pended item.
pub async fn decide_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_admin(&signed)?;
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    if let Err(to_stepup) = super::mfa::require_stepup(&app, &signed, PATH).await? {
        return Ok(to_stepup);
    }
    let posted = match Posted::parse(&f) {
        Ok(p) => p,
        Err(why) => {
            let what = format!(
                "prior authorization decision refused: request {} item {}: {why}",
                f.get("id").unwrap_or("-"),
                f.get("sequence").unwrap_or("-"),
            );
            let res = queue_page(&app, &signed, StatusCode::BAD_REQUEST, None, Some(why)).await;
            return noted(res, note(&signed, what));
        }
    };
    let subject = format!(
        "prior authorization request {} item {}: {}",
        posted.id,
        posted.sequence,
        posted.words()
    );
    let reviewer = signed.user.username.clone();
    match decide(
        &app,
        &posted.id,
        &reviewer,
        posted.sequence,
        posted.decision,
        posted.reason.as_deref(),
    )
    .await
    {
        Ok(rec) => {
            tracing::info!(
                request = %rec.id,
                item = posted.sequence,
                decision = %posted.words(),
                by = %reviewer,
                "prior authorization decided on the review queue"
            );
            let notice = format!(
                "Request {} item {}: {} recorded; the request is now {}.",
                rec.id,
                posted.sequence,
                posted.words(),
                rec.state.as_str()
            );
            let res = queue_page(&app, &signed, StatusCode::OK, Some(notice), None).await;
            noted(res, note(&signed, format!("decided {subject}")))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let n = note(&signed, format!("decision refused (unknown) {subject}"));
            let page = UiError::NotFound(format!(
                "There is no prior-authorization request {}.",
                posted.id
            ))
            .into_response();
            noted(Ok(page), n)
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            let why = format!(
                "Request {} item {} could not be decided: {}.",
                posted.id, posted.sequence, e.message
            );
            let res = queue_page(&app, &signed, StatusCode::CONFLICT, None, Some(why)).await;
            noted(res, note(&signed, format!("decision refused {subject}")))
        }
        Err(e) => Err(UiError::internal(format!(
            "deciding {}: {} {}",
            posted.id,
            e.message,
            e.internal.unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let raw = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Fields::parse(raw.as_bytes())
    }

    #[test]
    fn the_form_is_read_and_a_denial_needs_a_reason() {
        let p = Posted::parse(&fields(&[
            ("id", "r1"),
            ("sequence", "2"),
            ("decision", "deny"),
            ("reason", " 0U "),
        ]))
        .ok()
        .map(|p| (p.sequence, p.words()));
        assert_eq!(p, Some((2, "deny (reason 0U)".to_owned())));
        let no_reason = Posted::parse(&fields(&[
            ("id", "r1"),
            ("sequence", "1"),
            ("decision", "deny"),
            ("reason", "  "),
        ]));
        assert!(no_reason.is_err_and(|e| e.starts_with("A denial needs a reason")));
        assert!(Posted::parse(&fields(&[("id", "r1"), ("decision", "approve")])).is_err());
        assert!(Posted::parse(&fields(&[("sequence", "1"), ("decision", "approve")])).is_err());
        assert!(Posted::parse(&fields(&[("id", "r1"), ("sequence", "1")])).is_err());
    }
}
