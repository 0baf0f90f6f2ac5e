//! UDAP trust (HL7 FAST Security IG; issue 8, "Proof"), black-box against
//! the real `fhirgate` binary: a community PKI made fresh with rcgen (root
//! CA → intermediate CA with CRLs served over HTTP → client leaves with SAN
//! URIs, RSA and EC P-256 keys; a rogue root), fhirgate configured with a
//! server certificate the root issued for its FHIR base and one community
//! (`urn:test:community`, anchor = the root, `require_b2b`).
//!
//! Cases, each checked and reported on its own (the run fails listing every
//! failed case):
//! - discovery: `signed_metadata` verifies against the root (x5c chain with
//!   x509-parser, RS256 JWT, `iss` = `sub` = the FHIR base = a SAN URI);
//! - a `client_credentials` client registers (201) with an RS256 statement
//!   whose `x5c` is [leaf, intermediate], gets a token with an `x5c` client
//!   assertion carrying `hl7-b2b` (200) and reads `GET /fhir/Patient` (200);
//! - an ES256 (EC P-256) client does the same;
//! - refusals: expired leaf, a leaf of an untrusted root, a revoked leaf (in
//!   the intermediate's CRL), `iss` not the leaf's SAN URI, a statement
//!   living longer than 5 minutes, a replayed statement `jti`, HS256 (all
//!   400 with `invalid_software_statement`, the untrusted root
//!   `unapproved_software_statement`); a token request without the
//!   required `hl7-b2b` (400 `invalid_grant`); a client assertion signed by
//!   another valid leaf of the community (401 `invalid_client`).
//!
//! The server (`udap/gate.rs`), the case runner and small helpers
//! (`udap/cases.rs`) and the PKI (`udap/pki.rs`) are shared with the Tiered
//! OAuth suite (`udap_tiered.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "udap/pki.rs"]
mod pki;

#[path = "udap/cases.rs"]
mod cases;
#[path = "udap/gate.rs"]
mod gate;

use std::{net::TcpListener, time::Instant};

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use cases::{ensure, jti, now, short, signed, Cases};
use conformance_tests::free_port;
use gate::{send_json, Gate, Options};
use pki::{Leaf, Pki, APP_URI, EC_URI, EXPIRED_URI, REVOKED_URI, ROGUE_URI};
use serde_json::{json, Value};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

/// The UDAP endpoints the suite calls on the shared [`Gate`].
impl Gate {
    fn register(&self, statement: &str) -> Result<(u16, Value), String> {
        let body = json!({"software_statement": statement, "udap": "1"});
        send_json(self.http.post(self.register_url()).json(&body))
    }

    fn token(&self, assertion: &str, scope: &str) -> Result<(u16, Value), String> {
        send_json(self.http.post(self.token_url()).form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ]))
    }
}

/// A software statement for a client_credentials client `iss`.
fn statement(gate: &Gate, iss: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": iss, "aud": gate.register_url(), "iat": t, "exp": t + 240,
        "jti": jti("ss"), "client_name": "UDAP conformance B2B client",
        "contacts": ["mailto:ops@b2b.example.org"], "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "system/Patient.rs system/Observation.rs"})
}

