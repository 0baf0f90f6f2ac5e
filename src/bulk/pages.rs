//! One resource type of an export job: the searches (`_typeFilter`
//! queries OR'd, per patient compartment when the export is limited to
//! patients) run as the client through `pipeline::handle_as`, page by page
//! along the facade's `next` links, each page's lines streamed into the
//! type's NDJSON files and its disclosure recorded on the audit ledger; then,
//! with `_since` at system level, the type's deletions from its history.

use std::collections::HashSet;

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{
    files::TypeWriter,
    jobs::{self, FileEntry, Job, Level},
    params,
    worker::Stop,
};
use crate::{
    audit::{FhirFacts, HttpFacts},
    fhir::{FhirRequest, Interaction},
    pipeline::{self, disclosure::Caller, Disclosure},
    search::compartment::PATIENT_COMPARTMENT,
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
}

impl<'a> TypeExport<'a> {
    pub(super) fn new(
        app: &'a AppState,
        owner: &'a str,
        job: &'a Job,
        caller: &'a AccessContext,
        type_: &str,
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
            deleted: (job.spec.since.is_some() && job.spec.level == Level::System).then(|| {
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
            self.deletions(since).await?;
        }
        Ok(())
    }

    /// Runs one page as the client (lease renewed first, page audited);
    /// counts what consent withheld when `count_withheld`.
    async fn fetch(&mut self, req: &FhirRequest, count_withheld: bool) -> Result<Value, Stop> {
        let rid = format!("bulk-{}", self.job.id);
        let until = super::now_ms() + (self.app.config.bulk.lease_seconds as i64) * 1000;
        match jobs::renew(&self.app.state, &self.job.id, self.owner, until).await {
            Ok(true) => {}
            Ok(false) => return Err(Stop::Released),
            Err(e) => return Err(Stop::Failed(format!("lease: {e}"))),
        }
        let facts = FhirFacts::of(req);
        let http = HttpFacts {
            method: "GET".into(),
            path: format!("/fhir/bulk/export/{}", self.job.id),
            query: None,
            client_addr: None,
            recorded: super::now_ms(),
        };
        let mut d = Disclosure {
            caller: Some(Caller {
                client_id: self.caller.client_id.clone(),
                fhir_user: self.caller.fhir_user.clone(),
                role: self.caller.role.clone(),
                jti: self.caller.jti.clone(),
                purpose: None,
            }),
            ..Disclosure::default()
        };
        let result = pipeline::handle_as(self.app, req.clone(), self.caller, &rid, &mut d).await;
        let status = match &result {
            Ok(r) => r.status.as_u16(),
            Err(e) => e.status.as_u16(),
        };
        if count_withheld {
            self.withheld += d.patients.values().map(|t| t.withheld as u64).sum::<u64>();
        }
        if let Err(e) = self
            .app
            .audit
            .record_fhir(&rid, &http, Some(&facts), &d, status)
            .await
        {
            return Err(Stop::Failed(format!("audit ledger unavailable: {e}")));
        }
        let resp = result.map_err(|e| {
            Stop::Failed(format!(
                "{}: {} {}",
                self.type_,
                e.status.as_u16(),
                e.message
            ))
        })?;
        self.pages += 1;
        Ok(resp.body.unwrap_or(Value::Null))
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
    async fn deletions(&mut self, since: &str) -> Result<(), Stop> {
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
        loop {
            let body = self.fetch(&req, false).await?;
            for entry in body["entry"].as_array().into_iter().flatten() {
                let url = entry["fullUrl"].as_str().unwrap_or_default();
                let id = url.rsplit('/').next().unwrap_or_default().to_owned();
                if id.is_empty() || !newest.insert(id.clone()) {
                    continue;
                }
                if entry["request"]["method"] != "DELETE" {
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
            match next_params(&body) {
                Some(p) => req.params = p,
                None => return Ok(()),
            }
        }
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
