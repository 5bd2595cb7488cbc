//! The embedded development database: created once, kept across restarts, adopted when a
//! killed process left it running, shared by a command run beside the server, and stopped by
//! the last process using it.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use server::pg_embedded::{EmbeddedPg, ensure_database};

/// Starts (or adopts) the cluster on a blocking thread, as the server does.
async fn start(dir: &std::path::Path) -> Result<EmbeddedPg, server::pg_embedded::EmbeddedPgError> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir, None))
        .await
        .expect("start task")
}

fn is_running(pg: &EmbeddedPg) -> bool {
    pg.cluster_dir().join("postmaster.pid").exists()
}

/// Stops whatever server runs on the directory when the test ends, even when it fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.0.join("postgres").join("postmaster.pid").exists()
            && let Ok(pg) = EmbeddedPg::start(&self.0, None)
        {
            let _ = pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn the_embedded_cluster_keeps_data_across_restarts_and_stops_on_shutdown() {
    let dir = std::env::temp_dir().join(format!("socialcraft-embedded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = Cleanup(dir.clone());

    let first = start(&dir)
        .await
        .expect("first start creates and starts the cluster");
    assert!(is_running(&first));
    ensure_database(&first.url("postgres"), "app")
        .await
        .expect("create database");
    ensure_database(&first.url("postgres"), "app")
        .await
        .expect("creating twice is fine");
    let mut conn = AsyncPgConnection::establish(&first.url("app"))
        .await
        .expect("connect");
    for sql in ["CREATE TABLE kept (v int)", "INSERT INTO kept VALUES (42)"] {
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    }
    drop(conn);

    // A second process finds it running (as after a kill) and adopts it.
    let adopted = start(&dir).await.expect("adopt");
    assert_eq!(adopted.port(), first.port());

    adopted.stop().expect("stop");
    assert!(!is_running(&adopted), "shutdown stops the server");

    // The next start reuses the cluster and its data.
    let again = start(&dir).await.expect("restart");
    let mut conn = AsyncPgConnection::establish(&again.url("app"))
        .await
        .expect("reconnect");
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        v: i32,
    }
    let rows: Vec<V> = diesel::sql_query("SELECT v FROM kept")
        .load(&mut conn)
        .await
        .expect("read");
    assert_eq!(rows.iter().map(|r| r.v).collect::<Vec<_>>(), [42]);
    drop(conn);
    again.stop().expect("stop");
}

/// A `socialcraft` process, killed when dropped if still running.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socialcraft(dir: &std::path::Path, addr: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_socialcraft"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.join("data"))
        .env("LEPTOS_SITE_ADDR", addr)
        .env("LEPTOS_SITE_ROOT", dir.join("site"))
        .env("RUST_LOG", "info")
        // Away from the checkout, so no `.env` or `Leptos.toml` of a developer's is read.
        .current_dir(dir);
    cmd
}

async fn ready_status(client: &reqwest::Client, base: &str) -> Option<u16> {
    let res = client.get(format!("{base}/api/ready")).send().await.ok()?;
    Some(res.status().as_u16())
}

/// As a new user would: the server on the embedded default, and an operator's command run
/// beside it against the same data directory. The command must use the server's database
/// and leave it running; the server still stops it when it shuts down.
#[tokio::test]
#[allow(unsafe_code)] // SIGTERM to the server, as a service manager sends it
async fn a_command_beside_the_server_leaves_its_embedded_database_running() {
    use std::os::unix::fs::PermissionsExt;
    let dir =
        std::env::temp_dir().join(format!("sc-embedded-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("site")).unwrap();
    // As root, PostgreSQL runs as `postgres`, which must reach the cluster under here.
    for d in [&dir, &dir.join("data")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _cleanup = Cleanup(dir.join("data"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}");
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut server = Process(
        socialcraft(&dir, &addr, &["serve"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start socialcraft serve"),
    );
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ready_status(&client, &base).await != Some(200) {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "the server exited at start ({status}):\n{}",
                std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready within 120 s:\n{}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // An account, signed up through the server.
    let email = "tier@example.com";
    let res = client
        .post(format!("{base}/api/auth/sign_up"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=tier%40example.com&password=a+long+enough+passphrase")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "sign-up: {}", res.status());

    // The operator's command, against the same data directory.
    let out = socialcraft(&dir, &addr, &["users", "set-tier", email, "pro"])
        .output()
        .expect("run socialcraft users set-tier");
    assert!(
        out.status.success(),
        "set-tier failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is now on the pro tier"));

    // The server stays ready (past its readiness cache, so this is a fresh look) and its
    // database still answers.
    for _ in 0..15 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            ready_status(&client, &base).await,
            Some(200),
            "the command took the server's database down:\n{}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
    }
    let cluster = dir.join("data").join("postgres");
    assert!(cluster.join("postmaster.pid").exists());

    // The server is the last to leave: stopping it stops the cluster.
    // SAFETY: a signal to the child we started.
    unsafe { libc::kill(server.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = server.0.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "the server left its database running"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
