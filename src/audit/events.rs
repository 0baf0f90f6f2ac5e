//! One request → its audit events: the readable BALP AuditEvent (the
//! encrypted payload) and the chained, PHI-free ledger entry of each.
//!
//! FHIR requests ([`Builder::fhir`]): for each patient the caller can know
//! was involved (a patient with resources released or written, or a patient
//! the request itself names: `Patient/<id>` as target or compartment, a
//! `patient`/`subject` search value) one RESTful event naming only that
//! patient and that patient's resources, preceded by one AuthZ-consent event
//! summing up the consent decisions about that patient (each deciding
//! Consent and version named); all after one RESTful event for the request
//! itself, without a patient, holding the references about no patient and,
//! as pseudonyms only, the patients whose resources were all withheld. The
//! last entry (the receipt) is thus the last named patient's RESTful event,
//! or the request's own.
//!
//! So a request writes `2 × known patients + 1` entries, a number that never
//! depends on what consent hid: the receipt header (`X-Ledger-Seq`) exposes
//! ledger positions, and a count that grew with hidden patients or denials
//! would tell a caller that a record it may not see exists.
//!
//! The chained entry (`v: 1`) holds: `kind`, `recorded` (ms), `patient`
//! (pseudonym), `interaction`, `type`, `action`, `status`, `outcome`,
//! `agents` (keyed hashes of the client and the user), `role`, `purpose`,
//! `btg`, `refs` (count and keyed digest of the references), `withheld`,
//! `effects`, and for consent events `effect`, `basis` (in clear only when
//! it names no resource, else `basis_hash`) and `consent` (keyed hash);
//! and `payload`: the keyed digest of the payload's plaintext, binding the
//! encrypted AuditEvent to the chain.

use serde_json::{json, Map, Value};

use super::{
    balp::{self, coding},
    jcs,
    pseudonym::{patient_reference, Pseudonymizer},
    vault::DEPLOYMENT,
};
use crate::{
    fhir::{FhirRequest, Interaction},
    pipeline::disclosure::{Caller, ConsentNote, Disclosure, PatientTouch},
};

/// What HTTP says about a request (any route).
#[derive(Debug, Clone, Default)]
pub struct HttpFacts {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The raw path.
    pub path: String,
    /// The raw query string.
    pub query: Option<String>,
    /// The client's network address, when the server knows it.
    pub client_addr: Option<String>,
    /// When the request arrived, milliseconds since the epoch.
    pub recorded: i64,
}

/// What the parsed FHIR request says (kept before the pipeline consumes it).
#[derive(Debug, Clone)]
pub struct FhirFacts {
    /// The interaction.
    pub interaction: Interaction,
    /// `batch` or `transaction` for a Bundle POST.
    pub batch: Option<String>,
    /// Type in the path.
    pub resource_type: Option<String>,
    /// Id in the path.
    pub id: Option<String>,
    /// Compartment `(type, id)`.
    pub compartment: Option<(String, String)>,
    /// Operation name without `$`.
    pub operation: Option<String>,
    /// Query and `_search` form parameters.
    pub params: Vec<(String, String)>,
}

impl FhirFacts {
    /// The facts of a parsed request.
    pub fn of(req: &FhirRequest) -> Self {
        Self {
            interaction: req.interaction,
            batch: req
                .body
                .as_ref()
                .and_then(|b| b["type"].as_str())
                .map(str::to_owned),
            resource_type: req.resource_type.clone(),
            id: req.id.clone(),
            compartment: req.compartment.clone(),
            operation: req.operation.clone(),
            params: req.params.clone(),
        }
    }

