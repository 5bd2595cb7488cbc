//! The embedded development database: a private PostgreSQL cluster under the data directory.
//!
//! Used when `DATABASE_URL` is unset outside production, and by the test suite. It runs the
//! system's PostgreSQL binaries (`pg_config --bindir`, or `PG_BIN_DIR`). PostgreSQL refuses to
//! run as root, so when we are root the binaries run as the `postgres` user, and the cluster
//! directory is owned by that user.
//!
//! The cluster listens on 127.0.0.1 only, on a port picked at start, with password
//! authentication; the generated password lives in a `0600` file beside the cluster.
//!
//! Several processes may use one cluster (the server, and `socialcraft users set-tier` run
//! beside it against the same `DATA_DIR`). Each registers itself in `postgres.users/` when it
//! starts or adopts the cluster, and the cluster is stopped only by the last live one to leave:
//! a command never stops the server's database under it. A process that died without leaving
//! (a SIGKILL, as cargo-leptos restarts the server) no longer counts. Starting, adopting and
//! leaving take `postgres.lock`, so two processes never decide at once.

use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser the cluster is created with.
pub const SUPERUSER: &str = "socialcraft";

/// Why the embedded cluster could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries not found ({0}); install PostgreSQL, set PG_BIN_DIR, or set DATABASE_URL"
    )]
    BinariesNotFound(String),
    /// We run as root and there is no `postgres` user to run the server as.
    #[error("running as root needs a `postgres` system user to run PostgreSQL as")]
    NoPostgresUser,
    /// A file-system step failed.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A PostgreSQL tool exited with an error.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The tool (`initdb`, `pg_ctl`).
        tool: &'static str,
        /// Its output, or why it could not run.
        detail: String,
    },
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> EmbeddedPgError + 'a {
    move |source| EmbeddedPgError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPg {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    port: u16,
    password: String,
}

