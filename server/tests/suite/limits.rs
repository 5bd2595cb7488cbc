//! Request size limits per route group, through the whole middleware stack.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::{TestDb, app_for, form_post, json, send};

#[tokio::test]
async fn oversized_headers_are_431_with_a_stable_code() {
    let db = TestDb::new().await;
    let app = app_for(&db);
    let req = Request::get("/api/health")
        .header("cookie", format!("junk={}", "x".repeat(20 * 1024)))
        .body(Body::empty())
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // Refusals carry the security headers too.
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(json(res).await["code"], "headers_too_large");
    // Ordinary headers pass.
    let req = Request::get("/api/health")
        .header("cookie", format!("ok={}", "x".repeat(4 * 1024)))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.status(), StatusCode::OK);
}

/// A form post with its `Content-Length`, as HTTP clients send it.
fn sized_post(path: &str, body: &str) -> Request<Body> {
    let mut req = form_post(path, body);
    req.headers_mut()
        .insert("content-length", body.len().to_string().parse().unwrap());
    req
}

#[tokio::test]
async fn sign_in_takes_kilobytes_while_other_calls_take_the_configured_maximum() {
    let db = TestDb::new().await;
    let app = app_for(&db);
    // 10 KiB is over the sign-in limit (8 KiB) but within MAX_BODY_BYTES (64 KiB).
    let big = format!("email=a%40b.co&password={}", "p".repeat(10 * 1024));
    let res = send(&app, sized_post("/api/auth/sign_in", &big)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(res).await["code"], "payload_too_large");
    assert_eq!(db.count("sessions").await, 0);
    // The same size elsewhere reaches the function (which reads it and answers on its own).
    let res = send(
        &app,
        sized_post(
            "/api/generations/recent",
            &format!("pad={}", "p".repeat(10 * 1024)),
        ),
    )
    .await;
    assert_ne!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Past the maximum everywhere.
    let res = send(
        &app,
        sized_post(
            "/api/generations/recent",
            &format!("pad={}", "p".repeat(70 * 1024)),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_longer_than_its_declared_length_allows_is_cut_off() {
    let db = TestDb::new().await;
    let app = app_for(&db);
    // Streamed without Content-Length: the limit applies while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20)
        .map(|i| {
            Ok(if i == 0 {
                b"email=a%40b.co&password=".to_vec()
            } else {
                vec![b'p'; 1024]
            })
        })
        .collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let req = Request::post("/api/auth/sign_in")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .unwrap();
    let res = send(&app, req).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(db.count("sessions").await, 0);
}
