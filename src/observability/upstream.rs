//! [`Timed`]: the upstream as the rest of the server sees it, with every
//! call's latency recorded by interaction and outcome
//! (`fhirgate_upstream_request_duration_seconds`). It wraps whatever
//! [`crate::AppState::open`] built (embedded store, or HTTP upstream with
//! its deletion log), so neither implementation knows about metrics.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use tracing::Instrument;

use super::metrics::registry;
use crate::{
    error::FhirResult,
    fhir::{FhirRequest, FhirResponse, Interaction},
    upstream::{embedded::EmbeddedStore, RequestContext, Upstream},
};

/// An upstream whose calls are measured.
pub struct Timed {
    inner: Arc<dyn Upstream>,
}

impl Timed {
    /// Measures `inner`.
    pub fn new(inner: Arc<dyn Upstream>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl Upstream for Timed {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        let started = Instant::now();
        // The trace's "upstream" stage, whichever upstream this is.
        let span = super::otel::stage("upstream");
        let result = self.inner.execute(req, ctx).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => outcome(e.status.as_u16()),
        };
        if result.is_err() {
            super::otel::fail(&span, outcome);
        }
        registry().upstream_call(
            self.inner.name(),
            interaction(req.interaction),
            outcome,
            started.elapsed(),
        );
        result
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn embedded(&self) -> Option<&EmbeddedStore> {
        self.inner.embedded()
    }
}

/// The outcome label of a failed call.
pub fn outcome(status: u16) -> &'static str {
    match status {
        404 | 410 => "not_found",
        400..=499 => "client_error",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "timeout",
        _ => "server_error",
    }
}

/// The interaction label (R4 restful-interaction names).
pub fn interaction(i: Interaction) -> &'static str {
    use Interaction::*;
    match i {
        Capabilities => "capabilities",
        Read => "read",
        Vread => "vread",
        Update => "update",
        ConditionalUpdate => "conditional-update",
        Delete => "delete",
        ConditionalDelete => "conditional-delete",
        Create => "create",
        SearchType => "search-type",
        SearchSystem => "search-system",
        SearchCompartment => "search-compartment",
        HistoryInstance => "history-instance",
        HistoryType => "history-type",
        HistorySystem => "history-system",
        BatchOrTransaction => "batch-transaction",
        Operation => "operation",
    }
}
