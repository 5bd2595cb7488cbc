//! Helpers for tests that run SocialCraft as real processes (`scale_out`, `faults`): the
//! binary, its migrations, an `s3s-fs` S3 server, waiting for ports and readiness, form
//! bodies, and a process's log when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `SOCIALCRAFT_BIN` if set, else the one cargo built for this test.
pub fn socialcraft_bin() -> PathBuf {
    std::env::var_os("SOCIALCRAFT_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_socialcraft")),
        PathBuf::from,
    )
}

/// Runs `socialcraft migrate` with exactly `env`, bounded to a minute.
pub async fn migrate(bin: &Path, env: &[(String, String)], dir: &Path) {
    let migrate = tokio::process::Command::new(bin)
        .arg("migrate")
        .env_clear()
        .envs(env.iter().cloned())
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), migrate)
        .await
        .expect("socialcraft migrate took over 60 s")
        .expect("run socialcraft migrate");
    assert!(
        out.status.success(),
        "socialcraft migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `socialcraft ARGS` with exactly `env` plus `extra`, its output in `dir/name.log`
/// (appended, so a restarted process keeps its predecessor's lines) and its `DATA_DIR` at
/// `dir/name`.
pub fn spawn_socialcraft(
    bin: &Path,
    env: &[(String, String)],
    dir: &Path,
    name: &str,
    args: &[&str],
    extra: &[(&str, String)],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("log file");
    let data_dir = dir.join(name);
    std::fs::create_dir_all(&data_dir).expect("data dir");
    Command::new(bin)
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .env("DATA_DIR", &data_dir)
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

/// Starts `s3s-fs` (or `S3S_FS`) on 127.0.0.1:`port` over `root` and waits until it listens.
pub async fn spawn_s3s_fs(root: &Path, port: u16, access_key: &str, secret_key: &str) -> Child {
    let s3_bin = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".to_owned());
    let child = Command::new(&s3_bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", access_key, "--secret-key", secret_key])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {s3_bin} (./dev scale-out installs it): {e}"));
    wait_for_port(port, "s3s-fs").await;
    child
}

/// Waits (up to 20 s) until something accepts connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 60 s) until `base`'s `/api/ready` answers 200; fails when `child` exits.
pub async fn wait_ready(client: &reqwest::Client, base: &str, child: &mut Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{base}/api/ready")).send().await
            && res.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at start: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} was not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints the last lines of `dir/name.log` (for a failed test).
pub fn print_log_tail(dir: &Path, name: &str) {
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    eprintln!("--- last lines of {name}'s log ---\n{}", tail.join("\n"));
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    b' ' => "+".to_owned(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Cookie` header a browser would send after `res` (its `Set-Cookie` name=value pairs).
pub fn cookies_of(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `s3s-fs` credentials and bucket of these tests (loopback only).
pub const S3_ACCESS_KEY: &str = "socialcraft-test";
/// See [`S3_ACCESS_KEY`].
pub const S3_SECRET_KEY: &str = "s3cret-for-loopback-only";
/// See [`S3_ACCESS_KEY`]; a directory of that name under the server's root.
pub const BUCKET: &str = "media";

/// A private PostgreSQL cluster under `dir/pg` with an empty database `socialcraft`: the
/// cluster and the database's URL.
pub async fn start_database(dir: &Path) -> (server::pg_embedded::EmbeddedPg, String) {
    let pg_dir = dir.join("pg");
    let pg =
        tokio::task::spawn_blocking(move || server::pg_embedded::EmbeddedPg::start(&pg_dir, None))
            .await
            .expect("start thread")
            .expect("start PostgreSQL");
    server::pg_embedded::ensure_database(&pg.url("postgres"), "socialcraft")
        .await
        .expect("create the database");
    let url = pg.url("socialcraft");
    (pg, url)
}

/// The settings every process of such a test shares: the database at `db_url` (migrated
/// once, by [`migrate`]), one new `SECRET_KEY`, media on the `s3s-fs` at `s3_port`, and the
/// site at `LEPTOS_SITE_ROOT` (or none, under `dir`).
pub fn shared_env(dir: &Path, db_url: &str, s3_port: u16) -> Vec<(String, String)> {
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let site_root = std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| dir.join("site").display().to_string());
    [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("DATABASE_URL", db_url.to_owned()),
        ("RUN_MIGRATIONS", "false".into()),
        ("SECRET_KEY", secret),
        ("STORAGE_PROVIDER", "s3".into()),
        ("S3_BUCKET", BUCKET.into()),
        ("S3_ENDPOINT", format!("http://127.0.0.1:{s3_port}")),
        ("S3_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
        ("S3_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
        ("S3_ALLOW_HTTP", "true".into()),
        ("LEPTOS_SITE_ROOT", site_root),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// SIGKILLs `child`, if any, and reaps it.
pub fn kill(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The end of such a test: the S3 server killed, the cluster stopped, the scratch directory
/// removed unless the environment has `keep_var`.
pub fn tear_down(
    dir: &Path,
    s3: Option<Child>,
    pg: Option<server::pg_embedded::EmbeddedPg>,
    keep_var: &str,
) {
    kill(s3);
    if let Some(pg) = pg {
        let _ = pg.stop();
    }
    if std::env::var_os(keep_var).is_none() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
