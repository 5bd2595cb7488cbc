//! What can go wrong with a backup, each failure with a sentence an operator can act on.

use std::io;
use std::path::{Path, PathBuf};

/// Why a backup command failed. Each message is one sentence an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// pg_dump or pg_restore could not be found.
    #[error(
        "{tool} was not found (looked in {searched}); install the PostgreSQL client tools (Debian: postgresql-client) or set PG_BIN_DIR"
    )]
    ToolNotFound {
        /// The tool.
        tool: &'static str,
        /// Where we looked.
        searched: String,
    },
    /// pg_dump or pg_restore ran and failed.
    #[error("{tool} failed ({status}): {detail}")]
    ToolFailed {
        /// The tool.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        detail: String,
    },
    /// Writing ran out of space.
    #[error(
        "the disk is full (no space left on device) while writing {path}; nothing was kept: free space or set BACKUP_DIR to a larger disk"
    )]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// Another file-system step failed.
    #[error("could not {what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The database could not be reached.
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// The database refused or failed a query.
    #[error("the database failed while {what}: {detail}")]
    Database {
        /// What we were doing.
        what: &'static str,
        /// What the database said.
        detail: String,
    },
    /// The database URL could not be understood.
    #[error("DATABASE_URL cannot be used for pg_dump: {0}")]
    BadUrl(String),
    /// The media store could not be opened or listed.
    #[error("the media store failed: {0}")]
    Media(String),
    /// The file given does not exist.
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    /// A backup of this kind was already written this second.
    #[error("{0} already exists; refusing to overwrite a backup")]
    Exists(PathBuf),
    /// The checksum file is missing.
    #[error("{file} has no checksum file ({checksum}), so it cannot be trusted")]
    ChecksumMissing {
        /// The dump.
        file: PathBuf,
        /// Where its checksum should be.
        checksum: PathBuf,
    },
    /// The checksum file cannot be read as `sha256sum` output for this file.
    #[error("the checksum file {checksum} is not valid: {why}")]
    ChecksumMalformed {
        /// The checksum file.
        checksum: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The dump's bytes do not match its checksum.
    #[error("{file} is damaged: its SHA-256 is {actual}, but {checksum} says {expected}")]
    ChecksumMismatch {
        /// The dump.
        file: PathBuf,
        /// The checksum file.
        checksum: PathBuf,
        /// What the checksum file says.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// The manifest is missing.
    #[error("{file} has no manifest ({manifest}) to compare with")]
    ManifestMissing {
        /// The dump.
        file: PathBuf,
        /// Where its manifest should be.
        manifest: PathBuf,
    },
    /// The manifest cannot be read.
    #[error("the manifest {manifest} is not valid: {why}")]
    ManifestInvalid {
        /// The manifest.
        manifest: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `restore` was asked without `--yes`.
    #[error(
        "refusing to restore without --yes: this would overwrite {target} with the contents of {file}; run again with --yes to do it"
    )]
    NotConfirmed {
        /// The database that would be overwritten.
        target: String,
        /// The backup.
        file: PathBuf,
    },
    /// `verify` could not make its scratch database.
    #[error(
        "could not create the scratch database {name} (the database user needs the CREATEDB privilege): {detail}"
    )]
    ScratchDatabase {
        /// Its name.
        name: String,
        /// What the database said.
        detail: String,
    },
    /// `verify` could not drop its scratch database.
    #[error("could not drop the scratch database {name} ({detail}); drop it by hand")]
    ScratchNotDropped {
        /// Its name.
        name: String,
        /// What the database said.
        detail: String,
    },
    /// Restored row counts differ from the manifest.
    #[error("{file}: restored row counts differ from the manifest in {differing} table(s)")]
    Mismatch {
        /// The backup.
        file: PathBuf,
        /// How many tables differ.
        differing: usize,
    },
    /// Stopped by SIGINT or SIGTERM.
    #[error("interrupted by a signal before it finished; unfinished work was undone")]
    Interrupted,
}

pub(super) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| {
        if is_disk_full(&source) {
            BackupError::DiskFull {
                path: path.to_owned(),
            }
        } else {
            BackupError::Io {
                what,
                path: path.to_owned(),
                source,
            }
        }
    }
}

pub(super) fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

pub(super) fn db_err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> BackupError {
    move |e| BackupError::Database {
        what,
        detail: pg_message(&e),
    }
}

/// tokio-postgres's `Display` says only "db error"; the server's message is in the source.
pub(super) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
