//! The media store from configuration: local files under the data directory, or an
//! S3-compatible bucket.

use std::sync::Arc;

use app::media::MediaStore;
use object_store::aws::AmazonS3Builder;

use crate::config::{Config, StorageConfig};

/// Builds the configured store. Nothing is contacted here; readiness probes it.
pub fn media_store(config: &Config) -> Result<MediaStore, String> {
    match &config.storage {
        StorageConfig::Local => MediaStore::local(&config.data_dir.join("media"))
            .map_err(|e| format!("local media store: {e}")),
        StorageConfig::S3(s3) => {
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(s3.secret_access_key.expose())
                .with_allow_http(s3.allow_http);
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
