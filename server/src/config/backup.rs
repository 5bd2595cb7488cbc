//! Database backups (`socialcraft backup …`).
//!
//! Variables: `BACKUP_DIR`, `BACKUP_KEEP_DAILY_DAYS`, `BACKUP_KEEP_WEEKLY_DAYS`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::vars::{Vars, err};

/// Database backups (`socialcraft backup …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupConfig {
    /// `BACKUP_DIR`: where dumps, checksums and manifests are written, default
    /// `DATA_DIR/backups`.
    pub dir: PathBuf,
    /// `BACKUP_KEEP_DAILY_DAYS`: a daily run deletes daily backups older than this, default 7.
    pub keep_daily: Duration,
    /// `BACKUP_KEEP_WEEKLY_DAYS`: a weekly run deletes weekly backups older than this,
    /// default 30.
    pub keep_weekly: Duration,
}

pub(super) fn parse(v: &Vars, data_dir: &Path) -> Result<BackupConfig, ConfigError> {
    let keep_days = |var: &'static str, default: usize| -> Result<Duration, ConfigError> {
        // At least a day, so a run never deletes the backup it has just written; at most a
        // century, so the arithmetic cannot overflow.
        let days = v.positive(var, default)?;
        if days > 36_500 {
            return Err(err(var, "must be at most 36500 days"));
        }
        Ok(Duration::from_secs(days as u64 * 86_400))
    };
    Ok(BackupConfig {
        dir: v
            .get("BACKUP_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("backups")),
        keep_daily: keep_days("BACKUP_KEEP_DAILY_DAYS", 7)?,
        keep_weekly: keep_days("BACKUP_KEEP_WEEKLY_DAYS", 30)?,
    })
}
