//! Uploads through the HTTP stack against a real PostgreSQL and a real file store: the
//! bad-upload corpus (generated here), upload tokens, de-duplication with reference counts,
//! and the variants job.

use crate::support;

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::jobs::worker::{Worker, WorkerConfig};
use domain::state::AppState;
use domain::uploads::codes;
use domain::uploads::token::{UploadClaims, UploadKey};
use server::web::HttpSettings;
use server::web::ratelimit::{Limits, RateLimits};
use support::{
    Session, TestDb, form_post, get_req, json, send, signed_in, state_for, with_session,
};
use uuid::Uuid;

/// The app with rate limits out of the way (they have their own tests).
fn app(state: &AppState) -> Router {
    let settings = HttpSettings {
        rate_limits: RateLimits::new(&Limits {
            upload_per_minute: 10_000,
            api_per_minute: 10_000,
            tier_api_per_minute: [10_000; 3],
            ..Limits::default()
        }),
        ..HttpSettings::default()
    };
    server::web::app_with(state.clone(), support::leptos_options(), &settings)
}

fn media_root(state: &AppState, db: &TestDb) -> std::path::PathBuf {
    let _ = state;
    std::env::temp_dir()
        .join(format!("socialcraft-test-{}", std::process::id()))
        .join("media")
        .join(&db.name)
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

async fn ticket(
    router: &Router,
    who: &Session,
    name: &str,
    size: usize,
    mime: &str,
    sha: Option<&str>,
) -> Result<String, (StatusCode, serde_json::Value)> {
    let mut body = format!(
        "filename={name}&size={size}&mime={}",
        mime.replace('+', "%2B")
    );
    if let Some(h) = sha {
        body.push_str(&format!("&sha256={h}"));
    }
    let res = send(
        router,
        with_session(form_post("/api/assets/ticket", &body), who),
    )
    .await;
    let status = res.status();
    let v = json(res).await;
    if status == StatusCode::OK {
        Ok(v["url"].as_str().expect("url").to_owned())
    } else {
        Err((status, v))
    }
}

async fn put(
    router: &Router,
    who: &Session,
    url: &str,
    bytes: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    // Browsers always send the length; the body limit judges it before reading.
    let req = Request::put(url)
        .header("content-type", "application/octet-stream")
        .header("content-length", bytes.len())
        .body(Body::from(bytes))
        .expect("request");
    let res = send(router, with_session(req, who)).await;
    let status = res.status();
    (status, json(res).await)
}

/// Declares and uploads `bytes`.
async fn upload(
    router: &Router,
    who: &Session,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    match ticket(router, who, name, bytes.len(), mime, None).await {
        Ok(url) => put(router, who, &url, bytes).await,
        Err(e) => e,
    }
}

fn code(v: &serde_json::Value) -> &str {
    v["fields"][0]["code"].as_str().unwrap_or("<none>")
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 5) as u8, 200, 255])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 3) as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A PNG whose header claims `w` x `h` with almost no data: a decompression bomb's shape.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

fn svg(body: &str) -> Vec<u8> {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">{body}<rect width="64" height="64" fill="#2a9d8f"/></svg>"##
    )
    .into_bytes()
}