    /// Patients the request itself names.
    pub fn named_patients(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some("Patient"), Some(id)) = (self.resource_type.as_deref(), self.id.as_deref()) {
            out.push(format!("Patient/{id}"));
        }
        if let Some(("Patient", id)) = self
            .compartment
            .as_ref()
            .map(|(t, i)| (t.as_str(), i.as_str()))
        {
            out.push(format!("Patient/{id}"));
        }
        for (k, v) in &self.params {
            let name = k.split(':').next().unwrap_or("");
            let bare_is_patient = name == "patient" || k == "subject:Patient";
            if name != "patient" && name != "subject" {
                continue;
            }
            for value in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if value.contains("Patient/") {
                    out.push(patient_reference(value));
                } else if bare_is_patient && !value.contains('/') {
                    out.push(format!("Patient/{value}"));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The request target `Type/id`, if any.
    pub fn target(&self) -> Option<String> {
        match (&self.resource_type, &self.id) {
            (Some(t), Some(i)) => Some(format!("{t}/{i}")),
            _ => None,
        }
    }
}

/// Facts a non-FHIR handler may attach to its response
/// (`response.extensions_mut().insert(RouteNote { … })`) for the route's
/// audit event: who acted and, e.g. for a consent change, about whom.
#[derive(Debug, Clone, Default)]
pub struct RouteNote {
    /// The OAuth client.
    pub client_id: Option<String>,
    /// The signed-in user's fhirUser.
    pub user: Option<String>,
    /// The user's role.
    pub role: Option<String>,
    /// The patient concerned (`Patient/<id>`).
    pub patient: Option<String>,
    /// What happened, in words (`token issued`, `consent updated`).
    pub what: Option<String>,
}

/// What the search index stores beside the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFacts {
    /// Milliseconds since the epoch.
    pub recorded: i64,
    /// `rest`, `authz-consent`, `http`, `erasure`.
    pub kind: String,
    /// C R U D E.
    pub action: String,
    /// 0 4 8 12.
    pub outcome: String,
    /// Entity type codes and resource types.
    pub entity_types: Vec<String>,
    /// Keyed hashes of the agents.
    pub agents: Vec<String>,
}

/// One event, ready for the writer.
#[derive(Debug, Clone)]
pub struct Event {
    /// The request id.
    pub request_id: Option<String>,
    /// The patient's pseudonym, or [`DEPLOYMENT`].
    pub pseudonym: String,
    /// The chained part.
    pub entry: Value,
    /// The AuditEvent's canonical JSON (no `id`; it is the seq).
    pub payload: Vec<u8>,
    /// Search columns.
    pub index: IndexFacts,
}

/// Builds events for one deployment.
#[derive(Debug, Clone)]
pub struct Builder {
    /// `public_url` without a trailing slash.
    pub public_url: String,
    /// The FHIR base.
    pub fhir_base: String,
    /// The keyed hash.
    pub pz: Pseudonymizer,
}

/// A JSON object of these members, moved in (`json!` would copy every
/// `Value` given to it through its serializer).
fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn instant(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The agent identities of a caller: `client:<id>`, the fhirUser and the
/// organization it acts for.
fn agent_keys(
    client_id: Option<&str>,
    user: Option<&str>,
    organization: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = client_id {
        out.push(format!("client:{c}"));
    }
    if let Some(u) = user {
        out.push(u.to_owned());
    }
    // the responsible organization (RESP agent) is an agent too (R4
    // AuditEvent `agent` = `AuditEvent.agent.who`, every agent)
    // (by `Type/id`, as `agent=` is searched: an absolute URL's last two
    // segments)
    if let Some(o) = organization {
        let parts: Vec<&str> = o.rsplitn(3, '/').collect();
        match parts.as_slice() {
            [id, ty, ..] => out.push(format!("{ty}/{id}")),
            _ => out.push(o.to_owned()),
        }
    }
    out
}

impl Builder {
    fn finish(
        &self,
        request_id: &str,
        patient: Option<&str>,
        mut entry: Map<String, Value>,
        payload: Value,
        agents: &[String],
    ) -> Event {
        let plaintext = jcs::canonicalize(&payload);
        let pseudonym = patient.map(|p| self.pz.patient(p));
        let agent_hashes: Vec<String> = agents.iter().map(|a| self.pz.agent(a)).collect();
        entry.insert("v".into(), json!(1));
        entry.insert("agents".into(), json!(agent_hashes));
        if let Some(p) = &pseudonym {
            entry.insert("patient".into(), json!(p));
        }
        entry.insert("payload".into(), json!(self.pz.payload(&plaintext)));
        let index = IndexFacts {
            recorded: entry.get("recorded").and_then(Value::as_i64).unwrap_or(0),
            kind: entry
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            action: payload["action"].as_str().unwrap_or("E").to_owned(),
            outcome: payload["outcome"].as_str().unwrap_or("0").to_owned(),
            entity_types: balp::entity_types(&payload),
            agents: agent_hashes,
        };
        Event {
            request_id: Some(request_id.to_owned()),
            pseudonym: pseudonym.unwrap_or_else(|| DEPLOYMENT.to_owned()),
            entry: Value::Object(entry),
            payload: plaintext,
            index,
        }
    }

    /// The events of one FHIR request (see the module docs).
    pub fn fhir(
        &self,
        request_id: &str,
        http: &HttpFacts,
        fhir: Option<&FhirFacts>,
        d: &Disclosure,
        status: u16,
    ) -> Vec<Event> {
        let named = fhir.map(FhirFacts::named_patients).unwrap_or_default();
        let mut known: Vec<(String, PatientTouch)> = Vec::new();
        let mut hidden: Vec<String> = Vec::new();
        let mut hidden_withheld = 0;
        let mut hidden_notes: Vec<ConsentNote> = Vec::new();
        for (p, t) in &d.patients {
            let p = patient_reference(p);
            if !t.released.is_empty() || named.contains(&p) {
                known.push((p, t.clone()));
            } else {
                hidden.push(self.pz.patient(&p));
                hidden_withheld += t.withheld;
                hidden_notes.extend(t.decisions.iter().cloned());
            }
        }
        for n in named {
            if !known.iter().any(|(p, _)| *p == n) {
                known.push((n, PatientTouch::default()));
            }
        }
        let mut events = Vec::new();
        let mut per_patient = Vec::new();
        for (patient, touch) in &known {
            per_patient.push(self.consent(
                request_id,
                http,
                d.caller.as_ref(),
                patient,
                &touch.decisions,
            ));
            per_patient.push(self.rest(
                request_id,
                http,
                fhir,
                d,
                status,
                Some(patient),
                &touch.released,
                touch.withheld,
                &touch.decisions,
            ));
        }
        let mut refs = d.other.clone();
        if known.is_empty() {
            if let Some(t) = fhir.and_then(FhirFacts::target) {
                if !refs.contains(&t) {
                    refs.push(t);
                }
            }
        }
        // the request's own event also names the Consents that withheld the
        // patients it does not name (their deciding Consent and version)
        let mut request = self.rest(
            request_id,
            http,
            fhir,
            d,
            status,
            None,
            &refs,
            hidden_withheld,
            &hidden_notes,
        );
        if !hidden.is_empty() {
            hidden.sort();
            if let Some(obj) = request.entry.as_object_mut() {
                obj.insert("withheld_patients".into(), json!(hidden));
            }
        }
        events.push(request);
        events.extend(per_patient);
        events
    }

    /// The request line of the query entity: method, path and parameters.
    fn request_line(http: &HttpFacts, fhir: Option<&FhirFacts>) -> Option<String> {
        let query = match fhir {
            Some(f) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in &f.params {
                    ser.append_pair(k, v);
                }
                ser.finish()
            }
            None => http.query.clone().unwrap_or_default(),
        };
        let searchy = fhir.is_some_and(|f| {
            f.interaction.is_search()
                || matches!(
                    f.interaction,
                    Interaction::HistoryType | Interaction::HistorySystem | Interaction::Operation
                )
        });
        if query.is_empty() && !searchy {
            return None;
        }
        let sep = if query.is_empty() { "" } else { "?" };
        Some(format!("{} {}{sep}{query}", http.method, http.path))
    }

    #[allow(clippy::too_many_arguments)]
    fn rest(
        &self,
        request_id: &str,
        http: &HttpFacts,
        fhir: Option<&FhirFacts>,
        d: &Disclosure,
        status: u16,
        patient: Option<&str>,
        refs: &[String],
        withheld: usize,
        decisions: &[ConsentNote],
    ) -> Event {
        let caller = d.caller.as_ref();
        let subtype = fhir.map(|f| balp::subtype(f.interaction, f.batch.as_deref()));
        let action = match fhir {
            Some(f) => balp::action(f.interaction),
            None => balp::action_of_method(&http.method),
        };
        let reads = action == "R";
        let outcome = balp::outcome(status);
        let mut purposes = Vec::new();
        if let Some(p) = caller.and_then(|c| c.purpose.as_deref()) {
            purposes.push(balp::purpose(p, None));
        }
        if let Some(reason) = &d.break_glass {
            purposes.push(balp::purpose("BTG", Some(reason)));
        }
        let mut agents = vec![
            balp::client_agent(
                caller.map(|c| c.client_id.as_str()),
                http.client_addr.as_deref(),
                !reads,
            ),
            balp::server_agent(&self.fhir_base, reads),
        ];
        if let Some(c) = caller {
            agents.push(balp::user_agent(
                c.fhir_user.as_deref(),
                c.role.as_deref(),
                Some(&c.jti),
                &purposes,
            ));
            if let Some(org) = &c.organization {
                agents.push(balp::organization_agent(org));
            }
        }
        let mut entities = vec![balp::request_entity(request_id)];
        if let Some(p) = patient {
            let mut e = balp::patient_entity(p);
            if withheld > 0 {
                e["detail"] =
                    json!([{"type": "withheld-by-consent", "valueString": withheld.to_string()}]);
            }
            entities.push(e);
        }
        entities.extend(refs.iter().map(|r| balp::data_entity(r)));
        if patient.is_none() {
            let mut named: Vec<&str> = decisions
                .iter()
                .filter_map(|n| n.consent.as_deref())
                .collect();
            named.sort_unstable();
            named.dedup();
            entities.extend(named.into_iter().map(balp::consent_entity));
        }
        if let Some(line) = Self::request_line(http, fhir) {
            entities.push(balp::query_entity(&line));
        }
        let mut subtypes = Vec::new();
        if let Some(s) = subtype {
            subtypes.push(coding(balp::RESTFUL_INTERACTION, s, s));
        }
        if let Some(op) = fhir.and_then(|f| f.operation.as_deref()) {
            subtypes.push(coding(balp::FHIRGATE_SYSTEM, &format!("${op}"), op));
        }
        // members in canonical (RFC 8785) order: written without sorting
        let mut payload = object([
            ("action", json!(action)),
            ("agent", Value::Array(agents)),
            ("entity", Value::Array(entities)),
            (
                "meta",
                object([(
                    "profile",
                    Value::Array(vec![Value::String(balp::rest_profile(
                        subtype.unwrap_or("search"),
                        patient.is_some(),
                    ))]),
                )]),
            ),
            ("outcome", json!(outcome)),
            ("recorded", Value::String(instant(http.recorded))),
            ("resourceType", json!("AuditEvent")),
            ("source", balp::source(&self.public_url)),
            ("subtype", Value::Array(subtypes)),
            (
                "type",
                coding(balp::AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
            ),
        ]);
        if outcome != "0" {
            payload["outcomeDesc"] = json!(format!("HTTP {status}"));
        }
        if !purposes.is_empty() {
            payload["purposeOfEvent"] = Value::Array(purposes);
        }
        if d.break_glass.is_some() {
            payload["meta"]["security"] =
                json!([coding(balp::ACT_REASON, "BTG", "break the glass")]);
        }
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("rest"));
        entry.insert("recorded".into(), json!(http.recorded));
        if let Some(s) = subtype {
            entry.insert("interaction".into(), json!(s));
        }
        if let Some(t) = fhir.and_then(|f| f.resource_type.as_deref()) {
            entry.insert("type".into(), json!(t));
        }
        if let Some(op) = fhir.and_then(|f| f.operation.as_deref()) {
            entry.insert("operation".into(), json!(op));
        }
        entry.insert("action".into(), json!(action));
        entry.insert("status".into(), json!(status));
        entry.insert("outcome".into(), json!(outcome));
        insert_caller(&mut entry, caller);
        entry.insert("btg".into(), json!(d.break_glass.is_some()));
        entry.insert(
            "refs".into(),
            json!({"n": refs.len(), "digest": self.pz.references(refs)}),
        );
        if withheld > 0 {
            entry.insert("withheld".into(), json!(withheld));
        }
        if !decisions.is_empty() {
            let effects: Vec<&str> = decisions.iter().map(|n| n.effect.as_str()).collect();
            entry.insert("effects".into(), json!(effects));
        }
        let keys = agent_keys(
            caller.map(|c| c.client_id.as_str()),
            caller.and_then(|c| c.fhir_user.as_deref()),
            caller.and_then(|c| c.organization.as_deref()),
        );
        self.finish(request_id, patient, entry, payload, &keys)
    }

    /// The BALP AuthZ-consent event summing up the consent decisions about
    /// one patient in one request (effect: the strictest; every deciding
    /// Consent named; `none` when nothing was judged).
    pub fn consent(
        &self,
        request_id: &str,
        http: &HttpFacts,
        caller: Option<&Caller>,
        patient: &str,
        notes: &[ConsentNote],
    ) -> Event {
        let rank = |e: &str| match e {
            "deny" => 4,
            "redact" => 3,
            "break-the-glass" => 2,
            "permit" => 1,
            _ => 0,
        };
        let strictest = notes
            .iter()
            .max_by_key(|n| rank(&n.effect))
            .map(|n| n.effect.clone())
            .unwrap_or_else(|| "none".to_owned());
        let summary = ConsentNote {
            effect: strictest,
            basis: if notes.is_empty() {
                "no consent decision".to_owned()
            } else {
                notes
                    .iter()
                    .map(|n| format!("{} by {}", n.effect, n.basis))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
            consent: None,
            resources: notes.iter().map(|n| n.resources).sum(),
        };
        let consents: Vec<&str> = notes.iter().filter_map(|n| n.consent.as_deref()).collect();
        self.consent_event(request_id, http, caller, patient, &summary, &consents)
    }

    fn consent_event(
        &self,
        request_id: &str,
        http: &HttpFacts,
        caller: Option<&Caller>,
        patient: &str,
        note: &ConsentNote,
        consents: &[&str],
    ) -> Event {
        let deny = note.effect == "deny";
        let btg = note.effect == "break-the-glass";
        let outcome = if deny { "8" } else { "0" };
        let mut purposes = Vec::new();
        if let Some(p) = caller.and_then(|c| c.purpose.as_deref()) {
            purposes.push(balp::purpose(p, None));
        }
        if btg {
            purposes.push(balp::purpose("BTG", None));
        }
        let application = {
            let mut a = Map::with_capacity(4);
            if let Some(addr) = &http.client_addr {
                a.insert("network".into(), balp::network(addr, "2"));
            }
            a.insert("requestor".into(), Value::Bool(false));
            a.insert(
                "type".into(),
                object([(
                    "coding",
                    Value::Array(vec![coding(balp::DCM, "110150", "Application")]),
                )]),
            );
            a.insert(
                "who".into(),
                balp::client_who(caller.map(|c| c.client_id.as_str())),
            );
            Value::Object(a)
        };
        let mut agents = vec![application, balp::authorizer_agent(&self.public_url)];
        if let Some(c) = caller {
            agents.push(balp::user_agent(
                c.fhir_user.as_deref(),
                c.role.as_deref(),
                Some(&c.jti),
                &purposes,
            ));
            if let Some(org) = &c.organization {
                agents.push(balp::organization_agent(org));
            }
        }
        let mut patient_e = balp::patient_entity(patient);
        patient_e["detail"] = json!([
            {"type": "basis", "valueString": note.basis},
            {"type": "resources", "valueString": note.resources.to_string()},
        ]);
        let mut entities = vec![balp::request_entity(request_id), patient_e];
        for c in consents {
            entities.push(balp::consent_entity(c));
        }
        if let Some(c) = caller {
            entities.push(balp::token_entity(&c.jti));
        }
        // members in canonical (RFC 8785) order: written without sorting
        let mut payload = object([
            ("action", json!("E")),
            ("agent", Value::Array(agents)),
            ("entity", Value::Array(entities)),
            (
                "meta",
                object([(
                    "profile",
                    Value::Array(vec![Value::String(format!(
                        "{}AuthZconsent",
                        balp::PROFILE_BASE
                    ))]),
                )]),
            ),
            ("outcome", json!(outcome)),
            (
                "outcomeDesc",
                Value::String(format!("{}: {}", note.effect, note.basis)),
            ),
            ("recorded", Value::String(instant(http.recorded))),
            ("resourceType", json!("AuditEvent")),
            ("source", balp::source(&self.public_url)),
            (
                "subtype",
                Value::Array(vec![coding(
                    balp::BALP_AUTHZ_SUBTYPE,
                    "AuthZ-Consent",
                    "Authorization Decision using Roles and Consent",
                )]),
            ),
            ("type", coding(balp::DCM, "110113", "Security Alert")),
        ]);
        if !purposes.is_empty() {
            payload["purposeOfEvent"] = Value::Array(purposes);
        }
        if btg {
            payload["meta"]["security"] =
                json!([coding(balp::ACT_REASON, "BTG", "break the glass")]);
        }
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("authz-consent"));
        entry.insert("recorded".into(), json!(http.recorded));
        entry.insert("effect".into(), json!(note.effect));
        if note.basis.contains('/') {
            entry.insert("basis_hash".into(), json!(self.pz.reference(&note.basis)));
        } else {
            entry.insert("basis".into(), json!(note.basis));
        }
        if !consents.is_empty() {
            let hashed: Vec<String> = consents.iter().map(|c| self.pz.reference(c)).collect();
            entry.insert("consents".into(), json!(hashed));
        }
        entry.insert("resources".into(), json!(note.resources));
        entry.insert("outcome".into(), json!(outcome));
        insert_caller(&mut entry, caller);
        let keys = agent_keys(
            caller.map(|c| c.client_id.as_str()),
            caller.and_then(|c| c.fhir_user.as_deref()),
            caller.and_then(|c| c.organization.as_deref()),
        );
        self.finish(request_id, Some(patient), entry, payload, &keys)
    }

    /// The event of a non-FHIR route (OAuth, UI, admin): route template,
    /// method, status and who, where known; never the body or the query.
    pub fn route(
        &self,
        request_id: &str,
        http: &HttpFacts,
        route: &str,
        status: u16,
        note: &RouteNote,
    ) -> Event {
        let action = match (http.method.as_str(), route) {
            ("POST", "/auth/register" | "/admin/clients") => "C",
            (m, _) => balp::action_of_method(m),
        };
        let outcome = balp::outcome(status);
        let authn = matches!(
            route,
            "/login" | "/logout" | "/auth/authorize" | "/auth/token"
        ) || route.starts_with("/login/");
        let (ty, subtypes) = match (http.method.as_str(), route) {
            ("POST", "/login") => (
                coding(balp::DCM, "110114", "User Authentication"),
                vec![coding(balp::DCM, "110122", "Login")],
            ),
            ("POST", "/logout") => (
                coding(balp::DCM, "110114", "User Authentication"),
                vec![coding(balp::DCM, "110123", "Logout")],
            ),
            _ if authn => (
                coding(balp::DCM, "110114", "User Authentication"),
                Vec::new(),
            ),
            _ => (
                coding(balp::DCM, "110100", "Application Activity"),
                Vec::new(),
            ),
        };
        let mut subtypes = subtypes;
        let route_code = format!("{} {route}", http.method);
        subtypes.push(coding(balp::FHIRGATE_SYSTEM, &route_code, &route_code));
        let mut agents = vec![
            balp::client_agent(note.client_id.as_deref(), http.client_addr.as_deref(), true),
            balp::server_agent(&self.public_url, false),
        ];
        if note.user.is_some() || note.role.is_some() {
            agents.push(balp::user_agent(
                note.user.as_deref(),
                note.role.as_deref(),
                None,
                &[],
            ));
        }
        let mut entities = vec![balp::request_entity(request_id)];
        if let Some(p) = &note.patient {
            entities.push(balp::patient_entity(&patient_reference(p)));
        }
        let mut payload = json!({
            "resourceType": "AuditEvent",
            "type": ty,
            "subtype": subtypes,
            "action": action,
            "recorded": instant(http.recorded),
            "outcome": outcome,
            "agent": agents,
            "source": balp::source(&self.public_url),
            "entity": entities,
        });
        match (&note.what, outcome) {
            (Some(w), "0") => payload["outcomeDesc"] = json!(w),
            (Some(w), _) => payload["outcomeDesc"] = json!(format!("{w}: HTTP {status}")),
            (None, "0") => {}
            (None, _) => payload["outcomeDesc"] = json!(format!("HTTP {status}")),
        }
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("http"));
        entry.insert("recorded".into(), json!(http.recorded));
        entry.insert("route".into(), json!(route));
        entry.insert("method".into(), json!(http.method));
        entry.insert("action".into(), json!(action));
        entry.insert("status".into(), json!(status));
        entry.insert("outcome".into(), json!(outcome));
        if let Some(r) = &note.role {
            entry.insert("role".into(), json!(r));
        }
        let keys = agent_keys(note.client_id.as_deref(), note.user.as_deref(), None);
        let patient = note.patient.as_deref().map(patient_reference);
        self.finish(request_id, patient.as_deref(), entry, payload, &keys)
    }

