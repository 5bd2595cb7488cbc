//! Database backups with `pg_dump`: `socialcraft backup daily|weekly|manual|list|verify|restore`.
//!
//! A backup is three files in `BACKUP_DIR`, named for its kind and UTC time:
//! - `socialcraft-{kind}-{YYYYMMDDTHHMMSSZ}.dump`: `pg_dump --format=custom`, compressed;
//! - `….dump.sha256`: its SHA-256 in `sha256sum` format, so `sha256sum -c` checks it;
//! - `….dump.manifest.json`: kind, time, version, applied migrations, the exact row count of
//!   every table in `public`, and every media object with its size and SHA-256.
//!
//! The counts are exact for the dump because they are taken inside the REPEATABLE READ
//! transaction whose exported snapshot `pg_dump --snapshot` dumps, while it stays open. Every
//! file is written under a hidden temporary name, fsynced and renamed, and the dump is renamed
//! last: a dump that exists has its checksum and manifest beside it, and a crash or a failure
//! leaves nothing that looks like a backup.
//!
//! `verify` restores into a scratch database on the same server and compares the row counts
//! with the manifest; `restore` replaces the configured database's tables with the dump's.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::pg_embedded::quote_ident;

/// Every backup file name starts with this.
pub const FILE_PREFIX: &str = "socialcraft-";
/// The dump's extension.
pub const DUMP_SUFFIX: &str = ".dump";
/// Appended to the dump's name for its checksum file.
pub const CHECKSUM_SUFFIX: &str = ".sha256";
/// Appended to the dump's name for its manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// The UTC timestamp in a backup's name.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Appended (after a leading dot) to files being written.
const PARTIAL_SUFFIX: &str = ".partial";
/// The manifest layout this code writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Scratch databases made by `verify` are named with this and a random suffix.
pub const SCRATCH_PREFIX: &str = "socialcraft_verify_";
/// pg_dump's compression level (zlib): a good size for little CPU.
const COMPRESSION: u32 = 6;
/// A temporary file older than this was left by a crash and is removed by retention.
const STALE_PARTIAL: Duration = Duration::from_secs(86_400);

/// The kind of backup, which decides its retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Kept `BACKUP_KEEP_DAILY_DAYS`.
    Daily,
    /// Kept `BACKUP_KEEP_WEEKLY_DAYS`.
    Weekly,
    /// Kept until deleted by hand.
    Manual,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Daily, Kind::Weekly, Kind::Manual];

    /// The word used in file names and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "daily",
            Kind::Weekly => "weekly",
            Kind::Manual => "manual",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
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

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

fn db_err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> BackupError {
    move |e| BackupError::Database {
        what,
        detail: pg_message(&e),
    }
}

