//! Media on an S3-compatible store: a real S3 server (`s3s-fs`, which checks request
//! signatures) on loopback, configured the way an operator would, with the generation
//! pipeline storing into it and `/media` serving from it.
//!
//! `./dev test` installs `s3s-fs`; run alone, set `S3S_FS` to its path if it is not on PATH.
//!
//! Also `/media/` itself on both stores: bodies streamed in pieces, byte ranges, 416s.

use crate::support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use domain::create::pipeline::GenerateHandler;
use domain::create::provider::Builtin;
use domain::create::{GenerationStatus, service};
use domain::jobs::worker::{Worker, WorkerConfig};
use domain::media::MediaKind;
use server::config::Config;
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

/// The media store `s3_config` describes.
fn s3_store(endpoint: &str, secret: &str) -> domain::media::MediaStore {
    let config = s3_config(endpoint, secret);
    domain::media::storage::media_store(&config.data_dir, &config.storage).unwrap()
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
    let store = s3_store(&s3.endpoint, SECRET_KEY);
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

    let wrong = s3_store(&s3.endpoint, "not-the-key");
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
    state.media = s3_store(&s3.endpoint, SECRET_KEY);
    let app = server::web::app(state.clone(), support::leptos_options());
    let owner = support::signed_in(&state, "ana@example.com").await.user;

    let view = service::submit(
        &state,
        owner,
        domain::create::validate_submission("Stored in a bucket", "neon", "youtube_thumbnail", "1")
            .unwrap(),
    )
    .await
    .unwrap();
    let handler = GenerateHandler::new(
        state.db.clone(),
        state.media.clone(),
        [Arc::new(Builtin) as Arc<dyn domain::create::provider::ImageProvider>],
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

/// A GET of `path` with `headers`.
fn media_req(path: &str, headers: &[(&str, &str)]) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(axum::body::Body::empty()).unwrap()
}

/// Status, headers and body of one request.
async fn answer(
    app: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = send(app, media_req(path, headers)).await;
    let (status, h) = (res.status(), res.headers().clone());
    (status, h, support::bytes(res).await)
}

/// What every range request against `content` at `url` must answer, on any store.
async fn ranges_answer_exactly(app: &axum::Router, url: &str, content: &[u8]) {
    let len = content.len();
    let etag = format!(
        "\"{}\"",
        domain::media::parse_key(&url[7..]).unwrap().sha256
    );
    let (s, h, body) = answer(app, url, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], len.to_string().as_str());
    assert!(body == content, "the whole file");
    for (range, from, to) in [
        ("bytes=0-9".to_owned(), 0, 10),
        (format!("bytes={}-", len - 5), len - 5, len),
        ("bytes=-7".to_owned(), len - 7, len),
        ("bytes=1000-1999999".to_owned(), 1000, 2_000_000),
        (format!("bytes=100-{}", len + 50), 100, len),
    ] {
        let (s, h, body) = answer(app, url, &[("range", &range)]).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h["content-range"],
            format!("bytes {from}-{}/{len}", to - 1).as_str(),
            "{range}"
        );
        assert_eq!(h["content-length"], (to - from).to_string().as_str());
        assert_eq!(h["etag"], etag.as_str());
        assert!(body == content[from..to], "{range}: wrong bytes");
    }
    // Past the end, an empty suffix, and several ranges: 416 naming the size.
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 1, len + 9),
        "bytes=-0".to_owned(),
        "bytes=0-1,4-5".to_owned(),
        "bytes=0-0, -1".to_owned(),
    ] {
        let (s, h, body) = answer(app, url, &[("range", &range)]).await;
        assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            h["content-range"],
            format!("bytes */{len}").as_str(),
            "{range}"
        );
        assert!(body.is_empty());
    }
    // A malformed range is ignored; If-Range with our tag keeps the range, anything else
    // gets the whole file; If-None-Match is a 304.
    let (s, _, body) = answer(app, url, &[("range", "bytes=9-1")]).await;
    assert_eq!((s, body.len()), (StatusCode::OK, len));
    let (s, _, body) = answer(app, url, &[("range", "bytes=0-3"), ("if-range", &etag)]).await;
    assert_eq!((s, &body[..]), (StatusCode::PARTIAL_CONTENT, &content[..4]));
    for other in ["\"0000\"", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let (s, _, body) = answer(app, url, &[("range", "bytes=0-3"), ("if-range", other)]).await;
        assert_eq!((s, body.len()), (StatusCode::OK, len), "{other}");
    }
    let (s, _, body) = answer(app, url, &[("if-none-match", &etag)]).await;
    assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
}

/// Content that makes a wrong offset visible: no two nearby positions hold the same byte.
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

#[tokio::test]
async fn large_media_is_streamed_in_pieces_and_ranges_answer_exact_bytes() {
    use http_body_util::BodyExt;
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = server::web::app(state.clone(), support::leptos_options());
    // 6 MiB in the file store.
    let content = patterned(6 * 1024 * 1024 + 123);
    let stored = state
        .media
        .put(content.clone(), MediaKind::Png)
        .await
        .unwrap();
    let url = format!("/media/{}", stored.key);

    // The body arrives as many pieces, none near the whole file: read whole (`bytes()`) it
    // would be one frame of 6 MiB.
    let res = send(&app, get_req(&url)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let (mut frames, mut largest, mut got) = (0usize, 0usize, Vec::new());
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        largest = largest.max(data.len());
        got.extend_from_slice(&data);
    }
    assert!(got == content, "streamed bytes differ");
    assert!(frames >= 16, "{frames} frames");
    assert!(largest <= 1024 * 1024, "a frame of {largest} bytes");

    ranges_answer_exactly(&app, &url, &content).await;
    // A range of a large file streams too.
    let res = send(&app, media_req(&url, &[("range", "bytes=1000-")])).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let mut body = res.into_body();
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        frame.unwrap();
        frames += 1;
    }
    assert!(frames >= 16, "{frames} frames for a range");
}

#[tokio::test]
async fn media_on_s3_is_served_by_range_too() {
    let s3 = start_s3().await;
    let db = TestDb::new().await;
    let mut state = support::state_for(&db);
    state.media = s3_store(&s3.endpoint, SECRET_KEY);
    let app = server::web::app(state.clone(), support::leptos_options());
    let content = patterned(3 * 1024 * 1024 + 7);
    let stored = state
        .media
        .put(content.clone(), MediaKind::Webp)
        .await
        .unwrap();
    let url = format!("/media/{}", stored.key);
    ranges_answer_exactly(&app, &url, &content).await;
    let (s, _, _) = answer(
        &app,
        &format!("/media/{}", stored.key.replace(&stored.key[..4], "ffff")),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
