//! Searches, histories and `$everything` under consent: the facade builds
//! every page itself. It asks the upstream for pages, judges every match
//! (per entry, never by position), keeps `_include`/`_revinclude`d resources
//! only when they are released themselves and linked to a released match,
//! and stops when the caller's page is full; where the upstream stands goes
//! into a sealed `next` link (`seal`). So a page never shows that hidden
//! matches exist (no short pages that a plain post-filter would leave, no
//! upstream `last` link or offset), and:
//!
//! - `Bundle.total` is the number released to this caller: given when the
//!   facade has seen the whole result, or counted ahead on the first page
//!   when the upstream has at most `consent.count_ahead` matches (1,000 by
//!   default; 0: never unasked) or `_total=accurate` is asked (then carried
//!   in the paging token); otherwise absent, and never counted ahead for
//!   `_total=none`;
//! - `_summary=count` is answered by judging every match (up to
//!   [`COUNT_LIMIT`] upstream matches; beyond that the total is absent and an
//!   outcome entry says why);
//! - `_elements` and `_summary` are applied by the facade after the decision
//!   on the full resource.
//!
//! Deleted entries in histories are judged by the resource's last stored
//! version; a hidden resource's deletions are dropped with it.

use serde_json::{json, Map, Value};
use smart_launch::context::AccessContext;

use super::{
    fetch,
    judge::{normalize, record, Session},
    seal::{self, PageState, PAGE_PARAM},
};
use crate::{
    error::{FhirError, FhirResult, IssueType},
    fhir::{
        subset::{self, Summary},
        FhirRequest, FhirResponse, Interaction,
    },
    pipeline::{authorize::Authorized, disclosure::Disclosure},
    upstream::RequestContext,
    AppState,
};

/// Upstream pages one facade page may read before it is returned short.
pub const SCAN_LIMIT: usize = 20;
/// Upstream matches `_summary=count` judges before giving up on a total.
pub const COUNT_LIMIT: usize = 50_000;

/// What kind of Bundle is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// searchset (search, `$everything`).
    Search,
    /// history (instance history: nothing visible = 404).
    History { instance: bool },
}

/// What the caller's `_total` asks of a first page that does not hold the
/// whole result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TotalMode {
    /// `none`: no total (nothing is counted ahead).
    None,
    /// absent or `estimate`: counted ahead when the upstream has at most
    /// `consent.count_ahead` matches.
    IfCheap,
    /// `accurate`: always counted ahead (up to [`COUNT_LIMIT`] matches).
    Accurate,
}

/// The caller's subsetting, applied after the decision.
#[derive(Debug, Clone, Default)]
struct Subset {
    elements: Option<Vec<String>>,
    summary: Option<Summary>,
    raw: Vec<(String, String)>,
}

impl Subset {
    fn take(req: &mut FhirRequest) -> FhirResult<Self> {
        let mut s = Subset::default();
        for (k, v) in &req.params {
            match k.as_str() {
                "_elements" => {
                    s.elements = Some(
                        v.split(',')
                            .map(|e| e.trim().to_owned())
                            .filter(|e| !e.is_empty())
                            .collect(),
                    );
                    s.raw.push((k.clone(), v.clone()));
                }
                "_summary" => {
                    s.summary = Some(match v.as_str() {
                        "true" => Summary::True,
                        "false" => Summary::False,
                        "text" => Summary::Text,
                        "data" => Summary::Data,
                        "count" => Summary::Count,
                        other => {
                            return Err(FhirError::processing(format!(
                                "_summary must be true, false, text, data or count, not '{other}'"
                            )))
                        }
                    });
                    s.raw.push((k.clone(), v.clone()));
                }
                _ => {}
            }
        }
        req.params
            .retain(|(k, _)| !matches!(k.as_str(), "_elements" | "_summary" | "_total"));
        Ok(s)
    }

    fn from_raw(raw: &[(String, String)]) -> FhirResult<Self> {
        let mut r = FhirRequest::new(Interaction::SearchType);
        r.params = raw.to_vec();
        Self::take(&mut r)
    }

    fn apply(&self, resource: &mut Value) {
        if self.elements.is_some() || self.summary.is_some() {
            subset::apply(
                resource,
                self.elements.as_deref(),
                self.summary.unwrap_or(Summary::False),
            );
        }
    }
}

