//! Media storage through `object_store`: local files under the data directory by default.
//! Only compiled with `ssr`.
//!
//! Keys are content-addressed with a random prefix: `{prefix}/{sha256}.{ext}`. The hash makes
//! a stored object immutable (so it can be cached forever and its hash is its ETag); the
//! random prefix keeps keys unguessable and spreads them across directories or partitions.

use std::path::Path;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

/// The kinds of media we store, which fix the extension and the `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// `image/png`
    Png,
    /// `image/webp`
    Webp,
    /// `image/jpeg` (uploaded originals only)
    Jpeg,
    /// `image/svg+xml` (uploaded originals only)
    Svg,
}

impl MediaKind {
    /// The file extension.
    pub fn ext(self) -> &'static str {
        match self {
            MediaKind::Png => "png",
            MediaKind::Webp => "webp",
            MediaKind::Jpeg => "jpg",
            MediaKind::Svg => "svg",
        }
    }
    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaKind::Png => "image/png",
            MediaKind::Webp => "image/webp",
            MediaKind::Jpeg => "image/jpeg",
            MediaKind::Svg => "image/svg+xml",
        }
    }
    fn from_ext(ext: &str) -> Option<Self> {
        match ext {
            "png" => Some(MediaKind::Png),
            "webp" => Some(MediaKind::Webp),
            "jpg" => Some(MediaKind::Jpeg),
            "svg" => Some(MediaKind::Svg),
            _ => None,
        }
    }
}

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its key in the store, and under `/media/`.
    pub key: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
}

/// One object found by [`MediaStore::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key in the store.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A storage failure. Callers log it with context and answer `unavailable`.
#[derive(Debug, thiserror::Error)]
#[error("media storage: {0}")]
pub struct MediaError(String);

/// The parts of a well-formed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyParts<'a> {
    /// The content hash (the ETag).
    pub sha256: &'a str,
    /// What it is.
    pub kind: MediaKind,
    /// An uploaded original (`uploads/...`): served as a download, never inline.
    pub original: bool,
}

/// The folder uploaded originals are stored under.
pub const UPLOADS_PREFIX: &str = "uploads/";

/// Parses a key of the form `{16 hex}/{64 hex}.{png|webp}` (what we made), or
/// `uploads/{16 hex}/{64 hex}.{png|jpg|webp|svg}` (an uploaded original); anything else
/// (paths with `..`, other characters) is rejected, so request paths can never reach outside
/// the store.
pub fn parse_key(key: &str) -> Option<KeyParts<'_>> {
    let (original, key) = match key.strip_prefix(UPLOADS_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    let (prefix, file) = key.split_once('/')?;
    let (hash, ext) = file.split_once('.')?;
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex(prefix, 16) || !hex(hash, 64) {
        return None;
    }
    let kind = MediaKind::from_ext(ext)?;
    if !original && !matches!(kind, MediaKind::Png | MediaKind::Webp) {
        return None;
    }
    Some(KeyParts {
        sha256: hash,
        kind,
        original,
    })
}

/// The media store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
}

fn err(e: impl std::fmt::Display) -> MediaError {
    MediaError(e.to_string())
}

impl MediaStore {
    /// Files under `root` (created if missing).
    pub fn local(root: &Path) -> Result<Self, MediaError> {
        std::fs::create_dir_all(root).map_err(|e| err(format!("{}: {e}", root.display())))?;
        let fs = LocalFileSystem::new_with_prefix(root).map_err(err)?;
        Ok(Self::from_store(Arc::new(fs)))
    }

    /// Any `object_store` backend.
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Stores `bytes` under a new content-addressed key.
    pub async fn put(&self, bytes: Vec<u8>, kind: MediaKind) -> Result<Stored, MediaError> {
        let sha256 = hex(&Sha256::digest(&bytes));
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        let key = format!("{}/{sha256}.{}", &prefix[..16], kind.ext());
        let size = bytes.len();
        self.store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
            .await
            .map_err(err)?;
        Ok(Stored { key, sha256, size })
    }

