//! The pieces of an IHE Basic Audit Log Patterns (BALP) AuditEvent (FHIR R4
//! `AuditEvent`): code systems, the interaction → subtype / action / agent
//! role mapping, the outcome from the HTTP status, and the agent, source and
//! entity elements. [`super::events`] assembles them per request.
//!
//! Choices (see <https://profiles.ihe.net/ITI/BALP/>):
//! - RESTful events (`IHE.BasicAudit.{Read,Query,Create,Update,Delete}` and
//!   their `Patient*` forms): `type` = audit-event-type `rest`, `subtype` =
//!   restful-interaction code, client agent DCM 110153 *Source Role ID* and
//!   server 110152 *Destination Role ID*, except reads (`action` R) where
//!   BALP has them the other way round; the user agent is v3
//!   ParticipationType `IRCP` with `requestor: true`.
//! - Minimal form: entities are identifiers only (the X-Request-Id
//!   transaction entity, the patient, `Type/id` references, the query as
//!   base64), never resource contents.
//! - Consent decisions are separate `IHE.BasicAudit.AuthZconsent` events
//!   (`type` DCM 110113 *Security Alert*, `subtype` AuthZsubType
//!   `AuthZ-Consent`), one per (patient, decision), naming the Consent and
//!   its version; a deny has outcome 8 as in BALP's example.
//! - Outcome: HTTP status < 400 → `0`, 4xx → `4` (minor failure, the
//!   caller's), 5xx → `8` (serious failure). `12` is not used.

use serde_json::{Map, Value};

use crate::fhir::Interaction;

// The elements below are built as `Value`s directly, members in RFC 8785
// order (so [`super::jcs`] writes them without sorting), instead of with
// `json!`, which copies every `Value` interpolated into it through its
// serializer. The events' content is the same either way (their bytes are
// the canonical form).

/// A JSON object of these members, moved in.
pub(crate) fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (k, v) in members {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

/// A JSON string.
pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// `{"coding": [c]}`.
fn concept(c: Value) -> Value {
    object([("coding", Value::Array(vec![c]))])
}

/// `{"system": "urn:ietf:rfc:3986", "value": url}`.
fn uri_identifier(url: &str) -> Value {
    object([
        ("system", string("urn:ietf:rfc:3986")),
        ("value", string(url)),
    ])
}

/// `{"reference": r}`.
fn reference(r: &str) -> Value {
    object([("reference", string(r))])
}

/// audit-event-type.
pub const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
/// restful-interaction.
pub const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
/// DICOM controlled terminology.
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// audit-entity-type.
pub const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
/// object-role.
pub const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// BALP's entity types (`XrequestId`).
pub const BALP_ENTITY_TYPE: &str =
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
/// BALP's authorization subtypes (`AuthZ-Consent`).
pub const BALP_AUTHZ_SUBTYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType";
/// BALP's user agent types (`UserOauthAgent`, the token entity).
pub const BALP_USER_AGENT_TYPE: &str =
    "https://profiles.ihe.net/ITI/BALP/CodeSystem/UserAgentTypes";
/// v3 ActReason (purpose of use, `BTG`).
pub const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// FHIR resource types (entity type of the Consent entity, and of data
/// entities as a second `entity-type` search code).
pub const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
/// Where fhirgate's own codes live (the route of a non-FHIR request, the
/// user's role, an operation name).
pub const FHIRGATE_SYSTEM: &str = "urn:fhirgate:audit";
/// The OAuth client id as an identifier system.
pub const CLIENT_ID_SYSTEM: &str = "urn:ietf:params:oauth:client-id";
/// BALP profile canonical URLs.
pub const PROFILE_BASE: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

/// A `Coding`.
pub fn coding(system: &str, code: &str, display: &str) -> Value {
    object([
        ("code", string(code)),
        ("display", string(display)),
        ("system", string(system)),
    ])
}

/// The restful-interaction code of a request.
pub fn subtype(interaction: Interaction, batch: Option<&str>) -> &'static str {
    match interaction {
        Interaction::Capabilities => "capabilities",
        Interaction::Read => "read",
        Interaction::Vread => "vread",
        Interaction::Update | Interaction::ConditionalUpdate => "update",
        Interaction::Delete | Interaction::ConditionalDelete => "delete",
        Interaction::Create => "create",
        Interaction::SearchType => "search-type",
        Interaction::SearchSystem => "search-system",
        Interaction::SearchCompartment => "search",
        Interaction::HistoryInstance => "history-instance",
        Interaction::HistoryType => "history-type",
        Interaction::HistorySystem => "history-system",
        Interaction::BatchOrTransaction => match batch {
            Some("transaction") => "transaction",
            _ => "batch",
        },
        Interaction::Operation => "operation",
    }
}

