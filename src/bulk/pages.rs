//! One resource type of an export job, then, with `_since` at system level,
//! the type's deletions from its history (read as the client through the
//! pipeline). Two paths:
//!
//! - embedded store (direct): one keyset scan of the type
//!   (`upstream::embedded::search::export`) matching the `_typeFilter`
//!   queries OR'd, each authorized and narrowed as the client's search would
//!   be, within the exported patients' compartments when limited to
//!   patients; every batch of `limits.max_page_size` rows is released by
//!   [`Release`] (scopes, consent judged now, `_elements`), written, and its
//!   disclosure recorded on the audit ledger, the lease renewed first. No
//!   result set, id set or sealed paging is kept: memory is one batch.
//! - HTTP upstream (and `AuditEvent`/`Group`, which the pipeline answers
//!   itself): the searches (queries OR'd by id, per patient compartment)
//!   run as the client through `pipeline::handle_as`, page by page along the
//!   facade's `next` links, each page streamed and audited the same way.
//!   Deletions come from the upstream's type history, or, when it has none,
//!   from fhirgate's own deletion log (`upstream::deletion_log`).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{
    files::TypeWriter,
    jobs::{self, FileEntry, Job},
    params,
    release::Release,
    worker::Stop,
};
use crate::deid::export::Deidentification;
use crate::{
    audit::{FhirFacts, HttpFacts},
    error::FhirError,
    fhir::{FhirRequest, Interaction},
    pipeline::{self, consent::judge, Disclosure},
    search::compartment::PATIENT_COMPARTMENT,
    upstream::{
        deletion_log,
        embedded::{
            search::export::{ExportScan, ScanQuery, ScanRow},
            EmbeddedStore,
        },
    },
    AppState,
};

fn is_compartment_type(t: &str) -> bool {
    PATIENT_COMPARTMENT.iter().any(|(c, _)| *c == t)
}

/// The query of a searchset's or history's `next` link, if any.
fn next_params(body: &Value) -> Option<Vec<(String, String)>> {
    let next = body["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?
        .get("url")?
        .as_str()?;
    let query = next.split_once('?').map(|(_, q)| q).unwrap_or_default();
    Some(params::filter_params(query))
}

/// A page of stored rows with each row's JSON parsed.
fn parse_rows(rows: Vec<ScanRow>) -> crate::error::FhirResult<(Vec<ScanRow>, Vec<Value>)> {
    let mut parsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let v: Value = serde_json::from_str(&row.body).map_err(FhirError::internal)?;
        parsed.push(v);
    }
    Ok((rows, parsed))
}

/// The export of one resource type.
pub(super) struct TypeExport<'a> {
    app: &'a AppState,
    owner: &'a str,
    job: &'a Job,
    caller: &'a AccessContext,
    type_: String,
    writer: TypeWriter,
    /// Deletions since `_since` (system level only).
    deleted: Option<TypeWriter>,
    seen: Option<HashSet<String>>,
    withheld: u64,
    pages: u64,
    /// A de-identified export's research gate and de-identifier.
    deid: Option<&'a Deidentification>,
}

impl<'a> TypeExport<'a> {
    pub(super) fn new(
        app: &'a AppState,
        owner: &'a str,
        job: &'a Job,
        caller: &'a AccessContext,
        type_: &str,
        deid: Option<&'a Deidentification>,
    ) -> Self {
        Self {
            app,
            owner,
            job,
            caller,
            type_: type_.to_owned(),
            writer: TypeWriter::new(
                app.bulk.store.clone(),
                &job.id,
                type_,
                app.config.bulk.file_max_resources,
            ),
            // a deletion names a real id: none in a de-identified export
            deleted: (job.spec.since.is_some() && deid.is_none()).then(|| {
                TypeWriter::named(
                    app.bulk.store.clone(),
                    &job.id,
                    "Bundle",
                    &format!("deleted-{type_}"),
                    app.config.bulk.file_max_resources,
                )
            }),
            seen: None,
            withheld: 0,
            pages: 0,
            deid,
        }
    }

