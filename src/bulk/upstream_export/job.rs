//! The upstream job's lifecycle for one export: the lease while waiting,
//! the remembered status URL, kick-off, polling to the manifest, and the
//! clean-up (upstream job deleted, its files on the storage account removed).

use super::*;

impl Run<'_> {
    /// Renews the job's lease; `Released` when it was deleted or taken over.
    pub(super) async fn renew(&self) -> Result<(), Stop> {
        let until = crate::bulk::now_ms() + (self.app.config.bulk.lease_seconds as i64) * 1000;
        match jobs::renew(&self.app.state, &self.job.id, self.owner, until).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Stop::Released),
            Err(e) => Err(Stop::Failed(format!("lease: {e}"))),
        }
    }

    /// Sleeps `secs`, renewing the lease at least every third of it.
    pub(super) async fn wait(&self, secs: u64) -> Result<(), Stop> {
        let step = (self.app.config.bulk.lease_seconds / 3).max(1);
        let mut left = secs;
        while left > 0 {
            let s = left.min(step);
            tokio::time::sleep(Duration::from_secs(s)).await;
            left -= s;
            self.renew().await?;
        }
        Ok(())
    }

    pub(super) fn scrub(&self, text: &str) -> String {
        self.up
            .rewrite
            .scrub_text(text, &self.app.config.fhir_base())
    }

    /// The status URL kept by an earlier run of this job, if any.
    pub(super) async fn remembered(&self) -> Option<Url> {
        let got = self
            .app
            .bulk
            .store
            .get(&files::object(&self.job.id, MARKER))
            .await
            .ok()?;
        let bytes = got.bytes().await.ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        Url::parse(v["status"].as_str()?).ok()
    }

    pub(super) async fn remember(&self, status: &Url) -> Result<(), Fail> {
        let body = json!({"status": status.as_str()}).to_string().into_bytes();
        files::put(self.app.bulk.store.as_ref(), &self.job.id, MARKER, body)
            .await
            .map_err(|e| Fail::Stop(Stop::Failed(format!("upstream export marker: {e}"))))
    }

    pub(super) async fn forget(&self) {
        let _ = self
            .app
            .bulk
            .store
            .delete(&files::object(&self.job.id, MARKER))
            .await;
    }

    /// Kick-off (or the remembered upstream job) and polling until the
    /// manifest (the status URL is kept in `self.status`).
    pub(super) async fn manifest(&mut self, p: &Progress) -> Result<Value, Fail> {
        let deadline = Instant::now()
            + Duration::from_secs(self.app.config.bulk.upstream_export_timeout_seconds.max(1));
        let mut status = match self.remembered().await {
            Some(u) if self.up.same_origin(&u) => Some(u),
            _ => None,
        };
        let mut kicked = false;
        loop {
            let url = match status.clone() {
                Some(u) => {
                    self.status = Some(u.clone());
                    u
                }
                None => {
                    if kicked {
                        return Err(Fail::Upstream("the upstream lost its export job".into()));
                    }
                    kicked = true;
                    let u = self.kick_off(p).await?;
                    self.status = Some(u.clone());
                    self.remember(&u).await?;
                    status = Some(u.clone());
                    u
                }
            };
            if Instant::now() > deadline {
                return Err(Fail::Upstream(format!(
                    "the upstream export did not finish within {} s",
                    self.app.config.bulk.upstream_export_timeout_seconds
                )));
            }
            self.renew().await.map_err(Fail::Stop)?;
            let answer = self
                .up
                .request(reqwest::Method::GET, url.clone())
                .await
                .map_err(Fail::Upstream)?
                .header(header::ACCEPT, "application/json")
                .send()
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    // a transient failure: try again after a while
                    tracing::warn!(job = %self.job.id, error = %e.without_url(), "bulk: upstream status poll failed");
                    self.wait(5).await.map_err(Fail::Stop)?;
                    continue;
                }
            };
            let code = answer.status();
            let retry = retry_after(answer.headers());
            match code {
                StatusCode::OK => {
                    let manifest: Value = answer.json().await.map_err(|e| {
                        Fail::Upstream(format!("unreadable manifest: {}", e.without_url()))
                    })?;
                    return Ok(manifest);
                }
                StatusCode::ACCEPTED | StatusCode::TOO_MANY_REQUESTS => {
                    self.wait(retry).await.map_err(Fail::Stop)?;
                }
                StatusCode::NOT_FOUND | StatusCode::GONE if !kicked => {
                    // the remembered job is gone: start a new one
                    status = None;
                    self.status = None;
                }
                StatusCode::UNAUTHORIZED => {
                    self.up.auth.invalidate().await;
                    return Err(Fail::Upstream(
                        "the upstream refused fhirgate's credentials (401)".into(),
                    ));
                }
                s if s.is_server_error() && s != StatusCode::INTERNAL_SERVER_ERROR => {
                    // 502/503/504: transient
                    self.wait(retry).await.map_err(Fail::Stop)?;
                }
                s => {
                    let text = outcome_text(answer).await;
                    return Err(Fail::Upstream(format!(
                        "the upstream export failed ({}): {}",
                        s.as_u16(),
                        self.scrub(&text)
                    )));
                }
            }
        }
    }

    /// Starts the upstream job; its absolute status URL.
    pub(super) async fn kick_off(&self, p: &Progress) -> Result<Url, Fail> {
        let spec = &self.job.spec;
        let path = match spec.level {
            Level::Patient => "Patient/$export",
            _ => "$export",
        };
        let mut url = self.up.base.clone();
        {
            let Ok(mut segs) = url.path_segments_mut() else {
                return Err(Fail::Upstream("the upstream URL has no path".into()));
            };
            segs.pop_if_empty();
            for s in path.split('/') {
                segs.push(s);
            }
        }
        let types: Vec<&str> = p
            .types
            .iter()
            .filter(|t| !p.done.contains(t))
            .map(String::as_str)
            .collect();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("_outputFormat", "application/fhir+ndjson");
            if !types.is_empty() {
                q.append_pair("_type", &types.join(","));
            }
            if let Some(since) = &spec.since {
                q.append_pair("_since", since);
            }
        }
        let answer = self
            .up
            .request(reqwest::Method::GET, url)
            .await
            .map_err(Fail::Upstream)?
            .header(header::ACCEPT, "application/fhir+json")
            .header("Prefer", "respond-async")
            .send()
            .await
            .map_err(|e| {
                Fail::Upstream(format!(
                    "kick-off failed: {}",
                    self.scrub(&short(e.without_url()))
                ))
            })?;
        let code = answer.status();
        if code != StatusCode::ACCEPTED {
            if code == StatusCode::UNAUTHORIZED {
                self.up.auth.invalidate().await;
            }
            let text = outcome_text(answer).await;
            return Err(Fail::Upstream(format!(
                "kick-off answered {}: {}",
                code.as_u16(),
                self.scrub(&text)
            )));
        }
        let location = answer
            .headers()
            .get(header::CONTENT_LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| self.up.base.join(v).ok())
            .ok_or_else(|| Fail::Upstream("kick-off without Content-Location".into()))?;
        if !self.up.same_origin(&location) {
            return Err(Fail::Upstream(
                "the upstream's status URL is on another origin (not followed)".into(),
            ));
        }
        tracing::info!(job = %self.job.id, "bulk: upstream export started");
        Ok(location)
    }

    /// Deletes the upstream job (best effort; a failure is reported).
    pub(super) async fn delete_upstream_job(&self, url: &Url, p: &mut Progress) {
        let sent = match self.up.request(reqwest::Method::DELETE, url.clone()).await {
            Ok(b) => b.send().await.map_err(|e| short(e.without_url())),
            Err(m) => Err(m),
        };
        match sent {
            Ok(a) if a.status().is_success() || a.status() == StatusCode::NOT_FOUND => {}
            Ok(a) => p.errors.push(format!(
                "upstream export: deleting the upstream job answered {}",
                a.status().as_u16()
            )),
            Err(m) => p.errors.push(format!(
                "upstream export: cannot delete the upstream job: {}",
                self.scrub(&m)
            )),
        }
    }

    /// When the job failed, or was deleted by its client, while the upstream
    /// job ran: cancel the upstream job and remove its files (best effort).
    /// A job taken over by another worker is left alone (it resumes the
    /// upstream job through the marker).
    pub(super) async fn abandon(&mut self, why: &Stop) {
        let ends = matches!(why, Stop::Failed(_))
            || matches!(
                jobs::get(&self.app.state, &self.job.id).await,
                Ok(Some(j)) if j.status == jobs::status::DELETED
            );
        if !ends {
            return;
        }
        if let Some(u) = self.status.clone() {
            self.delete_upstream_job(&u, &mut Progress::default()).await;
        }
        self.remove_upstream_files().await;
    }

    /// Resolves every output and error file of the manifest that is on a
    /// storage account, so they can be removed afterwards.
    pub(super) fn note_upstream_files(&mut self, manifest: &Value) {
        let urls: Vec<String> = ["output", "error"]
            .iter()
            .flat_map(|k| manifest[*k].as_array().into_iter().flatten())
            .filter_map(|o| o["url"].as_str().map(str::to_owned))
            .collect();
        for u in urls {
            let Ok(url) = Url::parse(&u) else { continue };
            if let Some((account, container, path)) =
                blob_location(&self.app.config.bulk.upstream_storage, &url)
            {
                if let Ok(store) = self.container(account.as_deref(), &container) {
                    self.upstream_files.push((store, path));
                }
            }
        }
    }

    /// A storage-account container of the upstream's files (cached).
    pub(super) fn container(
        &mut self,
        account: Option<&str>,
        container: &str,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let key = format!("{}/{container}", account.unwrap_or_default());
        if let Some(s) = self.blobs.get(&key) {
            return Ok(s.clone());
        }
        let s = files::azure(&self.app.config.bulk.upstream_storage, account, container)
            .map_err(|e| storage_error(&e))?;
        self.blobs.insert(key, s.clone());
        Ok(s)
    }

    /// Removes the upstream's files on a storage account.
    pub(super) async fn remove_upstream_files(&mut self) {
        for (store, path) in std::mem::take(&mut self.upstream_files) {
            if let Err(e) = store.delete(&path).await {
                tracing::warn!(job = %self.job.id, error = %e, "bulk: cannot remove an upstream export file");
            }
        }
    }
}
