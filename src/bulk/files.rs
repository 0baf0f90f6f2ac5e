//! Export files through `object_store`: the local filesystem under
//! `<data_dir>/bulk` by default, a `file:///` directory, or Azure Blob
//! Storage (`az://<container>/<prefix>` or
//! `https://<account>.blob.core.windows.net/<container>/<prefix>`, with the
//! credentials of `[bulk.azure]` or object_store's `AZURE_*` environment).
//! Objects are `{job}/{file}` (below the prefix); a type's files are
//! `{Type}-{n}.ndjson`, split every `file_max_resources` lines, written
//! through a buffered multipart writer so memory stays bounded. fhirgate
//! serves the files itself; a storage URL never reaches a client.

use std::{path::Path as FsPath, sync::Arc};

use object_store::{
    azure::MicrosoftAzureBuilder, buffered::BufWriter, local::LocalFileSystem, path::Path,
    prefix::PrefixStore, ObjectStore,
};
use tokio::io::AsyncWriteExt;

use super::{
    config::{AzureStorage, BulkConfig},
    jobs::FileEntry,
};

/// Azurite's development account and its published shared key (Microsoft's
/// documented emulator credentials, not a secret).
pub(crate) const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Opens the configured store.
pub fn open(cfg: &BulkConfig, data_dir: &FsPath) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match cfg.storage_url.as_deref() {
        None => {
            let dir = data_dir.join("bulk");
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(&dir)?))
        }
        Some(url) if url.starts_with("file://") => {
            let dir = url.trim_start_matches("file://");
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {dir}: {e}"))?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
        }
        Some(url) => {
            let (account, container, prefix) = parse_azure_url(url).ok_or_else(|| {
                anyhow::anyhow!(
                    "bulk.storage_url {url}: expected file:///path, az://<container>/<prefix> \
                     or https://<account>.blob.core.windows.net/<container>/<prefix>"
                )
            })?;
            let store = azure(&cfg.azure, account.as_deref(), &container)
                .map_err(|e| anyhow::anyhow!("bulk.storage_url {url}: {e}"))?;
            Ok(if prefix.as_ref().is_empty() {
                store
            } else {
                Arc::new(PrefixStore::new(store, prefix))
            })
        }
    }
}

/// `(account, container, prefix)` of an Azure storage URL (`az://`,
/// `azure://`, or an account's `https://…blob.core.windows.net` URL).
pub(crate) fn parse_azure_url(url: &str) -> Option<(Option<String>, String, Path)> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let segments = || {
        u.path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (account, mut parts) = match u.scheme() {
        "az" | "azure" => {
            let mut p = vec![host.to_owned()];
            p.extend(segments());
            (None, p)
        }
        "https" => {
            let account = host.strip_suffix(".blob.core.windows.net")?;
            (Some(account.to_owned()), segments())
        }
        _ => return None,
    };
    if parts.is_empty() || parts[0].contains('.') {
        return None;
    }
    let container = parts.remove(0);
    let prefix = Path::from_iter(parts.iter().map(|p| p.as_str()));
    Some((account, container, prefix))
}

/// One container of an Azure storage account: settings from `cfg`, then
/// the account from the URL, then object_store's `AZURE_*` environment.
pub(crate) fn azure(
    cfg: &AzureStorage,
    account: Option<&str>,
    container: &str,
) -> object_store::Result<Arc<dyn ObjectStore>> {
    let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
    let account = cfg
        .account
        .clone()
        .or_else(|| account.map(str::to_owned))
        .or_else(|| cfg.use_emulator.then(|| EMULATOR_ACCOUNT.to_owned()));
    if let Some(a) = &account {
        b = b.with_account(a);
    }
    let key = cfg
        .access_key
        .clone()
        .or_else(|| cfg.use_emulator.then(|| EMULATOR_KEY.to_owned()));
    if let Some(k) = key {
        b = b.with_access_key(k);
    }
    if let Some(sas) = &cfg.sas_token {
        b = b.with_config(
            object_store::azure::AzureConfigKey::SasKey,
            sas.trim_start_matches('?'),
        );
    }
    let endpoint = cfg.endpoint.clone().or_else(|| {
        cfg.use_emulator.then(|| {
            format!(
                "http://127.0.0.1:10000/{}",
                account.as_deref().unwrap_or(EMULATOR_ACCOUNT)
            )
        })
    });
    if let Some(e) = endpoint {
        let http = e.starts_with("http://");
        b = b.with_endpoint(e.trim_end_matches('/').to_owned());
        if http {
            // only an emulator (or an explicit http endpoint) goes without TLS
            b = b.with_allow_http(true);
        }
    }
    Ok(Arc::new(b.build()?))
}