impl EmbeddedPg {
    /// Creates the cluster under `base_dir/postgres` if needed and starts it, or adopts a
    /// server already running on it (say, left by a process that was killed).
    pub fn start(base_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, EmbeddedPgError> {
        Self::start_with(base_dir, bin_dir, None)
    }

    /// As [`EmbeddedPg::start`], listening on `port` when it starts the server: a cluster
    /// stopped and started again answers where its clients (their `DATABASE_URL`) look.
    pub fn start_on_port(
        base_dir: &Path,
        bin_dir: Option<&Path>,
        port: u16,
    ) -> Result<Self, EmbeddedPgError> {
        Self::start_with(base_dir, bin_dir, Some(port))
    }

    fn start_with(
        base_dir: &Path,
        bin_dir: Option<&Path>,
        port: Option<u16>,
    ) -> Result<Self, EmbeddedPgError> {
        let bin_dir = match bin_dir {
            Some(dir) => dir.to_owned(),
            None => find_bin_dir()?,
        };
        if !bin_dir.join("initdb").exists() {
            return Err(EmbeddedPgError::BinariesNotFound(format!(
                "no initdb in {}",
                bin_dir.display()
            )));
        }
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };

        fs::create_dir_all(base_dir).map_err(io_err("create the data directory", base_dir))?;
        let base_dir = base_dir
            .canonicalize()
            .map_err(io_err("resolve the data directory", base_dir))?;
        let cluster_dir = base_dir.join("postgres");
        let password_file = base_dir.join("postgres.password");

        let mut pg = EmbeddedPg {
            bin_dir,
            cluster_dir,
            run_as,
            port: 0,
            password: String::new(),
        };
        let _lock = DirLock::take(&base_dir.join("postgres.lock"))?;

        if !pg.cluster_dir.join("PG_VERSION").exists() {
            pg.init(&password_file)?;
        }
        pg.password = fs::read_to_string(&password_file)
            .map_err(io_err("read the database password", &password_file))?
            .trim()
            .to_owned();

        if let Some(port) = pg.running_port() {
            // Another process runs it (the server, beside this command), or one that was
            // killed left it running. Either way it is shared now, not ours to stop alone.
            tracing::info!(port, dir = %pg.cluster_dir.display(), "using the embedded PostgreSQL already running");
            pg.port = port;
            pg.join()?;
            return Ok(pg);
        }
        pg.port = match port {
            Some(port) => port,
            None => free_port().map_err(io_err("pick a port", &pg.cluster_dir))?,
        };
        let log_file = pg.cluster_dir.join("server.log");
        // fsync is off: this cluster holds development and test data only (production must
        // set DATABASE_URL), and syncing makes every test database creation slow.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off",
            pg.port
        );
        let out = pg
            .tool("pg_ctl")
            .arg("-D")
            .arg(&pg.cluster_dir)
            .arg("-l")
            .arg(&log_file)
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .output();
        check("pg_ctl", out)?;
        // Whoever used the cluster before it stopped is gone.
        let _ = fs::remove_dir_all(pg.users_dir());
        pg.join()?;
        tracing::info!(port = pg.port, dir = %pg.cluster_dir.display(), "started the embedded PostgreSQL");
        Ok(pg)
    }

    /// Where the processes using the cluster register, one file per process.
    fn users_dir(&self) -> PathBuf {
        self.cluster_dir.with_file_name("postgres.users")
    }

    /// Registers this process as a user of the cluster.
    fn join(&self) -> Result<(), EmbeddedPgError> {
        let dir = self.users_dir();
        fs::create_dir_all(&dir).map_err(io_err("register with the embedded PostgreSQL", &dir))?;
        let me = std::process::id();
        let file = dir.join(me.to_string());
        fs::write(&file, process_started(me).unwrap_or(0).to_string())
            .map_err(io_err("register with the embedded PostgreSQL", &file))
    }

    /// The other live processes registered as users of the cluster.
    fn other_users(&self) -> Vec<u32> {
        let me = std::process::id();
        fs::read_dir(self.users_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let started: u64 = fs::read_to_string(entry.path()).ok()?.trim().parse().ok()?;
                if pid != me && is_alive(pid, started) {
                    Some(pid)
                } else {
                    if pid != me {
                        // Died without leaving: it no longer counts.
                        let _ = fs::remove_file(entry.path());
                    }
                    None
                }
            })
            .collect()
    }

    fn init(&self, password_file: &Path) -> Result<(), EmbeddedPgError> {
        let dir = &self.cluster_dir;
        fs::create_dir_all(dir).map_err(io_err("create the cluster directory", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("restrict the cluster directory", dir))?;
        if let Some((uid, gid)) = self.run_as {
            chown(dir, uid, gid)?;
        }
        let password =
            domain::secret::random_hex(24).map_err(io_err("generate a password", dir))?;
        // initdb reads the superuser's password from a file the server user can read; it is
        // removed as soon as initdb is done. Our own copy is readable by us alone.
        let pwfile = dir.with_file_name(".initdb-pw");
        write_private(&pwfile, &password)?;
        if let Some((uid, gid)) = self.run_as {
            chown(&pwfile, uid, gid)?;
        }
        let out = self
            .tool("initdb")
            .arg("-D")
            .arg(dir)
            .args(["-U", SUPERUSER, "--pwfile"])
            .arg(&pwfile)
            .args([
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output();
        let _ = fs::remove_file(&pwfile);
        if let Err(e) = check("initdb", out) {
            // Leave no half-made cluster behind: the next start would refuse the directory.
            let _ = fs::remove_dir_all(dir);
            return Err(e);
        }
        write_private(password_file, &password)?;
        tracing::info!(dir = %dir.display(), "created the embedded PostgreSQL cluster");
        Ok(())
    }

    /// The port of a server already running on this cluster, if any.
    fn running_port(&self) -> Option<u16> {
        let status = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.cluster_dir)
            .arg("status")
            .output()
            .ok()?;
        if !status.status.success() {
            return None;
        }
        // The fourth line of postmaster.pid is the port.
        let pid_file = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(name));
        cmd.env("LC_ALL", "C").env_remove("PGDATA");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            // The server user may not be able to enter our working directory.
            cmd.current_dir("/");
        }
        cmd
    }

    /// A URL for `database` on this cluster as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster directory.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// Leaves the cluster, stopping the server when no other live process uses it: a
    /// command run beside the server leaves the server's database running.
    pub fn stop(&self) -> Result<(), EmbeddedPgError> {
        let _lock = DirLock::take(&self.cluster_dir.with_file_name("postgres.lock"))?;
        let _ = fs::remove_file(self.users_dir().join(std::process::id().to_string()));
        let others = self.other_users();
        if !others.is_empty() {
            tracing::info!(users = ?others, "leaving the embedded PostgreSQL running for the processes still using it");
            return Ok(());
        }
        if self.running_port().is_none() {
            return Ok(());
        }
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.cluster_dir)
            .args(["-m", "fast", "-w", "stop"])
            .output();
        check("pg_ctl stop", out)?;
        tracing::info!(dir = %self.cluster_dir.display(), "stopped the embedded PostgreSQL");
        Ok(())
    }
}

