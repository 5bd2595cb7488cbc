//! Unit tests of the backup files, names and reports.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::error::{BackupError, io_err};
use super::files::{dump_name_of, file_name, human_size, parse_file_name, partial_path};
use super::kind::Kind;
use super::postgres::Connection;

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
