//! `GET /login/federated` and `GET /login/federated/callback`: the HTTP side
//! of federated sign-in (the protocol is in [`crate::federation`]).
//!
//! The pending request (`state`, `nonce`, PKCE verifier, `next`) is kept
//! server-side in the state store's `oauth_pending` table under
//! `fed:` + SHA-256 of a random id; the browser holds only that id in the
//! `fhirgate_federation` cookie (HttpOnly, SameSite=Lax so it comes back on
//! the provider's top-level redirect, Path=/login/federated, 10 minutes).
//! Keeping it in the state store makes it work across replicas sharing
//! PostgreSQL. The record is deleted when the callback arrives, whatever
//! the outcome, so each attempt is answered once. One attempt per browser
//! at a time: starting another replaces the first.
//!
//! Every failure is a readable error page (4xx; 502 when the provider is
//! unreachable) that never starts a session; the reason is logged without
//! tokens, codes or secrets.
//!
//! When `[federation] organization_claim` is set and the verified id_token
//! carries it, the local account's organization is updated to it before
//! the session starts (so the tokens issued to the user carry it).

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::{html_response, see_other, session, Fields, UiError};
use crate::{
    federation::{Ask, Federation, FederationError, Pending},
    AppState,
};

/// The cookie naming this browser's pending federated sign-in.
pub const FEDERATION_COOKIE: &str = "fhirgate_federation";
/// The cookie's path (start and callback both live under it).
const COOKIE_PATH: &str = "/login/federated";
/// How long a federated sign-in may take, seconds.
pub const PENDING_TTL: i64 = 600;

/// The sign-in page's button for `federation`, returning to `next`.
pub fn button(federation: &Federation, next: &str) -> ui::FederatedSignIn {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    ui::FederatedSignIn {
        label: federation.display_name().to_owned(),
        href: format!("/login/federated?next={next}"),
    }
}

/// A federated sign-in failure as a page.
#[derive(Debug)]
pub enum FederatedPageError {
    /// The protocol failed.
    Federation(FederationError),
    /// Anything else (state store, rendering): the generic 500 page.
    Ui(UiError),
}

impl From<FederationError> for FederatedPageError {
    fn from(e: FederationError) -> Self {
        Self::Federation(e)
    }
}

impl From<UiError> for FederatedPageError {
    fn from(e: UiError) -> Self {
        Self::Ui(e)
    }
}

/// Status and title of each protocol failure.
fn status_of(e: &FederationError) -> (StatusCode, &'static str) {
    match e {
        FederationError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "Sign-in unavailable"),
        FederationError::NoPending | FederationError::BadState | FederationError::MissingCode => {
            (StatusCode::BAD_REQUEST, "Sign-in failed")
        }
        FederationError::ProviderRefused(_)
        | FederationError::CodeExchange(_)
        | FederationError::InvalidIdToken(_)
        | FederationError::NoLocalUser => (StatusCode::FORBIDDEN, "Sign-in failed"),
    }
}

impl IntoResponse for FederatedPageError {
    fn into_response(self) -> Response {
        let e = match self {
            Self::Ui(e) => return e.into_response(),
            Self::Federation(e) => e,
        };
        tracing::warn!(reason = %e, "federated sign-in refused");
        let (status, title) = status_of(&e);
        let page = ui::ErrorPage {
            chrome: ui::Chrome::default(),
            status: status.as_u16(),
            title: title.to_owned(),
            message: e.public_message().to_owned(),
        };
        match ui::render(&page) {
            Ok(html) => html_response(status, html),
            Err(err) => UiError::internal(err).into_response(),
        }
    }
}

/// The state-store key of the pending sign-in named by cookie value `id`.
fn pending_key(id: &str) -> String {
    format!("fed:{}", ui::secrets::sha256_hex(id))
}

/// The cookie's `Set-Cookie` (`max_age` `0` clears it).
fn federation_cookie(app: &AppState, value: &str, max_age: i64) -> Result<HeaderValue, UiError> {
    session::set_cookie(app, FEDERATION_COOKIE, value, COOKIE_PATH, Some(max_age))
}

/// What a start URL asks the provider for: `acr_values` (space-separated),
/// `prompt=login`, `max_age` (seconds).
fn ask_of(q: &Fields) -> Result<Ask, UiError> {
    let max_age =
        match q.get("max_age").filter(|m| !m.is_empty()) {
            Some(m) => Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| {
                UiError::BadRequest("max_age must be a number of seconds.".into())
            })?),
            None => None,
        };
    Ok(Ask {
        acr_values: q
            .get("acr_values")
            .unwrap_or("")
            .split_whitespace()
            .take(8)
            .map(str::to_owned)
            .collect(),
        login: q.get("prompt") == Some("login"),
        max_age,
    })
}

/// The start URL that signs in again at the provider asking for `ask`,
/// then returns to `next`.
pub fn start_url(next: &str, ask: &Ask) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", session::safe_next(next));
    if !ask.acr_values.is_empty() {
        q.append_pair("acr_values", &ask.acr_values.join(" "));
    }
    if ask.login {
        q.append_pair("prompt", "login");
    }
    if let Some(m) = ask.max_age {
        q.append_pair("max_age", &m.to_string());
    }
    format!("/login/federated?{}", q.finish())
}

