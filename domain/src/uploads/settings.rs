//! What the upload services keep: the key that signs upload URLs, the size limit and the spool
//! directory.

use super::token::UploadKey;

/// Upload settings and the token key.
#[derive(Clone, Debug)]
pub struct Uploads {
    /// Signs upload URLs.
    pub key: UploadKey,
    /// The largest upload in bytes (`UPLOAD_MAX_BYTES`).
    pub max_bytes: u64,
    /// Where bodies are spooled while they arrive and are checked (local disk, even when
    /// media go to S3, so a check never holds a whole file in memory).
    pub spool_dir: std::path::PathBuf,
}

impl Uploads {
    /// With the key derived from the application secret.
    pub fn new(secret: &str, max_bytes: u64, spool_dir: std::path::PathBuf) -> Self {
        Self {
            key: UploadKey::from_secret(secret),
            max_bytes,
            spool_dir,
        }
    }
}
