//! The checks every answer goes through: the leak search (body and
//! headers, paging tokens decoded), "denied answers like missing" (bytes,
//! headers and the audit ledger's step), and Bundle helpers.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use conformance_tests::Resp;
use serde_json::Value;

use crate::cx::{Cx, Needles, Who};

/// Headers that differ between any two requests.
const VOLATILE: &[&str] = &["x-request-id", "x-ledger-seq", "date"];

/// `self` link URLs anywhere in a JSON value (nested Bundles too).
fn self_links(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("relation").and_then(Value::as_str) == Some("self") {
                if let Some(u) = m.get("url").and_then(Value::as_str) {
                    out.push(u.to_owned());
                }
            }
            m.values().for_each(|c| self_links(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| self_links(c, out)),
        _ => {}
    }
}

/// The `_page` tokens of every non-self link.
fn page_tokens(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                let is_link = m.get("relation").is_some_and(|r| r != "self");
                if let (true, Some(u)) = (is_link, m.get("url").and_then(Value::as_str)) {
                    if let Some((_, q)) = u.split_once('?') {
                        for pair in q.split('&') {
                            if let Some(t) = pair.strip_prefix("_page=") {
                                out.push(t.to_owned());
                            }
                        }
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}

/// Checks one answer for every needle (body and headers); `echo` are
/// strings the caller sent itself (removed before the search).
pub fn no_leak(cx: &mut Cx, who: &Who, what: &str, r: &Resp, needles: &Needles, echo: &[&str]) {
    cx.checks += 1;
    let mut text = r.text.clone();
    let mut links = Vec::new();
    self_links(&r.json, &mut links);
    for l in &links {
        text = text.replace(l.as_str(), "<self>");
    }
    let tokens = page_tokens(&r.json);
    for t in &tokens {
        text = text.replace(t.as_str(), "<page>");
    }
    for e in echo.iter().filter(|e| !e.is_empty()) {
        text = text.replace(e, "<echo>");
    }
    for (k, v) in &r.headers {
        if k == "x-request-id" {
            continue;
        }
        text.push_str(&format!("\n{k}: {v}"));
    }
    let found: Vec<&String> = needles
        .0
        .iter()
        .filter(|n| text.contains(n.as_str()))
        .collect();
    if !found.is_empty() {
        cx.fail(
            &who.label,
            what,
            format!(
                "denied data {found:?} in the answer (status {}):\n{text}",
                r.status
            ),
        );
    }
    // The paging token must not carry the upstream's continuation in a
    // readable form (offsets reveal how many hidden matches were skipped).
    for t in &tokens {
        // every dot-separated part that decodes to text (a MAC does not)
        let decoded: String = t
            .split('.')
            .filter_map(|part| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok())
            .filter_map(|b| String::from_utf8(b).ok())
            .collect::<Vec<_>>()
            .join(" | ");
        let readable: Vec<&str> = ["_offset", "_count=", "\"skip\"", "upstream"]
            .into_iter()
            .filter(|s| decoded.contains(s))
            .collect();
        let hidden: Vec<&String> = needles
            .0
            .iter()
            .filter(|n| decoded.contains(n.as_str()))
            .collect();
        if (!readable.is_empty() || !hidden.is_empty()) && cx.reported.insert("token".into()) {
            cx.fail(
                &who.label,
                what,
                format!(
                    "the `_page` token of a next link is readable by the caller: base64url-decoding it \
                     gives the upstream continuation ({readable:?}{}): {decoded}",
                    if hidden.is_empty() {
                        String::new()
                    } else {
                        format!(", denied {hidden:?}")
                    }
                ),
            );
        }
    }
}

/// A denied `Type/id{suffix}` answers exactly like the same path on an id
/// of the same length that never existed.
pub fn same_as_missing(
    cx: &mut Cx,
    who: &Who,
    rtype: &str,
    id: &str,
    suffix: &str,
    needles: &Needles,
) {
    like_missing(cx, who, "GET", rtype, id, suffix, &[], needles);
}

/// [`same_as_missing`] for any method and extra request headers; a denied
/// request need not be a 404 (a DELETE), only indistinguishable.
#[allow(clippy::too_many_arguments)]
pub fn like_missing(
    cx: &mut Cx,
    who: &Who,
    method: &str,
    rtype: &str,
    id: &str,
    suffix: &str,
    extra: &[(&str, &str)],
    needles: &Needles,
) {
    cx.checks += 1;
    let fake = "z".repeat(id.len());
    let hp = format!("{rtype}/{id}{suffix}");
    let mp = format!("{rtype}/{fake}{suffix}");
    let what = if extra.is_empty() {
        format!("{method} {hp}")
    } else {
        format!("{method} {hp} with {extra:?}")
    };
    // missing, denied, missing: requests on one server are sequential here,
    // so the X-Ledger-Seq steps are the audit entries each request wrote
    let (before, h, m) = match (
        who.send(method, &mp, extra, None),
        who.send(method, &hp, extra, None),
        who.send(method, &mp, extra, None),
    ) {
        (Ok(b), Ok(h), Ok(m)) => (b, h, m),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return cx.fail(&who.label, &what, e),
    };
    no_leak(cx, who, &what, &h, needles, &[&format!("{rtype}/{id}")]);
    let seq = |r: &Resp| r.header("x-ledger-seq").and_then(|v| v.parse::<i64>().ok());
    if let (Some(a), Some(b), Some(c)) = (seq(&before), seq(&h), seq(&m)) {
        if b - a != c - b && cx.reported.insert(format!("ledger {method} {rtype}")) {
            cx.fail(
                &who.label,
                &what,
                format!(
                    "X-Ledger-Seq advanced by {} for the denied request but by {} for the same request \
                     on a never-existing id (the audit entries a request writes count hidden data: \
                     {method} {mp} -> X-Ledger-Seq {a}, {method} {hp} -> {b}, {method} {mp} -> {c})",
                    b - a,
                    c - b
                ),
            );
        }
    }
    if method == "GET" && h.status != 404 {
        return cx.fail(
            &who.label,
            &what,
            format!("denied, yet status {}: {}", h.status, h.text),
        );
    }
    if h.status != m.status || h.text.replace(id, "<id>") != m.text.replace(&fake, "<id>") {
        return cx.fail(
            &who.label,
            &what,
            format!(
                "answered differently than for a never-existing id (existence oracle):\n  \
                 {method} {hp} -> {} {}\n  {method} {mp} -> {} {}",
                h.status, h.text, m.status, m.text
            ),
        );
    }
    let heads = |r: &Resp, id: &str| {
        let mut v: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.replace(id, "<id>")))
            .collect();
        v.sort();
        v
    };
    let (hh, mh) = (heads(&h, id), heads(&m, &fake));
    if hh != mh {
        cx.fail(
            &who.label,
            &what,
            format!("headers differ from those for a never-existing id: {hh:?} vs {mh:?}"),
        );
    }
}