async fn storage_used(db: &TestDb, user: Uuid) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut c = db.conn().await;
    domain::db::schema::users::table
        .find(user)
        .select(domain::db::schema::users::storage_bytes)
        .first(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_bad_upload_corpus_is_refused_and_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let me = signed_in(&state, "corpus@example.com").await;

    // A good PNG first would leave rows; every case here must leave none.
    let truncated = {
        let p = png(64, 64);
        p[..p.len() / 2].to_vec()
    };
    let polyglot = {
        let mut j = jpeg(32, 32);
        j.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00hello.txtPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
        j
    };
    let mut png_html = b"\x89PNG\r\n\x1a\n".to_vec();
    png_html.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "wrong magic",
            "image/png",
            jpeg(16, 16),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::TYPE_MISMATCH,
        ),
        (
            "not an image",
            "image/png",
            b"just some text, not a picture".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_TYPE,
        ),
        (
            "PNG header then HTML",
            "image/png",
            png_html,
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::DECODE_FAILED,
        ),
        (
            "JPEG/ZIP polyglot",
            "image/jpeg",
            polyglot,
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::TRAILING_DATA,
        ),
        (
            "SVG script",
            "image/svg+xml",
            svg("<script>alert(1)</script>"),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_UNSAFE,
        ),
        (
            "SVG onload",
            "image/svg+xml",
            svg(r#"<g onload="alert(1)"/>"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_UNSAFE,
        ),
        (
            "SVG foreignObject",
            "image/svg+xml",
            svg(
                r#"<foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>"#,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_UNSAFE,
        ),
        (
            "SVG external href",
            "image/svg+xml",
            svg(r#"<use xlink:href="https://evil.example/sprite.svg#a"/>"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_UNSAFE,
        ),
        (
            "SVG javascript URL",
            "image/svg+xml",
            svg(r#"<a href="javascript:alert(1)"><circle r="4"/></a>"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_UNSAFE,
        ),
        (
            "1 x 100000 PNG",
            "image/png",
            png(1, 100_000),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::IMAGE_TOO_LARGE,
        ),
        (
            "50000 x 50000 claimed",
            "image/png",
            png_header_only(50_000, 50_000),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::IMAGE_TOO_LARGE,
        ),
        (
            "truncated PNG",
            "image/png",
            truncated,
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::DECODE_FAILED,
        ),
        (
            "zero bytes",
            "image/png",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::EMPTY,
        ),
        (
            "11 MB",
            "image/png",
            vec![0u8; 11_000_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
        ),
    ];
    for (what, mime, bytes, status, expected) in cases {
        let started = std::time::Instant::now();
        let (got, body) = upload(&router, &me, "file.png", mime, bytes).await;
        assert_eq!((got, code(&body)), (status, expected), "{what}: {body}");
        assert!(
            !body["message"].as_str().unwrap_or("").is_empty(),
            "{what}: a readable message"
        );
        // Bombs fail from the header, long before any decode could finish.
        if what.contains("50000") {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what} took {:?}",
                started.elapsed()
            );
        }
    }

    // A body longer than declared, and one shorter.
    let url = ticket(&router, &me, "a.png", 100, "image/png", None)
        .await
        .unwrap();
    let (s, b) = put(&router, &me, &url, png(32, 32)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, codes::SIZE_MISMATCH),
        "{b}"
    );
    let real = png(32, 32);
    let url = ticket(&router, &me, "a.png", real.len() + 10, "image/png", None)
        .await
        .unwrap();
    let (s, b) = put(&router, &me, &url, real.clone()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, codes::SIZE_MISMATCH),
        "{b}"
    );
    // A body over the cap is refused by its declared length before it is read.
    let url = ticket(&router, &me, "a.png", 1000, "image/png", None)
        .await
        .unwrap();
    let (s, _) = put(&router, &me, &url, vec![0u8; 11_000_000]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // A checksum that does not match.
    let url = ticket(
        &router,
        &me,
        "a.png",
        real.len(),
        "image/png",
        Some(&"0".repeat(64)),
    )
    .await
    .unwrap();
    let (s, b) = put(&router, &me, &url, real).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, codes::SHA256_MISMATCH),
        "{b}"
    );

    // Nothing stored, nothing recorded, no storage held, no spool left.
    assert_eq!(files_under(&media_root(&state, &db)), Vec::<String>::new());
    for table in ["assets", "upload_blobs", "media_blobs", "jobs"] {
        assert_eq!(db.count(table).await, 0, "{table}");
    }
    assert_eq!(storage_used(&db, me.user.id).await, 0);
    assert_eq!(files_under(&state.uploads.spool_dir), Vec::<String>::new());
}

