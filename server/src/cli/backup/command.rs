//! `socialcraft backup …`: the commands, each a thin call into this folder's modules.

use std::path::Path;

use clap::Subcommand;

use super::kind::Kind;
use crate::config::Config;
use crate::wiring::{EMBEDDED_DATABASE, shutdown_signal, with_database};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Write a daily backup, then delete daily backups older than BACKUP_KEEP_DAILY_DAYS.
    Daily,
    /// Write a weekly backup, then delete weekly backups older than BACKUP_KEEP_WEEKLY_DAYS.
    Weekly,
    /// Write a manual backup (kept until deleted by hand).
    Manual,
    /// List the backups in BACKUP_DIR, newest first.
    List,
    /// Check a backup: its checksum, then a real restore into a scratch database whose row
    /// counts must match the manifest (the scratch database is dropped again).
    Verify {
        /// The `.dump` file.
        file: std::path::PathBuf,
    },
    /// Replace the configured database with a backup. Refuses without --yes.
    Restore {
        /// The `.dump` file.
        file: std::path::PathBuf,
        /// Really overwrite the database.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs one `backup` subcommand.
pub async fn run(config: Config, command: BackupCommand) -> Result<(), String> {
    match command {
        BackupCommand::Daily => run_kind(config, Kind::Daily).await,
        BackupCommand::Weekly => run_kind(config, Kind::Weekly).await,
        BackupCommand::Manual => run_kind(config, Kind::Manual).await,
        BackupCommand::List => list(&config),
        BackupCommand::Verify { file } => verify(config, &file).await,
        BackupCommand::Restore { file, yes } => restore(config, &file, yes).await,
    }
}

/// `socialcraft backup daily|weekly|manual`: dumps the database into `BACKUP_DIR` with its
/// checksum and manifest, then prunes backups of that kind past their retention.
pub async fn run_kind(config: Config, kind: Kind) -> Result<(), String> {
    let config = &config;
    let report = with_database(config, |url| async move {
        // Abandoning the run on a signal kills pg_dump and removes the partial files.
        Ok(tokio::select! {
            r = super::run::backup(config, &url, kind) => r,
            () = shutdown_signal() => Err(super::error::BackupError::Interrupted),
        })
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    Ok(())
}

/// `socialcraft backup list`: the backups in `BACKUP_DIR`, newest first. Needs no database.
pub fn list(config: &Config) -> Result<(), String> {
    let dir = &config.backup.dir;
    let backups = super::list::list(dir).map_err(|e| e.to_string())?;
    print!("{}", super::list::format_list(dir, &backups));
    Ok(())
}

/// `socialcraft backup verify FILE`: checksum, a restore into a scratch database, row counts
/// against the manifest. Fails when anything differs.
pub async fn verify(config: Config, file: &Path) -> Result<(), String> {
    let config = &config;
    let report = with_database(config, |url| async move {
        Ok(super::verify::verify(config, &url, file, shutdown_signal()).await)
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    if !report.ok() {
        return Err(super::error::BackupError::Mismatch {
            file: file.to_owned(),
            differing: report.differing(),
        }
        .to_string());
    }
    Ok(())
}

/// `socialcraft backup restore FILE --yes`: replaces the configured database with the backup.
/// Without `--yes` it only says what it would overwrite (and starts nothing).
pub async fn restore(config: Config, file: &Path, yes: bool) -> Result<(), String> {
    use super::error::BackupError;
    if !file.is_file() {
        return Err(BackupError::NotFound(file.to_owned()).to_string());
    }
    if !yes {
        let target = match &config.database.url {
            Some(url) => {
                super::postgres::describe_database(url.expose()).map_err(|e| e.to_string())?
            }
            None => format!(
                "the embedded database `{EMBEDDED_DATABASE}` under {}",
                config.data_dir.join("postgres").display()
            ),
        };
        return Err(BackupError::NotConfirmed {
            target,
            file: file.to_owned(),
        }
        .to_string());
    }
    let config = &config;
    let report = with_database(config, |url| async move {
        // Abandoning it kills pg_restore, and its single transaction rolls back.
        Ok(tokio::select! {
            r = super::restore::restore(config, &url, file, true) => r,
            () = shutdown_signal() => Err(BackupError::Interrupted),
        })
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    if report.differing() > 0 {
        return Err(BackupError::Mismatch {
            file: file.to_owned(),
            differing: report.differing(),
        }
        .to_string());
    }
    Ok(())
}