/// AuditEvent.action of a request: C, R, U, D or E (searches, history of
/// a type or the system, batches and operations execute).
pub fn action(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Capabilities
        | Interaction::Read
        | Interaction::Vread
        | Interaction::HistoryInstance => "R",
        Interaction::Create => "C",
        Interaction::Update | Interaction::ConditionalUpdate => "U",
        Interaction::Delete | Interaction::ConditionalDelete => "D",
        _ => "E",
    }
}

/// AuditEvent.action of a non-FHIR route from its method.
pub fn action_of_method(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" | "OPTIONS" => "R",
        "PUT" | "PATCH" => "U",
        "DELETE" => "D",
        _ => "E",
    }
}

/// AuditEvent.outcome from the final HTTP status.
pub fn outcome(status: u16) -> &'static str {
    match status {
        0..=399 => "0",
        400..=499 => "4",
        _ => "8",
    }
}

/// The BALP profile of a RESTful event.
pub fn rest_profile(subtype: &str, with_patient: bool) -> String {
    let base = match subtype {
        "read" | "vread" | "history-instance" | "capabilities" => "Read",
        "create" => "Create",
        "update" => "Update",
        "delete" => "Delete",
        _ => "Query",
    };
    if with_patient {
        format!("{PROFILE_BASE}Patient{base}")
    } else {
        format!("{PROFILE_BASE}{base}")
    }
}

/// Who the client is: the OAuth client id (no Device resource exists for it).
pub fn client_who(client_id: Option<&str>) -> Value {
    match client_id {
        Some(id) => object([
            ("display", string(id)),
            (
                "identifier",
                object([("system", string(CLIENT_ID_SYSTEM)), ("value", string(id))]),
            ),
        ]),
        None => object([("display", string("unauthenticated client"))]),
    }
}

/// The client agent; `source_role` picks DCM 110153 (else 110152).
pub fn client_agent(client_id: Option<&str>, address: Option<&str>, source_role: bool) -> Value {
    let (code, display) = if source_role {
        ("110153", "Source Role ID")
    } else {
        ("110152", "Destination Role ID")
    };
    let ty = concept(coding(DCM, code, display));
    let who = client_who(client_id);
    match address {
        Some(addr) => object([
            ("network", network(addr, "2")),
            ("requestor", Value::Bool(false)),
            ("type", ty),
            ("who", who),
        ]),
        None => object([
            ("requestor", Value::Bool(false)),
            ("type", ty),
            ("who", who),
        ]),
    }
}

/// An agent's `network`: address and type (`2` IP address, `5` URI).
pub(crate) fn network(address: &str, ty: &str) -> Value {
    object([("address", string(address)), ("type", string(ty))])
}

/// The server agent (fhirgate at its FHIR base).
pub fn server_agent(fhir_base: &str, source_role: bool) -> Value {
    let (code, display) = if source_role {
        ("110153", "Source Role ID")
    } else {
        ("110152", "Destination Role ID")
    };
    object([
        ("network", network(fhir_base, "5")),
        ("requestor", Value::Bool(false)),
        ("type", concept(coding(DCM, code, display))),
        (
            "who",
            object([
                ("display", string("fhirgate")),
                ("identifier", uri_identifier(fhir_base)),
            ]),
        ),
    ])
}

