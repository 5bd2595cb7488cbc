//! The files of a backup: their names, private atomic writes, checksums and sizes.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::error::{BackupError, io_err};
use super::kind::{
    CHECKSUM_SUFFIX, DUMP_SUFFIX, FILE_PREFIX, Kind, MANIFEST_SUFFIX, PARTIAL_SUFFIX, TIME_FORMAT,
};

/// The dump's file name for a backup of `kind` made at `at`.
pub fn file_name(kind: Kind, at: DateTime<Utc>) -> String {
    format!(
        "{FILE_PREFIX}{}-{}{DUMP_SUFFIX}",
        kind.as_str(),
        at.format(TIME_FORMAT)
    )
}

/// The kind and time in a dump's file name, or `None` when it is not one of ours.
pub fn parse_file_name(name: &str) -> Option<(Kind, DateTime<Utc>)> {
    let rest = name.strip_prefix(FILE_PREFIX)?.strip_suffix(DUMP_SUFFIX)?;
    let (kind, time) = rest.split_once('-')?;
    let at = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
    Some((Kind::parse(kind)?, at.and_utc()))
}

/// The dump a backup file (the dump itself, its checksum or its manifest) belongs to.
pub(super) fn dump_name_of(name: &str) -> Option<&str> {
    let dump = name
        .strip_suffix(CHECKSUM_SUFFIX)
        .or_else(|| name.strip_suffix(MANIFEST_SUFFIX))
        .unwrap_or(name);
    parse_file_name(dump).map(|_| dump)
}

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Where the checksum of the dump at `dump` is.
pub fn checksum_path(dump: &Path) -> PathBuf {
    with_suffix(dump, CHECKSUM_SUFFIX)
}

/// Where the manifest of the dump at `dump` is.
pub fn manifest_path(dump: &Path) -> PathBuf {
    with_suffix(dump, MANIFEST_SUFFIX)
}

/// The hidden name a file is written under before it is renamed into place.
pub(super) fn partial_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(PARTIAL_SUFFIX);
    path.with_file_name(name)
}

/// A file being written under a temporary name: removed when dropped unless kept.
pub(super) struct Partial {
    pub(super) path: PathBuf,
    pub(super) keep: bool,
}

impl Partial {
    pub(super) fn new(path: PathBuf) -> Self {
        Partial { path, keep: false }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Opens a new private (0600) file, replacing a leftover of the same name.
pub(super) fn create_private(path: &Path) -> Result<fs::File, BackupError> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))
}

/// Writes `contents` to `path` so that `path` is either absent, the old file, or complete.
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
    let mut partial = Partial::new(partial_path(path));
    let mut file = create_private(&partial.path)?;
    file.write_all(contents)
        .map_err(io_err("write", &partial.path))?;
    file.sync_all().map_err(io_err("sync", &partial.path))?;
    drop(file);
    fs::rename(&partial.path, path).map_err(io_err("rename into place", path))?;
    partial.keep = true;
    Ok(())
}

/// Makes renames in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync the directory", dir))
}

/// The SHA-256 (lowercase hex) and size of the file at `path`, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> Result<(String, u64), BackupError> {
    let mut file = fs::File::open(path).map_err(io_err("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Io {
            what: "finish a file task",
            path: PathBuf::new(),
            source: io::Error::other(e.to_string()),
        })?
}

/// Checks the dump at `file` against its `.sha256` file (`sha256sum` format); returns the
/// hash. A missing checksum file fails, as does one naming another file.
pub fn verify_checksum(file: &Path) -> Result<String, BackupError> {
    if !file.is_file() {
        return Err(BackupError::NotFound(file.to_owned()));
    }
    let checksum = checksum_path(file);
    let text = match fs::read_to_string(&checksum) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackupError::ChecksumMissing {
                file: file.to_owned(),
                checksum,
            });
        }
        Err(e) => return Err(io_err("read", &checksum)(e)),
    };
    let malformed = |why: String| BackupError::ChecksumMalformed {
        checksum: checksum.clone(),
        why,
    };
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| malformed("it is empty".to_owned()))?;
    // `HASH  NAME` (text mode) or `HASH *NAME` (binary mode), as sha256sum writes them.
    let (expected, rest) = line
        .split_once(' ')
        .ok_or_else(|| malformed("expected `SHA256  FILE`".to_owned()))?;
    let named = rest.strip_prefix([' ', '*']).unwrap_or(rest);
    let expected = expected.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("the hash is not 64 hex digits".to_owned()));
    }
    let own_name = file.file_name().unwrap_or_default().to_string_lossy();
    if named != own_name {
        return Err(malformed(format!("it names `{named}`, not `{own_name}`")));
    }
    let (actual, _) = sha256_file(file)?;
    if actual != expected {
        return Err(BackupError::ChecksumMismatch {
            file: file.to_owned(),
            checksum,
            expected,
            actual,
        });
    }
    Ok(actual)
}

/// Bytes in decimal units, as the README counts storage.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

pub(super) fn count_cell(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}
