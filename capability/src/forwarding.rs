//! What of the store's statement survives the facade: the INTERSECTION of
//! what the store (embedded or HTTP upstream) declares and what fhirgate
//! forwards to it. fhirgate never adds to a store's capability here; what
//! fhirgate answers itself is added afterwards ([`crate::local`],
//! [`crate::operations`]).
//!
//! - an interaction is kept only if fhirgate's request parser forwards it
//!   (e.g. `patch` is refused with 405, so an upstream's `patch` is dropped);
//! - a search parameter only if fhirgate passes it through
//!   ([`Forwarding::passes_param`]);
//! - an operation only if fhirgate routes it to the store (one fhirgate
//!   answers itself under the same name is replaced by fhirgate's);
//! - the types fhirgate serves itself (AuditEvent, Subscription) are
//!   removed, as are `_revinclude` values from them (the store's copies of
//!   those types are never what a client sees);
//! - `_include`/`_revinclude`, `supportedProfile` and the per-type flags
//!   are the store's: fhirgate forwards them unchanged and filters the
//!   answer, which never makes a supported value fail;
//! - a canonical on the store's own address ([`Forwarding::private_canonical`])
//!   never reaches a client (the facade's rule for upstream addresses): an
//!   operation defined only there is dropped (`definition` is required), a
//!   search parameter loses its `definition`, a profile is not listed.

use crate::model::Rest;

/// fhirgate's forwarding rules (inputs: the server knows its pipeline).
pub struct Forwarding<'a> {
    /// Type/instance interaction codes fhirgate forwards.
    pub type_interactions: &'a [&'a str],
    /// System interaction codes fhirgate forwards.
    pub system_interactions: &'a [&'a str],
    /// Whether a search parameter `(type, name)` reaches the store as sent.
    pub passes_param: &'a dyn Fn(&str, &str) -> bool,
    /// Whether a canonical URL names the store's own address.
    pub private_canonical: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for Forwarding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("type_interactions", &self.type_interactions)
            .field("system_interactions", &self.system_interactions)
            .finish_non_exhaustive()
    }
}

/// The part of `store` a client can use through fhirgate, given the types
/// (`local_types`) and operation names (`local_operations`) fhirgate
/// answers itself.
pub fn intersect(
    store: &Rest,
    fw: &Forwarding<'_>,
    local_types: &[&str],
    local_operations: &[&str],
) -> Rest {
    let private = fw.private_canonical;
    let keep_op = |o: &crate::model::Operation| {
        !local_operations.contains(&o.name.as_str()) && !private(&o.definition)
    };
    let mut out = Rest {
        interactions: store
            .interactions
            .iter()
            .filter(|i| fw.system_interactions.contains(&i.as_str()))
            .cloned()
            .collect(),
        search: store
            .search
            .iter()
            .filter(|p| (fw.passes_param)("Resource", &p.name))
            .cloned()
            .collect(),
        operations: store
            .operations
            .iter()
            .filter(|o| keep_op(o))
            .cloned()
            .collect(),
        // compartment searches are forwarded (as `Patient/[id]/[type]`)
        compartments: store.compartments.clone(),
        resources: Vec::new(),
    };
    for r in &store.resources {
        if local_types.contains(&r.rtype.as_str()) {
            continue;
        }
        let mut r = r.clone();
        r.interactions
            .retain(|i| fw.type_interactions.contains(&i.as_str()));
        let t = r.rtype.clone();
        r.search.retain(|p| (fw.passes_param)(&t, &p.name));
        for p in &mut r.search {
            if p.definition.as_deref().is_some_and(private) {
                p.definition = None;
            }
        }
        r.operations.retain(keep_op);
        r.supported_profiles.retain(|c| !private(c));
        if r.profile.as_deref().is_some_and(private) {
            r.profile = None;
        }
        r.revincludes.retain(|v| {
            let source = v.split(':').next().unwrap_or_default();
            !local_types.contains(&source)
        });
        out.resources.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fw<'a>(passes: &'a dyn Fn(&str, &str) -> bool) -> Forwarding<'a> {
        Forwarding {
            type_interactions: &["read", "search-type", "create"],
            system_interactions: &["transaction"],
            passes_param: passes,
            private_canonical: &|c: &str| c.starts_with("http://upstream/private"),
        }
    }

    #[test]
    fn only_what_is_forwarded_survives() {
        let upstream = json!({"rest": [{"mode": "server",
        "interaction": [{"code": "transaction"}, {"code": "history-system"}],
        "operation": [{"name": "export", "definition": "http://upstream/export"},
                      {"name": "reindex", "definition": "http://upstream/reindex"},
                      {"name": "expunge", "definition": "http://upstream/private/expunge"}],
        "resource": [
            {"type": "Patient",
             "interaction": [{"code": "read"}, {"code": "patch"}, {"code": "search-type"}],
             "searchParam": [{"name": "name", "type": "string", "definition": "http://upstream/private/sp"}, {"name": "_format", "type": "token"}],
             "supportedProfile": ["http://upstream/private/p", "http://ig/p"],
             "searchRevInclude": ["Provenance:target", "AuditEvent:entity"],
             "operation": [{"name": "everything", "definition": "http://e"},
                           {"name": "export", "definition": "http://upstream/pexport"}]},
            {"type": "AuditEvent", "interaction": [{"code": "read"}, {"code": "delete"}]}
        ]}]});
        let passes = |_: &str, n: &str| n != "_format";
        let got = intersect(
            &Rest::from_statement(&upstream),
            &fw(&passes),
            &["AuditEvent"],
            &["export"],
        );
        assert_eq!(got.interactions, vec!["transaction"]);
        assert_eq!(
            got.operations.len(),
            1,
            "the upstream's $export is not reached"
        );
        assert_eq!(got.operations[0].name, "reindex");
        assert!(got.resource("AuditEvent").is_none(), "served by fhirgate");
        let p = got.resource("Patient").cloned().unwrap_or_default();
        assert_eq!(p.interactions, vec!["read", "search-type"], "patch refused");
        assert_eq!(p.search.len(), 1);
        assert_eq!(p.search[0].name, "name");
        assert_eq!(
            p.search[0].definition, None,
            "the upstream's address is not shown"
        );
        assert_eq!(p.supported_profiles, vec!["http://ig/p"]);
        assert_eq!(p.revincludes, vec!["Provenance:target"]);
        assert_eq!(p.operations.len(), 1);
        assert_eq!(p.operations[0].name, "everything");
    }

    #[test]
    fn nothing_is_invented() {
        let upstream = json!({"rest": [{"mode": "server", "resource": [{"type": "Observation"}]}]});
        let passes = |_: &str, _: &str| true;
        let got = intersect(
            &Rest::from_statement(&upstream),
            &fw(&passes),
            &["AuditEvent"],
            &["export"],
        );
        let o = got.resource("Observation").cloned().unwrap_or_default();
        assert!(o.interactions.is_empty() && o.search.is_empty() && o.operations.is_empty());
        assert!(got.interactions.is_empty());
    }
}
