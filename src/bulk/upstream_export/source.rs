//! An upstream output file as a source of NDJSON lines: a blob on a storage
//! account read in ranges, or an HTTP download, split into lines with
//! bounded memory.

use super::*;

/// A storage-account failure for the error file; the detail (which names
/// the account and blob) goes to the log only.
pub(super) fn storage_error(e: &object_store::Error) -> String {
    tracing::warn!(error = %e, "bulk: upstream export file on the storage account");
    match e {
        object_store::Error::NotFound { .. } => "not found on the storage account".into(),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            "the storage account refused fhirgate's credentials".into()
        }
        _ => "the storage account read failed (detail in the server log)".into(),
    }
}

/// `(account, container, blob)` when `url` is on an Azure storage account:
/// below the configured endpoint (Azurite, private endpoints), or an
/// `https://<account>.blob.core.windows.net/<container>/<blob>` URL of the
/// configured account (any account when none is configured).
pub(super) fn blob_location(
    cfg: &AzureStorage,
    url: &Url,
) -> Option<(Option<String>, String, Path)> {
    let endpoint = cfg.endpoint.clone().or_else(|| {
        cfg.use_emulator.then(|| {
            format!(
                "http://127.0.0.1:10000/{}",
                cfg.account.as_deref().unwrap_or(files::EMULATOR_ACCOUNT)
            )
        })
    });
    let rest = match endpoint {
        Some(ep) => {
            let ep = Url::parse(ep.trim_end_matches('/')).ok()?;
            let prefix = ep.path().trim_end_matches('/').to_owned();
            if url.origin() == ep.origin() && url.path().starts_with(&format!("{prefix}/")) {
                Some((None, url.path()[prefix.len() + 1..].to_owned()))
            } else {
                None
            }
        }
        None => None,
    };
    let (account, rest) = match rest {
        Some(r) => r,
        None => {
            if url.scheme() != "https" {
                return None;
            }
            let account = url.host_str()?.strip_suffix(".blob.core.windows.net")?;
            if cfg.account.as_deref().is_some_and(|a| a != account) {
                return None;
            }
            (
                Some(account.to_owned()),
                url.path().trim_start_matches('/').to_owned(),
            )
        }
    };
    let (container, blob) = rest.split_once('/')?;
    if container.is_empty() || blob.is_empty() {
        return None;
    }
    let path = Path::from_url_path(blob).ok()?;
    Some((account, container.to_owned(), path))
}

/// An upstream output file being read.
pub(super) enum Source {
    /// A blob, read in ranges of `chunk` ([`CHUNK`]) bytes.
    Blob {
        store: Arc<dyn ObjectStore>,
        path: Path,
        size: u64,
        offset: u64,
        chunk: u64,
    },
    /// An HTTP download, read chunk by chunk.
    Http(reqwest::Response),
}

impl Source {
    pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Self::Blob {
                store,
                path,
                size,
                offset,
                chunk,
            } => {
                if *offset >= *size {
                    return Ok(None);
                }
                let end = (*offset + (*chunk).max(1)).min(*size);
                let b = store
                    .get_range(path, *offset..end)
                    .await
                    .map_err(|e| storage_error(&e))?;
                *offset = end;
                Ok(Some(b))
            }
            Self::Http(r) => r
                .chunk()
                .await
                .map_err(|e| format!("download: {}", e.without_url())),
        }
    }
}

/// Splits a source into lines; holds at most a chunk and one line.
#[derive(Default)]
pub(super) struct Lines {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) eof: bool,
}

impl Lines {
    pub(super) async fn next(&mut self, src: &mut Source) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(pos) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let line = self.buf[self.start..self.start + pos].to_vec();
                self.start += pos + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.eof {
                let rest = self.buf.split_off(self.start);
                self.buf.clear();
                self.start = 0;
                if rest.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                return Ok(Some(rest));
            }
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.len() > MAX_LINE {
                return Err(format!("a line is longer than {MAX_LINE} bytes"));
            }
            match src.chunk().await? {
                Some(c) => self.buf.extend_from_slice(&c),
                None => self.eof = true,
            }
        }
    }
}
