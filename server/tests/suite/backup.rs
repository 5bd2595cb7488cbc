//! `socialcraft backup`: real pg_dump and pg_restore against the test cluster, real files in
//! a temporary BACKUP_DIR, real media in a local store.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{TimeDelta, Utc};
use server::cli::backup::{self, BackupError, Kind};
use server::config::Config;
use sha2::{Digest, Sha256};
use support::TestDb;

/// A test database with a data directory (media, backups) of its own.
struct Fixture {
    db: TestDb,
    dir: PathBuf,
    vars: std::collections::HashMap<String, String>,
    config: Config,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(&[]).await
    }

    async fn with(extra: &[(&str, &str)]) -> Fixture {
        let db = TestDb::new().await;
        let dir = std::env::temp_dir().join(format!(
            "socialcraft-backup-test-{}-{}",
            std::process::id(),
            db.name
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let vars = vars(&db, &dir, extra);
        let config = Config::from_map(&vars).expect("test configuration");
        Fixture {
            db,
            dir,
            vars,
            config,
        }
    }

    fn backups(&self) -> &Path {
        &self.config.backup.dir
    }

    /// Files in the backup directory, hidden ones included.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(self.backups()) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// The exact row count of every table in `public`, as the database has them now.
    async fn counts(&self) -> BTreeMap<String, i64> {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        use diesel_async::RunQueryDsl;
        let mut c = self.db.conn().await;
        let tables: Vec<T> = diesel::sql_query(
            "SELECT c.relname::text AS name FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
        )
        .load(&mut c)
        .await
        .unwrap();
        let mut counts = BTreeMap::new();
        for t in tables {
            let n = self.db.count(&format!("public.\"{}\"", t.name)).await;
            counts.insert(t.name, n);
        }
        counts
    }

    /// Users, seeded generations and images sharing stored pictures, a stray media file.
    async fn populate(&self) {
        let media =
            domain::media::storage::media_store(&self.config.data_dir, &self.config.storage)
                .unwrap();
        let mut c = self.db.conn().await;
        for email in ["ana@example.com", "ben@example.com"] {
            domain::accounts::service::create(&mut c, email, "correct horse battery")
                .await
                .expect("account");
        }
        server::cli::seed::seed(&mut c, &media, 60)
            .await
            .expect("seed");
        let stray = self.dir.join("stray.txt");
        std::fs::write(&stray, b"a file whose key carries no hash").unwrap();
        media.put_file("notes/stray.txt", &stray).await.unwrap();
    }

    /// Runs the binary with this fixture's configuration.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_socialcraft"));
        cmd.env_clear()
            .envs(&self.vars)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            // No `.env` is picked up from a checkout.
            .current_dir(&self.dir)
            .args(args);
        cmd.output().expect("run socialcraft")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn vars(
    db: &TestDb,
    dir: &Path,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut vars: std::collections::HashMap<String, String> = [
        ("APP_ENV", "test".to_owned()),
        ("DATABASE_URL", db.url.clone()),
        ("DATA_DIR", dir.display().to_string()),
        ("BACKUP_DIR", dir.join("backups").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies a backup (dump, checksum, manifest) into `dir` under the same names.
fn copy_backup(dump: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(dump.file_name().unwrap());
    std::fs::copy(dump, &to).unwrap();
    std::fs::copy(backup::checksum_path(dump), backup::checksum_path(&to)).unwrap();
    std::fs::copy(backup::manifest_path(dump), backup::manifest_path(&to)).unwrap();
    to
}

async fn database_exists(db: &TestDb, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl;
    let mut c = db.conn().await;
    let rows: Vec<N> =
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(name)
            .load(&mut c)
            .await
            .unwrap();
    rows[0].n > 0
}

#[tokio::test]
async fn a_backup_verifies_restores_and_refuses_damage() {
    let f = Fixture::new().await;
    f.populate().await;
    let before = f.counts().await;

    let report = backup::backup(&f.config, &f.db.url, Kind::Manual)
        .await
        .expect("backup");
    assert!(report.pruned.is_empty(), "manual runs prune nothing");

    // Three files, and nothing else (no temporary file left behind).
    let name = report
        .path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (kind, at) = backup::parse_file_name(&name).expect("a backup name");
    assert_eq!(kind, Kind::Manual);
    assert!((Utc::now() - at).num_seconds().abs() < 60, "{at}");
    assert_eq!(
        f.files(),
        [
            name.clone(),
            format!("{name}.manifest.json"),
            format!("{name}.sha256")
        ]
    );
    let size = std::fs::metadata(&report.path).unwrap().len();
    assert!(size > 0);
    assert_eq!(report.manifest.dump.size, size);

    // The manifest: exact counts for every table, migrations, media with their hashes.
    let manifest = backup::read_manifest(&report.path).unwrap();
    assert_eq!(manifest, report.manifest);
    assert_eq!(manifest.kind, Kind::Manual);
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest.tables, before, "row counts as in the database");
    assert_eq!(
        manifest.tables["users"],
        2 + server::cli::seed::CREATORS as i64
    );
    assert_eq!(manifest.tables["images"], 60);
    assert!(manifest.tables["generations"] > 0);
    assert!(manifest.tables["media_blobs"] > 0);
    assert_eq!(manifest.migrations, domain::db::pool::embedded_versions());
    let media = domain::media::storage::media_store(&f.config.data_dir, &f.config.storage).unwrap();
    let listed = media.list().await.unwrap();
    assert_eq!(manifest.media.count, listed.len());
    assert!(
        manifest.media.count > 18,
        "seeded pictures and their variants"
    );
    for object in &manifest.media.objects {
        let bytes = media.get(&object.key).await.unwrap().expect("object");
        assert_eq!(object.size, bytes.len() as u64, "{}", object.key);
        assert_eq!(object.sha256, sha256_hex(&bytes), "{}", object.key);
    }
    assert!(
        manifest
            .media
            .objects
            .iter()
            .any(|o| o.key == "notes/stray.txt")
    );

    // The checksum file is what `sha256sum -c` reads.
    let text = std::fs::read_to_string(&report.checksum).unwrap();
    let dump_bytes = std::fs::read(&report.path).unwrap();
    assert_eq!(text, format!("{}  {name}\n", sha256_hex(&dump_bytes)));
    let checked = Command::new("sha256sum")
        .arg("-c")
        .arg(report.checksum.file_name().unwrap())
        .current_dir(f.backups())
        .output()
        .expect("sha256sum (coreutils)");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );

    // list shows it, with its checksum.
    let listed = backup::list(f.backups()).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].path, report.path);
    assert!(listed[0].checksum && listed[0].manifest);
    assert_eq!(listed[0].size, size);

    // verify: a real restore into a scratch database that is gone afterwards.
    let verified = backup::verify(&f.config, &f.db.url, &report.path, std::future::pending())
        .await
        .expect("verify");
    assert!(verified.ok(), "{verified}");
    assert_eq!(verified.tables.len(), before.len());
    for t in &verified.tables {
        assert_eq!(t.restored, Some(before[&t.table]), "{}", t.table);
    }
    assert_eq!(verified.media.present, Some(manifest.media.count));
    assert!(!database_exists(&f.db, &verified.scratch).await);
    let out = f.cli(&["backup", "verify", report.path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verify passed"), "{stdout}");

    // A media object deleted since is reported, not a failure.
    let gone = &manifest.media.objects[0].key;
    media.delete(gone).await.unwrap();
    let verified = backup::verify(&f.config, &f.db.url, &report.path, std::future::pending())
        .await
        .unwrap();
    assert!(verified.ok());
    assert_eq!(verified.media.present, Some(manifest.media.count - 1));

    // One byte flipped: verify fails, restore refuses, the database is untouched.
    let damaged = copy_backup(&report.path, &f.dir.join("damaged"));
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&damaged, &bytes).unwrap();
    f.db.exec("DELETE FROM image_ratings").await;
    let changed = f.counts().await;
    assert_ne!(changed, before);
    let e = backup::verify(&f.config, &f.db.url, &damaged, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::ChecksumMismatch { .. }), "{e}");
    let e = backup::restore(&f.config, &f.db.url, &damaged, true)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::ChecksumMismatch { .. }), "{e}");
    assert_eq!(f.counts().await, changed);
    let out = f.cli(&["backup", "verify", damaged.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is damaged"), "{stderr}");

    // No checksum file: not trusted either.
    let unsummed = copy_backup(&report.path, &f.dir.join("unsummed"));
    std::fs::remove_file(backup::checksum_path(&unsummed)).unwrap();
    let e = backup::verify(&f.config, &f.db.url, &unsummed, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::ChecksumMissing { .. }), "{e}");

    // Restore without --yes: refused, saying what it would overwrite; nothing changes.
    f.db.exec("DELETE FROM images WHERE variation = 0 AND seed % 2 = 0")
        .await;
    f.db.exec("DELETE FROM users WHERE email = 'ben@example.com'")
        .await;
    let changed = f.counts().await;
    let e = backup::restore(&f.config, &f.db.url, &report.path, false)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::NotConfirmed { .. }), "{e}");
    assert!(e.to_string().contains(&f.db.name), "{e}");
    let out = f.cli(&["backup", "restore", report.path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--yes") && stderr.contains(&f.db.name),
        "{stderr}"
    );
    assert_eq!(f.counts().await, changed);

    // With --yes: every table back to the manifest's counts.
    let restored = backup::restore(&f.config, &f.db.url, &report.path, true)
        .await
        .expect("restore");
    assert_eq!(restored.differing(), 0, "{restored}");
    assert!(restored.untouched.is_empty());
    assert_eq!(f.counts().await, manifest.tables);
    assert_eq!(f.db.count("users WHERE email = 'ben@example.com'").await, 1);
    // And the CLI does the same.
    f.db.exec("DELETE FROM generations").await;
    assert_eq!(f.db.count("images").await, 0);
    let out = f.cli(&["backup", "restore", report.path.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.counts().await, manifest.tables);
}

/// Writes an empty backup (dump and sidecars) of `kind` made `days_ago`.
fn fake_backup(dir: &Path, kind: Kind, days_ago: i64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let name = backup::file_name(kind, Utc::now() - TimeDelta::days(days_ago));
    for suffix in ["", ".sha256", ".manifest.json"] {
        std::fs::write(dir.join(format!("{name}{suffix}")), b"old").unwrap();
    }
    name
}

#[tokio::test]
async fn retention_removes_only_old_backups_of_the_kind_just_made() {
    let f = Fixture::with(&[
        ("BACKUP_KEEP_DAILY_DAYS", "7"),
        ("BACKUP_KEEP_WEEKLY_DAYS", "30"),
    ])
    .await;
    let dir = f.backups().to_owned();
    let old_daily = fake_backup(&dir, Kind::Daily, 10);
    let recent_daily = fake_backup(&dir, Kind::Daily, 3);
    let old_weekly = fake_backup(&dir, Kind::Weekly, 40);
    let recent_weekly = fake_backup(&dir, Kind::Weekly, 10);
    let old_manual = fake_backup(&dir, Kind::Manual, 400);
    // A manifest whose dump has gone (a half-deleted old daily) goes with its kind.
    let orphan = backup::file_name(Kind::Daily, Utc::now() - TimeDelta::days(20));
    std::fs::write(dir.join(format!("{orphan}.manifest.json")), b"{}").unwrap();
    // Not ours: never touched.
    std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();
    let exists = |name: &str| dir.join(name).exists();
    let backup_exists = |name: &str| {
        [".sha256", ".manifest.json", ""]
            .iter()
            .all(|s| exists(&format!("{name}{s}")))
    };
    let backup_gone = |name: &str| {
        [".sha256", ".manifest.json", ""]
            .iter()
            .all(|s| !exists(&format!("{name}{s}")))
    };

    let daily = backup::backup(&f.config, &f.db.url, Kind::Daily)
        .await
        .expect("daily");
    let mut expected: Vec<PathBuf> = ["", ".manifest.json", ".sha256"]
        .iter()
        .map(|s| dir.join(format!("{old_daily}{s}")))
        .chain([dir.join(format!("{orphan}.manifest.json"))])
        .collect();
    expected.sort();
    assert_eq!(daily.pruned, expected);
    assert!(backup_gone(&old_daily) && !exists(&format!("{orphan}.manifest.json")));
    for kept in [&recent_daily, &old_weekly, &recent_weekly, &old_manual] {
        assert!(backup_exists(kept), "{kept}");
    }
    assert!(daily.path.exists() && exists("notes.txt"));

    let weekly = backup::backup(&f.config, &f.db.url, Kind::Weekly)
        .await
        .expect("weekly");
    assert_eq!(weekly.pruned.len(), 3, "{:?}", weekly.pruned);
    assert!(backup_gone(&old_weekly));
    for kept in [&recent_daily, &recent_weekly, &old_manual] {
        assert!(backup_exists(kept), "{kept}");
    }

    let manual = backup::backup(&f.config, &f.db.url, Kind::Manual)
        .await
        .expect("manual");
    assert!(manual.pruned.is_empty());
    assert!(backup_exists(&old_manual));

    // list: newest first, every kind, checksums seen.
    let listed = backup::list(&dir).unwrap();
    let times: Vec<_> = listed.iter().map(|b| b.created_at).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert_eq!(listed.len(), 6, "{listed:?}");
    assert_eq!(listed.last().unwrap().kind, Kind::Manual);
    assert!(listed.iter().all(|b| b.checksum));
    std::fs::remove_file(backup::checksum_path(&manual.path)).unwrap();
    let listed = backup::list(&dir).unwrap();
    let entry = listed.iter().find(|b| b.path == manual.path).unwrap();
    assert!(!entry.checksum);
    let out = f.cli(&["backup", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("MISSING") && stdout.contains(&recent_daily),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_missing_or_failing_pg_dump_leaves_no_backup_behind() {
    // PG_BIN_DIR without pg_dump: named, nothing written.
    let empty = std::env::temp_dir().join(format!("sc-no-pg-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let f = Fixture::with(&[("PG_BIN_DIR", empty.to_str().unwrap())]).await;
    let e = backup::backup(&f.config, &f.db.url, Kind::Daily)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            BackupError::ToolNotFound {
                tool: "pg_dump",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("PG_BIN_DIR"), "{e}");
    assert!(f.files().is_empty(), "{:?}", f.files());
    let out = f.cli(&["backup", "daily"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump was not found"), "{stderr}");
    let _ = std::fs::remove_dir_all(&empty);

    // A pg_dump that writes half a dump and dies as it does on a full disk: no file remains
    // (the real tool cannot be made to fail midway on demand).
    let bin = std::env::temp_dir().join(format!("sc-failing-pg-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("pg_dump");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         while [ $# -gt 0 ]; do [ \"$1\" = --file ] && out=\"$2\"; shift; done\n\
         printf 'PGDMP partial' > \"$out\"\n\
         echo 'pg_dump: error: could not write to output file: No space left on device' >&2\n\
         exit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = Fixture::with(&[("PG_BIN_DIR", bin.to_str().unwrap())]).await;
    let e = backup::backup(&f.config, &f.db.url, Kind::Manual)
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("disk is full"), "{e}");
    assert!(f.files().is_empty(), "{:?}", f.files());
    let _ = std::fs::remove_dir_all(&bin);
}
