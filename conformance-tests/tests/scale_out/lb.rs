//! The suite's load balancer and browser. [`Lb`] sends every request to the
//! replica whose turn it is (A, B, A, …): a target is a path or an absolute
//! URL on the shared public URL, which it re-homes onto that replica. A step
//! that must land on one replica (`at`: `Some(r)`) first sends a `GET
//! /healthz` (not audited) to the other when needed, so the alternation is
//! never broken. Every answer's ledger receipt (`X-Ledger-Seq`,
//! `X-Request-Id`) is kept for the ledger case. [`Browser`] is the library's
//! [`conformance_tests::browser::Browser`] (one cookie jar: one origin behind
//! the balancer) sending through the balancer.

use std::{cell::RefCell, ops::Deref, time::Duration};

use conformance_tests::{
    browser::{self, cut_url, Form, Page},
    cases::short,
};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

/// The replicas' names, by index.
pub const NAMES: [&str; 2] = ["A", "B"];

/// A request body.
pub enum Body {
    None,
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
    /// `application/fhir+json`.
    Json(Value),
}

/// One answer, read whole: the [`Page`] (its `url` on the public URL), who
/// gave it and its body as JSON.
pub struct Reply {
    /// Which replica answered (index into [`NAMES`]).
    pub replica: usize,
    pub page: Page,
    /// The body as JSON (`Null` when not JSON).
    pub json: Value,
}

impl Deref for Reply {
    type Target = Page;

    fn deref(&self) -> &Page {
        &self.page
    }
}

impl Reply {
    /// `NAME status: body` for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{} answered {}: {}",
            NAMES[self.replica],
            self.status,
            short(&self.body)
        )
    }
}

/// A ledger receipt of one answer.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub replica: usize,
    pub seq: u64,
    pub request_id: String,
    /// `METHOD path`, for messages.
    pub what: String,
}

/// The round-robin client in front of the two replicas.
pub struct Lb {
    /// `FHIRGATE_PUBLIC_URL` of both replicas (nothing listens there).
    pub public: String,
    origins: [String; 2],
    turn: RefCell<usize>,
    http: Client,
    /// Receipts of every answer that carried one.
    pub receipts: RefCell<Vec<Receipt>>,
    /// Requests sent per replica.
    pub served: RefCell<[usize; 2]>,
    /// The replica of every request, in order (fillers included).
    order: RefCell<Vec<usize>>,
}

impl Lb {
    pub fn new(public: &str, ports: [u16; 2]) -> Self {
        Self {
            public: public.trim_end_matches('/').to_owned(),
            origins: ports.map(|p| format!("http://127.0.0.1:{p}")),
            turn: RefCell::new(0),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            receipts: RefCell::default(),
            served: RefCell::default(),
            order: RefCell::default(),
        }
    }

