//! `GET|POST /login` and `POST /logout`: sign-in against the embedded user
//! directory (`StateStore::check_password`). A wrong user name and a wrong
//! password get the same 401 page, so the form does not tell which
//! accounts exist. Failed sign-ins are throttled per user name
//! ([`crate::throttle`], `[limits] signin_failure_limit`): once a name has
//! used up its failures, every sign-in with it (right password or not, an
//! account or not) gets the 429 page with `Retry-After` until the oldest
//! failure leaves the window; the failure that reaches the limit is logged
//! at `warn` and recorded on the audit ledger.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{page, see_other, session, Fields, UiError};
use crate::{
    audit::RouteNote,
    throttle::{self, Rule},
    AppState,
};

/// The route name the throttle alert is recorded under on the ledger.
pub const ALERT_ROUTE: &str = "signin-brute-force";

/// The one message for every failed sign-in.
pub const INVALID_CREDENTIALS: &str = "Invalid username or password";

/// Renders the form (setting the pre-session cookie if needed).
fn login_page(
    app: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Result<Response, UiError> {
    let (secret, set_cookie) = session::login_secret(app, headers)?;
    let next = session::safe_next(next);
    let form = ui::LoginPage {
        chrome: ui::Chrome::default(),
        next: next.to_owned(),
        csrf: ui::secrets::csrf_token(&secret, session::PURPOSE_LOGIN),
        username: username.to_owned(),
        error: error.map(str::to_owned),
        federation: app
            .federation
            .as_ref()
            .map(|f| super::federated::button(f, next)),
    };
    let mut res = page(status, &form)?;
    if let Some(c) = set_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}

/// `GET /login?next=…`.
pub async fn login_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    login_page(
        &app,
        &headers,
        StatusCode::OK,
        q.get("next").unwrap_or("/"),
        "",
        None,
    )
}

/// `POST /login`: checks the form token and the password, starts a session
/// and returns to `next` (local paths only).
pub async fn login_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = Fields::parse(&body);
    session::check_login_csrf(&headers, f.get("csrf"))?;
    let next = f.get("next").unwrap_or("/");
    let username = f.get("username").unwrap_or("").trim();
    let password = f.get("password").unwrap_or("");
    let key = username.to_lowercase();
    let rule = Rule::signin(&app);
    if let Some(secs) = throttle::blocked(&app, throttle::SIGNIN, &key, rule)
        .await
        .map_err(UiError::internal)?
    {
        tracing::info!("ui sign-in throttled");
        return throttled(&app, &headers, next, username, secs);
    }
    let user = if username.is_empty() || password.is_empty() {
        None
    } else {
        app.state
            .check_password(username, password)
            .await
            .map_err(UiError::internal)?
    };
    let Some(user) = user else {
        tracing::info!("ui sign-in refused");
        if !username.is_empty()
            && throttle::fail(&app, throttle::SIGNIN, &key, rule)
                .await
                .map_err(UiError::internal)?
        {
            alert(&app, &headers, rule).await?;
        }
        return login_page(
            &app,
            &headers,
            StatusCode::UNAUTHORIZED,
            next,
            username,
            Some(INVALID_CREDENTIALS),
        );
    };
    throttle::clear(&app, throttle::SIGNIN, &key)
        .await
        .map_err(UiError::internal)?;
    // A fresh id on every sign-in (no session fixation); end any old one.
    if let Some(old) = session::current(&app, &headers).await? {
        app.state
            .session_delete(&old.id_hash())
            .await
            .map_err(UiError::internal)?;
    }
    let assurance =
        crate::assurance::local_sign_in(&app.config, &user.username, crate::oauth::now());
    let cookie = session::start(
        &app,
        &user,
        crate::assurance::session::SOURCE_PASSWORD,
        &assurance,
    )
    .await?;
    tracing::info!(role = %user.role, "ui sign-in");
    let mut res = see_other(session::safe_next(next))?;
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

/// The 429 page of a throttled user name, with `Retry-After`.
fn throttled(
    app: &AppState,
    headers: &HeaderMap,
    next: &str,
    username: &str,
    secs: u64,
) -> Result<Response, UiError> {
    let msg = format!(
        "Too many failed sign-ins for this user name. {}",
        super::try_again_in(secs)
    );
    let res = login_page(
        app,
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        next,
        username,
        Some(&msg),
    )?;
    Ok(super::with_retry_after(res, secs))
}

/// The brute-force alert: a warning in the log and an event on the ledger
/// (no user name in either).
async fn alert(app: &AppState, headers: &HeaderMap, rule: Rule) -> Result<(), UiError> {
    let secs = rule.window_ms / 1000;
    tracing::warn!(
        failures = rule.limit,
        window_seconds = secs,
        "possible sign-in brute force: a user name reached the failed sign-in limit"
    );
    let note = RouteNote {
        what: Some(format!(
            "sign-in brute-force alert: {} failed sign-ins for one user name within {secs}s",
            rule.limit
        )),
        ..RouteNote::default()
    };
    throttle::record_alert(
        app,
        &super::request_id(headers),
        "/login",
        ALERT_ROUTE,
        &note,
    )
    .await
    .map_err(UiError::internal)?;
    Ok(())
}

/// `POST /logout`: ends the session (form token required) and clears the cookie.
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let f = Fields::parse(&body);
    if let Some(s) = session::current(&app, &headers).await? {
        s.check_csrf(f.get("csrf"))?;
        app.state
            .session_delete(&s.id_hash())
            .await
            .map_err(UiError::internal)?;
    }
    let clear = session::set_cookie(&app, session::SESSION_COOKIE, "", "/", Some(0))?;
    let mut res = see_other("/")?.into_response();
    res.headers_mut().append(header::SET_COOKIE, clear);
    Ok(res)
}
