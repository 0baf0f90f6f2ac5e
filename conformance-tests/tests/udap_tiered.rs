//! UDAP Tiered OAuth for User Authentication (HL7 UDAP Security IG STU2,
//! "Tiered OAuth"), black-box against two real `fhirgate` processes of one
//! trust community: the data holder H (where the app registers and gets its
//! token) and the identity provider I (where the user signs in), both in
//! demo mode (users `pat.jones`, `dr.lee`), each with a server certificate
//! the community root issued for its own FHIR base. H's user `pat.jones` is
//! linked to I's identity `pat.jones` before the flows
//! (`fhirgate udap link-identity`); `dr.lee` is not. The browser is two
//! cookie jars that follow redirects by hand (one per server, so H's and
//! I's cookies never mix on 127.0.0.1); the stand-in identity providers
//! are documents served by the suite's tiny HTTP server (`pki::CrlServer`).
//!
//! Cases, each checked and reported on its own (the run fails listing every
//! failed case):
//! - discovery: H and I advertise `udap_to` and the `openid` and `udap`
//!   scopes;
//! - the app registers at H with an `authorization_code` statement (201);
//! - the full tiered flow: authorize at H with `idp` = I's base → 302 to
//!   I's authorization endpoint (H's client at I, I's redirect to H's
//!   `/auth/udap/callback`, `openid udap`, PKCE S256, nonce, the
//!   `fhirgate_tiered` cookie) → sign in at I as `pat.jones` and approve →
//!   back at H (a session for the linked user) → approve → the app's code;
//!   the code redeems (x5c client assertion) for a token with `patient`,
//!   whose `id_token` H issued (`iss` = H's base), and reads that Patient;
//! - a second tiered authorize reuses H's registration at I (same
//!   `client_id`);
//! - refusals before leaving H, each `error=invalid_idp` with the app's
//!   `state` and an `error_description` naming the reason: an IdP whose
//!   metadata a rogue root signed, an IdP whose (properly signed) metadata
//!   lacks the `udap` scope, an unreachable IdP;
//! - refusals after the IdP, to the app with its `state`: a tampered
//!   `state` at H's callback (`server_error`), the user denying at I
//!   (`access_denied`), an IdP identity linked to no local user (`dr.lee`
//!   at I; `access_denied`).
//!
//! Each flow uses fresh cookie jars. Two fhirgate starts (demo seeding of 3
//! patients) and 12 RSA keys make up most of the ~5 s run. The servers
//! (`udap/gate.rs`), the case runner and small helpers (`udap/cases.rs`) and
//! the PKI (`udap/pki.rs`) are shared with the UDAP trust suite (`udap.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The suite uses part of the shared PKI helper only.
#[allow(dead_code)]
#[path = "udap/pki.rs"]
mod pki;

#[path = "udap/cases.rs"]
mod cases;
#[path = "udap/gate.rs"]
mod gate;

use std::{collections::HashMap, net::TcpListener, time::Instant};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use cases::{ensure, jti, now, short, signed, Cases};
use conformance_tests::{
    browser::{query, without_query, Browser, Page},
    free_port,
};
use gate::{http_client, send_json, Gate, Options};
use pki::{By, Leaf, Pki, APP_URI};
use reqwest::{blocking::Client, Url};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The app's registered redirect URI.
const APP_REDIRECT: &str = "https://app.example.org/callback";
/// What the app asks H for.
const APP_SCOPE: &str = "openid fhirUser udap launch/patient patient/*.rs";
/// Password of the demo users.
const DEMO_PASSWORD: &str = "demo";

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh PKCE verifier (43+ unreserved characters).
fn new_verifier() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

// --- the app ---------------------------------------------------------------