    /// The record of an erasure: names the pseudonym only, payload under
    /// the deployment key (the patient's key no longer exists).
    pub fn erasure(&self, request_id: &str, pseudonym: &str, recorded: i64, by: &str) -> Event {
        let payload = json!({
            "resourceType": "AuditEvent",
            "type": coding(balp::DCM, "110110", "Patient Record"),
            "subtype": [coding(balp::FHIRGATE_SYSTEM, "erase-patient", "audit payload key destroyed")],
            "action": "D",
            "recorded": instant(recorded),
            "outcome": "0",
            "outcomeDesc": format!("audit payloads of pseudonym {pseudonym} made unreadable (key destroyed) by {by}"),
            "agent": [{
                "type": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient")]},
                "who": {"display": by},
                "requestor": true,
            }],
            "source": balp::source(&self.public_url),
            "entity": [
                balp::request_entity(request_id),
                {
                    "what": {"identifier": {"system": "urn:fhirgate:audit:pseudonym", "value": pseudonym}},
                    "type": coding(balp::ENTITY_TYPE, "1", "Person"),
                    "role": coding(balp::OBJECT_ROLE, "1", "Patient"),
                },
            ],
        });
        let mut entry = Map::new();
        entry.insert("kind".into(), json!("erasure"));
        entry.insert("recorded".into(), json!(recorded));
        entry.insert("erased".into(), json!(pseudonym));
        entry.insert("outcome".into(), json!("0"));
        self.finish(request_id, None, entry, payload, &[])
    }
}

fn insert_caller(entry: &mut Map<String, Value>, caller: Option<&Caller>) {
    if let Some(c) = caller {
        if let Some(r) = &c.role {
            entry.insert("role".into(), json!(r));
        }
        // how the user authenticated (issue 11): no identifier, so in clear
        if let Some(a) = &c.acr {
            entry.insert("acr".into(), json!(a));
        }
        if !c.amr.is_empty() {
            entry.insert("amr".into(), json!(c.amr));
        }
        if let Some(p) = &c.purpose {
            entry.insert("purpose".into(), json!(p));
        }
    }
}
