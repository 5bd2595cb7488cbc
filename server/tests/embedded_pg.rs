//! The embedded development database: created once, kept across restarts, adopted when a
//! killed process left it running, and stopped on shutdown.

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
        if let Ok(pg) = EmbeddedPg::start(&self.0, None) {
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