/// The app's authorization_code software statement for H.
fn code_statement(h: &Gate) -> Value {
    let t = now();
    json!({"iss": APP_URI, "sub": APP_URI, "aud": h.register_url(), "iat": t, "exp": t + 240,
        "jti": jti("ss"), "client_name": "Tiered OAuth conformance app",
        "contacts": ["mailto:ops@b2b.example.org"], "redirect_uris": [APP_REDIRECT],
        "logo_uri": "https://b2b.example.org/logo.png",
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt", "scope": APP_SCOPE})
}

/// Registers the app at H; its client_id.
fn register_app(h: &Gate, pki: &Pki, http: &Client) -> Result<String, String> {
    let st = signed(&pki.app, &[pki.intermediate.b64()], &code_statement(h));
    let body = json!({"software_statement": st, "udap": "1"});
    let (status, reg) = send_json(http.post(h.register_url()).json(&body))?;
    ensure(status == 201, || {
        format!("registration at H answered {status}: {}", short(&reg))
    })?;
    ensure(reg["grant_types"] == json!(["authorization_code"]), || {
        format!("grant_types: {}", short(&reg))
    })?;
    reg["client_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no client_id: {}", short(&reg)))
}

/// One tiered authorization the app starts at H.
struct Flow {
    state: String,
    verifier: String,
    /// H's browser (holds `fhirgate_tiered` after the first step).
    at_h: Browser,
    /// I's browser.
    at_i: Browser,
}

impl Flow {
    fn new() -> Self {
        Self {
            state: jti("state"),
            verifier: new_verifier(),
            at_h: Browser::new("H"),
            at_i: Browser::new("I"),
        }
    }

    /// `GET /auth/authorize` at H with `idp`: H's first answer.
    fn authorize(&self, h: &Gate, client_id: &str, idp: &str) -> Result<Page, String> {
        let challenge = challenge_of(&self.verifier);
        let base = h.base();
        let url = Url::parse_with_params(
            &h.authorize_url(),
            [
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", APP_REDIRECT),
                ("scope", APP_SCOPE),
                ("state", self.state.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("aud", base.as_str()),
                ("idp", idp),
            ],
        )
        .map_err(|e| e.to_string())?;
        self.at_h.get(url.as_str())
    }

    /// H's first answer must send the browser to I's authorization
    /// endpoint with a well-formed request; its parameters.
    fn expect_to_idp(
        &self,
        first: &Page,
        h: &Gate,
        i: &Gate,
    ) -> Result<HashMap<String, String>, String> {
        let to = first.location.clone().unwrap_or_default();
        ensure(first.status == 302 || first.status == 303, || {
            format!(
                "authorize with idp at H: expected 302 to I, got {}",
                first.describe()
            )
        })?;
        ensure(without_query(&to) == i.authorize_url(), || {
            format!(
                "H should redirect to I's authorization endpoint {}, got {to}",
                i.authorize_url()
            )
        })?;
        let q = query(&to)?;
        let get = |k: &str| q.get(k).map_or("", String::as_str);
        ensure(get("response_type") == "code", || {
            format!("response_type at I: {to}")
        })?;
        ensure(!get("client_id").is_empty(), || {
            format!("no client_id at I: {to}")
        })?;
        ensure(get("redirect_uri") == h.callback_url(), || {
            format!("redirect_uri at I should be {}, got {to}", h.callback_url())
        })?;
        let scopes: Vec<&str> = get("scope").split(' ').collect();
        ensure(
            scopes.contains(&"openid") && scopes.contains(&"udap"),
            || format!("scope at I must contain openid and udap: {to}"),
        )?;
        for k in ["state", "nonce", "code_challenge"] {
            ensure(!get(k).is_empty(), || format!("no {k} at I: {to}"))?;
        }
        ensure(get("state") != self.state, || {
            format!("H must not pass the app's state on to I: {to}")
        })?;
        ensure(get("code_challenge_method") == "S256", || {
            format!("code_challenge_method at I: {to}")
        })?;
        let cookie = first
            .set_cookies
            .iter()
            .find(|c| c.starts_with("fhirgate_tiered="));
        ensure(
            cookie.is_some_and(|c| {
                c.split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("path=/auth/udap"))
            }),
            || {
                format!(
                    "H should set the fhirgate_tiered cookie with Path=/auth/udap, got {:?}",
                    first.set_cookies
                )
            },
        )?;
        Ok(q)
    }

    /// `last` is the app's redirect URI with `error`, the app's `state`,
    /// no code, and an `error_description` mentioning one of `why` (the
    /// reason, so a refusal for another reason does not pass; empty: any).
    fn expect_app_error(&self, last: &str, error: &str, why: &[&str]) -> Result<(), String> {
        ensure(without_query(last) == APP_REDIRECT, || {
            format!("expected a redirect to the app with error={error}, went to {last}")
        })?;
        let q = query(last)?;
        ensure(q.get("error").map(String::as_str) == Some(error), || {
            format!("expected error={error} at the app, got {last}")
        })?;
        ensure(q.get("state") == Some(&self.state), || {
            format!("the app's state {} is not returned: {last}", self.state)
        })?;
        ensure(!q.contains_key("code"), || {
            format!("an error redirect carries a code: {last}")
        })?;
        let d = q
            .get("error_description")
            .map(|d| d.to_ascii_lowercase())
            .unwrap_or_default();
        ensure(why.is_empty() || why.iter().any(|w| d.contains(w)), || {
            format!("error_description should mention one of {why:?}: {last}")
        })
    }

    /// Authorize at H, then at I as `user` answering `decision`: the URL I
    /// sends the browser to (H's callback) and I's request parameters.
    fn through_idp(
        &self,
        h: &Gate,
        i: &Gate,
        client_id: &str,
        user: &str,
        decision: &str,
    ) -> Result<(String, HashMap<String, String>), String> {
        let first = self.authorize(h, client_id, &i.base())?;
        let at_i = self.expect_to_idp(&first, h, i)?;
        let start = first.location.clone().unwrap_or_default();
        let back = self
            .at_i
            .drive(&start, Some((user, DEMO_PASSWORD)), decision)?;
        ensure(without_query(&back) == h.callback_url(), || {
            format!(
                "I should send the browser to H's callback {}, went to {back}\n    trail:\n    {}",
                h.callback_url(),
                self.at_i.trail()
            )
        })?;
        Ok((back, at_i))
    }
}

/// Redeems `code` at H's token endpoint with an x5c client assertion.
fn redeem(
    h: &Gate,
    pki: &Pki,
    http: &Client,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> Result<Value, String> {
    let t = now();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": h.token_url(),
        "iat": t, "exp": t + 240, "jti": jti("ca")});
    let assertion = signed(&pki.app, &[pki.intermediate.b64()], &claims);
    let (status, tok) = send_json(http.post(h.token_url()).form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", APP_REDIRECT),
        ("code_verifier", verifier),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
    ]))?;
    ensure(status == 200, || {
        format!("token at H answered {status}: {}", short(&tok))
    })?;
    Ok(tok)
}