/// The object path of a job's file.
pub fn object(job: &str, name: &str) -> Path {
    Path::from(format!("{job}/{name}"))
}

/// Removes every object of a job.
pub async fn remove_job(store: &dyn ObjectStore, job: &str) -> object_store::Result<()> {
    let prefix = Path::from(job.to_owned());
    let list = store.list_with_delimiter(Some(&prefix)).await?;
    for o in list.objects {
        store.delete(&o.location).await?;
    }
    Ok(())
}

/// Writes one type's lines into files of at most `max` lines each.
pub struct TypeWriter {
    store: Arc<dyn ObjectStore>,
    job: String,
    type_: String,
    prefix: String,
    max: u64,
    current: Option<(BufWriter, u64)>,
    /// Finished files.
    pub files: Vec<FileEntry>,
}

impl TypeWriter {
    /// A writer for `type_` of `job` (files `{type_}-{n}.ndjson`).
    pub fn new(store: Arc<dyn ObjectStore>, job: &str, type_: &str, max: usize) -> Self {
        Self::named(store, job, type_, type_, max)
    }

    /// A writer of `type_` lines into files `{prefix}-{n}.ndjson`.
    pub fn named(
        store: Arc<dyn ObjectStore>,
        job: &str,
        type_: &str,
        prefix: &str,
        max: usize,
    ) -> Self {
        Self {
            store,
            job: job.to_owned(),
            type_: type_.to_owned(),
            prefix: prefix.to_owned(),
            max: max.max(1) as u64,
            current: None,
            files: Vec::new(),
        }
    }

    fn name(&self, n: usize) -> String {
        format!("{}-{}.ndjson", self.prefix, n)
    }

    /// Appends one resource line.
    pub async fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.current.is_none() {
            let name = self.name(self.files.len() + 1);
            let w = BufWriter::new(self.store.clone(), object(&self.job, &name));
            self.current = Some((w, 0));
        }
        if let Some((w, count)) = self.current.as_mut() {
            w.write_all(line).await?;
            w.write_all(b"\n").await?;
            *count += 1;
            if *count >= self.max {
                self.close().await?;
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> std::io::Result<()> {
        if let Some((mut w, count)) = self.current.take() {
            w.shutdown().await?;
            let name = self.name(self.files.len() + 1);
            self.files.push(FileEntry {
                type_: self.type_.clone(),
                name,
                count,
            });
        }
        Ok(())
    }

    /// Closes the last file; returns every file written.
    pub async fn finish(mut self) -> std::io::Result<Vec<FileEntry>> {
        self.close().await?;
        Ok(self.files)
    }
}

/// Writes a whole small file (the error file).
pub async fn put(
    store: &dyn ObjectStore,
    job: &str,
    name: &str,
    bytes: Vec<u8>,
) -> object_store::Result<()> {
    store
        .put(&object(job, name), bytes.into())
        .await
        .map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn azure_storage_urls() {
        let (a, c, p) = parse_azure_url("az://exports/fhirgate/prod").unwrap();
        assert_eq!(
            (a, c.as_str(), p.as_ref()),
            (None, "exports", "fhirgate/prod")
        );
        let (a, c, p) =
            parse_azure_url("https://acct.blob.core.windows.net/exports/bulk/").unwrap();
        assert_eq!(
            (a.as_deref(), c.as_str(), p.as_ref()),
            (Some("acct"), "exports", "bulk")
        );
        let (_, c, p) = parse_azure_url("az://exports").unwrap();
        assert_eq!((c.as_str(), p.as_ref()), ("exports", ""));
        assert!(parse_azure_url("https://example.com/exports").is_none());
        assert!(parse_azure_url("https://acct.blob.core.windows.net/").is_none());
        assert!(parse_azure_url("s3://bucket/x").is_none());
    }

    #[test]
    fn unsupported_storage_urls_are_refused_at_start_up() {
        let cfg = BulkConfig {
            storage_url: Some("s3://bucket/x".into()),
            ..BulkConfig::default()
        };
        let err = open(&cfg, FsPath::new("/nonexistent")).err().unwrap();
        assert!(err.to_string().contains("az://"), "{err}");
    }
}
