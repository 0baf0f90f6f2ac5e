//! Reading the upstream's output files and releasing their resources to the
//! job's caller, batch by batch, into fhirgate's own files.

use super::*;

impl Run<'_> {
    /// Releases every type of the manifest into the job's files.
    pub(super) async fn release_all(
        &mut self,
        manifest: &Value,
        p: &mut Progress,
    ) -> Result<(), Stop> {
        let needs_token = manifest["requiresAccessToken"].as_bool().unwrap_or(false);
        let outputs: Vec<(String, String)> = manifest["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| {
                Some((
                    o["type"].as_str()?.to_owned(),
                    o["url"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let upstream_errors = manifest["error"].as_array().map_or(0, Vec::len);
        if upstream_errors > 0 {
            p.errors.push(format!(
                "upstream export: the upstream reported {upstream_errors} error file(s)"
            ));
        }
        let types = p.types.clone();
        for t in types {
            if p.done.contains(&t) {
                continue;
            }
            let urls: Vec<&str> = outputs
                .iter()
                .filter(|(ty, _)| *ty == t)
                .map(|(_, u)| u.as_str())
                .collect();
            self.release_type(&t, &urls, needs_token, p).await?;
            p.done.push(t);
            match jobs::checkpoint(&self.app.state, &self.job.id, self.owner, p).await {
                Ok(true) => {}
                Ok(false) => return Err(Stop::Released),
                Err(e) => return Err(Stop::Failed(format!("checkpoint: {e}"))),
            }
        }
        Ok(())
    }

    /// One type: every upstream file of it, released batch by batch.
    pub(super) async fn release_type(
        &mut self,
        type_: &str,
        urls: &[&str],
        needs_token: bool,
        p: &mut Progress,
    ) -> Result<(), Stop> {
        let app = self.app;
        let rid = format!("bulk-{}", self.job.id);
        let ctx = app.request_context(&rid);
        let elements = params::elements_for(&self.job.spec.elements, type_);
        let mut rel = match Release::for_type(app, &ctx, self.caller, type_, &elements) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                // a type the scopes do not cover: silent when defaulted
                if !(self.job.spec.types.is_empty() && e.status.as_u16() == 403) {
                    p.errors
                        .push(format!("{type_}: {} {}", e.status.as_u16(), e.message));
                }
                return Ok(());
            }
        };
        let mut writer = TypeWriter::new(
            app.bulk.store.clone(),
            &self.job.id,
            type_,
            app.config.bulk.file_max_resources,
        );
        let mut withheld = 0;
        for (n, url) in urls.iter().enumerate() {
            let mut source = match self.open(url, needs_token).await {
                Ok(s) => s,
                Err(m) => {
                    p.errors
                        .push(format!("{type_}: upstream file {}: {m}", n + 1));
                    continue;
                }
            };
            let mut lines = Lines::default();
            let mut batch: Vec<Value> = Vec::new();
            let mut bad = 0u64;
            let mut failure = None;
            loop {
                let line = match lines.next(&mut source).await {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(m) => {
                        failure = Some(m);
                        break;
                    }
                };
                match serde_json::from_slice::<Value>(&line) {
                    Ok(mut v) if v.is_object() => {
                        self.up.rewrite.rewrite_body(&mut v, &ctx.base);
                        batch.push(v);
                    }
                    _ => bad += 1,
                }
                if batch.len() >= BATCH {
                    withheld += self
                        .release_batch(&mut rel, type_, std::mem::take(&mut batch), &mut writer)
                        .await?;
                }
            }
            if !batch.is_empty() {
                withheld += self
                    .release_batch(&mut rel, type_, batch, &mut writer)
                    .await?;
            }
            if bad > 0 {
                p.errors.push(format!(
                    "{type_}: upstream file {}: {bad} line(s) were not FHIR JSON",
                    n + 1
                ));
            }
            if let Some(m) = failure {
                p.errors
                    .push(format!("{type_}: upstream file {}: {m}", n + 1));
            }
        }
        let written = writer
            .finish()
            .await
            .map_err(|e| Stop::Failed(format!("close {type_} files: {e}")))?;
        p.output.extend(written);
        p.withheld += withheld;
        Ok(())
    }

    /// Releases one batch, writes it, records the disclosure on the ledger;
    /// the number consent withheld.
    pub(super) async fn release_batch(
        &self,
        rel: &mut Release<'_>,
        type_: &str,
        batch: Vec<Value>,
        writer: &mut TypeWriter,
    ) -> Result<u64, Stop> {
        self.renew().await?;
        let rid = format!("bulk-{}", self.job.id);
        let mut d = Disclosure::of(self.caller);
        let result = rel.release(batch, &mut d).await;
        let mut req = FhirRequest::new(Interaction::SearchType);
        req.resource_type = Some(type_.to_owned());
        let facts = FhirFacts::of(&req);
        let http = HttpFacts {
            method: "GET".into(),
            path: format!("/fhir/bulk/export/{}", self.job.id),
            query: Some("source=upstream-export".into()),
            client_addr: None,
            recorded: crate::bulk::now_ms(),
        };
        let status = match &result {
            Ok(_) => 200,
            Err(e) => e.status.as_u16(),
        };
        if let Err(e) = self
            .app
            .audit
            .record_fhir(&rid, &http, Some(&facts), &d, status)
            .await
        {
            return Err(Stop::Failed(format!("audit ledger unavailable: {e}")));
        }
        let out = result
            .map_err(|e| Stop::Failed(format!("{type_}: {} {}", e.status.as_u16(), e.message)))?;
        for r in &out.lines {
            let line =
                serde_json::to_vec(r).map_err(|e| Stop::Failed(format!("serialise: {e}")))?;
            writer
                .write(&line)
                .await
                .map_err(|e| Stop::Failed(format!("write {type_}: {e}")))?;
        }
        Ok(out.withheld)
    }

    /// Opens one upstream output file for reading.
    pub(super) async fn open(&mut self, raw: &str, needs_token: bool) -> Result<Source, String> {
        let url = Url::parse(raw).map_err(|_| "not an absolute URL".to_owned())?;
        if let Some((account, container, path)) =
            blob_location(&self.app.config.bulk.upstream_storage, &url)
        {
            let store = self.container(account.as_deref(), &container)?;
            let meta = store.head(&path).await.map_err(|e| storage_error(&e))?;
            return Ok(Source::Blob {
                store,
                path,
                size: meta.size,
                offset: 0,
                chunk: CHUNK,
            });
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err("unsupported URL scheme".into());
        }
        let builder = if needs_token {
            if !self.up.same_origin(&url) {
                return Err(
                    "needs the upstream token on another origin (not sent; configure \
                     bulk.upstream_storage for a storage account)"
                        .into(),
                );
            }
            self.up.request(reqwest::Method::GET, url).await?
        } else {
            self.up.http.get(url)
        };
        let answer = builder
            .header(header::ACCEPT, "application/fhir+ndjson")
            .send()
            .await
            .map_err(|e| self.scrub(&short(e.without_url())))?;
        if !answer.status().is_success() {
            return Err(format!("download answered {}", answer.status().as_u16()));
        }
        Ok(Source::Http(answer))
    }
}