/// The facade path of a request (`Observation`, `Patient/1/Condition`,
/// `Patient/1/$everything`, empty for the system level).
fn facade_path(req: &FhirRequest) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some((ct, cid)) = &req.compartment {
        parts.push(ct.clone());
        parts.push(cid.clone());
    }
    if let Some(t) = &req.resource_type {
        parts.push(t.clone());
    }
    if req.compartment.is_none() {
        if let Some(id) = &req.id {
            parts.push(id.clone());
        }
    }
    match req.interaction {
        Interaction::HistoryInstance | Interaction::HistoryType | Interaction::HistorySystem => {
            parts.push("_history".into())
        }
        Interaction::Operation => {
            if let Some(op) = &req.operation {
                parts.push(format!("${op}"));
            }
        }
        _ => {}
    }
    parts.join("/")
}

fn query_string(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish()
}

fn with_query(base: &str, path: &str, params: &[(String, String)]) -> String {
    let mut url = base.trim_end_matches('/').to_owned();
    if !path.is_empty() {
        url.push('/');
        url.push_str(path);
    }
    if !params.is_empty() {
        url.push('?');
        url.push_str(&query_string(params));
    }
    url
}

/// An upstream request from a continuation (`Type?query` below the base).
pub(crate) fn continuation(below_base: &str) -> FhirResult<FhirRequest> {
    let (path, query) = below_base.split_once('?').unwrap_or((below_base, ""));
    let decoded: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let mut r = FhirRequest::route(&axum::http::Method::GET, &segs)?;
    r.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(r)
}

/// The upstream's `next` link, below the facade base.
fn next_link(bundle: &Value, base: &str) -> Option<String> {
    let url = bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()?;
    url.strip_prefix(base.trim_end_matches('/'))
        .map(|rest| rest.trim_start_matches('/').to_owned())
}

fn mode(e: &Value) -> &str {
    e["search"]["mode"].as_str().unwrap_or("match")
}

/// `Type/id` of an entry (resource, else `fullUrl`/`request.url`).
fn entry_ref(e: &Value, base: &str) -> Option<String> {
    if let (Some(t), Some(id)) = (
        e["resource"]["resourceType"].as_str(),
        e["resource"]["id"].as_str(),
    ) {
        return Some(format!("{t}/{id}"));
    }
    let url = e["fullUrl"]
        .as_str()
        .or_else(|| e["request"]["url"].as_str())?;
    normalize(url.split('?').next().unwrap_or(url), base)
}

/// Every literal reference in a value, normalised.
fn references(v: &Value, base: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("reference").and_then(Value::as_str) {
                if let Some(n) = normalize(r, base) {
                    out.push(n);
                }
            }
            m.values().for_each(|c| references(c, base, out));
        }
        Value::Array(a) => a.iter().for_each(|c| references(c, base, out)),
        _ => {}
    }
}

/// One page (or the count) of a search, history or `$everything` for a
/// caller under consent.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    req: FhirRequest,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    disclosure: &mut Disclosure,
    kind: Kind,
) -> FhirResult<FhirResponse> {
    run_from(app, caller, auth, req, ctx, sess, disclosure, kind, None).await
}