    /// Stores the file at `path` under `key`, streaming it in parts (never whole in memory).
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<(), MediaError> {
        use tokio::io::AsyncReadExt;
        /// S3's smallest part (except the last); also the most this holds in memory.
        const PART: usize = 5 * 1024 * 1024;
        let mut file = tokio::fs::File::open(path).await.map_err(err)?;
        let mut upload = self
            .store
            .put_multipart(&ObjectPath::from(key))
            .await
            .map_err(err)?;
        let result: Result<(), MediaError> = async {
            loop {
                let mut part = Vec::with_capacity(PART);
                while part.len() < PART {
                    let n = (&mut file)
                        .take((PART - part.len()) as u64)
                        .read_to_end(&mut part)
                        .await
                        .map_err(err)?;
                    if n == 0 {
                        break;
                    }
                }
                if part.is_empty() {
                    break;
                }
                let last = part.len() < PART;
                upload.put_part(PutPayload::from(part)).await.map_err(err)?;
                if last {
                    break;
                }
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => upload.complete().await.map(|_| ()).map_err(err),
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Deletes the object at `key`; deleting what is not there is fine.
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Every object in the store with its size, in no particular order. S3 pages through the
    /// bucket; the whole listing is held in memory (keys and sizes only).
    pub async fn list(&self) -> Result<Vec<Listed>, MediaError> {
        use futures_util::TryStreamExt;
        self.store
            .list(None)
            .map_ok(|meta| Listed {
                key: meta.location.to_string(),
                size: meta.size,
            })
            .try_collect()
            .await
            .map_err(err)
    }

    /// The SHA-256 (lowercase hex) and size of the object at `key`, read as a stream (never
    /// whole in memory), or `None` when there is none.
    pub async fn sha256(&self, key: &str) -> Result<Option<(String, u64)>, MediaError> {
        use futures_util::StreamExt;
        let result = match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(err)?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Some((hex(&hasher.finalize()), size)))
    }

    /// Writes, reads back and deletes a small probe object: the readiness check.
    pub async fn probe(&self) -> Result<(), MediaError> {
        let key = format!("_probe/{}", uuid::Uuid::new_v4().simple());
        let path = ObjectPath::from(key.as_str());
        self.store
            .put(&path, PutPayload::from_static(b"ok"))
            .await
            .map_err(err)?;
        let back = self
            .store
            .get(&path)
            .await
            .map_err(err)?
            .bytes()
            .await
            .map_err(err)?;
        let _ = self.store.delete(&path).await;
        if back.as_ref() == b"ok" {
            Ok(())
        } else {
            Err(MediaError("probe object read back wrong".to_owned()))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_keys_parse() {
        let hash = "a".repeat(64);
        assert_eq!(
            parse_key(&format!("0123456789abcdef/{hash}.png")),
            Some(KeyParts {
                sha256: &hash,
                kind: MediaKind::Png,
                original: false,
            })
        );
        assert_eq!(
            parse_key(&format!("uploads/0123456789abcdef/{hash}.svg")),
            Some(KeyParts {
                sha256: &hash,
                kind: MediaKind::Svg,
                original: true,
            })
        );
        for bad in [
            format!("../../../etc/{hash}.png"),
            format!("0123456789abcdef/{hash}.svg"),
            format!("0123456789abcdef/{hash}.jpg"),
            format!("uploads/uploads/0123456789abcdef/{hash}.png"),
            format!("uploads/0123456789abcdef/{hash}.gif"),
            format!("0123456789ABCDEF/{hash}.png"),
            format!("0123456789abcdef/{hash}.png/x"),
            format!("0123456789abcdef/../{hash}.png"),
            "0123456789abcdef/short.png".to_owned(),
            String::new(),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn local_store_round_trips_by_content_hash() {
        let dir = std::env::temp_dir().join(format!("sc-media-{}", uuid::Uuid::new_v4().simple()));
        let store = MediaStore::local(&dir).unwrap();
        let a = store.put(b"hello".to_vec(), MediaKind::Png).await.unwrap();
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(parse_key(&a.key).is_some(), "{}", a.key);
        assert_eq!(store.get(&a.key).await.unwrap(), Some(b"hello".to_vec()));
        // Same content, new random prefix: keys are not guessable from content.
        let b = store.put(b"hello".to_vec(), MediaKind::Png).await.unwrap();
        assert_ne!(a.key, b.key);
        store.delete(&a.key).await.unwrap();
        store.delete(&a.key).await.unwrap();
        assert_eq!(store.get(&a.key).await.unwrap(), None);
        store.probe().await.unwrap();

        let listed = store.list().await.unwrap();
        assert_eq!(
            listed,
            [Listed {
                key: b.key.clone(),
                size: 5
            }]
        );
        assert_eq!(
            store.sha256(&b.key).await.unwrap(),
            Some((b.sha256.clone(), 5))
        );
        assert_eq!(store.sha256(&a.key).await.unwrap(), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
