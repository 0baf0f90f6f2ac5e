//! `_count`, `_offset` and `_since` for the store's non-search Bundles
//! (history and `$everything`); search parses its own in `crate::search::query`.

use crate::{
    error::{FhirError, FhirResult},
    fhir::{
        types::{format_instant, parse_instant},
        FhirRequest,
    },
    upstream::RequestContext,
};

/// One page: how many entries, after how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    /// Page size (capped at the maximum page size).
    pub count: u32,
    /// Entries skipped.
    pub offset: u64,
}

/// Reads `_count` (default page size, capped) and `_offset` (default 0).
pub(crate) fn page(req: &FhirRequest, ctx: &RequestContext) -> FhirResult<Page> {
    let count = match req.param("_count") {
        Some(c) => c
            .parse::<u32>()
            .map_err(|_| FhirError::processing("_count must be a non-negative integer"))?
            .min(ctx.max_page_size),
        None => ctx.default_page_size,
    };
    let offset = match req.param("_offset") {
        Some(o) => o
            .parse::<u64>()
            .map_err(|_| FhirError::processing("_offset must be a non-negative integer"))?,
        None => 0,
    };
    Ok(Page { count, offset })
}

/// Reads `_since` as a normalised FHIR instant (comparable as text).
pub(crate) fn since(req: &FhirRequest) -> FhirResult<Option<String>> {
    req.param("_since")
        .map(|s| {
            parse_instant(s)
                .map(format_instant)
                .ok_or_else(|| FhirError::processing(format!("_since '{s}' is not a FHIR instant")))
        })
        .transpose()
}
