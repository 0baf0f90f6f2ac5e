//! Search parameters: the one table of what the embedded store indexes and
//! the CapabilityStatement advertises (`params`), the Patient compartment
//! (`compartment`), what the indexer extracts from a resource (`extract`), and
//! the typed parsing of a search request (`query`, built on `value`, `date`
//! and `text`). Nothing here touches SQL: the embedded store's `index` and
//! `search` modules turn these types into rows and queries.

pub mod compartment;
pub mod date;
pub mod extract;
pub mod filter;
pub mod params;
pub mod query;
pub mod text;
pub mod value;

use capability::SearchParamDef;

/// The definition of `name` for `rtype`: resource-specific first, then the
/// parameters every resource has (`_id`, `_lastUpdated`, `_tag`, ...).
pub fn find_param(rtype: &str, name: &str) -> Option<&'static SearchParamDef> {
    params::SEARCH_PARAMS
        .iter()
        .find(|p| p.resource == rtype && p.name == name)
        .or_else(|| params::COMMON_PARAMS.iter().find(|p| p.name == name))
}

/// Every parameter the indexer writes rows for on `rtype` (`_id` and
/// `_lastUpdated` are served from the resource table and have no rows).
pub fn indexed_params(rtype: &str) -> impl Iterator<Item = &'static SearchParamDef> + '_ {
    params::SEARCH_PARAMS
        .iter()
        .filter(move |p| p.resource == rtype)
        .chain(params::COMMON_PARAMS.iter())
        .filter(|p| !is_resource_column(p.name))
}

/// Whether a parameter is answered from the `resource` table itself.
pub fn is_resource_column(name: &str) -> bool {
    matches!(name, "_id" | "_lastUpdated")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::fhir::types::is_resource_type;
    use capability::ParamType;
    use std::collections::HashSet;

    #[test]
    fn table_has_no_duplicates_and_sane_entries() {
        let mut seen = HashSet::new();
        for p in params::SEARCH_PARAMS.iter().chain(params::COMMON_PARAMS) {
            assert!(
                seen.insert((p.resource, p.name)),
                "duplicate {}:{}",
                p.resource,
                p.name
            );
            assert!(!p.paths.is_empty(), "{}:{} has no path", p.resource, p.name);
            assert!(
                p.resource == "Resource" || is_resource_type(p.resource),
                "{}",
                p.resource
            );
            if p.kind == ParamType::Reference {
                assert!(
                    !p.targets.is_empty(),
                    "{}:{} has no targets",
                    p.resource,
                    p.name
                );
                for t in p.targets {
                    assert!(is_resource_type(t), "{}:{} target {t}", p.resource, p.name);
                }
            } else {
                assert!(
                    p.targets.is_empty(),
                    "{}:{} has targets",
                    p.resource,
                    p.name
                );
            }
        }
    }

    #[test]
    fn us_core_and_carin_parameters_are_present() {
        for (t, n) in [
            ("Patient", "birthdate"),
            ("Observation", "patient"),
            ("Observation", "category"),
            ("Condition", "clinical-status"),
            ("Encounter", "discharge-disposition"),
            ("ExplanationOfBenefit", "service-date"),
            ("Coverage", "payor"),
            ("ClaimResponse", "outcome"),
            ("Provenance", "target"),
            ("Observation", "_tag"),
            ("Observation", "_lastUpdated"),
        ] {
            assert!(find_param(t, n).is_some(), "{t}:{n}");
        }
        assert!(find_param("Patient", "nope").is_none());
        assert!(indexed_params("Patient").all(|p| p.name != "_id"));
    }

    #[test]
    fn every_table_type_can_be_a_provenance_target() {
        let types: HashSet<&str> = params::SEARCH_PARAMS.iter().map(|p| p.resource).collect();
        for t in types {
            assert!(params::ANY.contains(&t), "{t} missing from ANY");
        }
    }
}