    /// Every search of the type: the `_typeFilter` queries (OR'd) or one
    /// plain search, per patient compartment when limited to patients.
    pub(super) async fn run(&mut self, patients: Option<&[String]>) -> Result<(), Stop> {
        let spec = &self.job.spec;
        let mut queries: Vec<Vec<(String, String)>> = spec
            .type_filters
            .iter()
            .filter(|(t, _)| *t == self.type_)
            .map(|(_, q)| params::filter_params(q))
            .collect();
        if queries.is_empty() {
            queries.push(Vec::new());
        }
        let mut common: Vec<(String, String)> = vec![(
            "_count".into(),
            self.app.config.limits.max_page_size.to_string(),
        )];
        if let Some(since) = &spec.since {
            common.push(("_lastUpdated".into(), format!("ge{since}")));
        }
        let elements = params::elements_for(&spec.elements, &self.type_);
        if !elements.is_empty() {
            common.push(("_elements".into(), elements.join(",")));
        }
        let per_patient = patients.filter(|_| is_compartment_type(&self.type_));
        // a `_typeFilter` query that subsets (`_summary`, `_elements`) keeps
        // the search path, where the search applies it
        let subsets = queries
            .iter()
            .flatten()
            .any(|(k, _)| matches!(k.as_str(), "_summary" | "_elements"));
        if let Some(store) = self.direct_store().filter(|_| !subsets) {
            let since = common.iter().find(|(k, _)| k == "_lastUpdated").cloned();
            self.direct(store, &queries, since, &elements, per_patient)
                .await?;
            if let (Some(since), true) = (&spec.since, self.deleted.is_some()) {
                self.deletions(since, per_patient).await?;
            }
            return Ok(());
        }
        let many = queries.len() > 1 || per_patient.is_some_and(|p| p.len() > 1);
        if many {
            self.seen = Some(HashSet::new());
        }
        for q in &queries {
            let mut params = q.clone();
            params.extend(common.iter().cloned());
            match per_patient {
                None => {
                    let mut req = FhirRequest::new(Interaction::SearchType);
                    req.resource_type = Some(self.type_.clone());
                    req.params = params;
                    self.pages(req).await?;
                }
                Some(ids) if self.type_ == "Patient" => {
                    for chunk in ids.chunks(50) {
                        let mut req = FhirRequest::new(Interaction::SearchType);
                        req.resource_type = Some("Patient".into());
                        req.params = params.clone();
                        req.params.push(("_id".into(), chunk.join(",")));
                        self.pages(req).await?;
                    }
                }
                Some(ids) => {
                    for pid in ids {
                        let mut req = FhirRequest::new(Interaction::SearchCompartment);
                        req.compartment = Some(("Patient".into(), pid.clone()));
                        req.resource_type = Some(self.type_.clone());
                        req.params = params.clone();
                        self.pages(req).await?;
                    }
                }
            }
        }
        if let (Some(since), true) = (&spec.since, self.deleted.is_some()) {
            self.deletions(since, per_patient).await?;
        }
        Ok(())
    }