/// The claims of a JWT (not verified).
fn jwt_claims(jwt: &str) -> Result<Value, String> {
    let payload = jwt.split('.').nth(1).ok_or("id_token is not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("id_token payload not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("id_token payload not JSON: {e}"))
}

// --- stand-in identity providers ------------------------------------------

/// UDAP metadata of a stand-in IdP at `idp_base` (under the tiny server),
/// signed by `leaf` with `x5c` = [leaf, chain…].
fn idp_metadata(idp_base: &str, leaf: &Leaf, chain: &[String], scopes: &[&str]) -> Vec<u8> {
    let root = idp_base.trim_end_matches("/fhir");
    let (authz, token, reg) = (
        format!("{root}/auth/authorize"),
        format!("{root}/auth/token"),
        format!("{root}/auth/register"),
    );
    let t = now();
    let jwt = signed(
        leaf,
        chain,
        &json!({"iss": idp_base, "sub": idp_base, "iat": t, "exp": t + 3600, "jti": jti("md"),
            "authorization_endpoint": authz, "token_endpoint": token,
            "registration_endpoint": reg}),
    );
    json!({"udap_versions_supported": ["1"],
        "udap_profiles_supported": ["udap_dcr", "udap_authn", "udap_authz", "udap_to"],
        "udap_authorization_extensions_supported": [],
        "udap_authorization_extensions_required": [],
        "udap_certifications_supported": [], "udap_certifications_required": [],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": scopes,
        "authorization_endpoint": authz, "token_endpoint": token,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "registration_endpoint": reg,
        "registration_endpoint_jwt_signing_alg_values_supported": ["RS256"],
        "signed_metadata": jwt})
    .to_string()
    .into_bytes()
}

