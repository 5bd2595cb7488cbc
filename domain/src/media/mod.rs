//! Media storage through `object_store`: local files under the data directory by default.
//!
//!
//! Keys are content-addressed with a random prefix: `{prefix}/{sha256}.{ext}`. The hash makes
//! a stored object immutable (so it can be cached forever and its hash is its ETag); the
//! random prefix keeps keys unguessable and spreads them across directories or partitions.
//!
//! Reading for `/media/` is a stream ([`MediaStore::stream`]), optionally of one byte range,
//! so a large file (a video later) never sits whole in memory; [`resolve_range`] turns a
//! `Range` header into that range. Unsharing an image moves it to new keys under a fresh
//! prefix ([`rotate_key`], [`MediaStore::copy`]; see `gallery::service::share`), which is how
//! a URL that was public stops working.

pub mod storage;

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

/// `key` moved under the new random `prefix` (16 lowercase hex digits), same content hash,
/// kind and folder; `None` when `key` is not one of ours or `prefix` is malformed.
pub fn rotate_key(key: &str, prefix: &str) -> Option<String> {
    parse_key(key)?;
    let (folder, rest) = match key.strip_prefix(UPLOADS_PREFIX) {
        Some(rest) => (UPLOADS_PREFIX, rest),
        None => ("", key),
    };
    let (_, file) = rest.split_once('/')?;
    let rotated = format!("{folder}{prefix}/{file}");
    parse_key(&rotated).is_some().then_some(rotated)
}

/// A new random key prefix (16 hex digits, 64 bits).
pub fn new_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..16].to_owned()
}

/// What a `Range` header asks of an object of a known size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range (absent, another unit, or malformed, which RFC 9110 says to ignore):
    /// the whole object, 200.
    Whole,
    /// One satisfiable range, clipped to the object: 206 with these bytes (end exclusive).
    Part(std::ops::Range<u64>),
    /// A range that starts past the end, or a zero-length suffix: 416.
    Unsatisfiable,
    /// More than one range: refused with 416 too (see [`resolve_range`]).
    Multiple,
}

/// Resolves a `Range` header value against an object of `size` bytes. Supports one range of
/// `bytes=a-b`, `bytes=a-` and `bytes=-n`.
///
/// Several ranges are refused rather than served: answering them whole would let a request
/// for a few bytes cost the whole file, serving them as `multipart/byteranges` (with
/// overlapping ranges) multiplies the bytes sent, and the clients we serve (browsers' image
/// and video elements) only ever ask for one.
pub fn resolve_range(header: &str, size: u64) -> RangeAnswer {
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeAnswer::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAnswer::Whole;
    }
    if spec.contains(',') {
        return RangeAnswer::Multiple;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits too many for a u64 are still a position past any end.
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        // bytes=-n: the last n bytes.
        let Some(n) = number(last) else {
            return RangeAnswer::Whole;
        };
        if n == 0 || size == 0 {
            return RangeAnswer::Unsatisfiable;
        }
        return RangeAnswer::Part(size.saturating_sub(n)..size);
    }
    let Some(start) = number(first) else {
        return RangeAnswer::Whole;
    };
    let end = if last.is_empty() {
        size
    } else {
        let Some(last) = number(last) else {
            return RangeAnswer::Whole;
        };
        if last < start {
            return RangeAnswer::Whole;
        }
        last.saturating_add(1).min(size)
    };
    if start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part(start..end)
}

/// An object being read from the store: its size and a stream of the requested bytes.
pub struct MediaStream {
    /// The whole object's size in bytes.
    pub size: u64,
    /// The bytes the stream yields (end exclusive).
    pub range: std::ops::Range<u64>,
    /// The bytes, in the store's chunks (the file store reads a few KiB at a time).
    pub body: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, MediaError>>,
}

impl std::fmt::Debug for MediaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStream")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
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
        let sha256 = hex::encode(Sha256::digest(&bytes));
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

    /// Streams the object at `key` (all of it, or `range`, which must lie inside it: resolve
    /// it against [`MediaStore::size`] first), or `None` when there is none. Nothing is read
    /// until the stream is polled, so a large object never sits whole in memory.
    pub async fn stream(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Option<MediaStream>, MediaError> {
        use futures_util::TryStreamExt;
        let options = object_store::GetOptions {
            range: range.map(object_store::GetRange::Bounded),
            ..Default::default()
        };
        match self.store.get_opts(&ObjectPath::from(key), options).await {
            Ok(result) => {
                let size = result.meta.size;
                let range = result.range.clone();
                let body = result.into_stream().map_err(err);
                Ok(Some(MediaStream {
                    size,
                    range,
                    body: Box::pin(body),
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// The size of the object at `key` (a `HEAD`, nothing read), or `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, MediaError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Copies the object at `from` to `to` inside the store (S3 copies server-side, the file
    /// store hard-links), replacing whatever `to` held.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), MediaError> {
        self.store
            .copy(&ObjectPath::from(from), &ObjectPath::from(to))
            .await
            .map_err(err)
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
        Ok(Some((hex::encode(hasher.finalize()), size)))
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

    #[test]
    fn ranges_resolve_against_the_size() {
        use RangeAnswer::*;
        for (header, want) in [
            ("bytes=0-9", Part(0..10)),
            ("bytes=10-", Part(10..100)),
            ("bytes=-10", Part(90..100)),
            ("bytes=-1000", Part(0..100)),
            ("bytes=90-1000", Part(90..100)),
            ("bytes=99-99", Part(99..100)),
            ("Bytes = 5-6", Part(5..7)),
            ("bytes=100-", Unsatisfiable),
            ("bytes=100-200", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=0-1,5-6", Multiple),
            ("bytes=0-1, 0-1", Multiple),
            ("bytes=9-1", Whole),
            ("bytes=a-b", Whole),
            ("bytes=-", Whole),
            ("bytes=+1-2", Whole),
            ("items=0-1", Whole),
            ("nonsense", Whole),
        ] {
            assert_eq!(resolve_range(header, 100), want, "{header}");
        }
        assert_eq!(resolve_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(resolve_range("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn rotated_keys_keep_everything_but_the_prefix() {
        let hash = "b".repeat(64);
        let prefix = new_prefix();
        assert_eq!(
            rotate_key(&format!("0123456789abcdef/{hash}.webp"), &prefix),
            Some(format!("{prefix}/{hash}.webp"))
        );
        assert_eq!(
            rotate_key(&format!("uploads/0123456789abcdef/{hash}.jpg"), &prefix),
            Some(format!("uploads/{prefix}/{hash}.jpg"))
        );
        assert_eq!(rotate_key("../x", &prefix), None);
        assert_eq!(
            rotate_key(&format!("0123456789abcdef/{hash}.webp"), "../.."),
            None
        );
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
