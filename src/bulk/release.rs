//! Releasing resources to an export job's caller, batch by batch: the one
//! place that decides what of a batch of stored resources of one type goes
//! into the caller's NDJSON, with exactly the checks a search through the
//! pipeline applies (`pipeline::handle_as` → authorize → consent):
//!
//! 1. scopes: the type must be readable by search (`s`) under the caller's
//!    scopes, else [`Release::new`] is 403; every resource is checked again
//!    against the caller's grants (patient confinement, granular
//!    constraints) by the authorize stage's own post-filter;
//! 2. consent (unless the client is exempt): every resource is judged at
//!    release time with today's Consents and labels ([`Session::judge`]:
//!    redaction, sensitivity-tag stripping, obligations); hidden resources
//!    are dropped and counted, never named;
//! 3. `_elements`: applied after the decision, tagged `SUBSETTED`;
//! 4. disclosure: what was released and what consent denied is recorded in
//!    the caller's [`Disclosure`] (the worker writes it to the audit ledger
//!    per batch), exempt clients' releases as `record_exempt` records them.
//!
//! Used by the embedded store's direct export path (`pages`) and meant for
//! NDJSON lines fetched from an HTTP upstream's own `$export`: parse each
//! line, hand a batch to [`Release::release`], write what comes back.
//!
//! ```ignore
//! // None: nothing the caller may see can match (write nothing)
//! if let Some(mut rel) = Release::for_type(app, &ctx, &caller, "Observation", &elements)? {
//!     let mut d = Disclosure::default();              // per batch, then audited
//!     let out = rel.release(batch, &mut d).await?;   // out.lines, out.withheld
//! }
//! ```

use serde_json::{json, Map, Value};
use smart_launch::context::AccessContext;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{
        subset::{self, Summary},
        FhirRequest, FhirResponse, Interaction,
    },
    pipeline::{
        authorize::{authorize, filter_response, Authorized},
        consent::{
            self as consent_stage,
            judge::{record, Session},
            precheck,
        },
        disclosure::Disclosure,
    },
    upstream::RequestContext,
    AppState,
};

/// What one batch released.
#[derive(Debug, Default)]
pub(crate) struct Released {
    /// The resources as they may be written (decision applied, subsetted).
    pub lines: Vec<Value>,
    /// Per line: whether it is exactly the resource as given (no consent
    /// change, no subsetting), so its stored bytes may be written as they are.
    pub unchanged: Vec<bool>,
    /// How many the consent decisions withheld, counted per patient the
    /// resource is about (as the pipeline's disclosure counts them).
    pub withheld: u64,
}

/// The release of one resource type to one export caller.
pub(crate) struct Release<'a> {
    app: &'a AppState,
    ctx: &'a RequestContext,
    caller: &'a AccessContext,
    type_: String,
    auth: Authorized,
    /// The authorized search (purpose of use for the consent judge).
    req: FhirRequest,
    /// Consent decisions apply (the client is not exempt).
    judged: bool,
    elements: Vec<String>,
}

impl<'a> Release<'a> {
    /// Authorizes the search `req` (a type or Patient-compartment search of
    /// `type_`) as the caller, as the pipeline would: 403 when the scopes do
    /// not cover the type or the consent pre-check refuses a parameter.
    /// `req` is narrowed in place (patient confinement as a compartment,
    /// granular constraints as parameters); `Ok(None)` when nothing the
    /// caller may see can match. `elements`: the `_elements` names for this
    /// type (`params::elements_for`), empty for whole resources.
    pub(crate) fn new(
        app: &'a AppState,
        ctx: &'a RequestContext,
        caller: &'a AccessContext,
        req: &mut FhirRequest,
        elements: &[String],
    ) -> FhirResult<Option<Self>> {
        let type_ = req
            .resource_type
            .clone()
            .ok_or_else(|| FhirError::bad_request("no resource type"))?;
        if !elements.is_empty() && req.param("_elements").is_none() {
            // so the authorize stage sees the subsetting (refused under
            // scopes that need an in-memory post-filter)
            req.params.push(("_elements".into(), elements.join(",")));
        }
        let auth = authorize(caller, req)?;
        req.params.retain(|(k, _)| k != "_elements");
        if auth.answer_empty {
            return Ok(None);
        }
        let judged = consent_stage::applies(app, caller);
        if judged {
            precheck::check(caller, req)?;
        }
        Ok(Some(Self {
            app,
            ctx,
            caller,
            type_,
            auth,
            req: req.clone(),
            judged,
            elements: elements.to_vec(),
        }))
    }

