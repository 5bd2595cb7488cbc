//! Media on an S3-compatible store: a real S3 server (`s3s-fs`, which checks request
//! signatures) on loopback, configured the way an operator would, with the generation
//! pipeline storing into it and `/media` serving from it.
//!
//! `./dev test` installs `s3s-fs`; run alone, set `S3S_FS` to its path if it is not on PATH.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use app::create::{GenerationStatus, service};
use app::media::MediaKind;
use axum::http::StatusCode;
use server::config::Config;
use server::create::pipeline::GenerateHandler;
use server::create::provider::Builtin;
use server::worker::{Worker, WorkerConfig};
use support::{TestDb, get_req, send};

const ACCESS_KEY: &str = "socialcraft-test";
const SECRET_KEY: &str = "s3cret-for-loopback-only";
const BUCKET: &str = "media";

struct S3Server {
    child: Child,
    dir: std::path::PathBuf,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_s3() -> S3Server {
    let dir = std::env::temp_dir().join(format!("sc-s3-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join(BUCKET)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".to_owned());
    let child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin} (./dev test installs it): {e}"));
    let server = S3Server {
        child,
        dir,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("s3s-fs did not start listening on {port}");
}

fn s3_config(endpoint: &str, secret: &str) -> Config {
    let vars: HashMap<String, String> = [
        ("STORAGE_PROVIDER", "s3"),
        ("S3_BUCKET", BUCKET),
        ("S3_ENDPOINT", endpoint),
        ("S3_ACCESS_KEY_ID", ACCESS_KEY),
        ("S3_SECRET_ACCESS_KEY", secret),
        ("S3_ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::from_map(&vars).expect("S3 configuration")
}

#[tokio::test]
async fn the_s3_store_round_trips_and_rejects_a_wrong_key() {
    let s3 = start_s3().await;
    let store = server::storage::media_store(&s3_config(&s3.endpoint, SECRET_KEY)).unwrap();
    store.probe().await.expect("probe against S3");
    let stored = store
        .put(b"not really a png".to_vec(), MediaKind::Png)
        .await
        .unwrap();
    assert_eq!(
        store.get(&stored.key).await.unwrap().as_deref(),
        Some(&b"not really a png"[..])
    );
    // The object really is in the bucket, under its content-addressed key.
    assert!(s3.dir.join(BUCKET).join(&stored.key).exists());
    store.delete(&stored.key).await.unwrap();
    assert_eq!(store.get(&stored.key).await.unwrap(), None);

    let wrong = server::storage::media_store(&s3_config(&s3.endpoint, "not-the-key")).unwrap();
    assert!(
        wrong.probe().await.is_err(),
        "a bad signature must be refused"
    );
}

#[tokio::test]
async fn generations_store_into_s3_and_are_served_from_it() {
    let s3 = start_s3().await;
    let db = TestDb::new().await;
    let mut state = support::state_for(&db);
    state.media = server::storage::media_store(&s3_config(&s3.endpoint, SECRET_KEY)).unwrap();
    let app = server::http::app(state.clone(), support::leptos_options());
    let owner = support::signed_in(&state, "ana@example.com").await.user;

    let view = service::submit(
        &state,
        owner,
        app::create::validate_submission("Stored in a bucket", "neon", "youtube_thumbnail", "1")
            .unwrap(),
    )
    .await
    .unwrap();
    let handler = GenerateHandler::new(
        state.db.clone(),
        state.media.clone(),
        [Arc::new(Builtin) as Arc<dyn server::create::provider::ImageProvider>],
    );
    let config = WorkerConfig {
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(state.db.clone(), Some(db.url.clone()), config)
            .handle(handler)
            .run(async {
                let _ = stopped.await;
            }),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let v = service::view(&state, owner.id, view.id)
            .await
            .unwrap()
            .unwrap();
        if v.status.is_final() {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "not done: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = stop.send(());
    worker.await.unwrap();

    assert_eq!(done.status, GenerationStatus::Succeeded, "{done:?}");
    let img = &done.images[0];
    for url in [&img.png_url, &img.small_url, &img.medium_url, &img.full_url] {
        let res = send(&app, get_req(url)).await;
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        let key = url.trim_start_matches("/media/");
        assert!(
            s3.dir.join(BUCKET).join(key).exists(),
            "{key} in the bucket"
        );
    }
}