fn b2b(gate: &Gate) -> Value {
    json!({"hl7-b2b": {"version": "1",
        "organization_id": format!("{}/Organization/org-b2b", gate.base()),
        "organization_name": "B2B Health",
        "purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}})
}

fn assertion(gate: &Gate, client_id: &str, ext: Option<Value>) -> Value {
    let t = now();
    let mut c = json!({"iss": client_id, "sub": client_id, "aud": gate.token_url(),
        "iat": t, "exp": t + 240, "jti": jti("ca")});
    if let Some(e) = ext {
        c["extensions"] = e;
    }
    c
}

/// `(status, body)` must be `status` with `error` = `code`.
fn expect_error(
    got: Result<(u16, Value), String>,
    status: u16,
    code: &str,
) -> Result<Value, String> {
    let (s, body) = got?;
    if s != status || body["error"] != code {
        return Err(format!(
            "expected {status} {code}, got {s}: {}",
            short(&body)
        ));
    }
    Ok(body)
}

fn description_mentions(body: &Value, words: &[&str]) -> Result<(), String> {
    let d = body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if words.iter().any(|w| d.contains(w)) {
        Ok(())
    } else {
        Err(format!(
            "error_description should mention one of {words:?}: {}",
            short(body)
        ))
    }
}

/// Discovery: signed metadata verified against the community root.
fn discovery(gate: &Gate, pki: &Pki) -> Result<(), String> {
    let (status, m) = send_json(gate.http.get(format!("{}/.well-known/udap", gate.base())))?;
    ensure(status == 200, || {
        format!("discovery answered {status}: {}", short(&m))
    })?;
    ensure(
        m["udap_authorization_extensions_required"] == json!(["hl7-b2b"]),
        || format!("the community requires hl7-b2b: {}", short(&m)),
    )?;
    ensure(m["registration_endpoint"] == gate.register_url(), || {
        format!("registration_endpoint: {}", short(&m))
    })?;
    ensure(m["token_endpoint"] == gate.token_url(), || {
        format!("token_endpoint: {}", short(&m))
    })?;
    let jwt = m["signed_metadata"]
        .as_str()
        .ok_or_else(|| format!("no signed_metadata: {}", short(&m)))?;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap_or_default())
            .map_err(|e| format!("header not base64url: {e}"))?,
    )
    .map_err(|e| format!("header not JSON: {e}"))?;
    ensure(header["alg"] == "RS256", || format!("alg: {header}"))?;
    let x5c: Vec<Vec<u8>> = header["x5c"]
        .as_array()
        .ok_or_else(|| format!("no x5c: {header}"))?
        .iter()
        .map(|v| STANDARD.decode(v.as_str().unwrap_or_default()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("x5c not base64: {e}"))?;
    let leaf_der = x5c.first().ok_or("empty x5c")?;
    let (_, leaf) =
        X509Certificate::from_der(leaf_der).map_err(|e| format!("x5c[0] not X.509: {e}"))?;
    let (_, root) = X509Certificate::from_der(&pki.root.der).map_err(|e| e.to_string())?;
    // chain: the leaf (and any further x5c entries) must lead to the root
    let mut child = leaf.clone();
    for der in &x5c[1..] {
        let (_, next) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if der == &pki.root.der {
            break;
        }
        child
            .verify_signature(Some(next.public_key()))
            .map_err(|e| format!("x5c link does not verify: {e}"))?;
        child = next;
    }
    child
        .verify_signature(Some(root.public_key()))
        .map_err(|e| format!("the signing certificate does not chain to the root: {e}"))?;
    ensure(leaf.validity().is_valid(), || {
        "the signing certificate is not currently valid".to_owned()
    })?;
    let base = gate.base();
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ensure(sans.contains(&base), || {
        format!("the signing certificate's SAN URIs {sans:?} lack the FHIR base {base}")
    })?;
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&leaf.public_key().subject_public_key.data);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[&base]);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v)
        .map_err(|e| format!("signed_metadata does not verify with the x5c leaf: {e}"))?
        .claims;
    ensure(claims["sub"] == base, || format!("sub: {claims}"))?;
    ensure(
        claims["registration_endpoint"] == gate.register_url(),
        || format!("signed registration_endpoint: {claims}"),
    )?;
    // an unknown community: 204
    let (status, _) = send_json(
        gate.http
            .get(format!("{}/.well-known/udap", gate.base()))
            .query(&[("community", "urn:test:unknown")]),
    )?;
    ensure(status == 204, || {
        format!("unknown community answered {status}")
    })
}

/// Registers `leaf` for `iss`, then token with hl7-b2b, then a FHIR read;
/// returns the client_id.
fn register_and_read(gate: &Gate, pki: &Pki, leaf: &Leaf, iss: &str) -> Result<String, String> {
    let chain = [pki.intermediate.b64()];
    let st = signed(leaf, &chain, &statement(gate, iss));
    let (status, reg) = gate.register(&st)?;
    ensure(status == 201, || {
        format!("registration answered {status}: {}", short(&reg))
    })?;
    ensure(reg["software_statement"] == st, || {
        "the statement is not echoed unchanged".to_owned()
    })?;
    ensure(reg["grant_types"] == json!(["client_credentials"]), || {
        format!("grant_types: {}", short(&reg))
    })?;
    let client_id = reg["client_id"]
        .as_str()
        .ok_or_else(|| format!("no client_id: {}", short(&reg)))?
        .to_owned();
    let a = signed(leaf, &chain, &assertion(gate, &client_id, Some(b2b(gate))));
    let (status, tok) = gate.token(&a, "system/Patient.rs")?;
    ensure(status == 200, || {
        format!("token answered {status}: {}", short(&tok))
    })?;
    let access = tok["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access_token: {}", short(&tok)))?;
    let (status, body) = send_json(
        gate.http
            .get(format!("{}/Patient", gate.base()))
            .bearer_auth(access),
    )?;
    ensure(status == 200, || {
        format!("GET /fhir/Patient answered {status}: {}", short(&body))
    })?;
    ensure(body["resourceType"] == "Bundle", || {
        format!("GET /fhir/Patient is no Bundle: {}", short(&body))
    })?;
    Ok(client_id)
}