/// `CodeableConcept`s of a purpose of use (v3-ActReason), with a text.
pub fn purpose(code: &str, text: Option<&str>) -> Value {
    let coding = Value::Array(vec![coding(ACT_REASON, code, code)]);
    match text {
        Some(t) => object([("coding", coding), ("text", string(t))]),
        None => object([("coding", coding)]),
    }
}

/// The user agent (the requestor): fhirUser, role, token id, purpose.
pub fn user_agent(
    fhir_user: Option<&str>,
    role: Option<&str>,
    jti: Option<&str>,
    purposes: &[Value],
) -> Value {
    let who = match fhir_user {
        Some(u) => reference(u),
        None => object([("display", string("no signed-in user"))]),
    };
    // members in canonical order: policy, purposeOfUse, requestor, role, type, who
    let mut a = Map::with_capacity(6);
    if let Some(j) = jti {
        a.insert(
            "policy".into(),
            Value::Array(vec![Value::String(format!(
                "urn:ietf:params:oauth:jti:{j}"
            ))]),
        );
    }
    if !purposes.is_empty() {
        a.insert("purposeOfUse".into(), Value::Array(purposes.to_vec()));
    }
    a.insert("requestor".into(), Value::Bool(true));
    if let Some(r) = role {
        a.insert(
            "role".into(),
            Value::Array(vec![concept(coding(FHIRGATE_SYSTEM, r, r))]),
        );
    }
    a.insert(
        "type".into(),
        concept(coding(
            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "IRCP",
            "information recipient",
        )),
    );
    a.insert("who".into(), who);
    Value::Object(a)
}

/// The organization the requestor acts for (a token's `organization`: a
/// user's, or a UDAP B2B client's `hl7-b2b` `organization_id`): an agent of
/// type responsible party, not the requestor itself.
pub fn organization_agent(organization: &str) -> Value {
    let who = if organization.starts_with("Organization/") {
        reference(organization)
    } else {
        object([("identifier", uri_identifier(organization))])
    };
    object([
        ("requestor", Value::Bool(false)),
        (
            "type",
            concept(coding(
                "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "RESP",
                "responsible party",
            )),
        ),
        ("who", who),
    ])
}

/// The authorization-server agent of an AuthZ-consent event.
pub fn authorizer_agent(public_url: &str) -> Value {
    object([
        ("requestor", Value::Bool(false)),
        (
            "type",
            concept(coding(
                "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                "authserver",
                "authorization server",
            )),
        ),
        (
            "who",
            object([
                ("display", string("fhirgate")),
                ("identifier", uri_identifier(public_url)),
            ]),
        ),
    ])
}

/// AuditEvent.source: fhirgate observed it.
pub fn source(public_url: &str) -> Value {
    object([
        (
            "observer",
            object([
                ("display", string("fhirgate")),
                ("identifier", uri_identifier(public_url)),
            ]),
        ),
        ("site", Value::String(site(public_url))),
        (
            "type",
            Value::Array(vec![coding(
                "http://terminology.hl7.org/CodeSystem/security-source-type",
                "4",
                "Application Server",
            )]),
        ),
    ])
}

/// The host of `public_url` (the URL itself if it has none). One
/// deployment has one public URL: the last answer is kept per thread
/// instead of parsing the URL for every event.
fn site(public_url: &str) -> String {
    fn parse(public_url: &str) -> String {
        url::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| public_url.to_owned())
    }
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return parse(public_url);
        };
        match &*last {
            Some((url, site)) if url == public_url => site.clone(),
            _ => {
                let site = parse(public_url);
                *last = Some((public_url.to_owned(), site.clone()));
                site
            }
        }
    })
}

/// The X-Request-Id transaction entity.
pub fn request_entity(request_id: &str) -> Value {
    object([
        (
            "type",
            coding(BALP_ENTITY_TYPE, "XrequestId", "X-Request-Id"),
        ),
        (
            "what",
            object([("identifier", object([("value", string(request_id))]))]),
        ),
    ])
}