/// `(mode, id)` of every entry: its resource's id, or for a history's
/// deletion entry (no resource) the id in `request.url`.
pub fn entries(b: &Value) -> Vec<(String, String)> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let mode = e["search"]["mode"].as_str().unwrap_or("match").to_owned();
            if e["resource"]["resourceType"] == "OperationOutcome" {
                return None;
            }
            let id = match e["resource"]["id"].as_str() {
                Some(id) => id.to_owned(),
                None => e["request"]["url"].as_str()?.split('/').nth(1)?.to_owned(),
            };
            Some((mode, id))
        })
        .collect()
}

pub fn ids_of(b: &Value, mode: &str) -> Vec<String> {
    let mut v: Vec<String> = entries(b)
        .into_iter()
        .filter(|(m, _)| m == mode)
        .map(|(_, id)| id)
        .collect();
    v.sort();
    v
}

pub fn next_of(b: &Value) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()
        .map(str::to_owned)
}

/// `Bundle.total`, when present, is the caller's true count.
pub fn total_ok(cx: &mut Cx, who: &Who, what: &str, b: &Value, want: usize) {
    if let Some(t) = b.get("total") {
        if t.as_u64() != Some(want as u64) {
            cx.fail(
                &who.label,
                what,
                format!(
                    "total {t} is not the caller's count {want} (a count derived from denied data)"
                ),
            );
        }
    }
}