    /// `{public}/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.public)
    }

    /// The path of `target` (a path, or a URL on the public URL).
    fn path<'t>(&self, target: &'t str) -> Result<&'t str, String> {
        if target.starts_with('/') {
            Ok(target)
        } else if let Some(rest) = target.strip_prefix(&self.public) {
            Ok(rest)
        } else {
            Err(format!("not on the public URL {}: {target}", self.public))
        }
    }

    /// The replica that takes the next request: `at`, or (None) whoever's
    /// turn it is; the turn passes on. To make it `at`'s turn, a filler
    /// request goes to the other replica first if needed.
    fn route(&self, at: Option<usize>) -> Result<usize, String> {
        if at.is_some_and(|r| *self.turn.borrow() != r) {
            self.send(None, "GET", "/healthz", None, Body::None, &[])?;
        }
        let mut t = self.turn.borrow_mut();
        let r = *t;
        *t = 1 - r;
        Ok(r)
    }

    /// Sends to replica `at` (None: whoever's turn it is; the alternation
    /// is kept, see the module docs).
    pub fn send(
        &self,
        at: Option<usize>,
        method: &str,
        target: &str,
        bearer: Option<&str>,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let r = self.route(at)?;
        let (mut req, url) = self.request(r, method, target, &body)?;
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().map_err(|e| {
            let target = cut_url(target);
            format!("{} {method} {target}: request failed: {e}", NAMES[r])
        })?;
        self.answered(r, method, target, Page::read(&url, resp))
    }

    /// `GET` on replica `at` (None: whoever's turn it is), with a bearer
    /// token, FHIR JSON.
    pub fn get(&self, at: Option<usize>, target: &str, bearer: &str) -> Result<Reply, String> {
        let accept = [("accept", "application/fhir+json")];
        self.send(at, "GET", target, Some(bearer), Body::None, &accept)
    }

    /// `POST` of `body` on replica `at` (None: whoever's turn it is).
    pub fn post(&self, at: Option<usize>, target: &str, body: Body) -> Result<Reply, String> {
        self.send(at, "POST", target, None, body, &[])
    }

    /// The request for `target` on replica `r`, and `target`'s URL on the
    /// public URL (what the answer is a page of).
    fn request(
        &self,
        r: usize,
        method: &str,
        target: &str,
        body: &Body,
    ) -> Result<(RequestBuilder, String), String> {
        let path = self.path(target)?;
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let req = self.http.request(m, format!("{}{path}", self.origins[r]));
        let req = match body {
            Body::None => req,
            Body::Form(f) => req.form(f),
            Body::Json(v) => req
                .header("content-type", "application/fhir+json")
                .body(v.to_string()),
        };
        Ok((req, format!("{}{path}", self.public)))
    }

    /// Counts `page`, replica `r`'s answer to `method target`, and keeps its
    /// ledger receipt.
    fn answered(&self, r: usize, method: &str, target: &str, page: Page) -> Result<Reply, String> {
        self.served.borrow_mut()[r] += 1;
        self.order.borrow_mut().push(r);
        let what = format!("{method} {}", cut_url(target));
        if let (Some(seq), Some(rid)) = (page.header("x-ledger-seq"), page.header("x-request-id")) {
            let seq = seq
                .parse()
                .map_err(|_| format!("{what}: X-Ledger-Seq is not a number: {seq}"))?;
            self.receipts.borrow_mut().push(Receipt {
                replica: r,
                seq,
                request_id: rid.to_owned(),
                what,
            });
        }
        let json = serde_json::from_str(&page.body).unwrap_or(Value::Null);
        Ok(Reply {
            replica: r,
            page,
            json,
        })
    }

    /// Whether consecutive requests always went to different replicas.
    pub fn alternated(&self) -> bool {
        self.order.borrow().windows(2).all(|w| w[0] != w[1])
    }
}

/// A browser behind the balancer: the library's, whose requests the
/// balancer routes (and whose answers it counts); redirects followed by hand.
pub struct Browser<'a> {
    lb: &'a Lb,
    ua: browser::Browser,
}

impl<'a> Browser<'a> {
    pub fn new(lb: &'a Lb) -> Self {
        Self {
            lb,
            ua: browser::Browser::new("lb"),
        }
    }

    /// One step: on replica `at` (None: whoever's turn it is).
    pub fn step(
        &self,
        at: Option<usize>,
        method: &str,
        target: &str,
        form: Option<Vec<(String, String)>>,
    ) -> Result<Reply, String> {
        let body = form.map_or(Body::None, Body::Form);
        let r = self.lb.route(at)?;
        let (req, url) = self.lb.request(r, method, target, &body)?;
        let req = req.header("accept", "text/html");
        let page = self.ua.send_as(NAMES[r], method, &url, req)?;
        self.lb.answered(r, method, target, page)
    }

    /// The last steps.
    pub fn trail(&self) -> String {
        self.ua.trail()
    }

    /// Follows redirects that stay on the public URL (each on the next
    /// replica), signing in as `user` when the sign-in form comes, until a
    /// page that is neither; returns that last answer.
    pub fn follow(&self, mut r: Reply, user: &str) -> Result<Reply, String> {
        let mut signed_in = false;
        for _ in 0..12 {
            if matches!(r.status, 302 | 303) {
                let to = r.location.clone().unwrap_or_default();
                if !to.starts_with(&self.lb.public) {
                    return Ok(r);
                }
                r = self.step(None, "GET", &to, None)?;
                continue;
            }
            if r.status == 200 {
                if let Some(form) = Form::find(&r.body, "/login") {
                    if signed_in {
                        return Err(format!("sign-in refused:\n    {}", self.trail()));
                    }
                    signed_in = true;
                    let mut fields = form.fields;
                    fields.push(("username".into(), user.into()));
                    fields.push(("password".into(), "demo".into()));
                    r = self.step(None, "POST", "/login", Some(fields))?;
                    continue;
                }
            }
            return Ok(r);
        }
        Err(format!("too many steps:\n    {}", self.trail()))
    }
}
