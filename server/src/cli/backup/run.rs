//! `backup daily|weekly|manual`: the dump with its snapshot-exact manifest, then pruning.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use std::{fmt, fs};

use chrono::{DateTime, TimeDelta, Utc};

use super::error::{BackupError, db_err, io_err};
use super::files::{
    Partial, blocking, checksum_path, create_private, dump_name_of, file_name, human_size,
    manifest_path, parse_file_name, partial_path, sha256_file, sync_dir, write_atomic,
};
use super::kind::{COMPRESSION, Kind, MANIFEST_FORMAT, PARTIAL_SUFFIX, STALE_PARTIAL};
use super::manifest::{DumpInfo, Manifest, media_manifest};
use super::postgres::{Connection, count_rows, find_tool, run_tool};
use crate::config::Config;

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
    let media = domain::media::storage::media_store(&config.data_dir, &config.storage)
        .map_err(BackupError::Media)?;
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
pub(super) fn prune_partials(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
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
