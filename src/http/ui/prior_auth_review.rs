//! `POST /admin/prior-auth/extend` and `POST /admin/prior-auth/appeal`:
//! the review queue's other two actions (issue 7 items 2 and 3), for
//! administrators only, with the session's form token. An extension moves a
//! pended request's deadline once, by up to `[prior_auth]
//! max_extension_days`, with a reason; an appeal pends a denied item again
//! with a fresh timeframe. Both go through `prior_auth::review` (the one
//! path, which records the action for the CMS-0057-F metrics); a refused
//! step (409) re-shows the queue with the reason, an unknown request is a
//! 404 page, and the POST's audit event names the request and the action.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    prior_auth::{note, noted, queue_page, require_admin, PATH},
    session, Fields, UiError,
};
use crate::{
    error::FhirResult,
    prior_auth::{review, store::Record},
    AppState,
};

/// The form's request id and reason, or what is missing.
fn id_and_reason(f: &Fields, what: &str) -> Result<(String, String), String> {
    let id = f.get("id").unwrap_or("").trim().to_owned();
    if id.is_empty() {
        return Err("The form names no request.".into());
    }
    let reason = f.get("reason").unwrap_or("").trim().to_owned();
    if reason.is_empty() {
        return Err(format!("{what} of request {id} needs a reason."));
    }
    Ok((id, reason))
}

/// What was asked of `review`.
enum Action {
    Extend { days: i64 },
    Appeal { sequence: u32 },
}

impl Action {
    fn words(&self) -> String {
        match self {
            Self::Extend { days } => format!("timeframe extended by {days} days"),
            Self::Appeal { sequence } => format!("appeal of item {sequence} recorded"),
        }
    }
}

/// Reads the posted form for `action`, runs it, and shows the queue.
async fn act(
    app: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    extend: bool,
) -> Result<Response, UiError> {
    let signed = match session::require(app, headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_admin(&signed)?;
    let f = Fields::parse(body);
    signed.check_csrf(f.get("csrf"))?;
    let what = if extend { "An extension" } else { "An appeal" };
    let parsed = id_and_reason(&f, what).and_then(|(id, reason)| {
        let action = if extend {
            let days = f
                .get("days")
                .and_then(|d| d.trim().parse().ok())
                .ok_or("Enter the number of days to extend by.")?;
            Action::Extend { days }
        } else {
            let sequence = f
                .get("sequence")
                .and_then(|s| s.trim().parse().ok())
                .ok_or("The form names no item.")?;
            Action::Appeal { sequence }
        };
        Ok((id, reason, action))
    });
    let (id, reason, action) = match parsed {
        Ok(p) => p,
        Err(why) => {
            let n = note(
                &signed,
                format!(
                    "prior authorization review action refused: request {}: {why}",
                    f.get("id").unwrap_or("-")
                ),
            );
            let res = queue_page(app, &signed, StatusCode::BAD_REQUEST, None, Some(why)).await;
            return noted(res, n);
        }
    };
    let subject = format!("prior authorization request {id}: {}", action.words());
    let who = signed.user.username.clone();
    let done: FhirResult<Record> = match action {
        Action::Extend { days } => review::extend(app, &id, &who, days, &reason).await,
        Action::Appeal { sequence } => review::appeal(app, &id, &who, sequence, &reason).await,
    };
    match done {
        Ok(rec) => {
            tracing::info!(request = %rec.id, action = %action.words(), by = %who, "prior authorization review action");
            let notice = format!(
                "Request {}: {}; the request is now {}, due {}.",
                rec.id,
                action.words(),
                rec.state.as_str(),
                crate::prior_auth::adjudicate::instant(rec.deadline_ms)
            );
            let res = queue_page(app, &signed, StatusCode::OK, Some(notice), None).await;
            noted(res, note(&signed, subject))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            let n = note(&signed, format!("refused (unknown) {subject}"));
            let page = UiError::NotFound(format!("There is no prior-authorization request {id}."))
                .into_response();
            noted(Ok(page), n)
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            let why = format!("Request {id}: {}.", e.message);
            let res = queue_page(app, &signed, StatusCode::CONFLICT, None, Some(why)).await;
            noted(res, note(&signed, format!("refused {subject}")))
        }
        Err(e) => Err(UiError::internal(format!(
            "{subject}: {} {}",
            e.message,
            e.internal.unwrap_or_default()
        ))),
    }
}

/// `POST /admin/prior-auth/extend`.
pub async fn extend_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    act(&app, &headers, &body, true).await
}

/// `POST /admin/prior-auth/appeal`.
pub async fn appeal_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    act(&app, &headers, &body, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_need_a_request_and_a_reason() {
        let f = |raw: &str| Fields::parse(raw.as_bytes());
        assert_eq!(
            id_and_reason(&f("id=r1&reason=+records+"), "An extension"),
            Ok(("r1".into(), "records".into()))
        );
        assert!(id_and_reason(&f("reason=x"), "An extension").is_err());
        let e = id_and_reason(&f("id=r1&reason=+"), "An appeal").unwrap_err();
        assert!(e.contains("needs a reason"), "{e}");
    }
}
