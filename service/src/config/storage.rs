//! `storage:` where the jobs write archives and backups. `kind` (`local` or `s3`), `local_dir`,
//! and `s3:` `bucket`, `region`, `endpoint` (empty: AWS; else http(s)), `prefix`,
//! `access_key_id`, `secret_access_key`, `path_style`, `timeout_seconds`. With `kind: s3` the
//! bucket, region and both credentials are required.

use super::{ConfigError, at_least_one, err};
use crate::secret::SecretString;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    #[default]
    Local,
    S3,
}

/// Object storage for log archives (used by the operations jobs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    pub local_dir: PathBuf,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Local,
            local_dir: PathBuf::from("data/objects"),
            s3: S3Config::default(),
        }
    }
}

/// An S3-compatible store: AWS S3, MinIO, Aliyun OSS (its S3 endpoint), Cloudflare R2, …
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint for S3-compatible stores (`http://127.0.0.1:9000`, …); empty: AWS.
    pub endpoint: String,
    /// Keys are written under this prefix (e.g. `tollgate/`).
    pub prefix: String,
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO needs it).
    pub path_style: bool,
    /// Per request, including retries by the SDK.
    pub timeout_seconds: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: String::new(),
            prefix: String::new(),
            access_key_id: SecretString::default(),
            secret_access_key: SecretString::default(),
            path_style: false,
            timeout_seconds: 60,
        }
    }
}

impl StorageConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.kind != StorageKind::S3 {
            return Ok(());
        }
        let s3 = &self.s3;
        if s3.bucket.is_empty() {
            return Err(err("storage.s3.bucket", "required when storage.kind is s3"));
        }
        if s3.region.is_empty() {
            return Err(err("storage.s3.region", "required when storage.kind is s3"));
        }
        if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
            return Err(err(
                "storage.s3.access_key_id",
                "access_key_id and secret_access_key are required when storage.kind is s3",
            ));
        }
        if !(s3.endpoint.is_empty()
            || s3.endpoint.starts_with("http://")
            || s3.endpoint.starts_with("https://"))
        {
            return Err(err(
                "storage.s3.endpoint",
                "must be empty (AWS) or start with http:// or https://",
            ));
        }
        at_least_one("storage.s3.timeout_seconds", s3.timeout_seconds)
    }
}