/// The patient entity.
pub fn patient_entity(patient: &str) -> Value {
    object([
        ("role", coding(OBJECT_ROLE, "1", "Patient")),
        ("type", coding(ENTITY_TYPE, "1", "Person")),
        ("what", reference(patient)),
    ])
}

/// A resource entity (by reference only).
pub fn data_entity(reference: &str) -> Value {
    object([
        ("role", coding(OBJECT_ROLE, "4", "Domain Resource")),
        ("type", coding(ENTITY_TYPE, "2", "System Object")),
        ("what", self::reference(reference)),
    ])
}

/// The query entity: the raw request line, base64.
pub fn query_entity(request_line: &str) -> Value {
    use base64::{engine::general_purpose::STANDARD, Engine};
    object([
        (
            "query",
            Value::String(STANDARD.encode(request_line.as_bytes())),
        ),
        ("role", coding(OBJECT_ROLE, "24", "Query")),
        ("type", coding(ENTITY_TYPE, "2", "System Object")),
    ])
}

/// The Consent entity of an AuthZ-consent event.
pub fn consent_entity(consent: &str) -> Value {
    object([
        ("type", coding(RESOURCE_TYPES, "Consent", "Consent")),
        ("what", reference(consent)),
    ])
}

/// The access-token entity of an AuthZ-consent event.
pub fn token_entity(jti: &str) -> Value {
    object([
        (
            "type",
            coding(BALP_USER_AGENT_TYPE, "UserOauthAgent", "OAuth token"),
        ),
        (
            "what",
            object([(
                "identifier",
                object([(
                    "value",
                    Value::String(format!("urn:ietf:params:oauth:jti:{jti}")),
                )]),
            )]),
        ),
    ])
}

