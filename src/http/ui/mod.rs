//! The server-rendered pages (templates and their structs live in the `ui`
//! crate; these handlers only extract, call and fill them):
//!
//! - `GET /`: the landing page ([`landing`]).
//! - `GET|POST /login`, `POST /logout`: sign-in ([`login`]).
//! - `GET /login/federated`, `GET /login/federated/callback`: sign-in through
//!   the configured OpenID Provider ([`federated`]).
//! - `GET|POST /auth/continue`: the user's part of the authorization
//!   endpoint, i.e. patient picker and app authorization page ([`authorize`]),
//!   over the lead's `oauth::authorize` contract.
//! - `GET|POST /launcher`: the EHR launcher ([`launcher`]).
//! - `GET /admin`, `POST /admin/clients`: OAuth client list and registration
//!   for administrators ([`admin`]).
//! - `GET /admin/prior-auth`, `POST /admin/prior-auth/decide`: the
//!   prior-authorization review queue for administrators ([`prior_auth`];
//!   its extension and appeal forms: [`prior_auth_review`]).
//! - `GET /portal`, `POST /portal/consents`, `POST /portal/consents/{id}/revoke`:
//!   the patient consent portal ([`portal`]).
//! - `GET /auth/udap/callback`: back from a Tiered OAuth identity provider
//!   ([`tiered`]).
//! - `GET /ui/static/fhirgate.css`, `GET /ui/static/fhirgate.png`: the
//!   stylesheet and the logo.
//! - `GET /dtr/launch`, `GET /dtr/app`, `GET /dtr/app.js`: the DTR SMART
//!   app CRD cards link to ([`dtr_app`]).
//!
//! Sessions and form tokens are in [`session`]; scope wording and the
//! granted-scope assembly in [`scopes`]; the FHIR look-ups the pages make
//! in [`patients`]. Every response gets the security headers of
//! [`security_headers`]; every failure is a readable [`UiError`] page.

use axum::{
    extract::{Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};

use crate::{oauth::authorize::PendingError, AppState};

pub mod admin;
pub mod assurance;
pub mod authorize;
pub mod dtr_app;
pub mod federated;
pub mod launcher;
pub mod login;
pub mod mfa;
pub mod patients;
pub mod portal;
pub mod prior_auth;
pub mod prior_auth_review;
pub mod scopes;
pub mod session;
pub mod tiered;

/// The baseline Content-Security-Policy (pages that post to a form whose
/// answer redirects off-site widen `form-action`, see [`with_form_targets`]).
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'";

/// The UI routes (merged into the app by `http::app`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/login", get(login::login_form).post(login::login_submit))
        .route("/logout", post(login::logout))
        .route("/login/federated", get(federated::federated_start))
        .route(
            crate::federation::CALLBACK_PATH,
            get(federated::federated_callback),
        )
        .route(
            "/auth/continue",
            get(authorize::continue_get).post(authorize::continue_post),
        )
        .route(
            "/launcher",
            get(launcher::launcher_get).post(launcher::launcher_post),
        )
        .route("/admin", get(admin::admin_get))
        .route("/admin/clients", post(admin::clients_post))
        .route("/admin/prior-auth", get(prior_auth::queue_get))
        .route("/admin/prior-auth/decide", post(prior_auth::decide_post))
        .route(
            "/admin/prior-auth/extend",
            post(prior_auth_review::extend_post),
        )
        .route(
            "/admin/prior-auth/appeal",
            post(prior_auth_review::appeal_post),
        )
        .route(mfa::SECURITY_PATH, get(mfa::security_get))
        .route("/account/security/totp", post(mfa::totp_begin))
        .route("/account/security/totp/confirm", post(mfa::totp_confirm))
        .route(mfa::PHONE_PATH, post(mfa::phone_post))
        .route(
            mfa::STEPUP_PATH,
            get(mfa::stepup_get).post(mfa::stepup_post),
        )
        .route("/portal", get(portal::portal_get))
        .route("/portal/consents", post(portal::grant_post))
        .route("/portal/consents/{id}/revoke", post(portal::revoke_post))
        .route("/portal/research", post(portal::research::research_post))
        .route("/portal/receipts/{id}", get(portal::receipt::receipt_get))
        .route("/ui/static/fhirgate.css", get(stylesheet))
        .route("/ui/static/fhirgate.png", get(logo))
        .route(crate::udap::tiered::CALLBACK_PATH, get(tiered::callback))
        .route("/dtr/launch", get(dtr_app::launch_get))
        .route("/dtr/app", get(dtr_app::app_get))
        .route("/dtr/app.js", get(dtr_app::script_get))
        .layer(middleware::from_fn(security_headers))
}

/// A page failure, shown as a readable error page (never a blank 500).
#[derive(Debug)]
pub enum UiError {
    /// 400: the request is malformed or was tampered with.
    BadRequest(String),
    /// 403: signed in, but not allowed.
    Forbidden(String),
    /// 403: the form token is missing or wrong.
    Csrf,
    /// 404: a patient, encounter or app that does not exist.
    NotFound(String),
    /// 410: the authorization request is unknown or expired.
    Gone(String),
    /// 500: logged with its detail, shown without it.
    Internal(String),
}

