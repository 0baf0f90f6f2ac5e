//! `GET /admin`, `POST /admin/clients`: the admin page for OAuth clients
//! (signed-in users with the `admin` role only).
//!
//! The page lists the registered clients and has a registration form. The
//! form is turned into RFC 7591 client metadata and goes through
//! `oauth::clients::register`, the one registration path `POST
//! /auth/register` and `fhirgate client add` use too, so the rules are the
//! same everywhere. A refused registration re-shows the form (status 400)
//! with `register`'s error description and the values entered; a successful
//! one shows the `client_id` and, for confidential-symmetric clients, the
//! client secret, once.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::{json, Value};
use smart_launch::OAuthErrorCode;

use super::{page, session, session::SignedIn, Fields, UiError};
use crate::{
    oauth::clients::{self, grant_types, redirect_uris, registered_scope},
    state::oauth::ClientRecord,
    AppState,
};

/// Where the admin page lives.
const PATH: &str = "/admin";

/// The client types offered: `token_endpoint_auth_method` and words.
const TYPES: [(&str, &str); 3] = [
    ("none", "Public (no client secret): browser and native apps"),
    (
        "client_secret_basic",
        "Confidential, symmetric (client secret, client_secret_basic)",
    ),
    (
        "private_key_jwt",
        "Confidential, asymmetric (signed JWT assertion, private_key_jwt)",
    ),
];

/// The grant types offered.
const GRANTS: [(&str, &str); 3] = [
    (
        "authorization_code",
        "authorization_code (SMART app launch)",
    ),
    ("refresh_token", "refresh_token"),
    (
        "client_credentials",
        "client_credentials (Backend Services; asymmetric clients only)",
    ),
];

/// Only administrators manage clients.
fn require_admin(signed: &SignedIn) -> Result<(), UiError> {
    if signed.user.role == "admin" {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "The admin page is for administrators. Sign in with an admin account to manage OAuth clients."
                .into(),
        ))
    }
}

/// The registration form as entered.
#[derive(Debug, Clone)]
struct Entered {
    name: String,
    method: String,
    redirect_uris: String,
    launch_url: String,
    scope: String,
    grants: Vec<String>,
    jwks: String,
    jwks_uri: String,
}

impl Default for Entered {
    /// A blank form: a public authorization-code client.
    fn default() -> Self {
        Self {
            name: String::new(),
            method: "none".into(),
            redirect_uris: String::new(),
            launch_url: String::new(),
            scope: String::new(),
            grants: vec!["authorization_code".into()],
            jwks: String::new(),
            jwks_uri: String::new(),
        }
    }
}

impl Entered {
    /// Reads the posted form.
    fn parse(f: &Fields) -> Self {
        let text = |k: &str| f.get(k).unwrap_or("").trim().to_owned();
        Self {
            name: text("client_name"),
            method: f
                .get("token_endpoint_auth_method")
                .unwrap_or("none")
                .to_owned(),
            redirect_uris: text("redirect_uris"),
            launch_url: text("launch_url"),
            scope: text("scope"),
            grants: f.all("grant_types").map(str::to_owned).collect(),
            jwks: text("jwks"),
            jwks_uri: text("jwks_uri"),
        }
    }

    /// The RFC 7591 metadata, or why the form cannot become any.
    fn metadata(&self) -> Result<Value, String> {
        if self.name.is_empty() {
            return Err("Enter the app's name.".into());
        }
        if self.grants.is_empty() {
            return Err("Choose at least one grant type.".into());
        }
        let mut meta = json!({
            "client_name": self.name,
            "token_endpoint_auth_method": self.method,
            "grant_types": self.grants,
        });
        let uris: Vec<&str> = self
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if !uris.is_empty() {
            meta["redirect_uris"] = json!(uris);
        }
        for (key, value) in [
            ("launch_url", &self.launch_url),
            ("scope", &self.scope),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !value.is_empty() {
                meta[key] = json!(value);
            }
        }
        if !self.jwks.is_empty() {
            if !self.jwks_uri.is_empty() {
                return Err("Give the keys either as a JWKS or as a JWKS URI, not both.".into());
            }
            meta["jwks"] = serde_json::from_str(&self.jwks)
                .map_err(|e| format!("The JWKS is not valid JSON: {e}"))?;
        }
        Ok(meta)
    }

    /// The form showing these values.
    fn form(&self) -> ui::ClientForm {
        let choices = |options: &[(&str, &str)], on: &dyn Fn(&str) -> bool| {
            options
                .iter()
                .map(|(value, label)| ui::Choice {
                    value: (*value).to_owned(),
                    label: (*label).to_owned(),
                    checked: on(value),
                })
                .collect()
        };
        ui::ClientForm {
            name: self.name.clone(),
            types: choices(&TYPES, &|v| v == self.method),
            redirect_uris: self.redirect_uris.clone(),
            launch_url: self.launch_url.clone(),
            scope: self.scope.clone(),
            grants: choices(&GRANTS, &|v| self.grants.iter().any(|g| g == v)),
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
        }
    }
}