#[test]
fn udap_trust_community_black_box() {
    let started = Instant::now();
    let crl_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let crl_base = format!("http://{}", crl_listener.local_addr().unwrap());
    let port = free_port().unwrap();
    let fhir_base = format!("http://127.0.0.1:{port}/fhir");
    let pki = Pki::make(&fhir_base, &crl_base);
    pki::CrlServer::serve(crl_listener, pki.crls.clone());
    let options = Options {
        require_b2b: true,
        ..Options::default()
    };
    let mut gate = Gate::new("fhirgate", port, &pki.server, &pki.root.pem, options)
        .unwrap_or_else(|e| panic!("{e}"));
    gate.start().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gate.base(), fhir_base);
    let chain = [pki.intermediate.b64()];
    let rs = &mut Cases::default();

    rs.run(
        "discovery: signed_metadata verifies against the root",
        || discovery(&gate, &pki),
    );
    let client_id = rs.run(
        "RS256 client: register 201, token with hl7-b2b 200, GET /fhir/Patient 200",
        || register_and_read(&gate, &pki, &pki.app, APP_URI),
    );
    rs.run(
        "ES256 client: register 201, token with hl7-b2b 200, GET /fhir/Patient 200",
        || register_and_read(&gate, &pki, &pki.ec, EC_URI).map(|_| ()),
    );
    rs.run("expired leaf: 400 invalid_software_statement", || {
        let st = signed(&pki.expired, &chain, &statement(&gate, EXPIRED_URI));
        let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
        description_mentions(&body, &["expired"])
    });
    rs.run(
        "leaf of an untrusted root: 400 unapproved_software_statement",
        || {
            let st = signed(
                &pki.rogue,
                &[pki.rogue_root.b64()],
                &statement(&gate, ROGUE_URI),
            );
            let body = expect_error(gate.register(&st), 400, "unapproved_software_statement")?;
            description_mentions(&body, &["anchor"])
        },
    );
    rs.run(
        "revoked leaf (serial in the intermediate's CRL): 400 invalid_software_statement",
        || {
            let st = signed(&pki.revoked, &chain, &statement(&gate, REVOKED_URI));
            let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
            description_mentions(&body, &["revoked", "revocation"])
        },
    );
    rs.run(
        "SAN mismatch (iss is not the leaf's SAN URI): 400 invalid_software_statement",
        || {
            let st = signed(
                &pki.app,
                &chain,
                &statement(&gate, "https://b2b.example.org/apps/impostor"),
            );
            let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
            description_mentions(&body, &["subject alternative name", "san"])
        },
    );
    rs.run(
        "statement living longer than 5 minutes (exp - iat = 301): 400 invalid_software_statement",
        || {
            let mut c = statement(&gate, APP_URI);
            c["exp"] = json!(c["iat"].as_i64().unwrap() + 301);
            let st = signed(&pki.app, &chain, &c);
            let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
            description_mentions(&body, &["too long", "5 minutes", "five minutes"])
        },
    );
    rs.run(
        "statement living exactly 5 minutes (exp - iat = 300): accepted (re-registration, 200)",
        || {
            let mut c = statement(&gate, APP_URI);
            c["exp"] = json!(c["iat"].as_i64().unwrap() + 300);
            let (status, body) = gate.register(&signed(&pki.app, &chain, &c))?;
            ensure(
                status == 200 && body["client_id"].as_str() == client_id.as_deref(),
                || {
                    format!(
                        "expected 200 for the same client {client_id:?}, got {status}: {}",
                        short(&body)
                    )
                },
            )
        },
    );
    rs.run(
        "replayed statement jti: 400 invalid_software_statement",
        || {
            let st = signed(&pki.other, &chain, &statement(&gate, pki::OTHER_URI));
            let (status, body) = gate.register(&st)?;
            ensure(status == 201, || {
                format!(
                    "first use should register (201), got {status}: {}",
                    short(&body)
                )
            })?;
            let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
            description_mentions(&body, &["jti", "already", "replay"])
        },
    );
    rs.run(
        "statement signed with HS256: 400 invalid_software_statement",
        || {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            h.x5c = Some(vec![pki.app.b64(), pki.intermediate.b64()]);
            let st = jsonwebtoken::encode(
                &h,
                &statement(&gate, APP_URI),
                &jsonwebtoken::EncodingKey::from_secret(b"shared-secret"),
            )
            .map_err(|e| e.to_string())?;
            let body = expect_error(gate.register(&st), 400, "invalid_software_statement")?;
            description_mentions(&body, &["alg"])
        },
    );
    rs.run(
        "token request without the required hl7-b2b: 400 invalid_grant",
        || {
            let id = client_id.as_deref().ok_or("no registered RS256 client")?;
            let a = signed(&pki.app, &chain, &assertion(&gate, id, None));
            let body = expect_error(gate.token(&a, "system/Patient.rs"), 400, "invalid_grant")?;
            description_mentions(&body, &["hl7-b2b"])
        },
    );
    rs.run(
        "client assertion signed by another valid leaf of the community: 401 invalid_client",
        || {
            let id = client_id.as_deref().ok_or("no registered RS256 client")?;
            let a = signed(&pki.other, &chain, &assertion(&gate, id, Some(b2b(&gate))));
            let body = expect_error(gate.token(&a, "system/Patient.rs"), 401, "invalid_client")?;
            description_mentions(&body, &["subject alternative name", "san"])
        },
    );

    rs.finish("UDAP", started, &[("fhirgate log", gate.log_tail())]);
}
