//! Polling the upstream for Consents changed elsewhere (not through the
//! facade), so the index follows the FHIR server of record.
//!
//! One sync:
//! 1. **Changes**: `GET Consent?_lastUpdated=ge<W - 5 s>&_sort=_lastUpdated&_count=<page>`
//!    (no `_lastUpdated` on the first sync), recording every Consent. Paging is
//!    keyset-style while the upstream honours the sort: after a page, the next
//!    query starts again at `ge<the page's newest lastUpdated>`, so a Consent
//!    updated while we page (moving to the end of the order) cannot shift
//!    another one past us, as offset paging would. Only when a whole page shares
//!    one instant (no progress possible), or the page is not sorted, is the
//!    page's `next` link followed (its query string, on the facade base).
//! 2. **Deletions**: `GET Consent/_history?_since=<W - 5 s>` (newest first); a
//!    Consent whose newest entry is a DELETE is forgotten with the delete's
//!    version. An upstream that answers the history with a 4xx (no type
//!    history) is skipped with a warning: deletions made elsewhere are then
//!    not seen.
//! 3. The watermark `W` advances to the newest `lastUpdated` seen in step 1
//!    (never from history, never backwards). The 5 s look-back covers
//!    upstreams that stamp a version before committing it.
//!
//! A Consent the index refuses (no id) is skipped with a warning, so one bad
//! resource cannot stall the poller. Logs carry counts and error kinds, never
//! ids, references or bodies.

use std::{collections::HashSet, sync::Arc, time::Duration};

use serde_json::Value;
use time::OffsetDateTime;

use super::{
    store::{normalise_instant, Stamp},
    ConsentIndex, IndexError,
};
use crate::{
    error::FhirError,
    fhir::{
        types::{format_instant, parse_instant},
        FhirRequest, Interaction,
    },
    upstream::{RequestContext, Upstream},
};

/// Consents per page asked of the upstream (capped at its maximum).
const PAGE: u32 = 100;
/// Pages per sync at most; the rest waits for the next sync.
const MAX_PAGES: usize = 10_000;
/// How far before the watermark each sync looks again.
const LOOKBACK: time::Duration = time::Duration::seconds(5);
/// The shortest poller interval accepted.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

fn search(since: Option<OffsetDateTime>, page: u32) -> FhirRequest {
    let mut req = FhirRequest::new(Interaction::SearchType);
    req.resource_type = Some("Consent".into());
    if let Some(s) = since {
        req.params
            .push(("_lastUpdated".into(), format!("ge{}", format_instant(s))));
    }
    req.params.push(("_sort".into(), "_lastUpdated".into()));
    req.params.push(("_count".into(), page.to_string()));
    req
}

fn history(since: Option<OffsetDateTime>, page: u32) -> FhirRequest {
    let mut req = FhirRequest::new(Interaction::HistoryType);
    req.resource_type = Some("Consent".into());
    if let Some(s) = since {
        req.params.push(("_since".into(), format_instant(s)));
    }
    req.params.push(("_count".into(), page.to_string()));
    req
}

/// The request a Bundle's `next` link stands for, if there is one.
fn next(bundle: &Value, ctx: &RequestContext, like: &FhirRequest) -> Option<FhirRequest> {
    let url = bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()?;
    let rest = url.strip_prefix(ctx.base.trim_end_matches('/'))?;
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let mut req = FhirRequest::new(like.interaction);
    req.resource_type = like.resource_type.clone();
    req.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Some(req)
}

async fn fetch(
    upstream: &dyn Upstream,
    req: &FhirRequest,
    ctx: &RequestContext,
) -> Result<Value, FhirError> {
    let resp = upstream.execute(req, ctx).await?;
    match resp.body {
        Some(b) if b["resourceType"] == "Bundle" => Ok(b),
        _ => Err(FhirError::bad_gateway(
            "Consent poll: the answer is not a Bundle",
        )),
    }
}

fn entries(bundle: &Value) -> &[Value] {
    bundle["entry"].as_array().map_or(&[], Vec::as_slice)
}