    /// The embedded store, when the type is read from it directly (the
    /// pipeline answers `AuditEvent` from the ledger and `Group` by the payer
    /// rules itself, so those keep the pipeline path).
    fn direct_store(&self) -> Option<&'a EmbeddedStore> {
        if matches!(self.type_.as_str(), "AuditEvent" | "Group") {
            return None;
        }
        self.app.upstream.embedded()
    }

    fn request_id(&self) -> String {
        format!("bulk-{}", self.job.id)
    }

    /// Renews the job's lease (before every page or batch).
    async fn renew(&mut self) -> Result<(), Stop> {
        let until = super::now_ms() + (self.app.config.bulk.lease_seconds as i64) * 1000;
        match jobs::renew(&self.app.state, &self.job.id, self.owner, until).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Stop::Released),
            Err(e) => Err(Stop::Failed(format!("lease: {e}"))),
        }
    }

    /// A disclosure of the caller's, for one page or batch.
    fn disclosure(&self) -> Disclosure {
        Disclosure::of(self.caller)
    }

    /// Records one page's or batch's disclosure on the audit ledger.
    async fn audit(&mut self, req: &FhirRequest, d: &Disclosure, status: u16) -> Result<(), Stop> {
        let mut facts = FhirFacts::of(req);
        if let Some(deid) = self.deid {
            // the profile and key set of a de-identified export
            facts.params.extend(deid.audit_params().iter().cloned());
        }
        let http = HttpFacts {
            method: "GET".into(),
            path: format!("/fhir/bulk/export/{}", self.job.id),
            query: None,
            client_addr: None,
            recorded: super::now_ms(),
        };
        self.app
            .audit
            .record_fhir(&self.request_id(), &http, Some(&facts), d, status)
            .await
            .map(|_| ())
            .map_err(|e| Stop::Failed(format!("audit ledger unavailable: {e}")))
    }

    fn failed(&self, e: &FhirError) -> Stop {
        Stop::Failed(format!(
            "{}: {} {}",
            self.type_,
            e.status.as_u16(),
            e.message
        ))
    }

    /// The direct path: authorizes each query as the client's search of the
    /// type (a refusal is audited and ends the type as the pipeline's would),
    /// then scans the store by keyset and releases batch by batch.
    async fn direct(
        &mut self,
        store: &EmbeddedStore,
        queries: &[Vec<(String, String)>],
        since: Option<(String, String)>,
        elements: &[String],
        patients: Option<&[String]>,
    ) -> Result<(), Stop> {
        if patients.is_some_and(<[String]>::is_empty) {
            // no patient to export for: no search runs (none is authorized)
            return Ok(());
        }
        let rid = self.request_id();
        let ctx = self.app.request_context(&rid);
        let mut scans: Vec<ScanQuery> = Vec::new();
        let mut release: Option<Release<'_>> = None;
        let mut audited = FhirRequest::new(Interaction::SearchType);
        audited.resource_type = Some(self.type_.clone());
        for q in queries {
            let mut req = FhirRequest::new(Interaction::SearchType);
            req.resource_type = Some(self.type_.clone());
            req.params = q.clone();
            req.params.extend(since.iter().cloned());
            let asked = req.clone();
            match Release::new(self.app, &ctx, self.caller, &mut req, elements) {
                Ok(Some(r)) => {
                    scans.push(ScanQuery {
                        params: req.params.clone(),
                        compartment: req.compartment.as_ref().map(|(_, id)| id.clone()),
                    });
                    if release.is_none() {
                        audited = asked;
                        release = Some(r);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.renew().await?;
                    let d = self.disclosure();
                    self.audit(&asked, &d, e.status.as_u16()).await?;
                    return Err(self.failed(&e));
                }
            }
        }
        let Some(mut release) = release else {
            // nothing the caller may see can match (an empty answer)
            return Ok(());
        };
        let scan = ExportScan::new(&self.type_, &scans, patients, &ctx.base)
            .map_err(|e| self.failed(&e))?;
        let batch = self.app.config.limits.max_page_size.max(1);
        let scan = &scan;
        let read = |after: String| async move {
            let rows = scan.page(store, &after, batch).await?;
            // parsed on a blocking thread, beside the batch being released
            tokio::task::spawn_blocking(move || parse_rows(rows))
                .await
                .map_err(FhirError::internal)?
        };
        let (mut rows, mut resources) = read(String::new()).await.map_err(|e| self.failed(&e))?;
        loop {
            let Some(last) = rows.last() else {
                return Ok(());
            };
            // the next page is read (on the store's thread) and parsed while
            // this one is released and written
            let full = rows.len() >= batch as usize;
            let next = read(last.id.clone());
            let next = async {
                match full {
                    true => next.await.map(Some),
                    false => Ok(None),
                }
            };
            let this = self.batch(&mut release, &audited, rows, resources);
            let (next, done) = tokio::join!(next, this);
            done?;
            match next.map_err(|e| self.failed(&e))? {
                Some((r, v)) => (rows, resources) = (r, v),
                None => return Ok(()),
            }
        }
    }

    /// Releases one batch of stored rows and their parsed resources (lease
    /// renewed first), records its disclosure on the audit ledger and writes
    /// what was released; a line released exactly as stored is written from
    /// the stored bytes.
    async fn batch(
        &mut self,
        release: &mut Release<'_>,
        audited: &FhirRequest,
        rows: Vec<ScanRow>,
        resources: Vec<Value>,
    ) -> Result<(), Stop> {
        self.renew().await?;
        let mut d = self.disclosure();
        let mut out = release.release(resources, &mut d).await;
        // a de-identified export: research gate and de-identification,
        // before the disclosure is recorded (a patient kept out is recorded
        // as withheld)
        let mut gated = Ok(0);
        if let (Some(deid), Ok(o)) = (self.deid, out.as_mut()) {
            gated = deid.process(self.app, &mut o.lines, |r| r, &mut d).await;
        }
        let status = match (&out, &gated) {
            (Err(e), _) => e.status.as_u16(),
            (Ok(_), Err(_)) => 500,
            (Ok(_), Ok(_)) => 200,
        };
        self.audit(audited, &d, status).await?;
        let mut out = out.map_err(|e| self.failed(&e))?;
        self.withheld += out.withheld + gated.map_err(Stop::Failed)?;
        self.pages += 1;
        if self.deid.is_some() {
            // de-identified: never the stored bytes
            out.unchanged = vec![false; out.lines.len()];
        }
        let stored: HashMap<&str, &str> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.body.as_str()))
            .collect();
        for (r, same) in out.lines.iter().zip(out.unchanged.iter()) {
            let as_stored = r["id"]
                .as_str()
                .and_then(|id| stored.get(id))
                .filter(|_| *same);
            let written = match as_stored {
                Some(body) => self.writer.write(body.as_bytes()).await,
                None => {
                    let line = serde_json::to_vec(r)
                        .map_err(|e| Stop::Failed(format!("serialise: {e}")))?;
                    self.writer.write(&line).await
                }
            };
            written.map_err(|e| Stop::Failed(format!("write {}: {e}", self.type_)))?;
        }
        // freeing a batch's values is a fair share of the work: off this thread
        drop(stored);
        tokio::task::spawn_blocking(move || drop((out, rows)));
        Ok(())
    }

    /// Runs one page as the client (lease renewed first, page audited);
    /// counts what consent withheld when `count_withheld`.
    async fn fetch(&mut self, req: &FhirRequest, count_withheld: bool) -> Result<Value, Stop> {
        match self.fetch_answer(req, count_withheld).await? {
            Ok(body) => Ok(body),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// [`Self::fetch`], handing a refusal back instead of ending the type.
    async fn fetch_answer(
        &mut self,
        req: &FhirRequest,
        count_withheld: bool,
    ) -> Result<Result<Value, FhirError>, Stop> {
        let rid = self.request_id();
        self.renew().await?;
        let mut d = self.disclosure();
        let mut result =
            pipeline::handle_as(self.app, req.clone(), self.caller, &rid, &mut d).await;
        // a de-identified export: research gate and de-identification,
        // before the disclosure is recorded (a patient kept out is recorded
        // as withheld)
        let mut gated = Ok(0);
        if let (Some(deid), Ok(resp)) = (self.deid, result.as_mut()) {
            if let Some(Value::Array(entries)) = resp.body.as_mut().and_then(|b| b.get_mut("entry"))
            {
                gated = deid
                    .process(self.app, entries, |e| &mut e["resource"], &mut d)
                    .await;
            }
        }
        let status = match (&result, &gated) {
            (Err(e), _) => e.status.as_u16(),
            (Ok(_), Err(_)) => 500,
            (Ok(r), Ok(_)) => r.status.as_u16(),
        };
        if count_withheld {
            self.withheld += d.patients.values().map(|t| t.withheld as u64).sum::<u64>();
        }
        self.audit(req, &d, status).await?;
        gated.map_err(Stop::Failed)?;
        let resp = match result {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        self.pages += 1;
        Ok(Ok(resp.body.unwrap_or(Value::Null)))
    }

    /// Runs one search and follows its `next` links.
    async fn pages(&mut self, mut req: FhirRequest) -> Result<(), Stop> {
        loop {
            let body = self.fetch(&req, true).await?;
            for entry in body["entry"].as_array().into_iter().flatten() {
                let mode = entry["search"]["mode"].as_str().unwrap_or("match");
                let resource = &entry["resource"];
                if mode != "match" || resource["resourceType"] != self.type_.as_str() {
                    continue;
                }
                if let Some(seen) = self.seen.as_mut() {
                    let id = resource["id"].as_str().unwrap_or_default().to_owned();
                    if !seen.insert(id) {
                        continue;
                    }
                }
                let line = serde_json::to_vec(resource)
                    .map_err(|e| Stop::Failed(format!("serialise: {e}")))?;
                self.writer
                    .write(&line)
                    .await
                    .map_err(|e| Stop::Failed(format!("write {}: {e}", self.type_)))?;
            }
            match next_params(&body) {
                Some(p) => req.params = p,
                None => return Ok(()),
            }
        }
    }

    /// Resources of the type deleted since `since` (newest history entry is
    /// a DELETE), read from the type's history as the client (consent drops
    /// a hidden resource's deletions), one transaction Bundle per line.
    /// Limited to `patients` (bare ids; a patient or group export), a
    /// deletion is reported when the last version before it was about one of
    /// them (read from the instance history as the client: a version consent
    /// hides is not there, so its deletion is not reported either).
    ///
    /// An HTTP upstream without type history (404, 405, 501 or 400 on the
    /// first page) leaves fhirgate's deletion log
    /// ([`Self::logged_deletions`]).
    async fn deletions(&mut self, since: &str, patients: Option<&[String]>) -> Result<(), Stop> {
        let mut req = FhirRequest::new(Interaction::HistoryType);
        req.resource_type = Some(self.type_.clone());
        req.params = vec![
            ("_since".into(), since.to_owned()),
            (
                "_count".into(),
                self.app.config.limits.max_page_size.to_string(),
            ),
        ];
        // Ids changed since `since` (bounded by the changes, not the data).
        let mut newest: HashSet<String> = HashSet::new();
        let mut first = true;
        loop {
            let body = match self.fetch_answer(&req, false).await? {
                Ok(body) => body,
                Err(e)
                    if first
                        && self.app.upstream.embedded().is_none()
                        && matches!(e.status.as_u16(), 400 | 404 | 405 | 501) =>
                {
                    tracing::debug!(
                        job = %self.job.id,
                        type_ = %self.type_,
                        status = e.status.as_u16(),
                        "bulk: no type history upstream; deletions from the deletion log"
                    );
                    return self.logged_deletions(since, patients).await;
                }
                Err(e) => return Err(self.failed(&e)),
            };
            first = false;
            for entry in body["entry"].as_array().into_iter().flatten() {
                let url = entry["fullUrl"].as_str().unwrap_or_default();
                let id = url.rsplit('/').next().unwrap_or_default().to_owned();
                if id.is_empty() || !newest.insert(id.clone()) {
                    continue;
                }
                if entry["request"]["method"] != "DELETE" {
                    continue;
                }
                if let Some(ids) = patients {
                    if !self.was_about(&id, ids).await? {
                        continue;
                    }
                }
                let bundle = json!({"resourceType": "Bundle", "type": "transaction",
                    "entry": [{"request": {"method": "DELETE", "url": format!("{}/{id}", self.type_)}}]});
                let Some(w) = self.deleted.as_mut() else {
                    return Ok(());
                };
                w.write(bundle.to_string().as_bytes())
                    .await
                    .map_err(|e| Stop::Failed(format!("write deletions: {e}")))?;
            }
            match next_params(&body) {
                Some(p) => req.params = p,
                None => return Ok(()),
            }
        }
    }

    /// Deletions of the type since `since` from fhirgate's deletion log
    /// (`upstream::deletion_log`): each logged last version is released to
    /// the client like an exported resource (scopes, consent judged now), a
    /// hidden one's deletion is not named, and, limited to `patients`, only
    /// those about one of them count. An id deleted more than once is
    /// listed once. Batch by batch, each audited.
    async fn logged_deletions(
        &mut self,
        since: &str,
        patients: Option<&[String]>,
    ) -> Result<(), Stop> {
        let since_ms =
            time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| Stop::Failed(format!("_since: {e}")))?;
        let rid = self.request_id();
        let ctx = self.app.request_context(&rid);
        let mut release = match Release::for_type(self.app, &ctx, self.caller, &self.type_, &[]) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.failed(&e)),
        };
        let mut audited = FhirRequest::new(Interaction::HistoryType);
        audited.resource_type = Some(self.type_.clone());
        audited.params = vec![("_since".into(), since.to_owned())];
        let batch = self.app.config.limits.max_page_size.max(1) as i64;
        let base = self.app.config.fhir_base();
        let mut listed: HashSet<String> = HashSet::new();
        let mut after = 0;
        loop {
            self.renew().await?;
            let rows = deletion_log::since(&self.app.state, &self.type_, since_ms, after, batch)
                .await
                .map_err(|e| Stop::Failed(format!("deletion log: {e}")))?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.seq;
            let full = rows.len() as i64 >= batch;
            let mut d = self.disclosure();
            let out = release
                .release(rows.into_iter().map(|r| r.last_version).collect(), &mut d)
                .await;
            let status = out.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200);
            self.audit(&audited, &d, status).await?;
            let out = out.map_err(|e| self.failed(&e))?;
            self.pages += 1;
            for r in &out.lines {
                let Some(id) = r["id"].as_str() else {
                    continue;
                };
                if let Some(ids) = patients {
                    let about = judge::patients_of(r, &base)
                        .iter()
                        .filter_map(|p| p.strip_prefix("Patient/"))
                        .any(|p| ids.iter().any(|q| q == p));
                    if !about {
                        continue;
                    }
                }
                if !listed.insert(id.to_owned()) {
                    continue;
                }
                let bundle = json!({"resourceType": "Bundle", "type": "transaction",
                    "entry": [{"request": {"method": "DELETE", "url": format!("{}/{id}", self.type_)}}]});
                let Some(w) = self.deleted.as_mut() else {
                    return Ok(());
                };
                w.write(bundle.to_string().as_bytes())
                    .await
                    .map_err(|e| Stop::Failed(format!("write deletions: {e}")))?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Whether the last live version of the deleted `Type/id`, as the
    /// client may read it, was about one of `patients` (bare ids).
    async fn was_about(&mut self, id: &str, patients: &[String]) -> Result<bool, Stop> {
        let mut req = FhirRequest::new(Interaction::HistoryInstance);
        req.resource_type = Some(self.type_.clone());
        req.id = Some(id.to_owned());
        req.params = vec![("_count".into(), "10".into())];
        let body = self.fetch(&req, false).await?;
        let last = body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["request"]["method"] != "DELETE" && e["resource"].is_object());
        let Some(last) = last else {
            return Ok(false);
        };
        let base = self.app.config.fhir_base();
        Ok(judge::patients_of(&last["resource"], &base)
            .iter()
            .filter_map(|r| r.strip_prefix("Patient/"))
            .any(|p| patients.iter().any(|q| q == p)))
    }

    /// Closes the files; `(files, deletion files, withheld)`.
    pub(super) async fn finish(self) -> Result<(Vec<FileEntry>, Vec<FileEntry>, u64), Stop> {
        let withheld = self.withheld;
        let files = self
            .writer
            .finish()
            .await
            .map_err(|e| Stop::Failed(format!("close files: {e}")))?;
        let deleted = match self.deleted {
            Some(w) => w
                .finish()
                .await
                .map_err(|e| Stop::Failed(format!("close deletion files: {e}")))?,
            None => Vec::new(),
        };
        Ok((files, deleted, withheld))
    }
}