/// An exclusive `flock` on a file beside the cluster, held until dropped (closing the file
/// releases it, so the field is never read).
struct DirLock(#[allow(dead_code)] fs::File);

impl DirLock {
    fn take(path: &Path) -> Result<Self, EmbeddedPgError> {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("lock the embedded PostgreSQL", path))?;
        // SAFETY: flock on a descriptor we own; it is released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(EmbeddedPgError::Io {
                what: "lock the embedded PostgreSQL",
                path: path.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        Ok(Self(file))
    }
}

/// When process `pid` started, in clock ticks since boot (`/proc/PID/stat`, field 22), so a
/// recycled process id is not taken for the process that registered. `None` for a process
/// that is gone or has exited and awaits its parent (a zombie).
fn process_started(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(rest.next(), Some("Z" | "X")) {
        return None;
    }
    rest.nth(18)?.parse().ok()
}

/// Whether the process that registered as `pid`, started at `started`, still runs.
fn is_alive(pid: u32, started: u64) -> bool {
    match process_started(pid) {
        Some(now) => started == 0 || now == started,
        None if Path::new("/proc/self/stat").exists() => false,
        // No /proc: ask the kernel whether the id exists at all.
        None => {
            let Ok(pid) = libc::pid_t::try_from(pid) else {
                return false;
            };
            // SAFETY: signal 0 only checks that the process exists.
            unsafe { libc::kill(pid, 0) == 0 }
        }
    }
}

/// Creates `database` on the cluster behind `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, database: &str) -> Result<(), String> {
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(|e| format!("connect to the embedded PostgreSQL: {e}"))?;
    let found: Vec<Found> =
        diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(database)
            .load(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    if found.is_empty() {
        diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(database)))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("create database {database}: {e}"))?;
    }
    Ok(())
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn check(tool: &'static str, out: io::Result<Output>) -> Result<(), EmbeddedPgError> {
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(EmbeddedPgError::Tool {
            tool,
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim()
            .to_owned(),
        }),
        Err(e) => Err(EmbeddedPgError::Tool {
            tool,
            detail: e.to_string(),
        }),
    }
}

fn find_bin_dir() -> Result<PathBuf, EmbeddedPgError> {
    system_bin_dir("initdb").ok_or_else(|| {
        EmbeddedPgError::BinariesNotFound("pg_config and /usr/lib/postgresql/*/bin".to_owned())
    })
}

/// The system's PostgreSQL binary directory holding `tool`: `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin` that has it (Debian installs the server there, off
/// PATH). `None` when neither has it.
pub fn system_bin_dir(tool: &str) -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join(tool).exists() {
            return Some(dir);
        }
    }
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join(tool).exists())
        .collect();
    // Sorted by version number, not as text ("9.6" must come before "15").
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .map(|v| {
                v.split('.')
                    .map(|n| n.parse::<u32>().unwrap_or(0))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    candidates.pop()
}

fn postgres_user() -> Result<(u32, u32), EmbeddedPgError> {
    let name = c"postgres";
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy the ids out at
    // once and never keep the pointer.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(EmbeddedPgError::NoPostgresUser);
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), EmbeddedPgError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(io_err("hand over to postgres", path))
}

fn write_private(path: &Path, contents: &str) -> Result<(), EmbeddedPgError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("write a private file", path))?;
    f.write_all(contents.as_bytes())
        .map_err(io_err("write a private file", path))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
