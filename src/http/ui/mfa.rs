//! Second factor pages and the step-up gate (issue 11), for signed-in
//! users of the embedded directory:
//!
//! - `GET /account/security`: whether an authenticator app is set up, and
//!   the button to set one up (or replace it).
//! - `POST /account/security/totp`: a fresh TOTP secret (sealed in the
//!   state store, pending) shown as a QR code and as text. An authenticator
//!   already set up (and its recovery codes) keeps working until the new
//!   one is confirmed.
//! - `POST /account/security/totp/confirm`: the first code from the app
//!   confirms it (replacing the old one); ten recovery codes are then shown
//!   once.
//! - `POST /account/security/phone` (with `[mfa.twilio]`): `phone` and
//!   `send=sms|call` send a code to a number through Twilio Verify; `code`
//!   confirms it, and the number becomes the user's phone for SMS and voice
//!   codes (stored sealed; pages show its last two digits only); `cancel`
//!   forgets a number not confirmed.
//! - `GET|POST /stepup?next=…`: a TOTP code (or a recovery code), or with a
//!   phone on file a code sent by SMS or voice call (`send=sms|call`, then
//!   `factor=phone` and `code`), recorded as a step-up of this session
//!   (factor `totp`, `recovery code`, `sms` or `call`), then back to `next`.
//!
//! [`require_stepup`] is the gate sensitive operations call: with `[mfa]
//! stepup = "required"` a session without a step-up in the last
//! `stepup_max_age_seconds` is sent to `/stepup` (and back afterwards).
//! Wrong codes count against the user (`[mfa] code_failure_limit` in the
//! window, then 429 with `Retry-After`), whatever the factor, and so do
//! codes sent by SMS or voice (a separate count, same limit); a code already
//! accepted is refused (replay), and each enrollment, confirmation and
//! step-up is a route event on the audit ledger (the user, the factor;
//! never a code, secret or phone number). Twilio's refusals (too many
//! attempts, an expired code, a number it does not take, an outage) are
//! pages saying so, with the other factors still offered.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{page, see_other, session, session::SignedIn, Fields, UiError};
use crate::{
    audit::RouteNote,
    mfa::{
        config::StepUp,
        phone, recovery,
        store::{self, PhonePurpose},
        totp,
        twilio::{Channel, Check, Verifier, VerifyError},
    },
    throttle::{self, Rule},
    AppState,
};

/// The step-up page.
pub const STEPUP_PATH: &str = "/stepup";
/// The second factor page.
pub const SECURITY_PATH: &str = "/account/security";
/// The phone page.
pub const PHONE_PATH: &str = "/account/security/phone";
/// Throttle kind of wrong codes, keyed by user name.
const CODE_KIND: &str = "mfa-code";
/// Throttle kind of codes sent by SMS or voice, keyed by user name.
const SEND_KIND: &str = "mfa-send";
/// How long a code sent by SMS or voice can be checked (Twilio Verify's
/// default lifetime of a verification).
const PHONE_CODE_MAX_AGE_MS: i64 = 10 * 60 * 1000;

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