/// tokio-postgres's `Display` says only "db error"; the server's message is in the source.
fn pg_message(e: &tokio_postgres::Error) -> String {
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

// ---------------------------------------------------------------------------------------------
// Names

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
fn dump_name_of(name: &str) -> Option<&str> {
    let dump = name
        .strip_suffix(CHECKSUM_SUFFIX)
        .or_else(|| name.strip_suffix(MANIFEST_SUFFIX))
        .unwrap_or(name);
    parse_file_name(dump).map(|_| dump)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
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
fn partial_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(PARTIAL_SUFFIX);
    path.with_file_name(name)
}

// ---------------------------------------------------------------------------------------------
// The manifest

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

async fn media_manifest(media: &app::media::MediaStore) -> Result<MediaManifest, BackupError> {
    let mut listed = media
        .list()
        .await
        .map_err(|e| BackupError::Media(e.to_string()))?;
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let mut objects = Vec::with_capacity(listed.len());
    for item in listed {
        // Our keys carry their content's hash; anything else (a stray file) is read.
        let sha256 = match app::media::parse_key(&item.key) {
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

// ---------------------------------------------------------------------------------------------
// Tools and connections

/// Finds a PostgreSQL client tool: in `PG_BIN_DIR` when set (and only there), else in
/// `pg_config --bindir` or Debian's `/usr/lib/postgresql/*/bin`, else on `PATH`.
pub fn find_tool(pg_bin_dir: Option<&Path>, tool: &'static str) -> Result<PathBuf, BackupError> {
    if let Some(dir) = pg_bin_dir {
        let path = dir.join(tool);
        return match is_executable(&path) {
            true => Ok(path),
            false => Err(BackupError::ToolNotFound {
                tool,
                searched: format!("PG_BIN_DIR={}", dir.display()),
            }),
        };
    }
    if let Some(dir) = crate::pg_embedded::system_bin_dir(tool) {
        return Ok(dir.join(tool));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(BackupError::ToolNotFound {
        tool,
        searched: "pg_config --bindir, /usr/lib/postgresql/*/bin and PATH".to_owned(),
    })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A database connection split into libpq's environment variables, so the password never
/// appears on a command line (where `ps` would show it).
#[derive(Clone)]
struct Connection {
    config: tokio_postgres::Config,
    env: Vec<(&'static str, String)>,
    database: String,
}

/// Variables that would change where a tool connects; we set what we need and clear the rest.
const LIBPQ_VARS: [&str; 10] = [
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSERVICE",
];

impl Connection {
    fn parse(url: &str) -> Result<Self, BackupError> {
        use tokio_postgres::config::{Host, SslMode};
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| BackupError::BadUrl(pg_message(&e)))?;
        let mut env = Vec::new();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            env.push(("PGHOST", hosts.join(",")));
        }
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            env.push(("PGPORT", ports.join(",")));
        }
        if let Some(user) = config.get_user() {
            env.push(("PGUSER", user.to_owned()));
        }
        if let Some(password) = config.get_password() {
            env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
        }
        if let Some(options) = config.get_options() {
            env.push(("PGOPTIONS", options.to_owned()));
        }
        env.push((
            "PGSSLMODE",
            match config.get_ssl_mode() {
                SslMode::Disable => "disable",
                SslMode::Require => "require",
                _ => "prefer",
            }
            .to_owned(),
        ));
        env.push(("PGAPPNAME", "socialcraft-backup".to_owned()));
        let database = config
            .get_dbname()
            .map(str::to_owned)
            .or_else(|| config.get_user().map(str::to_owned))
            .ok_or_else(|| BackupError::BadUrl("it names no database".to_owned()))?;
        Ok(Connection {
            config,
            env,
            database,
        })
    }

    /// The same server, another database.
    fn with_database(&self, database: &str) -> Connection {
        let mut other = self.clone();
        other.config.dbname(database);
        other.database = database.to_owned();
        other
    }

    /// A human description without the password.
    fn describe(&self) -> String {
        use tokio_postgres::config::Host;
        let ports = self.config.get_ports();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = match h {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(dir) => dir.display().to_string(),
                };
                match ports.get(i).or(ports.first()) {
                    Some(port) => format!("{name}:{port}"),
                    None => name,
                }
            })
            .collect();
        let mut s = format!("the database `{}`", self.database);
        if !hosts.is_empty() {
            s.push_str(&format!(" on {}", hosts.join(",")));
        }
        if let Some(user) = self.config.get_user() {
            s.push_str(&format!(" (as {user})"));
        }
        s
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, BackupError> {
        let (client, connection) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| BackupError::Connect(pg_message(&e)))?;
        // Ends when the client is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A tool that connects through the environment, with English messages (so a full disk
    /// is recognised), killed if the command is abandoned.
    fn command(&self, tool: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(tool);
        for var in LIBPQ_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LC_ALL", "C")
            // A conninfo string, so no database name can be taken for an option.
            .arg(format!(
                "--dbname=dbname={}",
                conninfo_quote(&self.database)
            ))
            .arg("--no-password")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

fn conninfo_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// What `restore` would overwrite, for the refusal without `--yes`.
pub fn describe_database(url: &str) -> Result<String, BackupError> {
    Ok(Connection::parse(url)?.describe())
}

/// Runs a tool to completion; a failure carries its stderr, and one that ran out of space
/// says so.
async fn run_tool(
    tool: &'static str,
    path: &Path,
    mut cmd: tokio::process::Command,
    writing: Option<&Path>,
) -> Result<(), BackupError> {
    let out = cmd.output().await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BackupError::ToolNotFound {
            tool,
            searched: path.display().to_string(),
        },
        _ => BackupError::ToolFailed {
            tool,
            status: "could not start".to_owned(),
            detail: e.to_string(),
        },
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(file) = writing
        && stderr.contains("No space left on device")
    {
        return Err(BackupError::DiskFull {
            path: file.to_owned(),
        });
    }
    // The first lines say what went wrong; a long tail adds nothing.
    let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut detail = detail
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    if detail.is_empty() {
        detail = "no message".to_owned();
    }
    Err(BackupError::ToolFailed {
        tool,
        status: out.status.to_string(),
        detail,
    })
}

async fn public_tables(client: &tokio_postgres::Client) -> Result<Vec<String>, BackupError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .map_err(db_err("listing tables"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The exact row count of every table in `public`, as this transaction sees them.
async fn count_rows(client: &tokio_postgres::Client) -> Result<BTreeMap<String, i64>, BackupError> {
    let mut counts = BTreeMap::new();
    for table in public_tables(client).await? {
        let n: i64 = client
            .query_one(
                format!("SELECT count(*) FROM public.{}", quote_ident(&table)).as_str(),
                &[],
            )
            .await
            .map_err(db_err("counting rows"))?
            .get(0);
        counts.insert(table, n);
    }
    Ok(counts)
}

// ---------------------------------------------------------------------------------------------
// Files

/// A file being written under a temporary name: removed when dropped unless kept.
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Partial {
    fn new(path: PathBuf) -> Self {
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
fn create_private(path: &Path) -> Result<fs::File, BackupError> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))
}

/// Writes `contents` to `path` so that `path` is either absent, the old file, or complete.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), BackupError> {
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
fn sync_dir(dir: &Path) -> Result<(), BackupError> {
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
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn blocking<T: Send + 'static>(
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

// ---------------------------------------------------------------------------------------------
// backup daily|weekly|manual

/// What a backup run wrote and pruned.
#[derive(Debug)]
pub struct BackupReport {
    /// The dump.
    pub path: PathBuf,
    /// Its checksum file.
    pub checksum: PathBuf,
    /// Its manifest file.
    pub manifest_path: PathBuf,
    /// The manifest written.
    pub manifest: Manifest,
    /// How long it took.
    pub duration: Duration,
    /// Files removed by retention.
    pub pruned: Vec<PathBuf>,
    /// How long backups of this kind are kept (`None` for manual ones).
    pub keep: Option<Duration>,
}

/// Backs up the database at `url` into `config.backup.dir`, then applies the retention of
/// `kind`.
pub async fn backup(config: &Config, url: &str, kind: Kind) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let dir = config.backup.dir.clone();
    let pg_dump = find_tool(config.database.pg_bin_dir.as_deref(), "pg_dump")?;
    let connection = Connection::parse(url)?;
    let media = crate::storage::media_store(config).map_err(BackupError::Media)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err("create the backup directory", &dir))?;

    let created_at = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_default();
    let name = file_name(kind, created_at);
    let path = dir.join(&name);
    let checksum = checksum_path(&path);
    let manifest_file = manifest_path(&path);
    for existing in [&path, &checksum, &manifest_file] {
        if existing.exists() {
            return Err(BackupError::Exists(existing.clone()));
        }
    }
    let mut partial = Partial::new(partial_path(&path));
    // Created private before pg_dump opens it, so the data is never readable by others.
    drop(create_private(&partial.path)?);

    // The snapshot: counted here and dumped by pg_dump, while this transaction stays open.
    let client = connection.connect().await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(db_err("starting the snapshot transaction"))?;
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(db_err("exporting the snapshot"))?
        .get(0);
    let tables = count_rows(&client).await?;
    let migrations: Vec<String> = if tables.contains_key("__diesel_schema_migrations") {
        client
            .query(
                "SELECT version::text FROM public.__diesel_schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(db_err("reading the applied migrations"))?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        Vec::new()
    };
    let facts = client
        .query_one(
            "SELECT current_database()::text, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(db_err("reading the server version"))?;
    let (database, server_version): (String, String) = (facts.get(0), facts.get(1));

    let mut dump = connection.command(&pg_dump);
    dump.arg("--format=custom")
        .arg(format!("--compress={COMPRESSION}"))
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(&partial.path);
    run_tool("pg_dump", &pg_dump, dump, Some(&partial.path)).await?;
    // Read-only: ending it either way releases the snapshot.
    let _ = client.batch_execute("COMMIT").await;
    drop(client);

    let dump_path = partial.path.clone();
    let (sha256, size) = blocking(move || {
        let hashed = sha256_file(&dump_path)?;
        fs::File::open(&dump_path)
            .and_then(|f| f.sync_all())
            .map_err(io_err("sync", &dump_path))?;
        Ok(hashed)
    })
    .await?;

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        kind,
        created_at,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database,
        server_version,
        dump: DumpInfo {
            file: name.clone(),
            size,
            sha256: sha256.clone(),
        },
        migrations,
        tables,
        media: media_manifest(&media).await?,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io {
        what: "encode the manifest for",
        path: manifest_file.clone(),
        source: io::Error::other(e),
    })?;

    // The sidecars first and the dump last: a dump that exists is complete.
    let finish = (|| {
        write_atomic(&checksum, format!("{sha256}  {name}\n").as_bytes())?;
        let mut json = manifest_json;
        json.push(b'\n');
        write_atomic(&manifest_file, &json)?;
        fs::rename(&partial.path, &path).map_err(io_err("rename into place", &path))?;
        partial.keep = true;
        sync_dir(&dir)
    })();
    if let Err(e) = finish {
        for file in [&path, &checksum, &manifest_file] {
            let _ = fs::remove_file(file);
        }
        return Err(e);
    }

    let keep = match kind {
        Kind::Daily => Some(config.backup.keep_daily),
        Kind::Weekly => Some(config.backup.keep_weekly),
        Kind::Manual => None,
    };
    let pruned = match keep {
        Some(keep) => prune(&dir, kind, keep, created_at)?,
        None => prune_partials(&dir)?,
    };
    Ok(BackupReport {
        path,
        checksum,
        manifest_path: manifest_file,
        manifest,
        duration: started.elapsed(),
        pruned,
        keep,
    })
}

/// Deletes backups of `kind` whose name's time is more than `keep` before `now`, each with its
/// checksum and manifest (and sidecars whose dump has gone), plus temporary files a crash left
/// over a day ago. Other kinds are never touched. Returns the files removed.
pub fn prune(
    dir: &Path,
    kind: Kind,
    keep: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, BackupError> {
    let cutoff = TimeDelta::from_std(keep)
        .ok()
        .and_then(|keep| now.checked_sub_signed(keep))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut removed = prune_partials(dir)?;
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(dump) = name.to_str().and_then(dump_name_of) else {
            continue;
        };
        let Some((k, at)) = parse_file_name(dump) else {
            continue;
        };
        if k == kind && at < cutoff {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Removes temporary files left by a crash more than a day ago (a younger one may belong to a
/// run still going).
fn prune_partials(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(PARTIAL_SUFFIX))
            .and_then(dump_name_of)
            .is_some();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        if ours && stale {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("delete", &path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

// ---------------------------------------------------------------------------------------------
// backup list

/// One backup found in the backup directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedBackup {
    /// The dump.
    pub path: PathBuf,
    /// Its kind, from the name.
    pub kind: Kind,
    /// Its time, from the name.
    pub created_at: DateTime<Utc>,
    /// The dump's size in bytes.
    pub size: u64,
    /// Whether its checksum file is there.
    pub checksum: bool,
    /// Whether its manifest is there.
    pub manifest: bool,
}

/// Every backup in `dir`, newest first (none when `dir` does not exist yet).
pub fn list(dir: &Path) -> Result<Vec<ListedBackup>, BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let Some((kind, created_at)) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        let path = entry.path();
        let size = entry.metadata().map_err(io_err("read", &path))?.len();
        found.push(ListedBackup {
            checksum: checksum_path(&path).is_file(),
            manifest: manifest_path(&path).is_file(),
            path,
            kind,
            created_at,
            size,
        });
    }
    found.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(found)
}

/// `backup list` as printed: one line a backup.
pub fn format_list(dir: &Path, backups: &[ListedBackup]) -> String {
    if backups.is_empty() {
        return format!("no backups in {}\n", dir.display());
    }
    let mut out = format!(
        "{:<7} {:<20} {:>10}  {:<8}  file\n",
        "kind", "time (UTC)", "size", "checksum"
    );
    for b in backups {
        out.push_str(&format!(
            "{:<7} {:<20} {:>10}  {:<8}  {}\n",
            b.kind.as_str(),
            b.created_at.format("%Y-%m-%d %H:%M:%S"),
            human_size(b.size),
            if b.checksum { "present" } else { "MISSING" },
            b.path.display()
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// backup verify / restore

/// One table's rows: what the manifest says and what the restored database holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Rows in the manifest (`None`: not in it).
    pub expected: Option<i64>,
    /// Rows restored (`None`: no such table after restoring).
    pub restored: Option<i64>,
}

impl TableCount {
    /// Whether the two agree.
    pub fn ok(&self) -> bool {
        self.expected.is_some() && self.expected == self.restored
    }
}

fn compare(expected: &BTreeMap<String, i64>, restored: &BTreeMap<String, i64>) -> Vec<TableCount> {
    let mut names: Vec<&String> = expected.keys().chain(restored.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|t| TableCount {
            table: t.clone(),
            expected: expected.get(t).copied(),
            restored: restored.get(t).copied(),
        })
        .collect()
}

/// How many of the manifest's media objects the configured store still holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaCheck {
    /// Objects in the manifest.
    pub expected: usize,
    /// Of those, how many the store holds with the same size (`None`: it could not be listed).
    pub present: Option<usize>,
    /// Why the store could not be listed.
    pub error: Option<String>,
}

async fn check_media(config: &Config, manifest: &Manifest) -> MediaCheck {
    let listed = match crate::storage::media_store(config) {
        Ok(store) => store.list().await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match listed {
        Ok(listed) => {
            let sizes: HashMap<String, u64> = listed.into_iter().map(|o| (o.key, o.size)).collect();
            MediaCheck {
                expected: manifest.media.objects.len(),
                present: Some(
                    manifest
                        .media
                        .objects
                        .iter()
                        .filter(|o| sizes.get(&o.key) == Some(&o.size))
                        .count(),
                ),
                error: None,
            }
        }
        Err(e) => MediaCheck {
            expected: manifest.media.objects.len(),
            present: None,
            error: Some(e),
        },
    }
}

/// What `verify` found.
#[derive(Debug)]
pub struct VerifyReport {
    /// The backup.
    pub file: PathBuf,
    /// Its SHA-256 (which matched its checksum file).
    pub sha256: String,
    /// The scratch database it was restored into (dropped again).
    pub scratch: String,
    /// Every table in the manifest or the restored database.
    pub tables: Vec<TableCount>,
    /// Media objects still in the store (informational).
    pub media: MediaCheck,
    /// How long it took.
    pub duration: Duration,
}

impl VerifyReport {
    /// Tables whose counts differ.
    pub fn differing(&self) -> usize {
        self.tables.iter().filter(|t| !t.ok()).count()
    }
    /// Whether every table matched.
    pub fn ok(&self) -> bool {
        self.differing() == 0
    }
}

/// Checks the backup at `file`: its checksum, then a real restore into a scratch database on
/// the server at `url`, whose row counts are compared with the manifest. The scratch database
/// is dropped whatever happens, also when `interrupted` resolves first (a signal). A count that
/// differs is in the report (see [`VerifyReport::ok`]), not an error.
pub async fn verify(
    config: &Config,
    url: &str,
    file: &Path,
    interrupted: impl Future<Output = ()>,
) -> Result<VerifyReport, BackupError> {
    let started = Instant::now();
    let owned = file.to_owned();
    let sha256 = blocking(move || verify_checksum(&owned)).await?;
    let manifest = read_manifest(file)?;
    let pg_restore = find_tool(config.database.pg_bin_dir.as_deref(), "pg_restore")?;
    let connection = Connection::parse(url)?;
    let scratch = format!(
        "{SCRATCH_PREFIX}{}",
        crate::config::random_hex(6).map_err(|e| BackupError::Io {
            what: "pick a name for the scratch database in",
            path: PathBuf::from("/dev/urandom"),
            source: e,
        })?
    );

    let admin = connection.connect().await?;
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE template0",
            quote_ident(&scratch)
        ))
        .await
        .map_err(|e| BackupError::ScratchDatabase {
            name: scratch.clone(),
            detail: pg_message(&e),
        })?;
    let target = connection.with_database(&scratch);
    let restored = tokio::select! {
        r = restore_and_count(&target, &pg_restore, file, false) => r,
        () = interrupted => Err(BackupError::Interrupted),
    };
    let dropped = admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&scratch)
        ))
        .await
        .map_err(|e| BackupError::ScratchNotDropped {
            name: scratch.clone(),
            detail: pg_message(&e),
        });
    drop(admin);
    let restored = match (restored, dropped) {
        (Ok(r), Ok(())) => r,
        (Err(e), Ok(())) | (Ok(_), Err(e)) => return Err(e),
        (Err(e), Err(not_dropped)) => {
            tracing::error!(error = %not_dropped, "scratch database left behind");
            return Err(e);
        }
    };
    Ok(VerifyReport {
        file: file.to_owned(),
        sha256,
        scratch,
        tables: compare(&manifest.tables, &restored),
        media: check_media(config, &manifest).await,
        duration: started.elapsed(),
    })
}

async fn restore_and_count(
    target: &Connection,
    pg_restore: &Path,
    file: &Path,
    replace: bool,
) -> Result<BTreeMap<String, i64>, BackupError> {
    let mut cmd = target.command(pg_restore);
    if replace {
        cmd.args(["--clean", "--if-exists", "--single-transaction"]);
    }
    cmd.args(["--no-owner", "--exit-on-error"]).arg(file);
    run_tool("pg_restore", pg_restore, cmd, None).await?;
    let client = target.connect().await?;
    count_rows(&client).await
}

/// What `restore` did.
#[derive(Debug)]
pub struct RestoreReport {
    /// The backup.
    pub file: PathBuf,
    /// The database overwritten (described without its password).
    pub target: String,
    /// The manifest's tables against the restored database.
    pub tables: Vec<TableCount>,
    /// Tables the database has that the backup does not (left as they were).
    pub untouched: Vec<String>,
    /// How long it took.
    pub duration: Duration,
}

impl RestoreReport {
    /// Tables whose counts differ from the manifest.
    pub fn differing(&self) -> usize {
        self.tables.iter().filter(|t| !t.ok()).count()
    }
}

/// Replaces the database at `url` with the backup at `file`, in one transaction, and counts
/// its rows against the manifest. Refuses unless `confirmed` (the CLI's `--yes`), and refuses
/// a file whose checksum fails.
pub async fn restore(
    config: &Config,
    url: &str,
    file: &Path,
    confirmed: bool,
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let connection = Connection::parse(url)?;
    if !file.is_file() {
        return Err(BackupError::NotFound(file.to_owned()));
    }
    if !confirmed {
        return Err(BackupError::NotConfirmed {
            target: connection.describe(),
            file: file.to_owned(),
        });
    }
    let owned = file.to_owned();
    blocking(move || verify_checksum(&owned)).await?;
    let manifest = read_manifest(file)?;
    let pg_restore = find_tool(config.database.pg_bin_dir.as_deref(), "pg_restore")?;
    let restored = restore_and_count(&connection, &pg_restore, file, true).await?;
    let untouched = restored
        .keys()
        .filter(|t| !manifest.tables.contains_key(*t))
        .cloned()
        .collect();
    let tables = compare(&manifest.tables, &restored)
        .into_iter()
        .filter(|t| t.expected.is_some())
        .collect();
    Ok(RestoreReport {
        file: file.to_owned(),
        target: connection.describe(),
        tables,
        untouched,
        duration: started.elapsed(),
    })
}

// ---------------------------------------------------------------------------------------------
// Printing

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

fn count_cell(n: Option<i64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn format_tables(tables: &[TableCount], restored_header: &str) -> String {
    let width = tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:>10}  {:>10}  ok\n",
        "table", "expected", restored_header
    );
    for t in tables {
        out.push_str(&format!(
            "{:<width$}  {:>10}  {:>10}  {}\n",
            t.table,
            count_cell(t.expected),
            count_cell(t.restored),
            if t.ok() { "ok" } else { "DIFFERS" }
        ));
    }
    out
}

impl fmt::Display for BackupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(
            f,
            "wrote {} ({}) in {:.1} s",
            self.path.display(),
            human_size(m.dump.size),
            self.duration.as_secs_f64()
        )?;
        writeln!(f, "  checksum {}", self.checksum.display())?;
        writeln!(
            f,
            "  manifest {} ({} tables, {} rows, {} media objects, {})",
            self.manifest_path.display(),
            m.tables.len(),
            m.total_rows(),
            m.media.count,
            human_size(m.media.bytes)
        )?;
        match self.keep {
            None => writeln!(f, "manual backups are kept until deleted")?,
            Some(keep) if self.pruned.is_empty() => writeln!(
                f,
                "pruned nothing ({} backups are kept {} days)",
                m.kind,
                keep.as_secs() / 86_400
            )?,
            Some(keep) => writeln!(
                f,
                "pruned {} file(s) ({} backups are kept {} days):",
                self.pruned.len(),
                m.kind,
                keep.as_secs() / 86_400
            )?,
        }
        for p in &self.pruned {
            writeln!(f, "  deleted {}", p.display())?;
        }
        Ok(())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checksum ok: {} (sha256 {})",
            self.file.display(),
            self.sha256
        )?;
        writeln!(
            f,
            "restored into the scratch database {} (dropped again) in {:.1} s",
            self.scratch,
            self.duration.as_secs_f64()
        )?;
        f.write_str(&format_tables(&self.tables, "restored"))?;
        match (&self.media.present, &self.media.error) {
            (Some(present), _) => writeln!(
                f,
                "media: the store holds {present} of the {} objects in the manifest",
                self.media.expected
            )?,
            (None, Some(e)) => writeln!(f, "media: could not list the store: {e}")?,
            (None, None) => {}
        }
        match self.differing() {
            0 => writeln!(f, "verify passed: every table matches the manifest"),
            n => writeln!(f, "verify FAILED: {n} table(s) differ from the manifest"),
        }
    }
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "restored {} into {} in {:.1} s",
            self.file.display(),
            self.target,
            self.duration.as_secs_f64()
        )?;
        f.write_str(&format_tables(&self.tables, "now"))?;
        if !self.untouched.is_empty() {
            writeln!(
                f,
                "not in the backup, left as they were: {}",
                self.untouched.join(", ")
            )?;
        }
        match self.differing() {
            0 => writeln!(f, "every table matches the manifest"),
            n => writeln!(f, "{n} table(s) differ from the manifest"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T03:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let name = file_name(Kind::Daily, at);
        assert_eq!(name, "socialcraft-daily-20261201T031500Z.dump");
        assert_eq!(parse_file_name(&name), Some((Kind::Daily, at)));
        assert_eq!(
            dump_name_of("socialcraft-weekly-20261201T031500Z.dump.manifest.json"),
            Some("socialcraft-weekly-20261201T031500Z.dump")
        );
        for stranger in [
            "socialcraft-hourly-20261201T031500Z.dump",
            "socialcraft-daily-20261301T031500Z.dump",
            "socialcraft-daily-20261201T031500Z.sql",
            "other-daily-20261201T031500Z.dump",
            ".socialcraft-daily-20261201T031500Z.dump.partial",
        ] {
            assert_eq!(parse_file_name(stranger), None, "{stranger}");
        }
        assert_eq!(
            partial_path(Path::new("/b/socialcraft-daily-20261201T031500Z.dump")),
            PathBuf::from("/b/.socialcraft-daily-20261201T031500Z.dump.partial")
        );
    }

    #[test]
    fn the_password_goes_to_the_environment_never_the_arguments() {
        let c = Connection::parse("postgres://app:s3cr%40t@db.internal:6432/social").unwrap();
        let env: HashMap<_, _> = c.env.iter().cloned().collect();
        assert_eq!(env["PGHOST"], "db.internal");
        assert_eq!(env["PGPORT"], "6432");
        assert_eq!(env["PGUSER"], "app");
        assert_eq!(env["PGPASSWORD"], "s3cr@t");
        assert_eq!(c.database, "social");
        let described = c.describe();
        assert_eq!(
            described,
            "the database `social` on db.internal:6432 (as app)"
        );
        let cmd = c.command(Path::new("/usr/bin/pg_dump"));
        let args: Vec<String> = cmd
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.iter().all(|a| !a.contains("s3cr")), "{args:?}");
        assert!(args.contains(&"--dbname=dbname='social'".to_owned()));
        assert!(Connection::parse("mysql://x").is_err());
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let e = io_err("write", Path::new("/b/x"))(io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, BackupError::DiskFull { .. }), "{e}");
        assert!(e.to_string().contains("disk is full"), "{e}");
        let e = io_err("write", Path::new("/b/x"))(io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, BackupError::Io { .. }), "{e}");
    }

    #[test]
    fn sizes_read_like_the_readme() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(12_345_678), "12.3 MB");
    }
}
