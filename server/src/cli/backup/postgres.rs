//! Talking to PostgreSQL for backups: finding `pg_dump`/`pg_restore`, the connection
//! string passed to them through libpq's environment, and counting rows.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::error::{BackupError, db_err, pg_message};
use crate::pg_embedded::quote_ident;

/// Finds a PostgreSQL client tool: in `PG_BIN_DIR` when set (and only there), else in
/// `pg_config --bindir` or Debian's `/usr/lib/postgresql/*/bin`, else on `PATH`.
pub fn find_tool(pg_bin_dir: Option<&Path>, tool: &'static str) -> Result<PathBuf, BackupError> {
    if let Some(dir) = pg_bin_dir {
        let path = dir.join(tool);
        return match is_executable(&path) {
            true => Ok(path),
            false => Err(BackupError::ToolNotFound {
                tool,
                searched: format!("PG_BIN_DIR={}", dir.display()),
            }),
        };
    }
    if let Some(dir) = crate::pg_embedded::system_bin_dir(tool) {
        return Ok(dir.join(tool));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(tool);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(BackupError::ToolNotFound {
        tool,
        searched: "pg_config --bindir, /usr/lib/postgresql/*/bin and PATH".to_owned(),
    })
}

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A database connection split into libpq's environment variables, so the password never
/// appears on a command line (where `ps` would show it).
#[derive(Clone)]
pub(super) struct Connection {
    pub(super) config: tokio_postgres::Config,
    pub(super) env: Vec<(&'static str, String)>,
    pub(super) database: String,
}

/// Variables that would change where a tool connects; we set what we need and clear the rest.
pub(super) const LIBPQ_VARS: [&str; 10] = [
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSERVICE",
];

impl Connection {
    pub(super) fn parse(url: &str) -> Result<Self, BackupError> {
        use tokio_postgres::config::{Host, SslMode};
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| BackupError::BadUrl(pg_message(&e)))?;
        let mut env = Vec::new();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            env.push(("PGHOST", hosts.join(",")));
        }
        let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            env.push(("PGPORT", ports.join(",")));
        }
        if let Some(user) = config.get_user() {
            env.push(("PGUSER", user.to_owned()));
        }
        if let Some(password) = config.get_password() {
            env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
        }
        if let Some(options) = config.get_options() {
            env.push(("PGOPTIONS", options.to_owned()));
        }
        env.push((
            "PGSSLMODE",
            match config.get_ssl_mode() {
                SslMode::Disable => "disable",
                SslMode::Require => "require",
                _ => "prefer",
            }
            .to_owned(),
        ));
        env.push(("PGAPPNAME", "socialcraft-backup".to_owned()));
        let database = config
            .get_dbname()
            .map(str::to_owned)
            .or_else(|| config.get_user().map(str::to_owned))
            .ok_or_else(|| BackupError::BadUrl("it names no database".to_owned()))?;
        Ok(Connection {
            config,
            env,
            database,
        })
    }

    /// The same server, another database.
    pub(super) fn with_database(&self, database: &str) -> Connection {
        let mut other = self.clone();
        other.config.dbname(database);
        other.database = database.to_owned();
        other
    }

    /// A human description without the password.
    pub(super) fn describe(&self) -> String {
        use tokio_postgres::config::Host;
        let ports = self.config.get_ports();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = match h {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(dir) => dir.display().to_string(),
                };
                match ports.get(i).or(ports.first()) {
                    Some(port) => format!("{name}:{port}"),
                    None => name,
                }
            })
            .collect();
        let mut s = format!("the database `{}`", self.database);
        if !hosts.is_empty() {
            s.push_str(&format!(" on {}", hosts.join(",")));
        }
        if let Some(user) = self.config.get_user() {
            s.push_str(&format!(" (as {user})"));
        }
        s
    }

    pub(super) async fn connect(&self) -> Result<tokio_postgres::Client, BackupError> {
        let (client, connection) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| BackupError::Connect(pg_message(&e)))?;
        // Ends when the client is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A tool that connects through the environment, with English messages (so a full disk
    /// is recognised), killed if the command is abandoned.
    pub(super) fn command(&self, tool: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(tool);
        for var in LIBPQ_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("LC_ALL", "C")
            // A conninfo string, so no database name can be taken for an option.
            .arg(format!(
                "--dbname=dbname={}",
                conninfo_quote(&self.database)
            ))
            .arg("--no-password")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

pub(super) fn conninfo_quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// What `restore` would overwrite, for the refusal without `--yes`.
pub fn describe_database(url: &str) -> Result<String, BackupError> {
    Ok(Connection::parse(url)?.describe())
}

/// Runs a tool to completion; a failure carries its stderr, and one that ran out of space
/// says so.
pub(super) async fn run_tool(
    tool: &'static str,
    path: &Path,
    mut cmd: tokio::process::Command,
    writing: Option<&Path>,
) -> Result<(), BackupError> {
    let out = cmd.output().await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BackupError::ToolNotFound {
            tool,
            searched: path.display().to_string(),
        },
        _ => BackupError::ToolFailed {
            tool,
            status: "could not start".to_owned(),
            detail: e.to_string(),
        },
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(file) = writing
        && stderr.contains("No space left on device")
    {
        return Err(BackupError::DiskFull {
            path: file.to_owned(),
        });
    }
    // The first lines say what went wrong; a long tail adds nothing.
    let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut detail = detail
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    if detail.is_empty() {
        detail = "no message".to_owned();
    }
    Err(BackupError::ToolFailed {
        tool,
        status: out.status.to_string(),
        detail,
    })
}

pub(super) async fn public_tables(
    client: &tokio_postgres::Client,
) -> Result<Vec<String>, BackupError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .await
        .map_err(db_err("listing tables"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The exact row count of every table in `public`, as this transaction sees them.
pub(super) async fn count_rows(
    client: &tokio_postgres::Client,
) -> Result<BTreeMap<String, i64>, BackupError> {
    let mut counts = BTreeMap::new();
    for table in public_tables(client).await? {
        let n: i64 = client
            .query_one(
                format!("SELECT count(*) FROM public.{}", quote_ident(&table)).as_str(),
                &[],
            )
            .await
            .map_err(db_err("counting rows"))?
            .get(0);
        counts.insert(table, n);
    }
    Ok(counts)
}
