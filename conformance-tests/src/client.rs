//! A blocking FHIR client for one facade. Every answer is read whole and
//! checked for forbidden strings (the upstream's address) in every header and
//! in the body before a suite sees it, so no check can forget to look.

use std::time::Duration;

use serde_json::Value;

use crate::TestResult;

/// One answer, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    /// HTTP status.
    pub status: u16,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub text: String,
    /// Body as JSON (`Null` when empty or not JSON).
    pub json: Value,
}

impl Resp {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A FHIR client for one facade that fails any answer leaking a forbidden string.
pub struct Api {
    http: reqwest::blocking::Client,
    /// The facade's FHIR base.
    pub base: String,
    /// Strings no header or body may contain (the upstream's address).
    forbidden: Vec<String>,
    /// Access token sent as `Authorization: Bearer`.
    bearer: Option<String>,
}

impl Api {
    /// A client for `base` that rejects answers containing any of `forbidden`.
    pub fn new(base: &str, forbidden: Vec<String>) -> TestResult<Self> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            forbidden,
            bearer: None,
        })
    }

    /// The same client, sending `token` on every request.
    pub fn with_bearer(mut self, token: String) -> Self {
        self.bearer = Some(token);
        self
    }

    /// `GET`; `path` is relative to the base (`Patient/1`) or an absolute URL.
    pub fn get(&self, path: &str) -> TestResult<Resp> {
        self.send("GET", path, &[], None)
    }

    /// `POST` / `PUT` of a JSON value.
    pub fn send_json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> TestResult<Resp> {
        let mut h = headers.to_vec();
        h.push(("content-type", "application/fhir+json"));
        self.send(method, path, &h, Some(body.to_string().into_bytes()))
    }

    /// Any request; checks the answer for leaks before returning it.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResult<Resp> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        };
        let mut req = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes())?, &url)
            .header("accept", "application/fhir+json");
        if let Some(t) = &self.bearer {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req.send().map_err(|e| format!("{method} {url}: {e}"))?;
        let status = r.status().as_u16();
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let text = r.text()?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let resp = Resp {
            status,
            headers,
            text,
            json,
        };
        self.check_leaks(method, &url, &resp)?;
        Ok(resp)
    }

    fn check_leaks(&self, method: &str, url: &str, r: &Resp) -> TestResult {
        for bad in &self.forbidden {
            if let Some((k, v)) = r.headers.iter().find(|(_, v)| v.contains(bad.as_str())) {
                return Err(format!(
                    "{method} {url}: header {k}: {v} leaks the upstream address {bad}"
                )
                .into());
            }
            if r.text.contains(bad.as_str()) {
                return Err(format!(
                    "{method} {url}: body leaks the upstream address {bad}:\n{}",
                    r.text
                )
                .into());
            }
        }
        Ok(())
    }
}
