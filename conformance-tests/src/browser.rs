//! A user agent for the black-box suites' browser flows (sign-in pages,
//! app approval, OAuth redirects) without a browser: one cookie jar per
//! [`Browser`] (name → value; paths and ports ignored, so use one browser
//! per server when two servers share a host), redirects followed by hand,
//! and forms filled the way a browser submits them (hidden inputs, ticked
//! boxes and radios) by scanning the HTML ([`Form`]). [`Browser::drive`]
//! walks a server's sign-in and approval pages until a redirect leaves it.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use reqwest::{
    blocking::{Client, RequestBuilder, Response},
    header, Url,
};

use crate::cases::short;

/// Most requests one [`Browser::drive`] may make.
pub const MAX_STEPS: usize = 16;

/// A client that follows no redirect (the browser follows them itself).
fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| Client::new())
}

/// One response as the browser saw it.
pub struct Page {
    /// The URL asked for.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// `Location`, made absolute.
    pub location: Option<String>,
    /// Raw `Set-Cookie` values.
    pub set_cookies: Vec<String>,
    /// Every response header (lower-case name, value), in order.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// Reads `resp`, the answer to `url` (which resolves its `Location`;
    /// it need not be where the request went, e.g. a public URL in front).
    pub fn read(url: &str, resp: Response) -> Self {
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes());
                (k.as_str().to_owned(), v.into_owned())
            })
            .collect();
        let mut page = Self {
            url: url.to_owned(),
            status,
            location: None,
            set_cookies: Vec::new(),
            headers,
            body: resp.text().unwrap_or_default(),
        };
        page.location = page.header("location").map(|l| {
            Url::parse(url)
                .and_then(|u| u.join(l))
                .map_or_else(|_| l.to_owned(), String::from)
        });
        page.set_cookies = page
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect();
        page
    }

    /// The first value of response header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308) && self.location.is_some()
    }

    /// `status` and where it sends the browser, or its text.
    pub fn describe(&self) -> String {
        match &self.location {
            Some(l) => format!("{} → {}", self.status, l),
            None => format!("{}: {}", self.status, short(page_text(&self.body))),
        }
    }
}

/// A user agent talking to one server: its own cookie jar (name → value;
/// paths and ports ignored, fine for one server), no automatic redirects.
pub struct Browser {
    /// Whose server, for messages.
    at: &'static str,
    http: Client,
    jar: RefCell<BTreeMap<String, String>>,
    /// What it did (`GET url → status …`), for failure messages.
    trail: RefCell<Vec<String>>,
}

impl Browser {
    pub fn new(at: &'static str) -> Self {
        Self {
            at,
            http: http_client(),
            jar: RefCell::default(),
            trail: RefCell::default(),
        }
    }

    /// Sends `req` (a request for `url`) with the jar's cookies, keeping
    /// the cookies it sets.
    pub fn send(&self, method: &str, url: &str, req: RequestBuilder) -> Result<Page, String> {
        self.send_as(self.at, method, url, req)
    }

    /// [`Browser::send`], naming the server `at` in the trail and in errors
    /// (e.g. which replica behind a load balancer answered). `req` may go
    /// elsewhere than `url` (and carry its own headers): `url` is what the
    /// page is, and what its `Location` resolves against.
    pub fn send_as(
        &self,
        at: &str,
        method: &str,
        url: &str,
        req: RequestBuilder,
    ) -> Result<Page, String> {
        let cookies = self
            .jar
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(header::COOKIE, cookies)
        };
        let resp = req
            .send()
            .map_err(|e| format!("{at} {method} {url}: request failed: {e}"))?;
        let page = Page::read(url, resp);
        for c in &page.set_cookies {
            self.store(c);
        }
        self.trail.borrow_mut().push(format!(
            "{at} {method} {} → {}",
            cut_url(url),
            match &page.location {
                Some(l) => format!("{} {}", page.status, cut_url(l)),
                None => page.status.to_string(),
            }
        ));
        Ok(page)
    }

    fn store(&self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let expired = parts.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("max-age=-")
        });
        let mut jar = self.jar.borrow_mut();
        if expired || value.trim().is_empty() {
            jar.remove(name.trim());
        } else {
            jar.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }

    pub fn get(&self, url: &str) -> Result<Page, String> {
        self.send("GET", url, self.http.get(url))
    }

    pub fn post(&self, url: &str, form: &[(String, String)]) -> Result<Page, String> {
        self.send("POST", url, self.http.post(url).form(form))
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.jar.borrow().contains_key(name)
    }

    /// The last requests, for a failure message.
    pub fn trail(&self) -> String {
        let t = self.trail.borrow();
        t[t.len().saturating_sub(8)..].join("\n    ")
    }

    /// Follows redirects on this server from `start`, signing in as `login`
    /// when asked and answering the approval page with `decision`, until a
    /// redirect leaves this server: returns where it points.
    pub fn drive(
        &self,
        start: &str,
        login: Option<(&str, &str)>,
        decision: &str,
    ) -> Result<String, String> {
        let home = origin(start)?;
        let mut page = self.get(start)?;
        let mut signed_in = false;
        for _ in 0..MAX_STEPS {
            if page.is_redirect() {
                let to = page.location.clone().unwrap_or_default();
                if origin(&to)? != home {
                    return Ok(to);
                }
                page = self.get(&to)?;
                continue;
            }
            let fail = |why: &str| {
                Err(format!(
                    "{why} at {}: {}\n    trail:\n    {}",
                    self.at,
                    page.describe(),
                    self.trail()
                ))
            };
            if page.status != 200 {
                return fail("unexpected answer");
            }
            if let Some(form) = Form::find(&page.body, "/login") {
                let Some((user, password)) = login else {
                    return fail("unexpectedly asked to sign in");
                };
                if signed_in {
                    return fail("sign-in refused");
                }
                signed_in = true;
                let mut fields = form.fields;
                fields.push(("username".into(), user.into()));
                fields.push(("password".into(), password.into()));
                page = self.post(&join(&page.url, &form.action)?, &fields)?;
                continue;
            }
            if let Some(form) = Form::find(&page.body, "/auth/continue").filter(|f| f.has_decision)
            {
                let mut fields = form.fields;
                fields.push(("decision".into(), decision.into()));
                page = self.post(&join(&page.url, &form.action)?, &fields)?;
                continue;
            }
            return fail("neither a sign-in nor an approval page");
        }
        Err(format!(
            "more than {MAX_STEPS} steps at {}:\n    {}",
            self.at,
            self.trail()
        ))
    }
}

