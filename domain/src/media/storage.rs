//! The media store from configuration: local files under the data directory, or an
//! S3-compatible bucket.

use crate::secret::Secret;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::media::MediaStore;
use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

/// Where media lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// `STORAGE_PROVIDER=local` (the default): files under `DATA_DIR/media`.
    Local,
    /// `STORAGE_PROVIDER=s3`: an S3-compatible bucket.
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `S3_BUCKET` (required).
    pub bucket: String,
    /// `S3_REGION`, default `us-east-1`.
    pub region: String,
    /// `S3_ENDPOINT`: for S3-compatible services (MinIO, R2, ...); AWS when unset.
    pub endpoint: Option<String>,
    /// `S3_ACCESS_KEY_ID` (required).
    pub access_key_id: String,
    /// `S3_SECRET_ACCESS_KEY` (required).
    pub secret_access_key: Secret,
    /// `S3_ALLOW_HTTP`: allow a plain-HTTP endpoint, default false (true makes sense only on
    /// a private network or loopback).
    pub allow_http: bool,
}

/// Builds the configured store: local files under `data_dir/media`, or the bucket. Nothing is contacted here; readiness probes it.
pub fn media_store(data_dir: &Path, storage: &StorageConfig) -> Result<MediaStore, String> {
    match storage {
        StorageConfig::Local => MediaStore::local(&data_dir.join("media"))
            .map_err(|e| format!("local media store: {e}")),
        StorageConfig::S3(s3) => {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(s3.secret_access_key.expose())
                // Whole client options first: they carry `allow_http` too.
                .with_client_options(ClientOptions::new().with_connect_timeout(S3_CONNECT_TIMEOUT))
                .with_allow_http(s3.allow_http)
                .with_retry(s3_retry());
            if let Some(endpoint) = &s3.endpoint {
                // S3-compatible services are addressed by path, not by bucket subdomain.
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            let store = builder
                .build()
                .map_err(|e| format!("S3 media store: {e}"))?;
            Ok(MediaStore::from_store(Arc::new(store)))
        }
    }
}

/// How long connecting to the bucket may take. A store that is down answers a request in
/// about this long (with the retries below), not after the client's defaults (5 s to
/// connect, retries for up to three minutes), which held an upload open until the creator
/// gave up and stalled readiness's probe past its timeout.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A couple of quick retries ride out a dropped connection or one throttled answer; a store
/// that is down is refused as unavailable (503) within a second or two.
fn s3_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(2),
    }
}