/// [`run`]; with `resume` (an upstream request and the matches of its page
/// already judged), a count that starts there instead of at the first page:
/// the count ahead of a first page goes on where that page stopped, so the
/// matches the page judged are neither fetched nor judged twice.
#[allow(clippy::too_many_arguments)]
async fn run_from(
    app: &AppState,
    caller: &AccessContext,
    auth: &Authorized,
    mut req: FhirRequest,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    disclosure: &mut Disclosure,
    kind: Kind,
    resume: Option<(FhirRequest, usize)>,
) -> FhirResult<FhirResponse> {
    let path = facade_path(&req);
    // the consent epoch is read only when a token is opened or sealed
    let mut epoch: Option<i64> = None;
    let key = app.consent.seal_key();
    let token = req.param(PAGE_PARAM).map(str::to_owned);
    let mut offset_left = 0usize;
    let mut known_total: Option<usize> = None;
    let mut total_mode = TotalMode::IfCheap;
    let (mut upstream_req, mut skip, released_before, count, subset, self_url) = match token {
        Some(t) => {
            let st = seal::open(
                key,
                &t,
                &path,
                &caller.client_id,
                caller.fhir_user.as_deref(),
                *epoch.insert(app.consent.epoch().await?),
            )?;
            let self_url = with_query(&ctx.base, &path, &[(PAGE_PARAM.to_owned(), t)]);
            known_total = st.total;
            (
                continuation(&st.upstream)?,
                st.skip,
                st.released,
                st.count,
                Subset::from_raw(&st.subset)?,
                self_url,
            )
        }
        None => {
            let self_url = with_query(&ctx.base, &path, &req.params);
            total_mode = match req.param("_total") {
                None | Some("estimate") => TotalMode::IfCheap,
                Some("accurate") => TotalMode::Accurate,
                Some("none") => TotalMode::None,
                Some(_) => {
                    return Err(FhirError::processing(
                        "_total must be none, estimate or accurate",
                    ))
                }
            };
            let subset = Subset::take(&mut req)?;
            let count = match req.param("_count") {
                Some(c) => c
                    .parse::<usize>()
                    .map_err(|_| FhirError::processing("_count must be a non-negative integer"))?,
                None => ctx.default_page_size as usize,
            };
            let counting = subset.summary == Some(Summary::Count) || count == 0;
            let page = if counting {
                ctx.max_page_size as usize
            } else {
                count.max(1)
            };
            // a caller's `_offset` counts what the caller may see: the
            // facade skips that many released matches itself
            offset_left = match req.param("_offset") {
                Some(o) => o
                    .parse::<usize>()
                    .map_err(|_| FhirError::processing("_offset must be a non-negative integer"))?,
                None => 0,
            };
            req.params.retain(|(k, _)| k != "_count" && k != "_offset");
            req.params.push(("_count".into(), page.to_string()));
            match resume {
                Some((at, skip)) => (at, skip, 0, count, subset, self_url),
                None => (req, 0, 0, count, subset, self_url),
            }
        }
    };
    let counting = subset.summary == Some(Summary::Count) || count == 0;
    let first_page = upstream_req.clone();
    let first = released_before == 0 && known_total.is_none();
    let mut upstream_total: Option<u64> = None;
    let mut kept: Vec<Value> = Vec::new();
    let mut includes: Vec<Value> = Vec::new();
    let mut outcomes: Vec<Value> = Vec::new();
    let mut released = 0usize;
    let mut scanned = 0usize;
    let mut continue_at: Option<(String, usize)> = None;
    let mut complete = false;
    let mut pages = 0usize;
    let mut bundle_type = "searchset".to_owned();
    let below = |r: &FhirRequest| -> String {
        let p = facade_path(r);
        if r.params.is_empty() {
            p
        } else {
            format!("{p}?{}", query_string(&r.params))
        }
    };
    loop {
        pages += 1;
        let here = below(&upstream_req);
        let resp = fetch(app, caller, auth, &upstream_req, ctx).await?;
        let Some(mut bundle) = resp.body else {
            return Err(FhirError::bad_gateway("the upstream sent no Bundle"));
        };
        if let Some(t) = bundle["type"].as_str() {
            bundle_type = t.to_owned();
        }
        if pages == 1 {
            upstream_total = bundle["total"].as_u64();
        }
        // taken out of the page, not copied (nothing below reads them there)
        let mut entries: Vec<Value> = match bundle.get_mut("entry") {
            Some(Value::Array(a)) => std::mem::take(a),
            _ => Vec::new(),
        };
        let upstream_next = next_link(&bundle, &ctx.base);
        let resources: Vec<&Value> = entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r.is_object())
            .collect();
        sess.prepare(&resources).await?;
        // histories: every version is judged with today's consent and the
        // record's latest labels too (an older, unlabelled version of a
        // record labelled sensitive since then stays hidden)
        let history = matches!(kind, Kind::History { .. });
        let latest = latest_versions(app, ctx, sess, &entries, history).await?;
        let matches: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| mode(e) == "match")
            .map(|(i, _)| i)
            .collect();
        let mut page_kept: Vec<String> = Vec::new();
        let mut used = skip.min(matches.len());
        let mut full = false;
        for (pos, &at) in matches.iter().enumerate() {
            if pos < skip {
                continue;
            }
            if !counting && kept.len() >= count {
                full = true;
                break;
            }
            used = pos + 1;
            scanned += 1;
            let e = &entries[at];
            let reference = entry_ref(e, &ctx.base);
            let hidden_now = history
                && reference
                    .as_ref()
                    .and_then(|r| latest.get(r))
                    .and_then(|l| l.as_ref())
                    .is_some_and(|l| sess.judge(l).released.is_none());
            let judged = match e["resource"].is_object() {
                true if hidden_now => {
                    let mut j = sess.judge(&e["resource"]);
                    j.released = None;
                    j
                }
                true if counting => sess.judge_count(&e["resource"]),
                // the match is judged and released out of the page, not
                // copied (nothing below reads a match's resource again)
                true => sess.release(std::mem::take(&mut entries[at]["resource"])),
                false => {
                    let last = reference.as_ref().and_then(|r| latest.get(r));
                    match last {
                        Some(Some(body)) => {
                            let mut j = sess.judge(body);
                            j.released = j.released.map(|_| Value::Null);
                            j
                        }
                        _ => super::judge::hidden_public(),
                    }
                }
            };
            if judged.released.is_some() && offset_left > 0 {
                // before the caller's offset: counted, not shown
                offset_left -= 1;
                released += 1;
                continue;
            }
            record(disclosure, &judged, reference.as_deref());
            let Some(mut body) = judged.released else {
                continue;
            };
            released += 1;
            if counting {
                continue;
            }
            // the entry taken out of the page (its resource already is)
            let mut entry = std::mem::take(&mut entries[at]);
            if !body.is_null() {
                // (null: a deletion of a visible resource, kept as it was)
                subset.apply(&mut body);
                entry["resource"] = body;
            }
            if let Some(r) = &reference {
                page_kept.push(r.clone());
            }
            kept.push(entry);
        }
        // includes: released themselves and linked to a released match
        if !counting {
            let mut kept_links: Vec<String> = Vec::new();
            for e in kept.iter() {
                references(&e["resource"], &ctx.base, &mut kept_links);
            }
            for e in entries.iter().filter(|e| mode(e) == "include") {
                let reference = entry_ref(e, &ctx.base);
                let Some(r) = reference.clone() else { continue };
                if includes
                    .iter()
                    .any(|i| entry_ref(i, &ctx.base).as_deref() == Some(&r))
                {
                    continue;
                }
                let mut back = Vec::new();
                references(&e["resource"], &ctx.base, &mut back);
                let linked = kept_links.contains(&r) || back.iter().any(|b| page_kept.contains(b));
                if !linked {
                    continue;
                }
                let judged = sess.judge(&e["resource"]);
                record(disclosure, &judged, Some(&r));
                if let Some(mut body) = judged.released {
                    subset.apply(&mut body);
                    let mut entry = e.clone();
                    entry["resource"] = body;
                    includes.push(entry);
                }
            }
            if pages == 1 {
                outcomes.extend(entries.iter().filter(|e| mode(e) == "outcome").cloned());
            }
        }
        let rest_of_page = used < matches.len();
        if full || (!counting && kept.len() >= count && (rest_of_page || upstream_next.is_some())) {
            continue_at = match (rest_of_page, upstream_next) {
                (true, _) => Some((here, used)),
                (false, Some(next)) => Some((next, 0)),
                (false, None) => None,
            };
            complete = continue_at.is_none();
            break;
        }
        match upstream_next {
            Some(next)
                if (counting && scanned < COUNT_LIMIT) || (!counting && pages < SCAN_LIMIT) =>
            {
                upstream_req = continuation(&next)?;
                skip = 0;
            }
            Some(next) => {
                continue_at = Some((next, 0));
                break;
            }
            None => {
                complete = true;
                break;
            }
        }
    }
    if let Kind::History { instance: true } = kind {
        if complete && released_before == 0 && released == 0 {
            return Err(FhirError::not_found("no such resource"));
        }
    }
    // a search that does not fit one page: its true total is counted ahead
    // when that is cheap (the upstream has at most `consent.count_ahead`
    // matches; 0: never unasked) or
    // asked for (`_total=accurate`), never when the caller declined it
    // (`_total=none`), then carried in the paging token
    if !complete && !counting && first && kind == Kind::Search {
        let wanted = match total_mode {
            TotalMode::None => false,
            TotalMode::IfCheap => {
                let limit = app.config.consent.count_ahead;
                limit > 0 && upstream_total.is_some_and(|t| t <= limit)
            }
            TotalMode::Accurate => true,
        };
        if let (true, Some((upstream, at))) = (wanted, continue_at.as_ref()) {
            // this page released `released` (the caller's offset included);
            // the rest is counted from where the page stopped
            let mut cr = first_page;
            cr.params
                .retain(|(k, _)| k != "_count" && k != "_offset" && k != PAGE_PARAM);
            cr.params.push(("_summary".into(), "count".into()));
            let counted = Box::pin(run_from(
                app,
                caller,
                auth,
                cr,
                ctx,
                sess,
                &mut Disclosure::default(),
                kind,
                Some((continuation(upstream)?, *at)),
            ))
            .await?;
            known_total = counted
                .body
                .as_ref()
                .and_then(|b| b["total"].as_u64())
                .map(|t| t as usize + released);
        }
    }
    let mut b = Map::new();
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!(bundle_type));
    if complete {
        b.insert("total".into(), json!(released_before + released));
    } else if let Some(t) = known_total {
        b.insert("total".into(), json!(t));
    }
    let mut links = vec![json!({"relation": "self", "url": self_url})];
    if counting {
        if !complete {
            outcomes.push(json!({
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "information", "code": IssueType::TooCostly.code(),
                        "diagnostics": format!("the count is given only for results of up to {COUNT_LIMIT} matches under consent")}]
                },
                "search": {"mode": "outcome"}
            }));
        }
    } else if let Some((upstream, skip)) = continue_at {
        let st = PageState {
            upstream,
            skip,
            released: released_before + released,
            total: known_total,
            count,
            subset: subset.raw.clone(),
            path: path.clone(),
            client: caller.client_id.clone(),
            user: caller.fhir_user.clone(),
            epoch: match epoch {
                Some(e) => e,
                None => app.consent.epoch().await?,
            },
        };
        let token = seal::seal(key, &st)?;
        links.push(json!({"relation": "next", "url": with_query(&ctx.base, &path, &[(PAGE_PARAM.to_owned(), token)])}));
    }
    b.insert("link".into(), Value::Array(links));
    let mut all = kept;
    all.extend(includes);
    all.extend(outcomes);
    if !all.is_empty() {
        b.insert("entry".into(), Value::Array(all));
    }
    Ok(FhirResponse::ok(Value::Object(b)))
}

