//! Export files through `object_store`: the local filesystem under
//! `<data_dir>/bulk` by default. Objects are `{job}/{file}`; a type's
//! files are `{Type}-{n}.ndjson`, split every `file_max_resources` lines,
//! written through a buffered multipart writer so memory stays bounded.
//!
//! TODO(issue 6 item 3): Azure Blob Storage (`storage_url =
//! "https://<account>.blob.core.windows.net/<container>"`) needs the
//! `object_store/azure` feature and credentials; this build refuses such a
//! URL at start-up rather than silently writing locally.

use std::{path::Path as FsPath, sync::Arc};

use object_store::{buffered::BufWriter, local::LocalFileSystem, path::Path, ObjectStore};
use tokio::io::AsyncWriteExt;

use super::jobs::FileEntry;

/// Opens the configured store.
pub fn open(storage_url: Option<&str>, data_dir: &FsPath) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match storage_url {
        None => {
            let dir = data_dir.join("bulk");
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(&dir)?))
        }
        Some(url) if url.starts_with("file://") => {
            let dir = url.trim_start_matches("file://");
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {dir}: {e}"))?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
        }
        Some(url) => Err(anyhow::anyhow!(
            "bulk.storage_url {url}: only file:// (or unset, the data dir) is supported by this build"
        )),
    }
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
