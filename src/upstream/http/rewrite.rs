//! Upstream → facade URL rewriting for the HTTP upstream (pipeline stage 6's
//! "upstream URLs rewritten"). The facade's rule: the upstream's address never
//! reaches a client.
//!
//! URLs are recognised by structure, never by substring: a value is parsed as
//! a URL and is "upstream" when scheme, host and port (with known defaults)
//! equal the configured upstream base and its path continues the base's path
//! segment by segment. Such a URL becomes `{facade base}` + the rest (path and
//! query kept verbatim, so Medplum's `_offset` or Azure's `ct=` paging links
//! still work when followed through the facade).
//!
//! Rewriting touches typed URL fields only: Bundle `link[].url`,
//! `entry[].fullUrl`, `entry[].request.url`, `entry[].response.location`,
//! CapabilityStatement `url` / `implementation.url`, `Reference.reference`,
//! `Attachment.url`, extension `valueUri` / `valueUrl`, at any depth (nested
//! Bundles, contained resources). A URL on the upstream's host that is *not*
//! below its FHIR base cannot be served by the facade and is replaced by
//! [`REDACTED`]. Free text (OperationOutcome `diagnostics`, `details.text`) is
//! the one place where the upstream's authority is searched as text, token by
//! token, and scrubbed.

use serde_json::Value;
use url::Url;

/// Object keys whose string values are URLs (or absolute references).
const URL_KEYS: &[&str] = &[
    "url",
    "fullUrl",
    "location",
    "reference",
    "valueUri",
    "valueUrl",
];

/// What replaces an upstream URL that has no facade equivalent.
pub const REDACTED: &str = "urn:fhirgate:redacted-upstream-url";

/// What replaces the upstream's address in free text when it is not a URL under its base.
const REDACTED_TEXT: &str = "[upstream]";

/// The upstream's FHIR base, split into the parts URLs are compared by.
#[derive(Debug, Clone)]
pub struct UpstreamBase {
    /// `http` or `https`.
    scheme: String,
    /// Lower-case host.
    host: String,
    /// Port, with the scheme's default filled in.
    port: Option<u16>,
    /// Base path without a trailing slash (`/fhir/R4`, or empty for `/`).
    path: String,
    /// `host[:port]` as it appears in text, lower-case, for scrubbing.
    authority: String,
    /// `scheme://authority` + base path: how an URL below the base is
    /// usually written (see [`Self::plain_rest`]); empty when not http(s).
    prefix: String,
}

impl UpstreamBase {
    /// Takes the configured upstream base URL apart.
    pub fn new(base: &Url) -> Self {
        let host = base.host_str().unwrap_or_default().to_ascii_lowercase();
        let authority = match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = base.path().trim_end_matches('/').to_owned();
        let prefix = if matches!(base.scheme(), "http" | "https") {
            format!("{}://{authority}{path}", base.scheme())
        } else {
            String::new()
        };
        Self {
            scheme: base.scheme().to_owned(),
            host,
            port: base.port_or_known_default(),
            path,
            authority,
            prefix,
        }
    }

