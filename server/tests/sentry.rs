//! Error reporting to Sentry, against a real HTTP server on loopback that accepts Sentry
//! envelopes the way sentry.io's ingest does (`POST /api/{project}/envelope/`).
//!
//! Its own test binary: the Sentry client and the tracing subscriber are process-wide.

#[allow(dead_code)] // the suite uses the rest of it
#[path = "suite/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Request, StatusCode};
use axum::routing::post;
use support::{TestDb, send, signed_in, state_for, with_session};

/// Envelopes the stand-in received, as text.
type Received = Arc<Mutex<Vec<String>>>;

/// Starts the stand-in ingest on 127.0.0.1, on a thread and runtime of its own (flushing
/// the Sentry client blocks the test's thread), and returns its port.
fn ingest(received: Received) -> u16 {
    let app = axum::Router::new().route(
        "/api/{project}/envelope/",
        post(
            move |axum::extract::Path(project): axum::extract::Path<String>, body: String| {
                let received = received.clone();
                async move {
                    assert_eq!(project, "42", "the project id from the DSN");
                    received.lock().unwrap().push(body);
                    (StatusCode::OK, "{}")
                }
            },
        ),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap()
        })
    });
    port
}

/// The event items of every envelope received (envelopes are newline-delimited: a header,
/// then an item header and its payload per item).
fn events(received: &Received) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for envelope in received.lock().unwrap().iter() {
        let lines: Vec<&str> = envelope.lines().collect();
        for pair in lines.windows(2) {
            let Ok(header) = serde_json::from_str::<serde_json::Value>(pair[0]) else {
                continue;
            };
            if header["type"] == "event"
                && let Ok(payload) = serde_json::from_str::<serde_json::Value>(pair[1])
            {
                out.push(payload);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_server_error_reaches_sentry_with_its_request_id_and_only_the_user_id() {
    let received: Received = Arc::default();
    let port = ingest(received.clone());
    let config = server::telemetry::SentryConfig {
        dsn: domain::secret::Secret::new(format!("http://public@127.0.0.1:{port}/42")),
        traces_sample_rate: 1.0,
        environment: "test".into(),
        release: "socialcraft@test".into(),
    };
    let guard = server::telemetry::init_sentry(Some(&config)).expect("a client");
    let logs = Capture::default();
    server::telemetry::init_to(
        &server::telemetry::LogConfig {
            format: server::telemetry::LogFormat::Json,
            filter: "info".into(),
        },
        true,
        logs.clone(),
    );

    let db = TestDb::new().await;
    let state = state_for(&db);
    let session = signed_in(&state, "reporter@example.com").await;
    let settings = server::web::HttpSettings {
        sentry: true,
        ..Default::default()
    };
    server::telemetry::install_panic_hook();
    let routes = server::web::routes(state.clone(), support::leptos_options(), &settings)
        .route("/api/explode", axum::routing::get(explode));
    let app = server::web::with_middleware(routes, &state, &settings);

    // A request that works sends nothing.
    let ok = send(
        &app,
        with_session(
            Request::post("/api/gallery/page")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .header("x-request-id", "fine-request-1")
                .body(axum::body::Body::from("scope=explore"))
                .unwrap(),
            &session,
        ),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);

    // The database goes away: the same call is a 503, which must be reported once.
    db.cut().await;
    let res = send(
        &app,
        with_session(
            Request::post("/api/gallery/page?cursor=secret-query")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .header("x-request-id", "sentry-test-req-1")
                .body(axum::body::Body::from("scope=mine"))
                .unwrap(),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A handler that panics: reported once, as the panic, with its request's tags.
    let res = send(
        &app,
        Request::get("/api/explode")
            .header("x-request-id", "sentry-test-panic-1")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // Capabilities in addresses: a media key, an upload token, a gallery cursor. The host
    // header makes Sentry's layer record a whole URL, as behind a real listener.
    let stored = state
        .media
        .put(
            b"\x89PNG\r\n\x1a\nsecret picture".to_vec(),
            domain::media::MediaKind::Png,
        )
        .await
        .unwrap();
    let token = "upl0ad-T0KEN-secret-7f3a9c";
    let cursor = "CURS0R-secret-b81e44";
    let with_host = |builder: axum::http::request::Builder| {
        builder
            .header("host", "app.example.com")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let res = send(
        &app,
        with_host(Request::get(format!("/media/{}", stored.key))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(
        &app,
        with_session(
            with_host(Request::put(format!("/api/uploads/{token}"))),
            &session,
        ),
    )
    .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let res = send(
        &app,
        with_host(Request::get(format!("/explore?after={cursor}"))),
    )
    .await;
    assert!(res.status().as_u16() < 500, "{}", res.status());
    guard.flush(Some(Duration::from_secs(10)));
    let logged = logs.text();
    let prefix = stored.key.split('/').next().unwrap_or_default().to_owned();
    assert!(logged.contains("/media/redacted"), "{logged}");
    assert!(logged.contains("/api/uploads/redacted"), "{logged}");
    let sent = received.lock().unwrap().join("\n");
    for secret in [stored.key.as_str(), prefix.as_str(), token, cursor] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
        assert!(!sent.contains(secret), "{secret} sent to Sentry:\n{sent}");
    }

    let events = events(&received);
    let ours: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["tags"]["request_id"] == "sentry-test-req-1")
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "exactly one event for the failed request: {events:#?}"
    );
    let event = ours[0];
    // `error` is the protocol's default level, which the SDK leaves out.
    assert!(
        event["level"].is_null() || event["level"] == "error",
        "{event:#}"
    );
    assert_eq!(event["tags"]["route"], "/api/gallery/page");
    assert_eq!(event["user"]["id"], session.user.id.to_string());
    assert_eq!(event["environment"], "test");
    let shown = event.to_string();
    for private in [
        "reporter@example.com",
        "secret-query",
        "sc_access",
        "sc_refresh",
    ] {
        assert!(!shown.contains(private), "{private} leaked: {shown}");
    }
    let panics: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["tags"]["request_id"] == "sentry-test-panic-1")
        .collect();
    assert_eq!(panics.len(), 1, "one event for the panic: {events:#?}");
    assert!(
        panics[0].to_string().contains("boom in a handler"),
        "{:#}",
        panics[0]
    );
    assert_eq!(panics[0]["tags"]["route"], "/api/explode");
    // Nothing else: no event without a request's tags, none for the request that worked.
    assert_eq!(events.len(), 2, "{events:#?}");
    // Sampled traces went too (the rate is 1.0 here).
    let transactions = received
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.contains(r#""type":"transaction""#))
        .count();
    assert!(transactions >= 1, "no transaction arrived");
}

/// Log lines written by the subscriber, kept for the test to read.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn explode() -> &'static str {
    panic!("boom in a handler")
}