    /// [`Release::new`] for a plain search of the whole type (what an
    /// upstream's own `$export` of the type answers); `Ok(None)` as there.
    pub(crate) fn for_type(
        app: &'a AppState,
        ctx: &'a RequestContext,
        caller: &'a AccessContext,
        type_: &str,
        elements: &[String],
    ) -> FhirResult<Option<Self>> {
        let mut req = FhirRequest::new(Interaction::SearchType);
        req.resource_type = Some(type_.to_owned());
        Self::new(app, ctx, caller, &mut req, elements)
    }

    /// Releases one batch of stored resources (whole, current versions):
    /// drops other types and what the scopes do not admit, judges the rest
    /// (recording every decision in `d`), subsets what is released. Each
    /// batch gets a fresh judge, so Consents and patients' jurisdictions are
    /// read as they stand when the batch is released (and nothing of one
    /// batch is kept for the next).
    pub(crate) async fn release(
        &mut self,
        resources: Vec<Value>,
        d: &mut Disclosure,
    ) -> FhirResult<Released> {
        // (built by hand: `json!` would copy every resource through `to_value`)
        let entries: Vec<Value> = resources
            .into_iter()
            .filter(|r| r["resourceType"] == self.type_.as_str())
            .map(|r| {
                let mut e = Map::new();
                e.insert("resource".into(), r);
                e.insert("search".into(), json!({"mode": "match"}));
                Value::Object(e)
            })
            .collect();
        if entries.is_empty() {
            return Ok(Released::default());
        }
        let mut bundle = Map::new();
        bundle.insert("resourceType".into(), Value::from("Bundle"));
        bundle.insert("type".into(), Value::from("searchset"));
        bundle.insert("entry".into(), Value::Array(entries));
        let mut resp = FhirResponse::ok(Value::Object(bundle));
        filter_response(self.caller, &self.auth, &mut resp)?;
        let mut out = Released::default();
        if !self.judged {
            consent_stage::record_exempt(&resp, &self.ctx.base, d);
            for r in take_resources(resp) {
                out.lines.push(self.subset(r));
                out.unchanged.push(self.elements.is_empty());
            }
            return Ok(out);
        }
        let mut sess = Session::new(self.app, self.ctx, self.caller, &self.req);
        if let Some(c) = d.caller.as_mut() {
            c.purpose = sess.purpose.clone();
        }
        let resources = take_resources(resp);
        let refs: Vec<&Value> = resources.iter().collect();
        sess.prepare(&refs).await?;
        let before = withheld(d);
        for r in &resources {
            let j = sess.judge(r);
            let reference = match (r["resourceType"].as_str(), r["id"].as_str()) {
                (Some(t), Some(id)) => Some(format!("{t}/{id}")),
                _ => None,
            };
            record(d, &j, reference.as_deref());
            if let Some(body) = j.released {
                out.lines.push(body);
                out.unchanged.push(!j.changed && self.elements.is_empty());
            }
        }
        out.withheld = withheld(d).saturating_sub(before);
        let lines = std::mem::take(&mut out.lines);
        out.lines = lines.into_iter().map(|r| self.subset(r)).collect();
        Ok(out)
    }

    fn subset(&self, mut r: Value) -> Value {
        if !self.elements.is_empty() {
            subset::apply(&mut r, Some(&self.elements), Summary::False);
        }
        r
    }
}

/// The match resources of a (filtered) searchset, moved out.
fn take_resources(resp: FhirResponse) -> Vec<Value> {
    let Some(Value::Object(mut b)) = resp.body else {
        return Vec::new();
    };
    let Some(Value::Array(entries)) = b.remove("entry") else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|e| match e {
            Value::Object(mut m) => m.remove("resource").filter(Value::is_object),
            _ => None,
        })
        .collect()
}

fn withheld(d: &Disclosure) -> u64 {
    d.patients.values().map(|t| t.withheld as u64).sum()
}