/// `scheme://host:port` of `url`.
pub fn origin(url: &str) -> Result<String, String> {
    Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|e| format!("not a URL ({e}): {url}"))
}

pub fn join(base: &str, rel: &str) -> Result<String, String> {
    Url::parse(base)
        .and_then(|u| u.join(rel))
        .map(String::from)
        .map_err(|e| format!("cannot resolve {rel} against {base}: {e}"))
}

/// `url` without a long query (for trails).
pub fn cut_url(url: &str) -> String {
    match url.char_indices().nth(140) {
        Some((i, _)) => format!("{}…", &url[..i]),
        None => url.to_owned(),
    }
}

/// The query parameters of `url` (the last value of each name).
pub fn query(url: &str) -> Result<HashMap<String, String>, String> {
    let u = Url::parse(url).map_err(|e| format!("not a URL ({e}): {url}"))?;
    Ok(u.query_pairs().into_owned().collect())
}

/// `url` without its query (and fragment).
pub fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// A page's visible text, roughly (tags dropped, whitespace squeezed).
pub fn page_text(html: &str) -> String {
    let body = html
        .find("<main")
        .or_else(|| html.find("<body"))
        .map_or(html, |i| &html[i..]);
    let mut out = String::new();
    let mut in_tag = false;
    for ch in body.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(ch),
            _ => {}
        }
    }
    unescape(&out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Decodes the HTML character references a template escapes with.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of one tag (`<input a="b" c>`), values unescaped.
pub fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let inner = tag
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches('/');
    let mut rest = inner.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let value = if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let (v, after) = match r.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let r = &r[1..];
                    let end = r.find(q).unwrap_or(r.len());
                    (&r[..end], r.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = r.find(char::is_whitespace).unwrap_or(r.len());
                    (&r[..end], &r[end..])
                }
            };
            rest = after;
            unescape(v)
        } else {
            String::new()
        };
        if !name.is_empty() {
            out.insert(name, value);
        }
    }
    out
}

/// What a browser would submit of a form (hidden inputs, ticked boxes and
/// radios), its action, and whether it has `decision` buttons.
pub struct Form {
    /// Where it posts.
    pub action: String,
    /// What it submits.
    pub fields: Vec<(String, String)>,
    /// It has `decision` (Allow/Deny) buttons.
    pub has_decision: bool,
}

impl Form {
    /// The first form of `html` posting to `action`.
    pub fn find(html: &str, action: &str) -> Option<Self> {
        let mut from = 0;
        while let Some(i) = html[from..].find("<form") {
            let start = from + i;
            let end = html[start..]
                .find("</form>")
                .map_or(html.len(), |e| start + e);
            let body = &html[start..end];
            from = end;
            let open_end = body.find('>')?;
            let attrs = attributes(&body[..=open_end]);
            let act = attrs.get("action").cloned().unwrap_or_default();
            if without_query(&act) != action {
                continue;
            }
            let mut fields = Vec::new();
            let mut rest = &body[open_end..];
            while let Some(j) = rest.find("<input") {
                let tag_end = rest[j..].find('>').map_or(rest.len(), |e| j + e + 1);
                let a = attributes(&rest[j..tag_end]);
                rest = &rest[tag_end..];
                let (Some(name), value) = (a.get("name"), a.get("value")) else {
                    continue;
                };
                let kind = a.get("type").map_or("text", String::as_str);
                let take = match kind {
                    "hidden" => true,
                    "checkbox" | "radio" => a.contains_key("checked"),
                    _ => false,
                };
                if take {
                    let v = value.cloned().unwrap_or_else(|| "on".to_owned());
                    fields.push((name.clone(), v));
                }
            }
            let has_decision = body.contains("name=\"decision\"");
            return Some(Self {
                action: act,
                fields,
                has_decision,
            });
        }
        None
    }
}
