//! The route template of a request: the only path-derived label a metric
//! or an access log line may carry. Built from axum's matched route (the
//! template written in the router, e.g. `/portal/consents/{id}`) and, under
//! the catch-all `/fhir/{*path}`, from the shape of the FHIR path (R4
//! http.html): `/fhir/{type}/{id}/_history/{vid}`. Path segments are only
//! compared, never copied, except operation names from [`OPERATIONS`]; so
//! no id, patient or client can reach a label.

/// Operation names kept in templates (`/fhir/{type}/$export`); any other
/// is `$op`.
pub const OPERATIONS: &[&str] = &[
    "everything",
    "export",
    "davinci-data-export",
    "member-match",
    "bulk-member-match",
    "submit",
    "inquire",
    "questionnaire-package",
    "validate",
    "status",
    "events",
    "expand",
    "lookup",
    "meta",
];

/// A route template (construct with [`Route::of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route(String);

impl Route {
    /// The template of a request whose router match was `matched` (axum's
    /// `MatchedPath`, absent when no route matched) and whose path is `path`.
    pub fn of(matched: Option<&str>, path: &str) -> Self {
        let t = match matched {
            None => "unmatched".to_owned(),
            Some("/fhir" | "/fhir/") => "/fhir".to_owned(),
            Some("/fhir/{*path}") => fhir(path),
            Some(m) if m.starts_with("/ui/") => "/ui/{*}".to_owned(),
            Some(m) => m.to_owned(),
        };
        Self(t)
    }

    /// The template.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `$name` when `name` is a known operation, else `$op`.
fn op(seg: &str) -> Option<String> {
    let name = seg.strip_prefix('$')?;
    Some(match OPERATIONS.iter().find(|o| **o == name) {
        Some(o) => format!("${o}"),
        None => "$op".to_owned(),
    })
}

/// The template of a path under `/fhir/`.
fn fhir(path: &str) -> String {
    let rest = path.strip_prefix("/fhir/").unwrap_or_default();
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let t = match segs.as_slice() {
        [] => "".to_owned(),
        ["metadata"] => "/metadata".to_owned(),
        [".well-known", "smart-configuration"] => "/.well-known/smart-configuration".to_owned(),
        [".well-known", "udap"] => "/.well-known/udap".to_owned(),
        [".well-known", ..] => "/.well-known/{document}".to_owned(),
        ["bulk", "status", _] => "/bulk/status/{job}".to_owned(),
        ["bulk", "files", _, _] => "/bulk/files/{job}/{file}".to_owned(),
        ["bulk", ..] => "/bulk/{*}".to_owned(),
        ["_history"] => "/_history".to_owned(),
        ["_search"] => "/_search".to_owned(),
        [o] if o.starts_with('$') => format!("/{}", op(o).unwrap_or_default()),
        [_] => "/{type}".to_owned(),
        [_, "_search"] => "/{type}/_search".to_owned(),
        [_, "_history"] => "/{type}/_history".to_owned(),
        [_, o] if o.starts_with('$') => format!("/{{type}}/{}", op(o).unwrap_or_default()),
        [_, _] => "/{type}/{id}".to_owned(),
        [_, _, "_history"] => "/{type}/{id}/_history".to_owned(),
        [_, _, o] if o.starts_with('$') => {
            format!("/{{type}}/{{id}}/{}", op(o).unwrap_or_default())
        }
        [_, _, _] => "/{compartment}/{id}/{type}".to_owned(),
        [_, _, "_history", _] => "/{type}/{id}/_history/{vid}".to_owned(),
        [_, _, _, "_search"] => "/{compartment}/{id}/{type}/_search".to_owned(),
        _ => "/{*}".to_owned(),
    };
    format!("/fhir{t}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fhir_route(path: &str) -> String {
        Route::of(Some("/fhir/{*path}"), path).0
    }

    #[test]
    fn fhir_paths_become_templates() {
        let table = [
            ("/fhir/metadata", "/fhir/metadata"),
            ("/fhir/Patient", "/fhir/{type}"),
            ("/fhir/Patient/", "/fhir/{type}"),
            ("/fhir/Patient/_search", "/fhir/{type}/_search"),
            ("/fhir/Patient/p-123", "/fhir/{type}/{id}"),
            ("/fhir/Patient/p-123/_history", "/fhir/{type}/{id}/_history"),
            (
                "/fhir/Patient/p-123/_history/7",
                "/fhir/{type}/{id}/_history/{vid}",
            ),
            (
                "/fhir/Patient/p-123/$everything",
                "/fhir/{type}/{id}/$everything",
            ),
            ("/fhir/Patient/p-123/$p-123", "/fhir/{type}/{id}/$op"),
            (
                "/fhir/Patient/p-123/Observation",
                "/fhir/{compartment}/{id}/{type}",
            ),
            ("/fhir/Group/g1/$export", "/fhir/{type}/{id}/$export"),
            ("/fhir/$export", "/fhir/$export"),
            ("/fhir/$secret-123", "/fhir/$op"),
            ("/fhir/bulk/status/job-9", "/fhir/bulk/status/{job}"),
            (
                "/fhir/bulk/files/job-9/1.ndjson",
                "/fhir/bulk/files/{job}/{file}",
            ),
            ("/fhir/a/b/c/d/e", "/fhir/{*}"),
        ];
        for (path, want) in table {
            assert_eq!(fhir_route(path), want, "{path}");
        }
    }

    #[test]
    fn other_routes_keep_their_template_ui_collapses() {
        assert_eq!(
            Route::of(Some("/auth/token"), "/auth/token").0,
            "/auth/token"
        );
        assert_eq!(
            Route::of(Some("/portal/consents/{id}"), "/portal/consents/c9").0,
            "/portal/consents/{id}"
        );
        assert_eq!(
            Route::of(Some("/ui/static/fhirgate.css"), "/ui/static/fhirgate.css").0,
            "/ui/{*}"
        );
        assert_eq!(Route::of(None, "/nowhere/Patient/1").0, "unmatched");
        assert_eq!(Route::of(Some("/fhir/"), "/fhir/").0, "/fhir");
    }
}
