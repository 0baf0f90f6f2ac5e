//! Second factor pages and the step-up gate (issue 11), for signed-in
//! users of the embedded directory:
//!
//! - `GET /account/security`: whether an authenticator app is set up, and
//!   the button to set one up (or replace it).
//! - `POST /account/security/totp`: a fresh TOTP secret (sealed in the
//!   state store, unconfirmed) shown as a QR code and as text.
//! - `POST /account/security/totp/confirm`: the first code from the app
//!   confirms it; ten recovery codes are then shown once.
//! - `GET|POST /stepup?next=…`: a TOTP code (or a recovery code) recorded
//!   as a step-up of this session, then back to `next`.
//!
//! [`require_stepup`] is the gate sensitive operations call: with `[mfa]
//! stepup = "required"` a session without a step-up in the last
//! `stepup_max_age_seconds` is sent to `/stepup` (and back afterwards).
//! Wrong codes count against the user (`[mfa] code_failure_limit` in the
//! window, then 429 with `Retry-After`), a code already accepted is refused
//! (replay), and each enrollment, confirmation and step-up is a route event
//! on the audit ledger (the user, the factor; never a code or secret).

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{page, see_other, session, session::SignedIn, Fields, UiError};
use crate::{
    audit::RouteNote,
    mfa::{config::StepUp, recovery, store, totp},
    throttle::{self, Rule},
    AppState,
};

/// The step-up page.
pub const STEPUP_PATH: &str = "/stepup";
/// The second factor page.
pub const SECURITY_PATH: &str = "/account/security";
/// Throttle kind of wrong codes, keyed by user name.
const CODE_KIND: &str = "mfa-code";

fn now_secs() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

fn code_rule(app: &AppState) -> Rule {
    let m = &app.config.mfa;
    Rule::new(m.code_failure_limit, m.code_failure_window_seconds)
}

/// The route's audit note: the user, and what they did.
fn note(signed: &SignedIn, what: &str) -> RouteNote {
    RouteNote {
        user: Some(signed.user.fhir_user.clone()),
        role: Some(signed.user.role.clone()),
        what: Some(what.to_owned()),
        ..RouteNote::default()
    }
}

fn noted(mut res: Response, n: RouteNote) -> Response {
    res.extensions_mut().insert(n);
    res
}

async fn enrolled(app: &AppState, username: &str) -> Result<bool, UiError> {
    Ok(store::totp_get(&app.state, username)
        .await
        .map_err(UiError::internal)?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// The factor of the session's step-up within `[mfa]
/// stepup_max_age_seconds`, if there is one.
pub async fn fresh_step_up(app: &AppState, signed: &SignedIn) -> Result<Option<String>, UiError> {
    let max_age = i64::try_from(app.config.mfa.stepup_max_age_seconds)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    store::stepup_fresh(&app.state, &signed.id_hash(), max_age)
        .await
        .map_err(UiError::internal)
}

/// `Err(redirect)` to the step-up page (then back to `here`) when
/// `[mfa] stepup = "required"` and the session has no fresh step-up.
pub async fn require_stepup(
    app: &AppState,
    signed: &SignedIn,
    here: &str,
) -> Result<Result<(), Response>, UiError> {
    if app.config.mfa.stepup == StepUp::Off || fresh_step_up(app, signed).await?.is_some() {
        return Ok(Ok(()));
    }
    let next: String =
        url::form_urlencoded::byte_serialize(session::safe_next(here).as_bytes()).collect();
    Ok(Err(see_other(&format!("{STEPUP_PATH}?next={next}"))?))
}

async fn security_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    enrolling: Option<ui::Enrollment>,
    recovery_codes: Vec<String>,
    error: Option<String>,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    let recovery_left = store::recovery_left(&app.state, username)
        .await
        .map_err(UiError::internal)?;
    let p = ui::SecurityPage {
        chrome: session::chrome(Some(signed)),
        csrf: signed.csrf(),
        enrolled: enrolled(app, username).await?,
        recovery_left,
        enrolling,
        recovery_codes,
        error,
    };
    page(status, &p)
}

/// `GET /account/security`.
pub async fn security_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, SECURITY_PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    security_page(&app, &signed, StatusCode::OK, None, Vec::new(), None).await
}

fn enrollment(app: &AppState, username: &str, secret: &[u8]) -> Result<ui::Enrollment, UiError> {
    let uri = totp::otpauth_uri(&app.config.mfa.issuer, username, secret);
    let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(UiError::internal)?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    // inline in HTML: the element only, without the XML declaration
    let qr_svg = svg
        .find("<svg")
        .map_or(svg.clone(), |i| svg[i..].to_owned());
    let b32 = totp::base32(secret);
    let grouped = b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(ui::Enrollment {
        qr_svg,
        secret: grouped,
    })
}

/// `POST /account/security/totp`: starts (or restarts) enrollment.
pub async fn totp_begin(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, SECURITY_PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    let username = signed.user.username.clone();
    // Replacing a working authenticator is itself sensitive.
    if enrolled(&app, &username).await? {
        if let Err(to_stepup) = require_stepup(&app, &signed, SECURITY_PATH).await? {
            return Ok(to_stepup);
        }
    }
    let secret = totp::new_secret();
    let sealed = app
        .mfa_secrets
        .seal(&username, &secret)
        .map_err(UiError::internal)?;
    store::totp_begin(&app.state, &username, &sealed)
        .await
        .map_err(UiError::internal)?;
    let e = enrollment(&app, &username, &secret)?;
    let res = security_page(&app, &signed, StatusCode::OK, Some(e), Vec::new(), None).await?;
    Ok(noted(
        res,
        note(&signed, "authenticator enrollment started"),
    ))
}