/// Step 1; returns (changed, newest lastUpdated seen).
async fn changes(
    index: &ConsentIndex,
    upstream: &dyn Upstream,
    ctx: &RequestContext,
    since: Option<OffsetDateTime>,
    page: u32,
) -> Result<(usize, Option<OffsetDateTime>), IndexError> {
    let mut changed = 0;
    let mut newest: Option<OffsetDateTime> = None;
    let mut lower = since;
    let mut req = search(since, page);
    for _ in 0..MAX_PAGES {
        let bundle = fetch(upstream, &req, ctx)
            .await
            .map_err(IndexError::Upstream)?;
        let mut sorted = true;
        let mut page_newest: Option<OffsetDateTime> = None;
        for e in entries(&bundle) {
            let r = &e["resource"];
            if r["resourceType"] != "Consent" || e["search"]["mode"] == "include" {
                continue;
            }
            let at = r["meta"]["lastUpdated"].as_str().and_then(parse_instant);
            match (at, page_newest) {
                (Some(a), Some(p)) if a < p => sorted = false,
                (None, _) => sorted = false,
                _ => {}
            }
            page_newest = page_newest.max(at);
            match index.record_changed(r).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(IndexError::NotAConsent(why)) => {
                    tracing::warn!(reason = why, "consent poll: skipped an unusable Consent");
                }
                Err(e) => return Err(e),
            }
        }
        newest = newest.max(page_newest);
        let Some(following) = next(&bundle, ctx, &req) else {
            break;
        };
        req = match page_newest {
            Some(p) if sorted && lower.is_none_or(|l| p > l) => {
                lower = Some(p);
                search(Some(p), page)
            }
            _ => following,
        };
    }
    Ok((changed, newest))
}

/// Step 2; returns how many live Consents were forgotten.
async fn deletions(
    index: &ConsentIndex,
    upstream: &dyn Upstream,
    ctx: &RequestContext,
    since: Option<OffsetDateTime>,
    page: u32,
) -> Result<usize, IndexError> {
    let mut forgotten = 0;
    let mut seen: HashSet<String> = HashSet::new();
    let mut req = history(since, page);
    for _ in 0..MAX_PAGES {
        let bundle = match fetch(upstream, &req, ctx).await {
            Ok(b) => b,
            Err(e) if e.status.is_client_error() => {
                tracing::warn!(
                    status = e.status.as_u16(),
                    "consent poll: the upstream has no Consent history; deletions made elsewhere are not seen"
                );
                return Ok(forgotten);
            }
            Err(e) => return Err(IndexError::Upstream(e)),
        };
        for e in entries(&bundle) {
            let Some(id) = entry_id(e) else { continue };
            if !seen.insert(id.clone()) || e["request"]["method"] != "DELETE" {
                continue;
            }
            let delete = Stamp {
                version_id: e["response"]["etag"]
                    .as_str()
                    .and_then(crate::fhir::request::parse_etag),
                last_updated: e["response"]["lastModified"]
                    .as_str()
                    .map(normalise_instant),
            };
            if index.forget_version(&id, &delete).await? {
                forgotten += 1;
            }
        }
        match next(&bundle, ctx, &req) {
            Some(following) => req = following,
            None => break,
        }
    }
    Ok(forgotten)
}

/// The Consent id of a history entry: `resource.id`, else the last segment
/// of `request.url` or `fullUrl` (`…/Consent/<id>`).
fn entry_id(e: &Value) -> Option<String> {
    if let Some(id) = e["resource"]["id"].as_str() {
        return Some(id.to_owned());
    }
    [&e["request"]["url"], &e["fullUrl"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find_map(|u| {
            let path = u.split('?').next().unwrap_or(u);
            let mut parts = path.rsplit('/');
            let id = parts.next()?;
            (parts.next() == Some("Consent") && crate::fhir::is_valid_id(id)).then(|| id.to_owned())
        })
}

impl ConsentIndex {
    /// Polls the upstream for Consents changed since the watermark (see the
    /// module docs); returns how many index rows changed.
    pub async fn sync(
        &self,
        upstream: &dyn Upstream,
        ctx: &RequestContext,
    ) -> Result<usize, IndexError> {
        let watermark = self.watermark().await?;
        let since = watermark
            .as_deref()
            .and_then(parse_instant)
            .map(|w| w - LOOKBACK);
        let page = PAGE.min(ctx.max_page_size).max(1);
        let (changed, newest) = changes(self, upstream, ctx, since, page).await?;
        let forgotten = deletions(self, upstream, ctx, since, page).await?;
        if let Some(n) = newest {
            self.advance_watermark(n).await?;
        }
        Ok(changed + forgotten)
    }

    /// Runs [`ConsentIndex::sync`] now and then every `every` (at least
    /// 10 ms), logging failures (error kind and status only, no PHI).
    pub fn spawn_poller(
        self,
        upstream: Arc<dyn Upstream>,
        ctx: RequestContext,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(MIN_INTERVAL));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match self.sync(upstream.as_ref(), &ctx).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(changed = n, "consent index synced"),
                    Err(e) => tracing::warn!(error = %e, "consent index sync failed; will retry"),
                }
            }
        })
    }
}