/// The latest stored version (from the instance history) of the resources
/// of deleted entries, or of every entry when `all`, by `Type/id`.
async fn latest_versions(
    app: &AppState,
    ctx: &RequestContext,
    sess: &mut Session<'_>,
    entries: &[Value],
    all: bool,
) -> FhirResult<std::collections::HashMap<String, Option<Value>>> {
    let mut out = std::collections::HashMap::new();
    for e in entries
        .iter()
        .filter(|e| (all || !e["resource"].is_object()) && mode(e) == "match")
    {
        let Some(r) = entry_ref(e, &ctx.base) else {
            continue;
        };
        if out.contains_key(&r) {
            continue;
        }
        let Some((t, id)) = r.split_once('/') else {
            continue;
        };
        let mut h = FhirRequest::new(Interaction::HistoryInstance);
        h.resource_type = Some(t.to_owned());
        h.id = Some(id.to_owned());
        let last = match app.upstream.execute(&h, ctx).await {
            Ok(resp) => resp.body.as_ref().and_then(latest_of),
            Err(err) if matches!(err.status.as_u16(), 404 | 410) => None,
            Err(err) => return Err(err),
        };
        out.insert(r, last);
    }
    let bodies: Vec<Value> = out.values().flatten().cloned().collect();
    let refs: Vec<&Value> = bodies.iter().collect();
    sess.prepare(&refs).await?;
    Ok(out)
}

/// The newest stored version in a history Bundle: by `meta.lastUpdated`,
/// whatever order the upstream lists versions in; two versions written in
/// the same instant (a store's clock has milliseconds) by a numeric
/// `meta.versionId`, then by the history's own order, newest first.
pub(crate) fn latest_of(history: &Value) -> Option<Value> {
    history["entry"]
        .as_array()?
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r.is_object())
        // reversed: of equal keys `max_by_key` keeps the last one it sees,
        // which is then the one listed first
        .rev()
        .max_by_key(|r| {
            let at = r["meta"]["lastUpdated"]
                .as_str()
                .and_then(crate::fhir::types::parse_instant)
                .map(|t| t.unix_timestamp_nanos())
                .unwrap_or(i128::MIN);
            let version = r["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok());
            (at, version)
        })
        .cloned()
}
