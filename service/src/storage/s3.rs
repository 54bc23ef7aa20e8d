//! Any S3-compatible service, through aws-sdk-s3 (HTTPS by rustls with the system's roots).

use super::{ByteStream, ObjectInfo, ObjectStore, StoreError, check_key};
use crate::config::S3Config;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Ends with `/` when not empty.
    prefix: String,
}

impl S3Store {
    pub fn new(cfg: &S3Config) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(Credentials::new(
                cfg.access_key_id.expose(),
                cfg.secret_access_key.expose(),
                None,
                None,
                "tollgate-config",
            ))
            .http_client(http)
            .force_path_style(cfg.path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(cfg.timeout_seconds))
                    .build(),
            );
        if !cfg.endpoint.is_empty() {
            conf = conf.endpoint_url(cfg.endpoint.clone());
        }
        let mut prefix = cfg.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            bucket: cfg.bucket.clone(),
            prefix,
        }
    }

    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn full(&self, key: &str) -> Result<String, StoreError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

fn remote<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError::Remote(DisplayErrorContext(&e).to_string())
}

impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key)?)
            .body(SdkStream::from(body))
            .send()
            .await
            .map_err(remote)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let Some(stream) = self.stream(key).await? else {
            return Ok(None);
        };
        let parts: Vec<Bytes> = futures_util::TryStreamExt::try_collect(stream).await?;
        Ok(Some(Bytes::from(parts.concat())))
    }

    async fn stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full(key)?)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(remote(e)),
        };
        let body = out.body;
        let stream = futures_util::stream::unfold(Some(body), |body| async move {
            let mut body = body?;
            match body.next().await {
                None => None,
                Some(Ok(chunk)) => Some((Ok(chunk), Some(body))),
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), None)),
            }
        });
        Ok(Some(stream.boxed()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(remote)?;
            for obj in page.contents() {
                let Some(key) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key: key.to_string(),
                    size: u64::try_from(obj.size().unwrap_or(0)).unwrap_or(0),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full(key)?)
            .send()
            .await
            .map_err(remote)?;
        Ok(())
    }
}
