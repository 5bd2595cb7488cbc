//! `backup list`: the backups in `BACKUP_DIR`, newest first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::error::{BackupError, io_err};
use super::files::{checksum_path, human_size, manifest_path, parse_file_name};
use super::kind::Kind;

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