    /// [`Self::rest_below_base`] without parsing, for a value written the
    /// plain way: [`Self::prefix`] exactly, then a path made only of
    /// characters URL parsing keeps as they are (no `%`, no backslash, no dot
    /// segments) and an optional query of printable ASCII that parsing
    /// keeps as it is (no `"`, `#`, `<`, `>`, `'`). `None` means "parse it"
    /// (not "not below the base"). A unit test holds the two equal.
    fn plain_rest(&self, value: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return None;
        }
        let tail = value.strip_prefix(self.prefix.as_str())?;
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        if !(path.is_empty() || path.starts_with('/')) {
            return None;
        }
        let path_ok = path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/".contains(&b))
            && !path.split('/').any(|seg| seg == "." || seg == "..");
        let query_ok = query.is_none_or(|q| {
            q.bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && !b"\"#<>'".contains(&b))
        });
        if !(path_ok && query_ok) {
            return None;
        }
        let mut rest = String::with_capacity(tail.len());
        if path != "/" {
            rest.push_str(path);
        }
        if let Some(q) = query {
            rest.push('?');
            rest.push_str(q);
        }
        Some(rest)
    }

    /// Whether `u` is on the upstream's origin (scheme, host, port).
    fn same_origin(&self, u: &Url) -> bool {
        u.scheme() == self.scheme
            && u.host_str().map(str::to_ascii_lowercase).as_deref() == Some(self.host.as_str())
            && u.port_or_known_default() == self.port
    }

    /// The part of `u` after the base (`/Patient/1?x=y`), if `u` is below the base.
    fn rest_below_base(&self, u: &Url) -> Option<String> {
        if !self.same_origin(u) {
            return None;
        }
        let tail = u.path().strip_prefix(self.path.as_str())?;
        if !(tail.is_empty() || tail.starts_with('/')) {
            return None;
        }
        let tail = if tail == "/" { "" } else { tail };
        let mut rest = tail.to_owned();
        if let Some(q) = u.query() {
            rest.push('?');
            rest.push_str(q);
        }
        Some(rest)
    }

    /// If `value` is an absolute URL below the upstream base, the same URL on the facade.
    pub fn to_facade(&self, value: &str, facade_base: &str) -> Option<String> {
        let u = Url::parse(value).ok()?;
        let rest = self.rest_below_base(&u)?;
        Some(format!("{}{rest}", facade_base.trim_end_matches('/')))
    }

    /// What a URL field's value becomes: below the base → facade URL; elsewhere on
    /// the upstream's origin → [`REDACTED`]; anything else (relative, `urn:uuid:`,
    /// other servers, canonical URLs) unchanged.
    pub fn rewrite_value(&self, value: &str, facade_base: &str) -> Option<String> {
        // no scheme, no absolute URL (most references are `Type/id`)
        if !value.contains(':') {
            return None;
        }
        if let Some(rest) = self.plain_rest(value) {
            return Some(format!("{}{rest}", facade_base.trim_end_matches('/')));
        }
        let u = Url::parse(value).ok()?;
        if let Some(rest) = self.rest_below_base(&u) {
            return Some(format!("{}{rest}", facade_base.trim_end_matches('/')));
        }
        if self.same_origin(&u) {
            tracing::warn!("upstream URL outside its FHIR base redacted");
            return Some(REDACTED.to_owned());
        }
        None
    }

    /// A `Location` / `Content-Location` header: absolute below the base → facade
    /// URL; relative (`Patient/1/_history/2`) → on the facade base; any other
    /// absolute URL is dropped (the client gets no address the facade cannot serve).
    pub fn header_url(&self, value: &str, facade_base: &str) -> Option<String> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        match Url::parse(value) {
            Ok(u) => {
                let rest = self.rest_below_base(&u)?;
                Some(format!("{}{rest}", facade_base.trim_end_matches('/')))
            }
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                let rel = value.strip_prefix(self.path.as_str()).unwrap_or(value);
                Some(format!(
                    "{}/{}",
                    facade_base.trim_end_matches('/'),
                    rel.trim_start_matches('/')
                ))
            }
            Err(_) => None,
        }
    }

    /// Rewrites every URL-typed field in a resource tree, and scrubs the free
    /// text of any OperationOutcome in it.
    pub fn rewrite_body(&self, value: &mut Value, facade_base: &str) {
        match value {
            Value::Object(map) => {
                let is_outcome =
                    map.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome");
                for (key, v) in map.iter_mut() {
                    match v {
                        Value::String(s) if URL_KEYS.contains(&key.as_str()) => {
                            if let Some(new) = self.rewrite_value(s, facade_base) {
                                *s = new;
                            }
                        }
                        _ => self.rewrite_body(v, facade_base),
                    }
                }
                if is_outcome {
                    self.scrub_outcome(value, facade_base);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.rewrite_body(v, facade_base);
                }
            }
            _ => {}
        }
    }

    /// Scrubs `issue[].diagnostics` and `issue[].details.text` of an OperationOutcome.
    pub fn scrub_outcome(&self, outcome: &mut Value, facade_base: &str) {
        let Some(issues) = outcome.get_mut("issue").and_then(Value::as_array_mut) else {
            return;
        };
        for issue in issues {
            if let Some(Value::String(s)) = issue.get_mut("diagnostics") {
                *s = self.scrub_text(s, facade_base);
            }
            if let Some(Value::String(s)) = issue.get_mut("details").and_then(|d| d.get_mut("text"))
            {
                *s = self.scrub_text(s, facade_base);
            }
        }
    }

    /// Replaces each word of free text that mentions the upstream's authority:
    /// by its facade URL when it is a URL below the base, else by `[upstream]`.
    pub fn scrub_text(&self, text: &str, facade_base: &str) -> String {
        if self.authority.is_empty() || !text.to_ascii_lowercase().contains(&self.authority) {
            return text.to_owned();
        }
        let is_sep = |c: char| c.is_whitespace() || "\"'<>()[]{},;`".contains(c);
        let mut out = String::with_capacity(text.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if word.to_ascii_lowercase().contains(&self.authority) {
                let clean = word.trim_end_matches(['.', ':']);
                let tail = &word[clean.len()..];
                match self.to_facade(clean, facade_base) {
                    Some(u) => out.push_str(&u),
                    None => out.push_str(REDACTED_TEXT),
                }
                out.push_str(tail);
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in text.chars() {
            if is_sep(c) {
                flush(&mut word, &mut out);
                out.push(c);
            } else {
                word.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    const FACADE: &str = "https://gw.example/fhir";

    fn up() -> UpstreamBase {
        UpstreamBase::new(&Url::parse("http://127.0.0.1:8103/fhir/R4/").unwrap())
    }

    #[test]
    fn urls_below_the_base_move_to_the_facade_with_path_and_query() {
        let u = up();
        let cases = [
            (
                "http://127.0.0.1:8103/fhir/R4/Patient/1",
                "https://gw.example/fhir/Patient/1",
            ),
            (
                "http://127.0.0.1:8103/fhir/R4/Patient?_count=10&_offset=10",
                "https://gw.example/fhir/Patient?_count=10&_offset=10",
            ),
            ("HTTP://127.0.0.1:8103/fhir/R4", "https://gw.example/fhir"),
            (
                "http://127.0.0.1:8103/fhir/R4/?ct=abc%3D%3D",
                "https://gw.example/fhir?ct=abc%3D%3D",
            ),
        ];
        for (from, to) in cases {
            assert_eq!(u.to_facade(from, FACADE).as_deref(), Some(to), "{from}");
        }
        // Not below the base: a sibling path, another port, another host, relative.
        assert_eq!(
            u.to_facade("http://127.0.0.1:8103/fhir/R4x/Patient/1", FACADE),
            None
        );
        assert_eq!(
            u.to_facade("http://127.0.0.1:8104/fhir/R4/Patient/1", FACADE),
            None
        );
        assert_eq!(u.to_facade("http://other/fhir/R4/Patient/1", FACADE), None);
        assert_eq!(u.to_facade("Patient/1", FACADE), None);
    }

    #[test]
    fn plain_urls_below_the_base_are_rewritten_as_parsing_would() {
        let bases = [
            "http://127.0.0.1:8103/fhir/R4/",
            "https://ws-fhir.example.com",
            "http://up.example:80/fhir",
            "http://[::1]:8080/fhir",
        ];
        let tails = [
            "",
            "/",
            "//",
            "?",
            "/?",
            "?x=1",
            "/Patient/1",
            "/Patient/1/_history/2",
            "/Patient?_count=10&_offset=10",
            "/?ct=abc%3D%3D",
            "x",
            "x/Patient",
            ":99/Patient",
            "@evil/Patient",
            "/./Patient",
            "/../Patient",
            "/a/../../b",
            "/%2e%2e/x",
            "/a\\b",
            "/a b",
            "/a#f",
            "/Patient?x=#f",
            "?a='b'",
            "?a=\"b\"",
            "/a?b?c",
            "?a\\b",
            "/a?b=ü",
            "/é",
            "/a\t/b",
            " ",
            "/a^b|c",
            "/{x}",
            "/a`b",
            "/;x=1/..;/",
            "/.hidden/.",
            "/..a/b.",
        ];
        for base in bases {
            let u = UpstreamBase::new(&Url::parse(base).unwrap());
            for tail in tails {
                let value = format!("{}{tail}", u.prefix);
                let parsed = Url::parse(&value).ok();
                let slow = parsed.as_ref().and_then(|p| u.rest_below_base(p));
                if let Some(fast) = u.plain_rest(&value) {
                    assert_eq!(Some(fast), slow, "{value}");
                }
                let expected = match (&slow, &parsed) {
                    (Some(rest), _) => Some(format!("{FACADE}{rest}")),
                    (None, Some(p)) if u.same_origin(p) => Some(REDACTED.to_owned()),
                    _ => None,
                };
                if value.contains(':') {
                    assert_eq!(u.rewrite_value(&value, FACADE), expected, "{value}");
                }
            }
        }
        // The plain path is taken for the usual links.
        let u = up();
        assert_eq!(
            u.plain_rest("http://127.0.0.1:8103/fhir/R4/Observation/1")
                .as_deref(),
            Some("/Observation/1")
        );
        assert_eq!(u.plain_rest("http://127.0.0.1:8103/fhir/R4/a/../b"), None);
    }

    #[test]
    fn default_ports_compare_equal() {
        let u =
            UpstreamBase::new(&Url::parse("https://ws-fhir.fhir.azurehealthcareapis.com").unwrap());
        assert_eq!(
            u.to_facade(
                "https://ws-fhir.fhir.azurehealthcareapis.com:443/Patient?ct=x",
                FACADE
            )
            .as_deref(),
            Some("https://gw.example/fhir/Patient?ct=x")
        );
    }

    #[test]
    fn headers_relative_absolute_and_foreign() {
        let u = up();
        assert_eq!(
            u.header_url("http://127.0.0.1:8103/fhir/R4/Patient/1/_history/2", FACADE)
                .as_deref(),
            Some("https://gw.example/fhir/Patient/1/_history/2")
        );
        assert_eq!(
            u.header_url("Patient/1/_history/2", FACADE).as_deref(),
            Some("https://gw.example/fhir/Patient/1/_history/2")
        );
        assert_eq!(
            u.header_url("/fhir/R4/Patient/1", FACADE).as_deref(),
            Some("https://gw.example/fhir/Patient/1")
        );
        assert_eq!(u.header_url("http://internal:9/Patient/1", FACADE), None);
        assert_eq!(u.header_url("", FACADE), None);
    }

    #[test]
    fn bundles_are_rewritten_in_typed_fields_only() {
        let u = up();
        let mut b = json!({
            "resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "http://127.0.0.1:8103/fhir/R4/Patient?_offset=10"}],
            "entry": [{
                "fullUrl": "http://127.0.0.1:8103/fhir/R4/Patient/1",
                "resource": {
                    "resourceType": "Patient", "id": "1",
                    "text": {"div": "<div>see http://127.0.0.1:8103/fhir/R4/Patient/1</div>"},
                    "managingOrganization": {"reference": "http://127.0.0.1:8103/fhir/R4/Organization/9"},
                    "photo": [{"url": "http://127.0.0.1:8103/blobs/7"}],
                    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/x", "valueUri": "urn:uuid:1"}]
                },
                "response": {"location": "http://127.0.0.1:8103/fhir/R4/Patient/1/_history/1"}
            }, {
                "resource": {"resourceType": "Bundle", "type": "collection",
                    "entry": [{"fullUrl": "http://127.0.0.1:8103/fhir/R4/Observation/2"}]}
            }]
        });
        u.rewrite_body(&mut b, FACADE);
        assert_eq!(
            b["link"][0]["url"],
            "https://gw.example/fhir/Patient?_offset=10"
        );
        let e = &b["entry"][0];
        assert_eq!(e["fullUrl"], "https://gw.example/fhir/Patient/1");
        assert_eq!(
            e["response"]["location"],
            "https://gw.example/fhir/Patient/1/_history/1"
        );
        assert_eq!(
            e["resource"]["managingOrganization"]["reference"],
            "https://gw.example/fhir/Organization/9"
        );
        assert_eq!(e["resource"]["photo"][0]["url"], REDACTED);
        assert_eq!(
            e["resource"]["extension"][0]["url"],
            "http://hl7.org/fhir/StructureDefinition/x"
        );
        assert_eq!(e["resource"]["extension"][0]["valueUri"], "urn:uuid:1");
        // Narrative is not a URL field: left as the upstream wrote it (no blind replace).
        assert!(e["resource"]["text"]["div"]
            .as_str()
            .unwrap()
            .contains("8103"));
        assert_eq!(
            b["entry"][1]["resource"]["entry"][0]["fullUrl"],
            "https://gw.example/fhir/Observation/2"
        );
    }

    #[test]
    fn capability_statement_implementation_url_is_rewritten() {
        let u = up();
        let mut cs = json!({"resourceType": "CapabilityStatement",
            "implementation": {"description": "x", "url": "http://127.0.0.1:8103/fhir/R4"}});
        u.rewrite_body(&mut cs, FACADE);
        assert_eq!(cs["implementation"]["url"], FACADE);
    }

    #[test]
    fn outcome_text_is_scrubbed_of_the_upstream_address() {
        let u = up();
        let mut oo = json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "error", "code": "processing",
            "diagnostics": "Resource http://127.0.0.1:8103/fhir/R4/Patient/1. is gone; see (127.0.0.1:8103/admin)",
            "details": {"text": "host 127.0.0.1:8103 said no"}
        }]});
        u.rewrite_body(&mut oo, FACADE);
        let d = oo["issue"][0]["diagnostics"].as_str().unwrap();
        assert_eq!(
            d,
            "Resource https://gw.example/fhir/Patient/1. is gone; see ([upstream])"
        );
        assert_eq!(oo["issue"][0]["details"]["text"], "host [upstream] said no");
        assert_eq!(u.scrub_text("nothing to see", FACADE), "nothing to see");
    }
}