#[tokio::test]
async fn upload_tokens_are_single_use_unforgeable_personal_and_short_lived() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let me = signed_in(&state, "tokens@example.com").await;
    let other = signed_in(&state, "other@example.com").await;
    let bytes = png(40, 30);

    // Someone else's URL.
    let url = ticket(&router, &me, "t.png", bytes.len(), "image/png", None)
        .await
        .unwrap();
    let (s, b) = put(&router, &other, &url, bytes.clone()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, codes::TOKEN_WRONG_USER),
        "{b}"
    );
    // Tampered with: one character of the claims changed.
    let mut tampered = url.clone().into_bytes();
    let i = "/api/uploads/".len() + 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let (s, b) = put(
        &router,
        &me,
        &String::from_utf8(tampered).unwrap(),
        bytes.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, codes::TOKEN_INVALID),
        "{b}"
    );
    // Used once, then refused.
    let (s, b) = put(&router, &me, &url, bytes.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = put(&router, &me, &url, bytes.clone()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, codes::TOKEN_USED),
        "{b}"
    );
    // Expired: signed with the real key, 15 minutes and a second ago.
    let key = UploadKey::from_secret(support::TEST_SECRET);
    let expired = key.sign(&UploadClaims {
        ticket: Uuid::new_v4(),
        user: me.user.id,
        size: bytes.len() as u64,
        mime: domain::uploads::Mime::Png,
        sha256: None,
        prefix: "0123456789abcdef".into(),
        exp: chrono::Utc::now().timestamp() - 1,
    });
    let (s, b) = put(
        &router,
        &me,
        &format!("/api/uploads/{expired}"),
        bytes.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, codes::TOKEN_EXPIRED),
        "{b}"
    );
    // Without a session: 401.
    let url = ticket(&router, &me, "t.png", bytes.len(), "image/png", None)
        .await
        .unwrap();
    let req = Request::put(&url).body(Body::from(bytes)).unwrap();
    assert_eq!(send(&router, req).await.status(), StatusCode::UNAUTHORIZED);
    // Only the one good upload was kept.
    assert_eq!(db.count("assets").await, 1);
}