/// Discovery of `gate` advertises Tiered OAuth.
fn discovery(gate: &Gate, http: &Client) -> Result<(), String> {
    let (status, m) = send_json(http.get(format!("{}/.well-known/udap", gate.base())))?;
    ensure(status == 200, || {
        format!("{} discovery answered {status}: {}", gate.name, short(&m))
    })?;
    let has = |field: &str, v: &str| {
        m[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v))
    };
    ensure(has("scopes_supported", "openid"), || {
        format!(
            "{}: scopes_supported lacks openid: {}",
            gate.name, m["scopes_supported"]
        )
    })?;
    ensure(has("scopes_supported", "udap"), || {
        format!(
            "{}: scopes_supported lacks udap: {}",
            gate.name, m["scopes_supported"]
        )
    })?;
    ensure(has("udap_profiles_supported", "udap_to"), || {
        format!(
            "{}: udap_profiles_supported lacks udap_to: {}",
            gate.name, m["udap_profiles_supported"]
        )
    })
}

#[test]
fn udap_tiered_oauth_black_box() {
    let started = Instant::now();
    let files_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let files_base = format!("http://{}", files_listener.local_addr().unwrap());
    let port_h = free_port().unwrap();
    let mut port_i = free_port().unwrap();
    while port_i == port_h {
        port_i = free_port().unwrap();
    }
    let h_base = format!("http://127.0.0.1:{port_h}/fhir");
    let i_base = format!("http://127.0.0.1:{port_i}/fhir");
    let rogue_idp = format!("{files_base}/rogue-idp/fhir");
    let no_udap_idp = format!("{files_base}/no-udap-idp/fhir");
    let unreachable_idp = format!("http://127.0.0.1:{}/fhir", free_port().unwrap());

    let pki = Pki::make(&h_base, &files_base);
    let mut more = pki
        .issue_servers(&[
            (&i_base, 20, By::Root),
            (&no_udap_idp, 21, By::Root),
            (&rogue_idp, 22, By::RogueRoot),
        ])
        .into_iter();
    let (i_cert, no_udap_cert, rogue_cert) = (
        more.next().unwrap(),
        more.next().unwrap(),
        more.next().unwrap(),
    );
    let mut files = pki.crls.clone();
    files.insert(
        "/rogue-idp/fhir/.well-known/udap".to_owned(),
        idp_metadata(
            &rogue_idp,
            &rogue_cert,
            &[pki.rogue_root.b64()],
            &["openid", "fhirUser", "udap"],
        ),
    );
    files.insert(
        "/no-udap-idp/fhir/.well-known/udap".to_owned(),
        idp_metadata(&no_udap_idp, &no_udap_cert, &[], &["openid", "fhirUser"]),
    );
    pki::CrlServer::serve(files_listener, files);
    println!("PKI and stand-in IdPs ready in {:.1?}", started.elapsed());

    let http = http_client();
    let options = Options {
        require_b2b: false,
        demo: true,
        seed_patients: Some(3),
    };
    let mut h = Gate::new("H", port_h, &pki.server, &pki.root.pem, options)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut i =
        Gate::new("I", port_i, &i_cert, &pki.root.pem, options).unwrap_or_else(|e| panic!("{e}"));
    // both start side by side
    let (started_h, started_i) = std::thread::scope(|s| {
        let at_h = s.spawn(|| h.start());
        let at_i = i.start();
        (at_h.join().expect("starting H"), at_i)
    });
    started_h.unwrap_or_else(|e| panic!("{e}"));
    started_i.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.base(), h_base);
    assert_eq!(i.base(), i_base);
    println!("H and I ready in {:.1?}", started.elapsed());
    let linked = h
        .cli(&[
            "udap",
            "link-identity",
            "--idp",
            &i_base,
            "--sub",
            "pat.jones",
            "--user",
            "pat.jones",
        ])
        .unwrap_or_else(|e| panic!("linking pat.jones at H: {e}\n{}", h.log_tail()));
    assert!(
        serde_json::from_str::<Value>(linked.trim()).is_ok(),
        "link-identity should print JSON: {linked}"
    );

    let rs = &mut Cases::default();
    rs.run(
        "discovery: H and I advertise udap_to and the openid and udap scopes",
        || {
            discovery(&h, &http)?;
            discovery(&i, &http)
        },
    );
    let client_id = rs.run(
        "the app registers at H with an authorization_code statement (201)",
        || register_app(&h, &pki, &http),
    );
    let app = client_id.as_deref().unwrap_or("(not registered)");
    let first_at_i = rs.run(
        "tiered flow: H → I (pat.jones signs in, approves) → H (linked user approves) → code → token → own Patient",
        || {
            let flow = Flow::new();
            let (callback, at_i) = flow.through_idp(&h, &i, app, "pat.jones", "allow")?;
            let cb = query(&callback)?;
            ensure(cb.contains_key("code") && cb.contains_key("state"), || {
                format!("I's answer lacks code or state: {callback}")
            })?;
            let back = flow.at_h.get(&callback)?;
            let to = back.location.clone().unwrap_or_default();
            ensure(
                back.is_redirect()
                    && without_query(&to) == format!("{}/auth/continue", h.public_url()),
                || {
                    format!(
                        "H's callback should send the browser to /auth/continue, got {}\n    trail:\n    {}",
                        back.describe(),
                        flow.at_h.trail()
                    )
                },
            )?;
            ensure(flow.at_h.has_cookie("fhirgate_session"), || {
                format!(
                    "H's callback should sign the linked user in (fhirgate_session), Set-Cookie: {:?}",
                    back.set_cookies
                )
            })?;
            let last = flow.at_h.drive(&to, None, "allow")?;
            ensure(without_query(&last) == APP_REDIRECT, || {
                format!(
                    "H should end at the app's redirect, went to {last}\n    trail:\n    {}",
                    flow.at_h.trail()
                )
            })?;
            let q = query(&last)?;
            ensure(q.get("state") == Some(&flow.state), || {
                format!("the app's state is not returned: {last}")
            })?;
            let code = q
                .get("code")
                .ok_or_else(|| format!("no code at the app: {last}"))?;
            let tok = redeem(&h, &pki, &http, app, code, &flow.verifier)?;
            let access = tok["access_token"]
                .as_str()
                .ok_or_else(|| format!("no access_token: {}", short(&tok)))?;
            let patient = tok["patient"]
                .as_str()
                .ok_or_else(|| format!("no patient in the token response: {}", short(&tok)))?;
            let granted = tok["scope"].as_str().unwrap_or_default();
            if granted.split(' ').any(|s| s == "openid") {
                let id_token = tok["id_token"].as_str().ok_or_else(|| {
                    format!("openid was granted ({granted}) but no id_token")
                })?;
                let c = jwt_claims(id_token)?;
                ensure(c["iss"] == h.base(), || {
                    format!("the id_token's iss should be H's base {}, got {}", h.base(), c["iss"])
                })?;
                ensure(c["aud"] == app || c["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == app)), || {
                    format!("the id_token's aud should be the app {app}: {}", c["aud"])
                })?;
                let fhir_user = c["fhirUser"].as_str().unwrap_or_default();
                ensure(!fhir_user.starts_with(i.public_url()), || {
                    format!("the id_token's fhirUser names a resource at I: {fhir_user}")
                })?;
            }
            let (status, body) = send_json(
                http.get(format!("{}/Patient/{patient}", h.base()))
                    .bearer_auth(access),
            )?;
            ensure(status == 200 && body["id"] == patient, || {
                format!("GET /fhir/Patient/{patient} answered {status}: {}", short(&body))
            })?;
            Ok(at_i.get("client_id").cloned().unwrap_or_default())
        },
    );
    rs.run(
        "a second tiered authorize reuses H's registration at I (same client_id)",
        || {
            let once = |f: &Flow| -> Result<String, String> {
                let first = f.authorize(&h, app, &i.base())?;
                let q = f.expect_to_idp(&first, &h, &i)?;
                Ok(q.get("client_id").cloned().unwrap_or_default())
            };
            let before = match &first_at_i {
                Some(id) => id.clone(),
                None => once(&Flow::new())?,
            };
            let again = once(&Flow::new())?;
            ensure(again == before, || {
                format!("H registered at I again: client_id {before} then {again}")
            })
        },
    );
    for (label, idp, why) in [
        (
            "IdP whose metadata a rogue root signed",
            &rogue_idp,
            &["anchor", "trust"][..],
        ),
        (
            "IdP whose signed metadata lacks the udap scope",
            &no_udap_idp,
            &["scopes_supported", "scope"][..],
        ),
        (
            "unreachable IdP",
            &unreachable_idp,
            &["fetch", "reach", "connect"][..],
        ),
    ] {
        rs.run(
            &format!("{label}: error=invalid_idp to the app with its state"),
            || {
                let flow = Flow::new();
                let first = flow.authorize(&h, app, idp)?;
                ensure(first.status == 302 || first.status == 303, || {
                    format!("expected 302 to the app, got {}", first.describe())
                })?;
                flow.expect_app_error(
                    first.location.as_deref().unwrap_or_default(),
                    "invalid_idp",
                    why,
                )
            },
        );
    }
    rs.run(
        "state tampered at H's callback: error=server_error to the app with its state",
        || {
            let flow = Flow::new();
            let (callback, _) = flow.through_idp(&h, &i, app, "pat.jones", "allow")?;
            let mut u = Url::parse(&callback).map_err(|e| e.to_string())?;
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .into_owned()
                .map(|(k, v)| {
                    if k == "state" {
                        (k, format!("{v}x"))
                    } else {
                        (k, v)
                    }
                })
                .collect();
            u.query_pairs_mut().clear().extend_pairs(pairs);
            let last = flow.at_h.drive(u.as_str(), None, "allow")?;
            flow.expect_app_error(&last, "server_error", &["state"])
        },
    );
    rs.run(
        "the user denies at I: error=access_denied to the app with its state",
        || {
            let flow = Flow::new();
            let (callback, _) = flow.through_idp(&h, &i, app, "pat.jones", "deny")?;
            let q = query(&callback)?;
            ensure(
                q.get("error").map(String::as_str) == Some("access_denied"),
                || format!("I should answer H's callback with error=access_denied: {callback}"),
            )?;
            let last = flow.at_h.drive(&callback, None, "allow")?;
            flow.expect_app_error(&last, "access_denied", &[])
        },
    );
    rs.run(
        "an IdP identity linked to no local user (dr.lee at I): error=access_denied to the app",
        || {
            let flow = Flow::new();
            let (callback, _) = flow.through_idp(&h, &i, app, "dr.lee", "allow")?;
            ensure(query(&callback)?.contains_key("code"), || {
                format!("I should give H a code for dr.lee: {callback}")
            })?;
            let last = flow.at_h.drive(&callback, None, "allow")?;
            flow.expect_app_error(&last, "access_denied", &["account", "link", "local user"])
        },
    );

    rs.finish(
        "UDAP Tiered OAuth",
        started,
        &[
            ("fhirgate H log", h.log_tail()),
            ("fhirgate I log", i.log_tail()),
        ],
    );
}
