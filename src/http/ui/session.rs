//! UI sessions and form tokens.
//!
//! - `fhirgate_session`: 32 random bytes (hex), HttpOnly, SameSite=Lax,
//!   Path=/, Secure when the public URL is https, 8 hours. The state store
//!   keeps only its SHA-256 (`session_put`), so its rows are not sessions.
//! - `fhirgate_csrf`: a random pre-session secret for the sign-in form only
//!   (Path=/login, HttpOnly, SameSite=Lax).
//! - Every form carries `csrf` = HMAC(cookie secret, purpose)
//!   (`ui::secrets::csrf_token`): the session id keys it once signed in, the
//!   pre-session cookie keys the sign-in form. A POST without the right one
//!   gets the readable 403 page.

use axum::{
    http::{header, HeaderMap, HeaderValue},
    response::Response,
};
use rand::RngCore;
use smart_launch::assurance::Assurance;

use super::{see_other, UiError};
use crate::{state::users::User, AppState};

/// The session cookie.
pub const SESSION_COOKIE: &str = "fhirgate_session";
/// The sign-in form's pre-session CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "fhirgate_csrf";
/// Session lifetime, seconds.
pub const SESSION_TTL: i64 = 8 * 3600;
/// Form-token purpose once signed in.
const PURPOSE_SESSION: &str = "session";
/// Form-token purpose of the sign-in form.
pub const PURPOSE_LOGIN: &str = "login";

/// A signed-in user and their session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// The raw session id (cookie value; keys the form tokens).
    session_id: String,
}

impl SignedIn {
    /// The form token for this session's forms.
    pub fn csrf(&self) -> String {
        ui::secrets::csrf_token(&self.session_id, PURPOSE_SESSION)
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), UiError> {
        let ok = presented
            .is_some_and(|t| ui::secrets::csrf_valid(&self.session_id, PURPOSE_SESSION, t));
        ok.then_some(()).ok_or(UiError::Csrf)
    }

    /// The hash the state store keys the session by.
    pub fn id_hash(&self) -> String {
        ui::secrets::sha256_hex(&self.session_id)
    }

    /// Whether the user has the clinician role.
    pub fn is_clinician(&self) -> bool {
        self.user.role == "clinician"
    }

    /// Whether the user has the patient role.
    pub fn is_patient(&self) -> bool {
        self.user.role == "patient"
    }

    /// The user's own Patient id (patient-role users), from `fhir_user`.
    pub fn own_patient(&self) -> Option<String> {
        if !self.is_patient() {
            return None;
        }
        crate::fhir::Reference::parse(&self.user.fhir_user, None)
            .filter(|r| r.resource_type == "Patient")
            .map(|r| r.id)
    }
}

/// The page header for `signed`.
pub fn chrome(signed: Option<&SignedIn>) -> ui::Chrome {
    match signed {
        Some(s) => ui::Chrome {
            signed_in_as: Some(s.user.display_name.clone()),
            csrf: s.csrf(),
        },
        None => ui::Chrome::default(),
    }
}

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// Whether `s` looks like a secret we issued (64 hex digits).
pub fn well_formed(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh 32-byte random secret, hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    ui::secrets::hex(&bytes)
}

/// The signed-in user of this request, if the session cookie names a live session.
pub async fn current(app: &AppState, headers: &HeaderMap) -> Result<Option<SignedIn>, UiError> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|c| well_formed(c)) else {
        return Ok(None);
    };
    let hash = ui::secrets::sha256_hex(&id);
    let Some(username) = app
        .state
        .session_user(&hash, crate::oauth::now())
        .await
        .map_err(UiError::internal)?
    else {
        return Ok(None);
    };
    let user = app
        .state
        .user_get(&username)
        .await
        .map_err(UiError::internal)?;
    Ok(user.map(|user| SignedIn {
        user,
        session_id: id,
    }))
}

/// Starts a session for `user`, who signed in by `source`
/// (`assurance::session::SOURCE_*`) with assurance `assurance`; returns its
/// `Set-Cookie` value.
pub async fn start(
    app: &AppState,
    user: &User,
    source: &str,
    assurance: &Assurance,
) -> Result<HeaderValue, UiError> {
    let id = new_secret();
    let hash = ui::secrets::sha256_hex(&id);
    let expires = crate::oauth::now() + SESSION_TTL;
    crate::assurance::session::record(&app.state, &hash, source, assurance, expires)
        .await
        .map_err(UiError::internal)?;
    app.state
        .session_put(&hash, &user.username, expires)
        .await
        .map_err(UiError::internal)?;
    set_cookie(app, SESSION_COOKIE, &id, "/", Some(SESSION_TTL))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https.
/// `max_age` `Some(0)` deletes; `None` lasts for the browser session.
pub fn set_cookie(
    app: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
) -> Result<HeaderValue, UiError> {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if app.config.public_url.scheme() == "https" {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).map_err(UiError::internal)
}

/// The pre-session secret of the sign-in form: the cookie's, or a new one
/// (returned with the `Set-Cookie` to send).
pub fn login_secret(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), UiError> {
    match cookie(headers, LOGIN_CSRF_COOKIE).filter(|c| well_formed(c)) {
        Some(s) => Ok((s, None)),
        None => {
            let s = new_secret();
            let set = set_cookie(app, LOGIN_CSRF_COOKIE, &s, "/login", None)?;
            Ok((s, Some(set)))
        }
    }
}

/// Checks the sign-in form's token against the pre-session cookie.
pub fn check_login_csrf(headers: &HeaderMap, presented: Option<&str>) -> Result<(), UiError> {
    let secret = cookie(headers, LOGIN_CSRF_COOKIE).filter(|c| well_formed(c));
    let ok = match (secret, presented) {
        (Some(s), Some(t)) => ui::secrets::csrf_valid(&s, PURPOSE_LOGIN, t),
        _ => false,
    };
    ok.then_some(()).ok_or(UiError::Csrf)
}

/// `next` when it is a path on this site, else `/` (no open redirect:
/// `//host`, `/\host`, absolute URLs and control characters are refused).
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    if local {
        next
    } else {
        "/"
    }
}

/// Sends the browser to sign in, then back to `here` (a local path + query).
pub fn to_login(here: &str) -> Result<Response, UiError> {
    let next: String = url::form_urlencoded::byte_serialize(safe_next(here).as_bytes()).collect();
    see_other(&format!("/login?next={next}"))
}

/// Requires a signed-in user, else the redirect to sign in.
pub async fn require(
    app: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<Result<SignedIn, Response>, UiError> {
    match current(app, headers).await? {
        Some(s) => Ok(Ok(s)),
        None => Ok(Err(to_login(here)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next("/auth/continue?req=1"), "/auth/continue?req=1");
        assert_eq!(safe_next("/launcher"), "/launcher");
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
            "/a\r\nSet-Cookie: x",
            "/ x",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xfhirgate_session=1; fhirgate_session=abc; other=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
