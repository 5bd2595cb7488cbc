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
//!
//! The folder: `kind` (names and settings), `error`, `files` (atomic private writes,
//! checksums), `manifest`, `postgres` (tools, libpq connection, row counts), one file per
//! command (`run`, `list`, `verify`, `restore`) and `command` (the CLI's arguments).

mod command;
mod error;
mod files;
mod kind;
mod list;
mod manifest;
mod postgres;
mod restore;
mod run;
mod verify;

#[cfg(test)]
mod tests;

pub use command::{BackupCommand, run};
pub use error::BackupError;
pub use files::{
    checksum_path, file_name, human_size, manifest_path, parse_file_name, sha256_file,
    verify_checksum,
};
pub use kind::{
    CHECKSUM_SUFFIX, DUMP_SUFFIX, FILE_PREFIX, Kind, MANIFEST_FORMAT, MANIFEST_SUFFIX,
    SCRATCH_PREFIX,
};
pub use list::{ListedBackup, format_list, list};
pub use manifest::{DumpInfo, Manifest, MediaManifest, MediaObject, read_manifest};
pub use postgres::{describe_database, find_tool};
pub use restore::{RestoreReport, restore};
pub use run::{BackupReport, backup, prune};
pub use verify::{MediaCheck, TableCount, VerifyReport, verify};
