//! What a backup is called and kept for: its kind, the names of its three files, and the
//! settings.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Every backup file name starts with this.
pub const FILE_PREFIX: &str = "socialcraft-";

/// The dump's extension.
pub const DUMP_SUFFIX: &str = ".dump";

/// Appended to the dump's name for its checksum file.
pub const CHECKSUM_SUFFIX: &str = ".sha256";

/// Appended to the dump's name for its manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The UTC timestamp in a backup's name.
pub(super) const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Appended (after a leading dot) to files being written.
pub(super) const PARTIAL_SUFFIX: &str = ".partial";

/// The manifest layout this code writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// Scratch databases made by `verify` are named with this and a random suffix.
pub const SCRATCH_PREFIX: &str = "socialcraft_verify_";

/// pg_dump's compression level (zlib): a good size for little CPU.
pub(super) const COMPRESSION: u32 = 6;

/// A temporary file older than this was left by a crash and is removed by retention.
pub(super) const STALE_PARTIAL: Duration = Duration::from_secs(86_400);

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