/// An authenticator app is set up (confirmed).
async fn enrolled(app: &AppState, username: &str) -> Result<bool, UiError> {
    Ok(store::totp_get(&app.state, username)
        .await
        .map_err(UiError::internal)?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// A phone number opened from its sealed form.
fn open_phone(app: &AppState, username: &str, sealed: &str) -> Result<String, UiError> {
    let raw = app
        .mfa_secrets
        .open(&store::phone_aad(username), sealed)
        .map_err(UiError::internal)?;
    String::from_utf8(raw).map_err(UiError::internal)
}

/// The user's confirmed phone, sealed and opened, when SMS and voice codes
/// are offered (`[mfa.twilio]`).
async fn usable_phone(app: &AppState, username: &str) -> Result<Option<(String, String)>, UiError> {
    if app.config.mfa.twilio.is_none() {
        return Ok(None);
    }
    let Some(sealed) = store::phone_get(&app.state, username)
        .await
        .map_err(UiError::internal)?
    else {
        return Ok(None);
    };
    let number = open_phone(app, username, &sealed)?;
    Ok(Some((sealed, number)))
}

/// The user can step up now (an authenticator app, or a usable phone).
pub async fn has_factor(app: &AppState, username: &str) -> Result<bool, UiError> {
    Ok(enrolled(app, username).await? || usable_phone(app, username).await?.is_some())
}

/// The verifier `[mfa.twilio]` configures; `None` when not configured.
fn verifier(app: &AppState) -> Option<Result<Verifier, VerifyError>> {
    app.config.mfa.twilio.as_ref().map(Verifier::from_config)
}

/// What a page says to a channel: `sms` → "text message".
fn channel_words(channel: &str) -> String {
    match channel {
        "call" => "voice call".to_owned(),
        _ => "text message".to_owned(),
    }
}

/// The status and words of a page for a failure of the code provider
/// (logged without the provider's message, which may quote the number).
fn provider_trouble(e: &VerifyError) -> (StatusCode, String) {
    match e {
        VerifyError::TooMany => {
            tracing::warn!("twilio verify: too many attempts");
            (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many codes were sent to or tried for this phone number. Wait ten minutes \
                 and try again, or use another way to confirm it is you."
                    .to_owned(),
            )
        }
        VerifyError::Refused { status, code, .. } => {
            tracing::warn!(status, code, "twilio verify: refused");
            if *status == 400 {
                (
                    StatusCode::BAD_REQUEST,
                    "That phone number was not accepted for SMS or voice codes.".to_owned(),
                )
            } else {
                (
                    StatusCode::BAD_GATEWAY,
                    "The SMS and voice code service refused the request. Try again later, or \
                     use another way to confirm it is you."
                        .to_owned(),
                )
            }
        }
        VerifyError::Unavailable(detail) => {
            tracing::warn!(detail = %detail, "twilio verify: unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The SMS and voice code service is unavailable right now. Try again later, or \
                 use another way to confirm it is you."
                    .to_owned(),
            )
        }
    }
}

/// `Some(seconds to wait)` when the user has used up their wrong codes.
async fn code_blocked(app: &AppState, username: &str) -> Result<Option<u64>, UiError> {
    throttle::blocked(app, CODE_KIND, username, code_rule(app))
        .await
        .map_err(UiError::internal)
}

/// Counts a wrong code, or clears the count after a right one.
async fn settle(app: &AppState, username: &str, right: bool) -> Result<(), UiError> {
    if right {
        throttle::clear(app, CODE_KIND, username)
            .await
            .map_err(UiError::internal)
    } else {
        throttle::fail(app, CODE_KIND, username, code_rule(app))
            .await
            .map(|_| ())
            .map_err(UiError::internal)
    }
}

/// `Some(seconds to wait)` when the user may not have another code sent;
/// else counts this send.
async fn send_blocked(app: &AppState, username: &str) -> Result<Option<u64>, UiError> {
    let rule = code_rule(app);
    if let Some(secs) = throttle::blocked(app, SEND_KIND, username, rule)
        .await
        .map_err(UiError::internal)?
    {
        return Ok(Some(secs));
    }
    throttle::fail(app, SEND_KIND, username, rule)
        .await
        .map_err(UiError::internal)?;
    Ok(None)
}

fn too_many_sends(secs: u64) -> String {
    format!("Too many codes were sent. {}", super::try_again_in(secs))
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
    if app.config.stepup() == StepUp::Off || fresh_step_up(app, signed).await?.is_some() {
        return Ok(Ok(()));
    }
    let next: String =
        url::form_urlencoded::byte_serialize(session::safe_next(here).as_bytes()).collect();
    Ok(Err(see_other(&format!("{STEPUP_PATH}?next={next}"))?))
}

/// What the security page shows besides the user's factors.
#[derive(Default)]
struct SecurityView {
    enrolling: Option<ui::Enrollment>,
    recovery_codes: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn security_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    view: SecurityView,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    let recovery_left = store::recovery_left(&app.state, username)
        .await
        .map_err(UiError::internal)?;
    let phone_available = app.config.mfa.twilio.is_some();
    let (phone, phone_enrolling) = if phone_available {
        let phone = match store::phone_get(&app.state, username)
            .await
            .map_err(UiError::internal)?
        {
            Some(sealed) => Some(phone::mask(&open_phone(app, username, &sealed)?)),
            None => None,
        };
        let enrolling = match store::phone_pending_get(
            &app.state,
            username,
            PhonePurpose::Enroll,
            PHONE_CODE_MAX_AGE_MS,
        )
        .await
        .map_err(UiError::internal)?
        {
            Some(p) => Some(phone::mask(&open_phone(app, username, &p.sealed)?)),
            None => None,
        };
        (phone, enrolling)
    } else {
        (None, None)
    };
    let p = ui::SecurityPage {
        chrome: session::chrome(Some(signed)),
        csrf: signed.csrf(),
        enrolled: enrolled(app, username).await?,
        recovery_left,
        enrolling: view.enrolling,
        recovery_codes: view.recovery_codes,
        phone_available,
        phone,
        phone_enrolling,
        notice: view.notice,
        error: view.error,
    };
    page(status, &p)
}

fn security_error(error: String) -> SecurityView {
    SecurityView {
        error: Some(error),
        ..SecurityView::default()
    }
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
    security_page(&app, &signed, StatusCode::OK, SecurityView::default()).await
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

/// `POST /account/security/totp`: starts (or restarts) enrollment. The
/// new secret waits (pending) for its first code; an authenticator already
/// set up keeps working until then.
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
    // Replacing a working factor, or adding one to it, is itself sensitive.
    if has_factor(&app, &username).await? {
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
    let view = SecurityView {
        enrolling: Some(e),
        ..SecurityView::default()
    };
    let res = security_page(&app, &signed, StatusCode::OK, view).await?;
    Ok(noted(
        res,
        note(&signed, "authenticator enrollment started"),
    ))
}

/// A step-up code checked for `signed` against the confirmed authenticator
/// (then the recovery codes): `Ok(Some(factor))` when accepted, `Ok(None)`
/// when wrong (counted), `Err(secs)` when the user is throttled.
async fn check_code(
    app: &AppState,
    signed: &SignedIn,
    typed: &str,
) -> Result<Result<Option<&'static str>, u64>, UiError> {
    let username = &signed.user.username;
    if let Some(secs) = code_blocked(app, username).await? {
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
    if factor.is_none() {
        if let Some(d) = recovery::digest(typed) {
            if store::recovery_use(&app.state, username, &d)
                .await
                .map_err(UiError::internal)?
            {
                factor = Some("recovery code");
            }
        }
    }
    settle(app, username, factor.is_some()).await?;
    Ok(Ok(factor))
}

fn too_many(secs: u64) -> String {
    format!("Too many wrong codes. {}", super::try_again_in(secs))
}

/// `POST /account/security/totp/confirm`: the first code of the pending
/// authenticator confirms it: it replaces the old one (if any), and new
/// recovery codes the old ones, at once; they are shown once.
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
    let Some(sealed) = store::totp_pending(&app.state, &username)
        .await
        .map_err(UiError::internal)?
    else {
        return see_other(SECURITY_PATH);
    };
    let secret = app
        .mfa_secrets
        .open(&username, &sealed)
        .map_err(UiError::internal)?;
    let again = |app: &AppState, error: String| -> Result<SecurityView, UiError> {
        Ok(SecurityView {
            enrolling: Some(enrollment(app, &username, &secret)?),
            error: Some(error),
            ..SecurityView::default()
        })
    };
    if let Some(secs) = code_blocked(&app, &username).await? {
        let res = security_page(
            &app,
            &signed,
            StatusCode::TOO_MANY_REQUESTS,
            again(&app, too_many(secs))?,
        )
        .await?;
        return Ok(super::with_retry_after(res, secs));
    }
    let Some(step) = totp::verify(&secret, f.get("code").unwrap_or(""), now_secs(), 1, None) else {
        settle(&app, &username, false).await?;
        return security_page(
            &app,
            &signed,
            StatusCode::UNAUTHORIZED,
            again(
                &app,
                "That code is not right. Check the time on your device and try the next code."
                    .into(),
            )?,
        )
        .await;
    };
    let codes = recovery::generate();
    let digests: Vec<String> = codes.iter().filter_map(|c| recovery::digest(c)).collect();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if !store::totp_confirm(&app.state, &username, &sealed, step, &digests)
        .await
        .map_err(UiError::internal)?
    {
        // confirmed by a racing request, or restarted since: start over
        return see_other(SECURITY_PATH);
    }
    settle(&app, &username, true).await?;
    // Enrolling proves the factor: it counts as a step-up too.
    store::stepup_record(&app.state, &signed.id_hash(), "totp")
        .await
        .map_err(UiError::internal)?;
    let view = SecurityView {
        recovery_codes: codes,
        ..SecurityView::default()
    };
    let res = security_page(&app, &signed, StatusCode::OK, view).await?;
    Ok(noted(res, note(&signed, "authenticator enrolled")))
}

/// `POST /account/security/phone`: sends a code to a number (`phone`,
/// `send=sms|call`), confirms it (`code`), or forgets it (`cancel`).
pub async fn phone_post(
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
    let Some(verifier) = verifier(&app) else {
        return Err(UiError::NotFound(
            "SMS and voice codes are not offered here.".into(),
        ));
    };
    let username = signed.user.username.clone();
    if f.get("cancel").is_some() {
        store::phone_pending_clear(&app.state, &username, PhonePurpose::Enroll)
            .await
            .map_err(UiError::internal)?;
        return see_other(SECURITY_PATH);
    }
    if let Some(send) = f.get("send") {
        return phone_send(&app, &signed, verifier, send, f.get("phone").unwrap_or("")).await;
    }
    phone_check(&app, &signed, verifier, f.get("code").unwrap_or("")).await
}

async fn phone_send(
    app: &AppState,
    signed: &SignedIn,
    verifier: Result<Verifier, VerifyError>,
    send: &str,
    typed: &str,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    // Adding a factor to a working one (or replacing it) is sensitive.
    if has_factor(app, username).await? {
        if let Err(to_stepup) = require_stepup(app, signed, SECURITY_PATH).await? {
            return Ok(to_stepup);
        }
    }
    let channel =
        Channel::parse(send).ok_or_else(|| UiError::BadRequest("send is sms or call".into()))?;
    let Some(number) = phone::normalize(typed) else {
        return security_page(
            app,
            signed,
            StatusCode::BAD_REQUEST,
            security_error(
                "Enter the mobile number with its country code, starting with + (for example +1 555 555 0100)."
                    .into(),
            ),
        )
        .await;
    };
    if let Some(secs) = send_blocked(app, username).await? {
        let res = security_page(
            app,
            signed,
            StatusCode::TOO_MANY_REQUESTS,
            security_error(too_many_sends(secs)),
        )
        .await?;
        return Ok(super::with_retry_after(res, secs));
    }
    if let Err(e) = match verifier {
        Ok(v) => v.start(&number, channel).await,
        Err(e) => Err(e),
    } {
        let (status, words) = provider_trouble(&e);
        return security_page(app, signed, status, security_error(words)).await;
    }
    let sealed = app
        .mfa_secrets
        .seal(&store::phone_aad(username), number.as_bytes())
        .map_err(UiError::internal)?;
    store::phone_pending_put(
        &app.state,
        username,
        PhonePurpose::Enroll,
        &sealed,
        channel.as_str(),
    )
    .await
    .map_err(UiError::internal)?;
    let res = security_page(app, signed, StatusCode::OK, SecurityView::default()).await?;
    Ok(noted(
        res,
        note(
            signed,
            &format!("phone enrollment code sent by {}", channel.as_str()),
        ),
    ))
}

async fn phone_check(
    app: &AppState,
    signed: &SignedIn,
    verifier: Result<Verifier, VerifyError>,
    code: &str,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    let Some(pending) = store::phone_pending_get(
        &app.state,
        username,
        PhonePurpose::Enroll,
        PHONE_CODE_MAX_AGE_MS,
    )
    .await
    .map_err(UiError::internal)?
    else {
        return security_page(
            app,
            signed,
            StatusCode::GONE,
            security_error(
                "No code is waiting for a number (codes last ten minutes). Enter the number again."
                    .into(),
            ),
        )
        .await;
    };
    if let Some(secs) = code_blocked(app, username).await? {
        let res = security_page(
            app,
            signed,
            StatusCode::TOO_MANY_REQUESTS,
            security_error(too_many(secs)),
        )
        .await?;
        return Ok(super::with_retry_after(res, secs));
    }
    let number = open_phone(app, username, &pending.sealed)?;
    let outcome = if phone::plausible_code(code) {
        match verifier {
            Ok(v) => v.check(&number, code.trim()).await,
            Err(e) => Err(e),
        }
    } else {
        Ok(Check::Wrong)
    };
    match outcome {
        Ok(Check::Approved) => {
            settle(app, username, true).await?;
            if !store::phone_confirm(&app.state, username, &pending.sealed)
                .await
                .map_err(UiError::internal)?
            {
                return see_other(SECURITY_PATH);
            }
            // Confirming the number proves the factor: a step-up too.
            store::stepup_record(&app.state, &signed.id_hash(), &pending.channel)
                .await
                .map_err(UiError::internal)?;
            let view = SecurityView {
                notice: Some(format!(
                    "Your phone ending {} is confirmed for SMS and voice codes.",
                    phone::mask(&number)
                )),
                ..SecurityView::default()
            };
            let res = security_page(app, signed, StatusCode::OK, view).await?;
            Ok(noted(res, note(signed, "phone enrolled")))
        }
        Ok(Check::Wrong) => {
            settle(app, username, false).await?;
            security_page(
                app,
                signed,
                StatusCode::UNAUTHORIZED,
                security_error("That code is not right.".into()),
            )
            .await
        }
        Ok(Check::NoPending) => {
            settle(app, username, false).await?;
            store::phone_pending_clear(&app.state, username, PhonePurpose::Enroll)
                .await
                .map_err(UiError::internal)?;
            security_page(
                app,
                signed,
                StatusCode::GONE,
                security_error(
                    "That code has expired, or too many wrong codes were tried. Enter the number again for a new code."
                        .into(),
                ),
            )
            .await
        }
        Err(e) => {
            if matches!(e, VerifyError::TooMany) {
                store::phone_pending_clear(&app.state, username, PhonePurpose::Enroll)
                    .await
                    .map_err(UiError::internal)?;
            }
            let (status, words) = provider_trouble(&e);
            security_page(app, signed, status, security_error(words)).await
        }
    }
}

async fn stepup_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    next: &str,
    phone_sent: Option<&str>,
    error: Option<String>,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    let totp = enrolled(app, username).await?;
    let phone = usable_phone(app, username)
        .await?
        .map(|(_, number)| phone::mask(&number));
    let p = ui::StepUpPage {
        chrome: session::chrome(Some(signed)),
        csrf: signed.csrf(),
        next: session::safe_next(next).to_owned(),
        enrolled: totp || phone.is_some(),
        totp,
        phone_sent: phone_sent.filter(|_| phone.is_some()).map(channel_words),
        phone,
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
    stepup_page(&app, &signed, StatusCode::OK, &next, None, None).await
}

/// `POST /stepup`: checks the code, records the step-up, back to `next`;
/// or (`send=sms|call`) sends a code to the user's phone first.
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
    if let Some(send) = f.get("send") {
        return stepup_send(&app, &signed, next, send).await;
    }
    if f.get("factor") == Some("phone") {
        return stepup_phone(&app, &signed, next, f.get("code").unwrap_or("")).await;
    }
    match check_code(&app, &signed, f.get("code").unwrap_or("")).await? {
        Err(secs) => {
            let res = stepup_page(
                &app,
                &signed,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                None,
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
                None,
                Some(
                    "That code is not right, or it was used already. Wait for the next code."
                        .into(),
                ),
            )
            .await?;
            Ok(noted(res, note(&signed, "step-up refused")))
        }
        Ok(Some(factor)) => stepped_up(&app, &signed, next, factor).await,
    }
}

/// Records the step-up with `factor` and goes back to `next`.
async fn stepped_up(
    app: &AppState,
    signed: &SignedIn,
    next: &str,
    factor: &str,
) -> Result<Response, UiError> {
    store::stepup_record(&app.state, &signed.id_hash(), factor)
        .await
        .map_err(UiError::internal)?;
    let res = see_other(session::safe_next(next))?;
    Ok(noted(res, note(signed, &format!("step-up with {factor}"))))
}

/// `POST /stepup` with `send=sms|call`: a code to the user's phone.
async fn stepup_send(
    app: &AppState,
    signed: &SignedIn,
    next: &str,
    send: &str,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    let (Some(verifier), Some((sealed, number))) =
        (verifier(app), usable_phone(app, username).await?)
    else {
        return stepup_page(
            app,
            signed,
            StatusCode::BAD_REQUEST,
            next,
            None,
            Some("Codes by SMS or voice call are not set up for your account.".into()),
        )
        .await;
    };
    let channel =
        Channel::parse(send).ok_or_else(|| UiError::BadRequest("send is sms or call".into()))?;
    if let Some(secs) = send_blocked(app, username).await? {
        let res = stepup_page(
            app,
            signed,
            StatusCode::TOO_MANY_REQUESTS,
            next,
            None,
            Some(too_many_sends(secs)),
        )
        .await?;
        return Ok(super::with_retry_after(res, secs));
    }
    if let Err(e) = match verifier {
        Ok(v) => v.start(&number, channel).await,
        Err(e) => Err(e),
    } {
        let (status, words) = provider_trouble(&e);
        return stepup_page(app, signed, status, next, None, Some(words)).await;
    }
    store::phone_pending_put(
        &app.state,
        username,
        PhonePurpose::StepUp,
        &sealed,
        channel.as_str(),
    )
    .await
    .map_err(UiError::internal)?;
    let res = stepup_page(
        app,
        signed,
        StatusCode::OK,
        next,
        Some(channel.as_str()),
        None,
    )
    .await?;
    Ok(noted(
        res,
        note(
            signed,
            &format!("step-up code sent by {}", channel.as_str()),
        ),
    ))
}

/// `POST /stepup` with `factor=phone`: checks the code sent to the phone.
async fn stepup_phone(
    app: &AppState,
    signed: &SignedIn,
    next: &str,
    code: &str,
) -> Result<Response, UiError> {
    let username = &signed.user.username;
    if let Some(secs) = code_blocked(app, username).await? {
        let res = stepup_page(
            app,
            signed,
            StatusCode::TOO_MANY_REQUESTS,
            next,
            None,
            Some(too_many(secs)),
        )
        .await?;
        return Ok(super::with_retry_after(res, secs));
    }
    let pending = store::phone_pending_get(
        &app.state,
        username,
        PhonePurpose::StepUp,
        PHONE_CODE_MAX_AGE_MS,
    )
    .await
    .map_err(UiError::internal)?;
    let (Some(verifier), Some(pending)) = (verifier(app), pending) else {
        return stepup_page(
            app,
            signed,
            StatusCode::GONE,
            next,
            None,
            Some("No code is waiting (codes last ten minutes). Send a new code.".into()),
        )
        .await;
    };
    let number = open_phone(app, username, &pending.sealed)?;
    let outcome = if phone::plausible_code(code) {
        match verifier {
            Ok(v) => v.check(&number, code.trim()).await,
            Err(e) => Err(e),
        }
    } else {
        Ok(Check::Wrong)
    };
    match outcome {
        Ok(Check::Approved) => {
            settle(app, username, true).await?;
            store::phone_pending_clear(&app.state, username, PhonePurpose::StepUp)
                .await
                .map_err(UiError::internal)?;
            let factor = if pending.channel == "call" {
                "call"
            } else {
                "sms"
            };
            stepped_up(app, signed, next, factor).await
        }
        Ok(Check::Wrong) => {
            settle(app, username, false).await?;
            let res = stepup_page(
                app,
                signed,
                StatusCode::UNAUTHORIZED,
                next,
                Some(&pending.channel),
                Some("That code is not right.".into()),
            )
            .await?;
            Ok(noted(res, note(signed, "step-up refused")))
        }
        Ok(Check::NoPending) => {
            settle(app, username, false).await?;
            store::phone_pending_clear(&app.state, username, PhonePurpose::StepUp)
                .await
                .map_err(UiError::internal)?;
            let res = stepup_page(
                app,
                signed,
                StatusCode::GONE,
                next,
                None,
                Some(
                    "That code has expired, or too many wrong codes were tried. Send a new code."
                        .into(),
                ),
            )
            .await?;
            Ok(noted(res, note(signed, "step-up refused")))
        }
        Err(e) => {
            if matches!(e, VerifyError::TooMany) {
                store::phone_pending_clear(&app.state, username, PhonePurpose::StepUp)
                    .await
                    .map_err(UiError::internal)?;
            }
            let (status, words) = provider_trouble(&e);
            stepup_page(app, signed, status, next, None, Some(words)).await
        }
    }
}