fn start_worker(
    db: &TestDb,
    state: &AppState,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let handler = domain::uploads::variants::UploadVariantsHandler::new(
        state.db.clone(),
        state.media.clone(),
    );
    let config = WorkerConfig {
        id: format!("test-{}", Uuid::new_v4().simple()),
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(state.db.clone(), Some(db.url.clone()), config).handle(handler);
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Polls the asset until its variants are ready (or failed).
async fn wait_ready(router: &Router, who: &Session, id: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let res = send(
            router,
            with_session(form_post("/api/assets/get", &format!("id={id}")), who),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let v = json(res).await;
        if v["state"] != "Processing" {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "variants not made in time: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch(router: &Router, url: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = send(router, get_req(url)).await;
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, support::bytes(res).await)
}

#[tokio::test]
async fn identical_files_are_stored_once_and_outlive_one_owner() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let (stop, task) = start_worker(&db, &state);
    let a = signed_in(&state, "a@example.com").await;
    let b = signed_in(&state, "b@example.com").await;

    // A JPEG with an EXIF block (orientation and a GPS IFD naming a place) that neither the
    // variants nor the downloaded original may carry.
    let photo = {
        let plain = jpeg(900, 600);
        let tiff: Vec<u8> = [
            &b"II*\x00\x08\x00\x00\x00"[..],
            &[2, 0],
            &[0x12, 0x01, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0],
            &[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0],
            &[0, 0, 0, 0],
            // The GPS IFD: GPSMapDatum, 12 ASCII bytes at offset 56.
            &[1, 0],
            &[0x12, 0, 2, 0, 12, 0, 0, 0, 56, 0, 0, 0],
            &[0, 0, 0, 0],
            b"SECRETPLACE\x00",
        ]
        .concat();
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    };

    let (s, first) = upload(&router, &a, "photo.jpg", "image/jpeg", photo.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["duplicate"], false);
    let a_id = first["asset"]["id"].as_str().unwrap().to_owned();
    // The same file again from the same user: their existing asset, nothing new held.
    let (s, again) = upload(&router, &a, "photo-copy.jpg", "image/jpeg", photo.clone()).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(
        (again["duplicate"].clone(), again["asset"]["id"].clone()),
        (true.into(), first["asset"]["id"].clone())
    );
    // The same file from another user: their own asset on the stored content.
    let (s, theirs) = upload(&router, &b, "mine.jpg", "image/jpeg", photo.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert_eq!(theirs["duplicate"], true);
    let b_id = theirs["asset"]["id"].as_str().unwrap().to_owned();
    assert_ne!(a_id, b_id);
    assert_eq!(db.count("upload_blobs").await, 1);
    assert_eq!(db.count("assets").await, 2);
    assert_eq!(storage_used(&db, a.user.id).await, photo.len() as i64);
    assert_eq!(storage_used(&db, b.user.id).await, photo.len() as i64);
    {
        let mut c = db.conn().await;
        assert_eq!(
            domain::uploads::records::duplicates_avoided(&mut c)
                .await
                .unwrap(),
            2
        );
    }

    let ready = wait_ready(&router, &a, &a_id).await;
    assert_eq!(ready["state"], "Ready", "{ready}");
    assert_eq!(
        (ready["width"].clone(), ready["height"].clone()),
        (900.into(), 600.into())
    );
    let original = ready["original_url"].as_str().unwrap().to_owned();
    let (s, h, body) = fetch(&router, &original).await;
    assert_eq!(s, StatusCode::OK);
    // The original is the uploaded picture without its metadata: same pixels, no GPS.
    assert!(photo.windows(11).any(|w| w == b"SECRETPLACE"));
    assert!(
        !body.windows(11).any(|w| w == b"SECRETPLACE"),
        "the original kept its GPS block"
    );
    assert!(
        !body.windows(4).any(|w| w == b"Exif"),
        "the original kept EXIF"
    );
    assert_eq!(
        image::load_from_memory(&body).unwrap().to_rgb8(),
        image::load_from_memory(&photo).unwrap().to_rgb8()
    );
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    for (field, width) in [("thumb_url", 320), ("preview_url", 720), ("full_url", 900)] {
        let url = ready[field].as_str().unwrap();
        let (s, h, body) = fetch(&router, url).await;
        assert_eq!(s, StatusCode::OK, "{field}");
        assert_eq!(h["content-type"], "image/webp");
        assert!(
            h.get("content-disposition").is_none(),
            "variants are inline"
        );
        let img = image::load_from_memory(&body).unwrap();
        assert_eq!(img.width(), width, "{field}");
        assert!(!body.windows(4).any(|w| w == b"Exif"), "{field} kept EXIF");
    }

    // A deletes: B's asset still serves, from the same files.
    let res = send(
        &router,
        with_session(form_post("/api/assets/delete", &format!("id={a_id}")), &a),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(storage_used(&db, a.user.id).await, 0);
    let b_ready = wait_ready(&router, &b, &b_id).await;
    assert_eq!(b_ready["original_url"], ready["original_url"]);
    for field in ["original_url", "thumb_url", "preview_url", "full_url"] {
        let (s, _, _) = fetch(&router, b_ready[field].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{field} after the other owner deleted");
    }
    // B deletes: the content and its files go.
    let res = send(
        &router,
        with_session(form_post("/api/assets/delete", &format!("id={b_id}")), &b),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    for field in ["original_url", "thumb_url", "preview_url", "full_url"] {
        let (s, _, _) = fetch(&router, b_ready[field].as_str().unwrap()).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{field} after the last owner deleted"
        );
    }
    assert_eq!(db.count("upload_blobs").await, 0);
    assert_eq!(files_under(&media_root(&state, &db)), Vec::<String>::new());
    let _ = stop.send(());
    let _ = task.await;
}

#[tokio::test]
async fn a_clean_svg_is_kept_and_drawn_for_its_variants() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let (stop, task) = start_worker(&db, &state);
    let me = signed_in(&state, "svg@example.com").await;
    // With what an editor adds and the sanitiser leaves out or rewrites: a comment, metadata,
    // single quotes, an entity, self-closing tags.
    let drawing = br##"<?xml version="1.0"?><!-- Made with an editor --><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><metadata><rdf xmlns="urn:x"/></metadata><title>Tom &amp; Jerry</title><rect width='64' height="64" fill="#2a9d8f"/><circle cx="32" cy="32" r="20" fill="#e76f51"/></svg>"##.to_vec();
    let (s, v) = upload(&router, &me, "logo.svg", "image/svg+xml", drawing.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["asset"]["id"].as_str().unwrap().to_owned();
    let ready = wait_ready(&router, &me, &id).await;
    assert_eq!(ready["state"], "Ready", "{ready}");
    let (_, h, body) = fetch(&router, ready["original_url"].as_str().unwrap()).await;
    // Issue 16: the original stored and served is the sanitised document, not the upload.
    let sanitised = domain::uploads::svg::sanitize(std::str::from_utf8(&drawing).unwrap())
        .unwrap()
        .svg;
    assert_eq!(String::from_utf8(body).unwrap(), sanitised);
    assert_ne!(sanitised.as_bytes(), &drawing[..]);
    assert!(!sanitised.contains("editor") && !sanitised.contains("metadata"));
    assert_eq!(h["content-type"], "image/svg+xml");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let (_, _, full) = fetch(&router, ready["full_url"].as_str().unwrap()).await;
    let img = image::load_from_memory(&full).unwrap().to_rgba8();
    assert_eq!((img.width(), img.height()), (1024, 1024));
    // Not blank: the background's teal, and the circle's orange at the centre.
    let centre = img.get_pixel(512, 512).0;
    assert!(centre[0] > 200 && centre[3] == 255, "{centre:?}");
    let corner = img.get_pixel(5, 5).0;
    assert!(corner[1] > 130 && corner[0] < 80, "{corner:?}");
    let _ = stop.send(());
    let _ = task.await;
}

#[tokio::test]
async fn brand_kits_take_only_their_owners_logo_and_travel_with_a_generation() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let (stop, task) = start_worker(&db, &state);
    let me = signed_in(&state, "kit@example.com").await;
    let other = signed_in(&state, "kit-other@example.com").await;
    let (s, mine) = upload(&router, &me, "logo.png", "image/png", png(200, 80)).await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let logo = mine["asset"]["id"].as_str().unwrap().to_owned();
    let (s, theirs) = upload(&router, &other, "theirs.png", "image/png", png(90, 90)).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    let their_logo = theirs["asset"]["id"].as_str().unwrap().to_owned();
    wait_ready(&router, &me, &logo).await;

    let save = |body: String, who: &Session| {
        let req = with_session(form_post("/api/brands/save", &body), who);
        let router = router.clone();
        async move {
            let res = send(&router, req).await;
            let status = res.status();
            (status, json(res).await)
        }
    };
    // Someone else's upload as the logo: refused beside the field.
    let (s, v) = save(
        format!("name=Acme&colors=%231d3557&font=inter&logo={their_logo}"),
        &me,
    )
    .await;
    assert_eq!(
        (s, v["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("logo")),
        "{v}"
    );
    // Bad colours and fonts: every field at once.
    let (s, v) = save("name=&colors=red&font=comic".into(), &me).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["fields"].as_array().unwrap().len(), 3, "{v}");
    let (s, kit) = save(
        format!("name=Acme&colors=%231D3557%2C%23e63946&font=serif&logo={logo}"),
        &me,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{kit}");
    assert_eq!(kit["colors"], serde_json::json!(["#1d3557", "#e63946"]));
    assert!(kit["logo_url"].as_str().unwrap().starts_with("/media/"));
    // The name is the owner's own: a second "Acme" is refused.
    let (s, v) = save("name=Acme&colors=%23000&font=inter".to_owned(), &me).await;
    assert_eq!(
        (s, v["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("taken")),
        "{v}"
    );
    // Another user cannot see or use it.
    let res = send(
        &router,
        with_session(form_post("/api/brands/list", ""), &other),
    )
    .await;
    assert_eq!(json(res).await, serde_json::json!([]));
    let kit_id = kit["id"].as_str().unwrap();
    let submit = |who: &Session| {
        with_session(
            form_post(
                "/api/generations/submit",
                &format!(
                    "prompt=Brand+launch&style=bold&format=instagram_square&variations=1&brand={kit_id}"
                ),
            ),
            who,
        )
    };
    let res = send(&router, submit(&other)).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Its owner's generation carries a copy of the kit, logo picture included.
    let res = send(&router, submit(&me)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let generation = json(res).await;
    let mut c = db.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let brand: Option<serde_json::Value> = domain::db::schema::generations::table
        .find(Uuid::parse_str(generation["id"].as_str().unwrap()).unwrap())
        .select(domain::db::schema::generations::brand)
        .first(&mut c)
        .await
        .unwrap();
    let kit: domain::brands::BrandKit = serde_json::from_value(brand.expect("kit copied")).unwrap();
    assert_eq!(kit.font, domain::brands::Font::Serif);
    assert_eq!(kit.colors, ["#1d3557", "#e63946"]);
    assert!(
        kit.logo_key
            .is_some_and(|k| domain::media::parse_key(&k).is_some())
    );
    let _ = stop.send(());
    let _ = task.await;
}

/// An SVG `<svg>` document around `body`, as bytes.
fn svg_doc(prolog: &str, body: &str) -> Vec<u8> {
    format!(
        r##"{prolog}<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">{body}<rect width="16" height="16" fill="#2a9d8f"/></svg>"##
    )
    .into_bytes()
}

#[tokio::test]
async fn svg_declarations_are_refused_sniffing_agrees_with_parsing_and_css_is_tokenized() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let me = signed_in(&state, "xml@example.com").await;
    let laughs = {
        let mut d = String::from(r#"<!DOCTYPE svg [<!ENTITY a0 "lol">"#);
        for i in 1..10 {
            d.push_str(&format!(
                r#"<!ENTITY a{i} "{}">"#,
                format!("&a{};", i - 1).repeat(10)
            ));
        }
        d.push_str("]>");
        d
    };
    let utf16: Vec<u8> =
        "\u{feff}<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
    let refused: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("billion laughs", svg_doc(&laughs, "<text>&a9;</text>"), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_DOCTYPE),
        (
            "external entity",
            svg_doc(r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>"#, "<text>&x;</text>"),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_DOCTYPE,
        ),
        (
            "parameter entity",
            svg_doc(r#"<!DOCTYPE svg [<!ENTITY % p SYSTEM "https://evil.example/x.dtd"> %p;]>"#, ""),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_DOCTYPE,
        ),
        (
            "lower-case doctype",
            svg_doc(r#"<!doctype svg [<!entity x "y">]>"#, ""),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_DOCTYPE,
        ),
        (
            "BOM, declaration and PI before a DOCTYPE",
            svg_doc("\u{feff}<?xml version=\"1.0\"?><?x y?><!DOCTYPE svg [<!ENTITY x \"y\">]>", ""),
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::SVG_DOCTYPE,
        ),
        ("an entity declared inside", svg_doc("", r#"<!ENTITY x "y">"#), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_DOCTYPE),
        ("an undeclared entity", svg_doc("", "<text>&xxe;</text>"), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_INVALID),
        ("UTF-16", utf16, StatusCode::UNSUPPORTED_MEDIA_TYPE, codes::UNSUPPORTED_TYPE),
        (
            "<svg only in a comment",
            br#"<!-- <svg xmlns="http://www.w3.org/2000/svg"> --><html><script>alert(1)</script></html>"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_TYPE,
        ),
        (
            "<svg only in a PI",
            br#"<?x <svg xmlns="http://www.w3.org/2000/svg"> ?><html/>"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_TYPE,
        ),
        (
            "<svg only after a > inside an entity value",
            br#"<!DOCTYPE html [<!ENTITY a "> <svg xmlns='http://www.w3.org/2000/svg'>">]><html/>"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_TYPE,
        ),
        (
            "<svg only in an internal subset",
            br#"<!DOCTYPE html [<!ENTITY e "<svg xmlns='http://www.w3.org/2000/svg'>">]><html>&e;</html>"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_TYPE,
        ),
        ("css escape u\\72l(", svg_doc("", r"<style>rect { fill: u\72l(https://evil.example/p) }</style>"), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_UNSAFE),
        ("css escape \\75 rl(", svg_doc("", r#"<rect style="fill: \75 rl(https://evil.example/p)"/>"#), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_UNSAFE),
        ("css escape @\\69mport", svg_doc("", r"<style>@\69mport 'https://evil.example/c.css';</style>"), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_UNSAFE),
        ("css image-set", svg_doc("", r"<style>rect { fill: image-set('https://evil.example/a.png' 1x) }</style>"), StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_UNSAFE),
    ];
    for (what, bytes, status, expected) in refused {
        let (got, body) = upload(&router, &me, "x.svg", "image/svg+xml", bytes).await;
        assert_eq!((got, code(&body)), (status, expected), "{what}: {body}");
        assert!(!body["message"].as_str().unwrap_or("").is_empty(), "{what}");
    }
    assert_eq!(db.count("assets").await, 0);
    assert_eq!(db.count("upload_blobs").await, 0);
    assert_eq!(files_under(&media_root(&state, &db)), Vec::<String>::new());

    // What is harmless is taken, and stored without it.
    let taken: Vec<(&str, Vec<u8>)> = vec![
        (
            "a bare DOCTYPE, as Illustrator writes",
            svg_doc(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n",
                "",
            ),
        ),
        (
            "a DOCTYPE inside a comment",
            svg_doc("<!-- <!DOCTYPE svg [<!ENTITY x 'y'>]> -->", ""),
        ),
        (
            "an ENTITY inside CDATA",
            svg_doc(
                "",
                "<style><![CDATA[ /* <!ENTITY x 'y'> */ circle { fill: url(#g) } ]]></style>",
            ),
        ),
    ];
    for (what, bytes) in taken {
        let (got, body) = upload(&router, &me, "x.svg", "image/svg+xml", bytes).await;
        assert_eq!(got, StatusCode::CREATED, "{what}: {body}");
        let (_, _, stored) = fetch(&router, body["asset"]["original_url"].as_str().unwrap()).await;
        let stored = String::from_utf8(stored).unwrap();
        assert!(
            stored.starts_with("<svg") && !stored.contains("<!"),
            "{what}: {stored}"
        );
    }
}

#[tokio::test]
async fn svg_inspection_stays_within_its_memory_budget_and_the_process_stays_up() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let me = signed_in(&state, "budget@example.com").await;
    let use_bomb = {
        let mut b = String::from(r#"<defs><rect id="l0" width="1" height="1"/>"#);
        for i in 1..10 {
            b.push_str(&format!(r#"<g id="l{i}">"#));
            for _ in 0..10 {
                b.push_str(&format!(r##"<use href="#l{}"/>"##, i - 1));
            }
            b.push_str("</g>");
        }
        b.push_str(r##"</defs><use href="#l9"/>"##);
        b
    };
    let cases: Vec<(&str, String)> = vec![
        ("use bomb", use_bomb),
        ("50,000 nested groups", format!("{}{}", "<g>".repeat(50_000), "</g>".repeat(50_000))),
        ("100,000 attributes on one element", format!("<rect{}/>", (0..100_000).map(|i| format!(" a{i}=\"\"")).collect::<String>())),
        (
            "a pattern tile 100,000 units a side",
            r##"<defs><pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse"><rect width="9" height="9"/></pattern></defs><rect width="16" height="16" fill="url(#p)"/>"##.to_owned(),
        ),
        (
            "twenty nested layers, each 25 canvases",
            format!(
                "{}<rect x=\"-32\" y=\"-32\" width=\"80\" height=\"80\"/>{}",
                r#"<g opacity="0.9">"#.repeat(20),
                "</g>".repeat(20)
            ),
        ),
    ];
    for (what, body) in cases {
        let (got, v) = upload(&router, &me, "x.svg", "image/svg+xml", svg_doc("", &body)).await;
        assert_eq!(
            (got, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, codes::SVG_TOO_COMPLEX),
            "{what}: {v}"
        );
        assert!(
            v["message"].as_str().unwrap_or("").contains("too complex"),
            "{what}: {v}"
        );
    }
    assert_eq!(db.count("assets").await, 0);
    assert_eq!(files_under(&media_root(&state, &db)), Vec::<String>::new());
    // Still up, and a drawing at the edge of the limits goes through and is drawn.
    let (stop, task) = start_worker(&db, &state);
    let edge = format!(
        r##"{}<defs><circle id="d" r="2"/></defs><g opacity="0.5"><use href="#d" x="4" y="4"/></g>{}"##,
        "<g>".repeat(90),
        "</g>".repeat(90)
    );
    let (got, v) = upload(
        &router,
        &me,
        "edge.svg",
        "image/svg+xml",
        svg_doc("", &edge),
    )
    .await;
    assert_eq!(got, StatusCode::CREATED, "{v}");
    let ready = wait_ready(&router, &me, v["asset"]["id"].as_str().unwrap()).await;
    assert_eq!(ready["state"], "Ready", "{ready}");
    let _ = stop.send(());
    let _ = task.await;
}

/// Issue 16: an upload whose commit went through but whose answer was lost (the connection
/// dropped while PostgreSQL waited after committing) is answered as stored, keeps its file
/// and its storage, instead of "briefly unavailable, try again".
///
/// Real parts only: a trigger makes the recording transaction's commit wait for a
/// synchronous standby that does not exist, which PostgreSQL does after the commit is
/// durable; the test then terminates that server process, as a network cut would.
#[tokio::test]
async fn an_upload_committed_whose_answer_was_lost_is_answered_as_stored() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let me = signed_in(&state, "lost@example.com").await;
    db.batch(
        "CREATE FUNCTION wait_for_standby() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM set_config('synchronous_commit', 'on', true); RETURN NEW; END $$;
         CREATE TRIGGER wait_for_standby AFTER INSERT ON assets
         FOR EACH ROW EXECUTE FUNCTION wait_for_standby();",
    )
    .await;
    // Every other commit in the cluster (other tests share it) stays local.
    db.exec("ALTER SYSTEM SET synchronous_commit = 'local'")
        .await;
    db.exec("SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        .await;
    db.exec("SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let bytes = png(24, 24);
    let size = bytes.len() as i64;
    let url = ticket(&router, &me, "lost.png", bytes.len(), "image/png", None)
        .await
        .unwrap();
    let put_task = {
        let router = router.clone();
        let me = me.clone();
        tokio::spawn(async move { put(&router, &me, &url, bytes).await })
    };
    // Wait for the commit to be waiting, then cut its connection.
    let mut terminated = false;
    for _ in 0..100 {
        #[derive(diesel::QueryableByName)]
        struct Cut {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            done: bool,
        }
        use diesel_async::RunQueryDsl;
        let mut c = db.conn().await;
        let rows: Vec<Cut> = diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
             WHERE datname = '{}' AND wait_event = 'SyncRep'",
            db.name
        ))
        .load(&mut c)
        .await
        .unwrap();
        if rows.iter().any(|r| r.done) {
            terminated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered = tokio::time::timeout(Duration::from_secs(20), put_task).await;
    // Put the cluster back before judging.
    db.exec("ALTER SYSTEM RESET synchronous_standby_names")
        .await;
    db.exec("SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.exec("ALTER SYSTEM RESET synchronous_commit").await;
    db.exec("SELECT pg_reload_conf()").await;

    assert!(terminated, "the recording commit never waited");
    let (status, body) = answered.expect("the upload answered").unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(db.count("assets").await, 1);
    assert_eq!(storage_used(&db, me.user.id).await, size);
    let (got, _, file) = fetch(&router, body["asset"]["original_url"].as_str().unwrap()).await;
    assert_eq!(got, StatusCode::OK);
    assert!(!file.is_empty());
}
