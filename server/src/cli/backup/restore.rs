//! `backup restore`: replaces the configured database's tables with a dump's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::BackupError;
use super::files::{blocking, verify_checksum};
use super::manifest::read_manifest;
use super::postgres::{Connection, find_tool};
use super::verify::{TableCount, compare, format_tables, restore_and_count};
use crate::config::Config;

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
