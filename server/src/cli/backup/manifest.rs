//! The manifest beside each dump: what it holds (tables and their exact row counts, media
//! objects with sizes and SHA-256), read back for verify and restore.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{BackupError, io_err};
use super::files::manifest_path;
use super::kind::{Kind, MANIFEST_FORMAT};

/// What a backup holds, written beside the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest layout ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The kind of backup.
    pub kind: Kind,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The version of the `socialcraft` binary that made it.
    pub version: String,
    /// The database dumped.
    pub database: String,
    /// The PostgreSQL server's version.
    pub server_version: String,
    /// The dump file.
    pub dump: DumpInfo,
    /// Applied migration versions, oldest first.
    pub migrations: Vec<String>,
    /// The row count of every table in the `public` schema, as dumped.
    pub tables: BTreeMap<String, i64>,
    /// The media store's objects when the backup was made.
    pub media: MediaManifest,
}

/// The dump file a manifest describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// Its file name.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// Every object in the media store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaManifest {
    /// How many objects.
    pub count: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Each object, by key.
    pub objects: Vec<MediaObject>,
}

/// One object in the media store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256: from the key when content-addressed, else hashed from the bytes.
    pub sha256: String,
}

impl Manifest {
    /// All rows in all tables.
    pub fn total_rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

/// Reads the manifest beside the dump at `file`.
pub fn read_manifest(file: &Path) -> Result<Manifest, BackupError> {
    let path = manifest_path(file);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackupError::ManifestMissing {
                file: file.to_owned(),
                manifest: path,
            });
        }
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| BackupError::ManifestInvalid {
            manifest: path.clone(),
            why: e.to_string(),
        })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(BackupError::ManifestInvalid {
            manifest: path,
            why: format!(
                "layout {} (this version reads {MANIFEST_FORMAT})",
                manifest.format
            ),
        });
    }
    Ok(manifest)
}

pub(super) async fn media_manifest(
    media: &domain::media::MediaStore,
) -> Result<MediaManifest, BackupError> {
    let mut listed = media
        .list()
        .await
        .map_err(|e| BackupError::Media(e.to_string()))?;
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let mut objects = Vec::with_capacity(listed.len());
    for item in listed {
        // Our keys carry their content's hash; anything else (a stray file) is read.
        let sha256 = match domain::media::parse_key(&item.key) {
            Some(parts) => parts.sha256.to_owned(),
            None => match media
                .sha256(&item.key)
                .await
                .map_err(|e| BackupError::Media(e.to_string()))?
            {
                Some((sha, _)) => sha,
                // Deleted between listing and reading: it is not part of the backup.
                None => continue,
            },
        };
        objects.push(MediaObject {
            key: item.key,
            size: item.size,
            sha256,
        });
    }
    Ok(MediaManifest {
        count: objects.len(),
        bytes: objects.iter().map(|o| o.size).sum(),
        objects,
    })
}
