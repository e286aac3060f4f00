//! The archive's object store: a local folder (`file://PATH`) or S3 / any S3-compatible
//! endpoint (`s3://BUCKET/PREFIX`), behind `object_store`.
//!
//! # Atomic objects
//! Every object is written with one `put` of the whole, already-encoded file (or, above
//! [`MULTIPART_THRESHOLD`], a multipart upload). Both are atomic in both back ends: S3 shows an
//! object only once its `PutObject` or `CompleteMultipartUpload` succeeded; the local back end
//! writes a staging file (`<key>#<n>`, skipped by listings) and renames it over the key. A
//! killed exporter therefore never leaves a partial object under a final key; at worst a stale
//! staging file or an unfinished multipart upload (expired by the lifecycle rule
//! `AbortIncompleteMultipartUpload`).

use bytes::Bytes;
use kd_core::config::Secret;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Files above this size go up as a multipart upload (16 MiB parts).
pub const MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;
const PART_SIZE: usize = 16 * 1024 * 1024;

/// Why the archive could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("archive URL `{0}`: expected file://PATH or s3://BUCKET[/PREFIX]")]
    Url(String),
    #[error("archive folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
}

impl StoreError {
    /// Network and server trouble is worth retrying; a bad URL is not.
    pub fn is_retriable(&self) -> bool {
        matches!(self, StoreError::ObjectStore(_))
    }
}

/// S3 settings; every unset field falls back to the standard AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
/// `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible service (`http://127.0.0.1:9000`); empty for AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when neither this nor the environment names one).
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Allow plain HTTP (local endpoints). Implied when `endpoint` starts with `http://`.
    pub allow_http: Option<bool>,
}

/// A parsed archive location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveUrl {
    Folder(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl ArchiveUrl {
    pub fn parse(url: &str) -> Result<ArchiveUrl, StoreError> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(StoreError::Url(url.to_string()));
            }
            return Ok(ArchiveUrl::Folder(path.into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Url(url.to_string()));
            }
            return Ok(ArchiveUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        Err(StoreError::Url(url.to_string()))
    }
}

/// An opened archive: the store (already scoped to the prefix) and where it points.
#[derive(Debug, Clone)]
pub struct Archive {
    pub store: Arc<dyn ObjectStore>,
    pub url: ArchiveUrl,
    /// Resolved S3 settings (for the lifecycle call), `None` for a folder.
    pub s3: Option<ResolvedS3>,
}

/// S3 settings after merging configuration and environment.
#[derive(Debug, Clone)]
pub struct ResolvedS3 {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl Archive {
    /// Opens `url`, creating the local folder when needed.
    pub fn open(url: &str, s3: &S3Options) -> Result<Archive, StoreError> {
        match ArchiveUrl::parse(url)? {
            ArchiveUrl::Folder(path) => {
                std::fs::create_dir_all(&path).map_err(|source| StoreError::Folder {
                    path: path.display().to_string(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(&path)?;
                Ok(Archive {
                    store: Arc::new(fs),
                    url: ArchiveUrl::Folder(path),
                    s3: None,
                })
            }
            ArchiveUrl::S3 { bucket, prefix } => {
                let resolved = ResolvedS3 {
                    bucket: bucket.clone(),
                    endpoint: s3
                        .endpoint
                        .clone()
                        .or_else(|| env(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"])),
                    region: s3
                        .region
                        .clone()
                        .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
                        .unwrap_or_else(|| "us-east-1".to_string()),
                    access_key_id: s3
                        .access_key_id
                        .clone()
                        .or_else(|| env(&["AWS_ACCESS_KEY_ID"])),
                    secret_access_key: s3
                        .secret_access_key
                        .clone()
                        .or_else(|| env(&["AWS_SECRET_ACCESS_KEY"]).map(Secret::new)),
                    session_token: s3
                        .session_token
                        .clone()
                        .or_else(|| env(&["AWS_SESSION_TOKEN"]).map(Secret::new)),
                };
                let allow_http = s3.allow_http.unwrap_or_else(|| {
                    resolved
                        .endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://"))
                        || env(&["AWS_ALLOW_HTTP"]).is_some_and(|v| v == "true")
                });
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_region(&resolved.region)
                    .with_allow_http(allow_http);
                if let Some(e) = &resolved.endpoint {
                    builder = builder.with_endpoint(e);
                }
                if let Some(k) = &resolved.access_key_id {
                    builder = builder.with_access_key_id(k);
                }
                if let Some(s) = &resolved.secret_access_key {
                    builder = builder.with_secret_access_key(s.expose());
                }
                if let Some(t) = &resolved.session_token {
                    builder = builder.with_token(t.expose());
                }
                let s3_store = builder.build()?;
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3_store)
                } else {
                    Arc::new(PrefixStore::new(s3_store, prefix.as_str()))
                };
                Ok(Archive {
                    store,
                    url: ArchiveUrl::S3 { bucket, prefix },
                    s3: Some(resolved),
                })
            }
        }
    }

    /// Writes `data` under `key` atomically (see the module docs), replacing any object there.
    pub async fn put_atomic(&self, key: &Path, data: Vec<u8>) -> Result<(), StoreError> {
        if data.len() <= MULTIPART_THRESHOLD {
            self.store
                .put(key, PutPayload::from(Bytes::from(data)))
                .await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in data.chunks(PART_SIZE) {
            writer.wait_for_capacity(4).await?;
            writer.write(chunk);
        }
        writer.finish().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() -> Result<(), StoreError> {
        assert_eq!(
            ArchiveUrl::parse("file:///tmp/a")?,
            ArchiveUrl::Folder("/tmp/a".into())
        );
        assert_eq!(
            ArchiveUrl::parse("s3://bucket/some/prefix/")?,
            ArchiveUrl::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            ArchiveUrl::parse("s3://bucket")?,
            ArchiveUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        for bad in ["", "file://", "s3://", "/tmp/x", "http://x"] {
            assert!(ArchiveUrl::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