/// `GET /login/federated?next=…[&acr_values=…&prompt=login&max_age=…]`:
/// starts the flow and redirects to the provider.
pub async fn federated_start(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, FederatedPageError> {
    let Some(federation) = app.federation.clone() else {
        return Err(UiError::NotFound("Federated sign-in is not configured.".into()).into());
    };
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let next = session::safe_next(q.get("next").unwrap_or("/"));
    let (url, pending) = federation.begin(next, &ask_of(&q)?).await?;
    let id = session::new_secret();
    let record = serde_json::to_value(&pending).map_err(UiError::internal)?;
    app.state
        .pending_put(
            &pending_key(&id),
            &record,
            crate::oauth::now() + PENDING_TTL,
        )
        .await
        .map_err(UiError::internal)?;
    let mut res = see_other(url.as_str())?;
    res.headers_mut().append(
        header::SET_COOKIE,
        federation_cookie(&app, &id, PENDING_TTL)?,
    );
    Ok(res)
}

/// `GET /login/federated/callback?code&state` (or `?error`): finishes the
/// flow; on success starts a session exactly as the password sign-in does.
pub async fn federated_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let clear = federation_cookie(&app, "", 0);
    let mut res = match callback(&app, &headers, query.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Ok(c) = clear {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

async fn callback(
    app: &AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, FederatedPageError> {
    let Some(federation) = app.federation.clone() else {
        return Err(UiError::NotFound("Federated sign-in is not configured.".into()).into());
    };
    let pending = take_pending(app, headers).await?;
    let q = Fields::parse(query.as_bytes());
    let state_ok = q
        .get("state")
        .is_some_and(|s| ui::secrets::sha256_hex(s) == ui::secrets::sha256_hex(&pending.state));
    if !state_ok {
        return Err(FederationError::BadState.into());
    }
    if let Some(error) = q.get("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(FederationError::ProviderRefused(code).into());
    }
    let code = q
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or(FederationError::MissingCode)?;
    let identity = federation.complete(&pending, code).await?;
    let Some(mut user) = app
        .state
        .user_get(&identity.username)
        .await
        .map_err(UiError::internal)?
    else {
        return Err(FederationError::NoLocalUser.into());
    };
    // The provider's organization claim (`federation.organization_claim`)
    // is recorded in the directory, so the tokens issued to this user on
    // any replica carry it.
    if let Some(org) = identity
        .organization
        .filter(|o| user.organization.as_ref() != Some(o))
    {
        app.state
            .user_set_organization(&user.username, Some(&org))
            .await
            .map_err(UiError::internal)?;
        user.organization = Some(org);
    }
    // A fresh id on every sign-in (no session fixation); end any old one.
    if let Some(old) = session::current(app, headers).await? {
        app.state
            .session_delete(&old.id_hash())
            .await
            .map_err(UiError::internal)?;
    }
    let cookie = session::start(
        app,
        &user,
        crate::assurance::session::SOURCE_FEDERATED,
        &identity.assurance,
    )
    .await?;
    tracing::info!(
        role = %user.role,
        subject = %identity.subject,
        acr = identity.assurance.acr.as_deref().unwrap_or("-"),
        amr = %identity.assurance.amr.join(" "),
        "federated sign-in"
    );
    let mut res = see_other(session::safe_next(&pending.next))?;
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

/// The pending sign-in named by this browser's cookie, removed from the
/// store (single use).
async fn take_pending(app: &AppState, headers: &HeaderMap) -> Result<Pending, FederatedPageError> {
    let id = session::cookie(headers, FEDERATION_COOKIE)
        .filter(|c| session::well_formed(c))
        .ok_or(FederationError::NoPending)?;
    let key = pending_key(&id);
    let record = app
        .state
        .pending_get(&key, crate::oauth::now())
        .await
        .map_err(UiError::internal)?
        .ok_or(FederationError::NoPending)?;
    app.state
        .pending_delete(&key)
        .await
        .map_err(UiError::internal)?;
    serde_json::from_value(record).map_err(|e| UiError::internal(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_failures_are_client_errors_except_an_unreachable_provider() {
        let cases = [
            (FederationError::NoPending, 400),
            (FederationError::BadState, 400),
            (FederationError::MissingCode, 400),
            (
                FederationError::ProviderRefused("access_denied".into()),
                403,
            ),
            (FederationError::CodeExchange("invalid_grant".into()), 403),
            (FederationError::InvalidIdToken("Invalid nonce".into()), 403),
            (FederationError::NoLocalUser, 403),
            (FederationError::Unavailable("refused".into()), 502),
        ];
        for (e, status) in cases {
            assert_eq!(status_of(&e).0.as_u16(), status, "{e}");
        }
    }

    #[test]
    fn the_button_keeps_next_encoded() {
        let cfg = crate::config::FederationConfig {
            issuer: "https://op.example".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            display_name: "Sign in with Op".into(),
            scopes: vec!["openid".into()],
            username_claims: vec!["sub".into()],
            organization_claim: None,
        };
        let public = url::Url::parse("https://gw.example").unwrap();
        let f = Federation::new(&cfg, &public).unwrap();
        let b = button(&f, "/auth/continue?req=a&b=c");
        assert_eq!(b.label, "Sign in with Op");
        assert_eq!(
            b.href,
            "/login/federated?next=%2Fauth%2Fcontinue%3Freq%3Da%26b%3Dc"
        );
    }
}
