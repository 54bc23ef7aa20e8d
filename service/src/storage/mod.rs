//! Object storage for archives and backups: one interface, two implementations. The embedded
//! default is a local directory; production uses any S3-compatible service (AWS S3, MinIO,
//! Aliyun OSS, R2) through aws-sdk-s3. Keys are `/`-separated and relative to the store's root
//! (the S3 `prefix`, or `storage.local_dir`).

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
mod local;
mod s3;

use crate::config::{StorageConfig, StorageKind};
use bytes::Bytes;
use futures_util::stream::BoxStream;
pub use local::LocalStore;
pub use s3::S3Store;

/// An object's body, chunk by chunk (for downloads of any size).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {0:?}")]
    BadKey(String),
    #[error("object storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("object storage: {0}")]
    Remote(String),
}

/// What the jobs need of a store. Both implementations are tested against the same contract.
pub trait ObjectStore: Send + Sync {
    /// Writes the whole object; it replaces any object of that key at once (never half-written).
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The whole object, or `None` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;
    /// The object as a stream, or `None` when there is none.
    fn stream(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ByteStream>, StoreError>> + Send;
    /// Every object whose key starts with `prefix`, by key.
    fn list(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<ObjectInfo>, StoreError>> + Send;
    /// Removes the object; removing one that is not there is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The configured store.
#[derive(Clone, Debug)]
pub enum Store {
    Local(LocalStore),
    S3(S3Store),
}

impl Store {
    pub fn from_config(cfg: &StorageConfig) -> Store {
        match cfg.kind {
            StorageKind::Local => Store::Local(LocalStore::new(cfg.local_dir.clone())),
            StorageKind::S3 => Store::S3(S3Store::new(&cfg.s3)),
        }
    }

    /// Where objects go, for messages: a directory or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match self {
            Store::Local(s) => s.root().display().to_string(),
            Store::S3(s) => s.describe(),
        }
    }
}

impl ObjectStore for Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        match self {
            Store::Local(s) => s.put(key, body).await,
            Store::S3(s) => s.put(key, body).await,
        }
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self {
            Store::Local(s) => s.get(key).await,
            Store::S3(s) => s.get(key).await,
        }
    }
    async fn stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        match self {
            Store::Local(s) => s.stream(key).await,
            Store::S3(s) => s.stream(key).await,
        }
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        match self {
            Store::Local(s) => s.list(prefix).await,
            Store::S3(s) => s.list(prefix).await,
        }
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Local(s) => s.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }
}

/// A key is relative, `/`-separated, of plain segments: no `..`, no empty segment, no
/// backslash or control character. Both stores refuse anything else.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadKey(key.to_string()))
    }
}