/// The `entity-type` codes of an event's entities: each entity's type code
/// and, for references, the resource type.
pub fn entity_types(event: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in event["entity"].as_array().into_iter().flatten() {
        if let Some(c) = e["type"]["code"].as_str() {
            out.push(c.to_owned());
        }
        if let Some(t) = e["what"]["reference"]
            .as_str()
            .and_then(|r| r.split('/').next())
        {
            out.push(t.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mappings_follow_balp() {
        assert_eq!(subtype(Interaction::Read, None), "read");
        assert_eq!(subtype(Interaction::SearchType, None), "search-type");
        assert_eq!(
            subtype(Interaction::BatchOrTransaction, Some("transaction")),
            "transaction"
        );
        assert_eq!(subtype(Interaction::BatchOrTransaction, None), "batch");
        assert_eq!(action(Interaction::Read), "R");
        assert_eq!(action(Interaction::SearchType), "E");
        assert_eq!(action(Interaction::Create), "C");
        assert_eq!(action(Interaction::ConditionalUpdate), "U");
        assert_eq!(action(Interaction::Delete), "D");
        assert_eq!(action(Interaction::Operation), "E");
        assert_eq!(outcome(200), "0");
        assert_eq!(outcome(304), "0");
        assert_eq!(outcome(403), "4");
        assert_eq!(outcome(502), "8");
        assert!(rest_profile("read", true).ends_with("IHE.BasicAudit.PatientRead"));
        assert!(rest_profile("search-type", false).ends_with("IHE.BasicAudit.Query"));
        // Reads: the client is the destination of the data.
        assert_eq!(
            client_agent(Some("c"), None, false)["type"]["coding"][0]["code"],
            "110152"
        );
        assert_eq!(
            server_agent("b", true)["type"]["coding"][0]["code"],
            "110153"
        );
    }

    /// The elements as built before with `json!` (member order aside,
    /// the same values; their canonical bytes are what the ledger sees).
    #[allow(clippy::all, dead_code)]
    mod legacy {
        use super::super::*;
        use serde_json::{json, Value};

        /// A `Coding`.
        pub fn coding(system: &str, code: &str, display: &str) -> Value {
            json!({"system": system, "code": code, "display": display})
        }

        /// Who the client is: the OAuth client id (no Device resource exists for it).
        pub fn client_who(client_id: Option<&str>) -> Value {
            match client_id {
                Some(id) => {
                    json!({"identifier": {"system": CLIENT_ID_SYSTEM, "value": id}, "display": id})
                }
                None => json!({"display": "unauthenticated client"}),
            }
        }

        /// The client agent; `source_role` picks DCM 110153 (else 110152).
        pub fn client_agent(
            client_id: Option<&str>,
            address: Option<&str>,
            source_role: bool,
        ) -> Value {
            let (code, display) = if source_role {
                ("110153", "Source Role ID")
            } else {
                ("110152", "Destination Role ID")
            };
            let mut a = json!({
                "type": {"coding": [coding(DCM, code, display)]},
                "who": client_who(client_id),
                "requestor": false,
            });
            if let Some(addr) = address {
                a["network"] = json!({"address": addr, "type": "2"});
            }
            a
        }

        /// The server agent (fhirgate at its FHIR base).
        pub fn server_agent(fhir_base: &str, source_role: bool) -> Value {
            let (code, display) = if source_role {
                ("110153", "Source Role ID")
            } else {
                ("110152", "Destination Role ID")
            };
            json!({
                "type": {"coding": [coding(DCM, code, display)]},
                "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": fhir_base}, "display": "fhirgate"},
                "requestor": false,
                "network": {"address": fhir_base, "type": "5"},
            })
        }

        /// `CodeableConcept`s of a purpose of use (v3-ActReason), with a text.
        pub fn purpose(code: &str, text: Option<&str>) -> Value {
            let mut c = json!({"coding": [coding(ACT_REASON, code, code)]});
            if let Some(t) = text {
                c["text"] = json!(t);
            }
            c
        }

        /// The user agent (the requestor): fhirUser, role, token id, purpose.
        pub fn user_agent(
            fhir_user: Option<&str>,
            role: Option<&str>,
            jti: Option<&str>,
            purposes: &[Value],
        ) -> Value {
            let who = match fhir_user {
                Some(u) => json!({"reference": u}),
                None => json!({"display": "no signed-in user"}),
            };
            let mut a = json!({
                "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")]},
                "who": who,
                "requestor": true,
            });
            if let Some(r) = role {
                a["role"] = json!([{"coding": [coding(FHIRGATE_SYSTEM, r, r)]}]);
            }
            if let Some(j) = jti {
                a["policy"] = json!([format!("urn:ietf:params:oauth:jti:{j}")]);
            }
            if !purposes.is_empty() {
                a["purposeOfUse"] = json!(purposes);
            }
            a
        }

        /// The organization the requestor acts for (a token's `organization`: a
        /// user's, or a UDAP B2B client's `hl7-b2b` `organization_id`): an agent of
        /// type responsible party, not the requestor itself.
        pub fn organization_agent(organization: &str) -> Value {
            let who = if organization.starts_with("Organization/") {
                json!({"reference": organization})
            } else {
                json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": organization}})
            };
            json!({
                "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "RESP", "responsible party")]},
                "who": who,
                "requestor": false,
            })
        }

        /// The authorization-server agent of an AuthZ-consent event.
        pub fn authorizer_agent(public_url: &str) -> Value {
            json!({
                "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/extra-security-role-type", "authserver", "authorization server")]},
                "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": public_url}, "display": "fhirgate"},
                "requestor": false,
            })
        }

        /// AuditEvent.source: fhirgate observed it.
        pub fn source(public_url: &str) -> Value {
            let site = url::Url::parse(public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| public_url.to_owned());
            json!({
                "site": site,
                "observer": {"identifier": {"system": "urn:ietf:rfc:3986", "value": public_url}, "display": "fhirgate"},
                "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
            })
        }

        /// The X-Request-Id transaction entity.
        pub fn request_entity(request_id: &str) -> Value {
            json!({
                "what": {"identifier": {"value": request_id}},
                "type": coding(BALP_ENTITY_TYPE, "XrequestId", "X-Request-Id"),
            })
        }

        /// The patient entity.
        pub fn patient_entity(patient: &str) -> Value {
            json!({
                "what": {"reference": patient},
                "type": coding(ENTITY_TYPE, "1", "Person"),
                "role": coding(OBJECT_ROLE, "1", "Patient"),
            })
        }

        /// A resource entity (by reference only).
        pub fn data_entity(reference: &str) -> Value {
            json!({
                "what": {"reference": reference},
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
            })
        }

        /// The query entity: the raw request line, base64.
        pub fn query_entity(request_line: &str) -> Value {
            use base64::{engine::general_purpose::STANDARD, Engine};
            json!({
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "24", "Query"),
                "query": STANDARD.encode(request_line.as_bytes()),
            })
        }

        /// The Consent entity of an AuthZ-consent event.
        pub fn consent_entity(consent: &str) -> Value {
            json!({
                "what": {"reference": consent},
                "type": coding(RESOURCE_TYPES, "Consent", "Consent"),
            })
        }

        /// The access-token entity of an AuthZ-consent event.
        pub fn token_entity(jti: &str) -> Value {
            json!({
                "what": {"identifier": {"value": format!("urn:ietf:params:oauth:jti:{jti}")}},
                "type": coding(BALP_USER_AGENT_TYPE, "UserOauthAgent", "OAuth token"),
            })
        }
    }

    #[test]
    fn elements_are_the_same_as_built_with_json_macro() {
        use super::super::jcs::canonicalize;
        fn same(new: Value, old: Value) {
            assert_eq!(new, old);
            assert_eq!(
                String::from_utf8(canonicalize(&new)).unwrap(),
                String::from_utf8(canonicalize(&old)).unwrap()
            );
        }
        let purposes = [
            purpose("TREAT", None),
            purpose("BTG", Some("why \"now\"\n")),
        ];
        for text in [None, Some("t\u{1}x")] {
            same(purpose("ETREAT", text), legacy::purpose("ETREAT", text));
        }
        for id in [None, Some("app-1"), Some("ü\"x")] {
            same(client_who(id), legacy::client_who(id));
            for addr in [None, Some("192.0.2.1")] {
                for role in [true, false] {
                    same(
                        client_agent(id, addr, role),
                        legacy::client_agent(id, addr, role),
                    );
                }
            }
        }
        for role in [true, false] {
            same(
                server_agent("https://gw/fhir", role),
                legacy::server_agent("https://gw/fhir", role),
            );
        }
        for user in [None, Some("Practitioner/7")] {
            for role in [None, Some("clinician")] {
                for jti in [None, Some("j1")] {
                    for p in [&purposes[..0], &purposes[..1], &purposes[..]] {
                        same(
                            user_agent(user, role, jti, p),
                            legacy::user_agent(user, role, jti, p),
                        );
                    }
                }
            }
        }
        for org in ["Organization/1", "https://org.example/x"] {
            same(organization_agent(org), legacy::organization_agent(org));
        }
        for url in ["https://gw.example", "not a url", "http://[::1]:8080/x"] {
            same(authorizer_agent(url), legacy::authorizer_agent(url));
            same(source(url), legacy::source(url));
            same(source(url), legacy::source(url));
        }
        same(request_entity("r-1"), legacy::request_entity("r-1"));
        same(
            patient_entity("Patient/1"),
            legacy::patient_entity("Patient/1"),
        );
        same(
            data_entity("Observation/2"),
            legacy::data_entity("Observation/2"),
        );
        same(
            query_entity("GET /fhir/Observation?patient=1"),
            legacy::query_entity("GET /fhir/Observation?patient=1"),
        );
        same(
            consent_entity("Consent/c/_history/2"),
            legacy::consent_entity("Consent/c/_history/2"),
        );
        same(token_entity("abc"), legacy::token_entity("abc"));
        same(coding("s", "c", "d"), legacy::coding("s", "c", "d"));
    }

    #[test]
    fn entity_types_list_codes_and_resource_types() {
        let e = json!({"entity": [patient_entity("Patient/1"), data_entity("Observation/2"), query_entity("GET /x"), request_entity("r")]});
        assert_eq!(
            entity_types(&e),
            vec!["1", "2", "Observation", "Patient", "XrequestId"]
        );
    }
}
