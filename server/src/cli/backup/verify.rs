//! `backup verify`: the checksum, then a real restore into a scratch database whose row
//! counts must match the manifest.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{BackupError, pg_message};
use super::files::{blocking, count_cell, verify_checksum};
use super::kind::SCRATCH_PREFIX;
use super::manifest::{Manifest, read_manifest};
use super::postgres::{Connection, count_rows, find_tool, run_tool};
use crate::config::Config;
use crate::pg_embedded::quote_ident;

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

pub(super) fn compare(
    expected: &BTreeMap<String, i64>,
    restored: &BTreeMap<String, i64>,
) -> Vec<TableCount> {
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

pub(super) async fn check_media(config: &Config, manifest: &Manifest) -> MediaCheck {
    let listed = match domain::media::storage::media_store(&config.data_dir, &config.storage) {
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
        domain::secret::random_hex(6).map_err(|e| BackupError::Io {
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

pub(super) async fn restore_and_count(
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

pub(super) fn format_tables(tables: &[TableCount], restored_header: &str) -> String {
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