/// A client as the admin pages show it.
fn row(c: &ClientRecord) -> ui::ClientRow {
    ui::ClientRow {
        client_id: c.client_id.clone(),
        name: c.client_name.clone(),
        client_type: c.client_type.clone(),
        auth_method: c.metadata["token_endpoint_auth_method"]
            .as_str()
            .unwrap_or("none")
            .to_owned(),
        grant_types: grant_types(&c.metadata).join(", "),
        scope: registered_scope(&c.metadata).to_owned(),
        redirect_uris: redirect_uris(&c.metadata),
        launch_url: c.metadata["launch_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The admin page: the client list and the form with `entered`.
async fn admin_page(
    app: &AppState,
    signed: &SignedIn,
    status: StatusCode,
    entered: &Entered,
    error: Option<String>,
) -> Result<Response, UiError> {
    let clients = app.state.client_list().await.map_err(UiError::internal)?;
    page(
        status,
        &ui::AdminPage {
            chrome: session::chrome(Some(signed)),
            clients: clients.iter().map(row).collect(),
            form: entered.form(),
            error,
            csrf: signed.csrf(),
        },
    )
}

/// `GET /admin`.
pub async fn admin_get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let signed = match session::require(&app, &headers, PATH).await? {
        Ok(s) => s,
        Err(to_login) => return Ok(to_login),
    };
    require_admin(&signed)?;
    admin_page(&app, &signed, StatusCode::OK, &Entered::default(), None).await
}

/// `POST /admin/clients`: registers a client from the form.
pub async fn clients_post(
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
    let entered = Entered::parse(&f);
    let meta = match entered.metadata() {
        Ok(m) => m,
        Err(why) => {
            return admin_page(&app, &signed, StatusCode::BAD_REQUEST, &entered, Some(why)).await
        }
    };
    match clients::register(&app, &meta).await {
        Ok((record, response)) => {
            tracing::info!(
                client_id = %record.client_id,
                client_type = %record.client_type,
                by = %signed.user.username,
                "client registered on the admin page"
            );
            page(
                StatusCode::OK,
                &ui::ClientRegisteredPage {
                    chrome: session::chrome(Some(&signed)),
                    client: row(&record),
                    client_secret: response["client_secret"].as_str().map(str::to_owned),
                },
            )
        }
        Err(e) if e.code == OAuthErrorCode::ServerError => Err(UiError::internal(e.description)),
        Err(e) => {
            admin_page(
                &app,
                &signed,
                StatusCode::BAD_REQUEST,
                &entered,
                Some(e.description),
            )
            .await
        }
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
    fn the_form_becomes_rfc7591_metadata() {
        let e = Entered::parse(&fields(&[
            ("client_name", " Growth Chart "),
            ("token_endpoint_auth_method", "none"),
            (
                "redirect_uris",
                "https://a.example/cb\r\n\r\n  https://a.example/cb2 \n",
            ),
            ("launch_url", "https://a.example/launch"),
            ("scope", ""),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
        ]));
        assert_eq!(
            e.metadata(),
            Ok(json!({
                "client_name": "Growth Chart",
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": ["https://a.example/cb", "https://a.example/cb2"],
                "launch_url": "https://a.example/launch",
            }))
        );
        let form = e.form();
        assert!(form.types.iter().any(|t| t.value == "none" && t.checked));
        assert_eq!(form.grants.iter().filter(|g| g.checked).count(), 2);
    }

    #[test]
    fn form_level_mistakes_are_explained() {
        let base = [("client_name", "K"), ("grant_types", "client_credentials")];
        let bad_json = Entered::parse(&fields(&[base[0], base[1], ("jwks", "{keys")]));
        assert!(bad_json
            .metadata()
            .is_err_and(|e| e.starts_with("The JWKS is not valid JSON")));
        let both = Entered::parse(&fields(&[
            base[0],
            base[1],
            ("jwks", r#"{"keys": []}"#),
            ("jwks_uri", "https://k.example/jwks"),
        ]));
        assert!(both.metadata().is_err_and(|e| e.contains("not both")));
        assert!(Entered::parse(&fields(&[base[0]])).metadata().is_err());
        assert!(Entered::parse(&fields(&[base[1]])).metadata().is_err());
        let blank = Entered::default().form();
        assert!(blank
            .grants
            .iter()
            .all(|g| g.checked == (g.value == "authorization_code")));
    }
}