impl UiError {
    /// Logs `detail` and returns the generic 500 page.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form could not be verified (it may have expired, or come from another site). \
                 Go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m.clone()),
            Self::Gone(m) => (StatusCode::GONE, "Request expired", m.clone()),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete this page. Please try again; if it keeps \
                 happening, quote the X-Request-Id of this response to an administrator."
                    .to_owned(),
            ),
        }
    }
}

impl From<PendingError> for UiError {
    fn from(e: PendingError) -> Self {
        match e {
            PendingError::Gone => Self::Gone(e.to_string()),
            PendingError::Forbidden(m) => Self::Forbidden(m),
            PendingError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "ui page failed");
        }
        let (status, title, message) = self.parts();
        let page = ui::ErrorPage {
            chrome: ui::Chrome::default(),
            status: status.as_u16(),
            title: title.to_owned(),
            message,
        };
        match ui::render(&page) {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (status, format!("{title}: {}", self.parts().2)).into_response()
            }
        }
    }
}

/// An HTML response with `status`.
pub fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// Renders a page with `status`.
pub fn page<T: ui::Template>(status: StatusCode, page: &T) -> Result<Response, UiError> {
    ui::render(page)
        .map(|html| html_response(status, html))
        .map_err(UiError::internal)
}

/// A `303 See Other` to `location`.
pub fn see_other(location: &str) -> Result<Response, UiError> {
    let value = HeaderValue::from_str(location).map_err(UiError::internal)?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response())
}

/// Widens `form-action` by the origins the page's form answers redirect to.
/// Browsers apply `form-action` to the redirects after a form submission,
/// so a 303 to an app's redirect or launch URL needs its origin listed.
pub fn with_form_targets<'a>(
    mut res: Response,
    urls: impl IntoIterator<Item = &'a str>,
) -> Response {
    let mut sources: Vec<String> = Vec::new();
    for u in urls {
        if let Some(s) = csp_source(u) {
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
    }
    let csp = if sources.is_empty() {
        CSP.to_owned()
    } else {
        format!("{CSP} {}", sources.join(" "))
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// The CSP source expression for a URL: its origin, or `scheme:` for
/// private-use schemes (native apps). Characters CSP would misread are refused.
fn csp_source(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    let origin = url.origin();
    let source = if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("{}:", url.scheme())
    };
    source
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
        .then_some(source)
}

/// Middleware: the security headers every UI response carries (a handler's
/// own `Content-Security-Policy` wins); HSTS only when the browser reached
/// fhirgate over TLS (`tls::Transport::https`: fhirgate's own, or a trusted
/// proxy's).
async fn security_headers(req: Request, next: Next) -> Response {
    let https = crate::tls::Transport::https(&req);
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(crate::tls::HSTS),
        );
    }
    let defaults: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

/// A throttled answer: `res` with `Retry-After: secs`.
pub fn with_retry_after(mut res: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// `Try again in N minute(s).` for a wait of `secs`, rounded up.
pub fn try_again_in(secs: u64) -> String {
    let minutes = secs.div_ceil(60);
    let s = if minutes == 1 { "" } else { "s" };
    format!("Try again in {minutes} minute{s}.")
}

/// The request id the logging middleware put on the request.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&crate::http::logging::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "ui".to_owned(), str::to_owned)
}

/// Fields of a query string or `application/x-www-form-urlencoded` body,
/// in order (parsing never fails, so no extractor rejection page is needed).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses urlencoded bytes.
    pub fn parse(raw: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET /`: the public landing page.
async fn landing(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, UiError> {
    let signed = session::current(&app, &headers).await?;
    page(
        StatusCode::OK,
        &ui::LandingPage {
            chrome: session::chrome(signed.as_ref()),
            fhir_base: app.config.fhir_base(),
            patient: signed.as_ref().is_some_and(|s| s.own_patient().is_some()),
        },
    )
}

/// `GET /ui/static/fhirgate.png`.
async fn logo() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ui::LOGO_PNG,
    )
        .into_response()
}

/// `GET /ui/static/fhirgate.css`.
async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        ui::STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_said_in_whole_minutes_rounded_up() {
        assert_eq!(try_again_in(1), "Try again in 1 minute.");
        assert_eq!(try_again_in(60), "Try again in 1 minute.");
        assert_eq!(try_again_in(61), "Try again in 2 minutes.");
    }

    #[test]
    fn form_targets_are_origins_or_schemes() {
        assert_eq!(
            csp_source("https://app.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            csp_source("com.example.app:/callback").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("not a url"), None);
    }

    #[test]
    fn pending_errors_map_to_pages() {
        assert!(matches!(
            UiError::from(PendingError::Gone),
            UiError::Gone(_)
        ));
        assert!(matches!(
            UiError::from(PendingError::Forbidden("x".into())),
            UiError::Forbidden(m) if m == "x"
        ));
        let (status, _, msg) = UiError::from(PendingError::Internal("db down".into())).parts();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!msg.contains("db down"), "internal detail never shown");
    }
}