/// A code checked for `signed`: `Ok(Some(factor))` when accepted, `Ok(None)`
/// when wrong (counted), `Err(secs)` when the user is throttled.
async fn check_code(
    app: &AppState,
    signed: &SignedIn,
    typed: &str,
    allow_recovery: bool,
) -> Result<Result<Option<&'static str>, u64>, UiError> {
    let username = &signed.user.username;
    let rule = code_rule(app);
    if let Some(secs) = throttle::blocked(app, CODE_KIND, username, rule)
        .await
        .map_err(UiError::internal)?
    {
        return Ok(Err(secs));
    }
    let mut factor = None;
    if let Some(t) = store::totp_get(&app.state, username)
        .await
        .map_err(UiError::internal)?
    {
        let secret = app
            .mfa_secrets
            .open(username, &t.sealed)
            .map_err(UiError::internal)?;
        let last = t.last_step.and_then(|s| u64::try_from(s).ok());
        if let Some(step) = totp::verify(&secret, typed, now_secs(), 1, last) {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            if store::totp_accept(&app.state, username, step)
                .await
                .map_err(UiError::internal)?
            {
                factor = Some("totp");
            }
        }
    }
    if factor.is_none() && allow_recovery {
        if let Some(d) = recovery::digest(typed) {
            if store::recovery_use(&app.state, username, &d)
                .await
                .map_err(UiError::internal)?
            {
                factor = Some("recovery code");
            }
        }
    }
    if factor.is_some() {
        throttle::clear(app, CODE_KIND, username)
            .await
            .map_err(UiError::internal)?;
    } else {
        throttle::fail(app, CODE_KIND, username, rule)
            .await
            .map_err(UiError::internal)?;
    }
    Ok(Ok(factor))
}

fn too_many(secs: u64) -> String {
    format!("Too many wrong codes. {}", super::try_again_in(secs))
}

/// `POST /account/security/totp/confirm`: the first code confirms the
/// authenticator; recovery codes are issued and shown once.
pub async fn totp_confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, SECURITY_PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    let username = signed.user.username.clone();
    let Some(t) = store::totp_get(&app.state, &username)
        .await
        .map_err(UiError::internal)?
        .filter(|t| t.confirmed_at.is_none())
    else {
        return see_other(SECURITY_PATH);
    };
    let again = |app: &AppState| -> Result<ui::Enrollment, UiError> {
        let secret = app
            .mfa_secrets
            .open(&username, &t.sealed)
            .map_err(UiError::internal)?;
        enrollment(app, &username, &secret)
    };
    match check_code(&app, &signed, f.get("code").unwrap_or(""), false).await? {
        Err(secs) => {
            let e = again(&app)?;
            let res = security_page(
                &app,
                &signed,
                StatusCode::TOO_MANY_REQUESTS,
                Some(e),
                Vec::new(),
                Some(too_many(secs)),
            )
            .await?;
            Ok(super::with_retry_after(res, secs))
        }
        Ok(None) => {
            let e = again(&app)?;
            security_page(
                &app,
                &signed,
                StatusCode::UNAUTHORIZED,
                Some(e),
                Vec::new(),
                Some(
                    "That code is not right. Check the time on your device and try the next code."
                        .into(),
                ),
            )
            .await
        }
        Ok(Some(_)) => {
            let codes = recovery::generate();
            let digests: Vec<String> = codes.iter().filter_map(|c| recovery::digest(c)).collect();
            store::recovery_set(&app.state, &username, &digests)
                .await
                .map_err(UiError::internal)?;
            // Enrolling proves the factor: it counts as a step-up too.
            store::stepup_record(&app.state, &signed.id_hash(), "totp")
                .await
                .map_err(UiError::internal)?;
            let res = security_page(&app, &signed, StatusCode::OK, None, codes, None).await?;
            Ok(noted(res, note(&signed, "authenticator enrolled")))
        }
    }
}

async fn stepup_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    next: &str,
    error: Option<String>,
) -> Result<Response, UiError> {
    let p = ui::StepUpPage {
        chrome: session::chrome(Some(signed)),
        csrf: signed.csrf(),
        next: session::safe_next(next).to_owned(),
        enrolled: enrolled(app, &signed.user.username).await?,
        error,
    };
    page(status, &p)
}

/// `GET /stepup?next=…`.
pub async fn stepup_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let q = Fields::parse(query.unwrap_or_default().as_bytes());
    let next = q.get("next").unwrap_or("/").to_owned();
    let here = format!(
        "{STEPUP_PATH}?next={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let signed = match session::require(&app, &headers, &here).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    stepup_page(&app, &signed, StatusCode::OK, &next, None).await
}

/// `POST /stepup`: checks the code, records the step-up, back to `next`.
pub async fn stepup_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, STEPUP_PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    let f = Fields::parse(&body);
    signed.check_csrf(f.get("csrf"))?;
    let next = f.get("next").unwrap_or("/");
    match check_code(&app, &signed, f.get("code").unwrap_or(""), true).await? {
        Err(secs) => {
            let res = stepup_page(
                &app,
                &signed,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                Some(too_many(secs)),
            )
            .await?;
            Ok(super::with_retry_after(res, secs))
        }
        Ok(None) => {
            let res = stepup_page(
                &app,
                &signed,
                StatusCode::UNAUTHORIZED,
                next,
                Some(
                    "That code is not right, or it was used already. Wait for the next code."
                        .into(),
                ),
            )
            .await?;
            Ok(noted(res, note(&signed, "step-up refused")))
        }
        Ok(Some(factor)) => {
            store::stepup_record(&app.state, &signed.id_hash(), factor)
                .await
                .map_err(UiError::internal)?;
            let res = see_other(session::safe_next(next))?;
            Ok(noted(res, note(&signed, &format!("step-up with {factor}"))))
        }
    }
}
