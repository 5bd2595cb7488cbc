//! The creation pipeline end to end, against real PostgreSQL and a real media store: a
//! submission becomes a job, the worker makes every variation with its variants, the live
//! stream reports it, and the HTTP provider copes with a real (loopback) image API's replies.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use domain::create::OpenAiSettings;
use domain::create::openai::OpenAi;
use domain::create::pipeline::GenerateHandler;
use domain::create::provider::{Builtin, ImageProvider};
use domain::create::service;
use domain::create::{GenerationStatus, GenerationView, Submission};
use domain::jobs::Backoff;
use domain::jobs::worker::{Worker, WorkerConfig};
use domain::secret::Secret;
use domain::state::{AppState, CreateSettings};
use http_body_util::BodyExt;
use support::{TestDb, get_req, send, state_for, with_session};
use tower::ServiceExt;
use uuid::Uuid;

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("worker stops in time")
            .expect("worker task");
    }
}

fn start_worker(db: &TestDb, state: &AppState, providers: Vec<Arc<dyn ImageProvider>>) -> Running {
    let handler = GenerateHandler::new(state.db.clone(), state.media.clone(), providers);
    let config = WorkerConfig {
        id: format!("test-{}", Uuid::new_v4().simple()),
        concurrency: 2,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        backoff: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        shutdown_grace: Duration::from_secs(20),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Worker::new(state.db.clone(), Some(db.url.clone()), config).handle(handler);
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

fn submission(prompt: &str, format: &str, variations: &str) -> Submission {
    domain::create::validate_submission(prompt, "vibrant", format, variations).expect("valid")
}

/// Waits until the generation is final, failing after `secs`.
async fn wait_final(state: &AppState, owner: Uuid, id: Uuid, secs: u64) -> GenerationView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let view = service::view(state, owner, id)
            .await
            .expect("view")
            .expect("exists");
        if view.status.is_final() {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "generation not final in {secs}s: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch(app: &Router, url: &str) -> (StatusCode, String, Vec<u8>) {
    let res = send(app, get_req(url)).await;
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, ctype, bytes)
}

#[tokio::test]
async fn a_submission_becomes_four_images_with_variants_served_from_media() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let app = server::web::app(state.clone(), support::leptos_options());
    let session = support::signed_in(&state, "maker@example.com").await;
    let view = service::submit(
        &state,
        session.user,
        submission("Summer sale on rooftop tours", "instagram_portrait", ""),
    )
    .await
    .expect("submit");
    assert_eq!(view.variations, 4);

    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let done = wait_final(&state, session.user.id, view.id, 60).await;
    worker.shutdown().await;

    assert_eq!(done.status, GenerationStatus::Succeeded, "{done:?}");
    assert_eq!(done.progress, 100);
    assert_eq!(done.images.len(), 4);
    assert_eq!(db.count("images").await, 4);
    assert_eq!(db.count("jobs WHERE status = 'succeeded'").await, 1);
    assert_eq!(
        db.count("generations WHERE started_at IS NOT NULL AND finished_at >= started_at")
            .await,
        1,
        "timings recorded"
    );
    let mut hashes = std::collections::HashSet::new();
    for (i, img) in done.images.iter().enumerate() {
        assert_eq!(usize::from(img.variation), i);
        assert_eq!((img.width, img.height), (1080, 1350));
        let (status, ctype, png) = fetch(&app, &img.png_url).await;
        assert_eq!((status, ctype.as_str()), (StatusCode::OK, "image/png"));
        let decoded = image::load_from_memory(&png).expect("png decodes");
        assert_eq!((decoded.width(), decoded.height()), (1080, 1350));
        hashes.insert(png.clone());
        for (url, w, h) in [
            (&img.small_url, 320, 400),
            (&img.medium_url, 720, 900),
            (&img.full_url, 1080, 1350),
        ] {
            let (status, ctype, webp) = fetch(&app, url).await;
            assert_eq!(
                (status, ctype.as_str()),
                (StatusCode::OK, "image/webp"),
                "{url}"
            );
            let decoded = image::load_from_memory(&webp).expect("webp decodes");
            assert_eq!((decoded.width(), decoded.height()), (w, h), "{url}");
            assert!(webp.len() < png.len(), "the WebP is smaller than the PNG");
        }
    }
    assert_eq!(hashes.len(), 4, "each variation is a different picture");

    // The create page shows the creator's finished images with a srcset over the variants.
    let page = support::text(send(&app, with_session(get_req("/"), &session)).await).await;
    assert!(
        page.contains(&done.images[0].medium_url),
        "image on the page"
    );
    assert!(page.contains("320w"), "srcset");
}

#[tokio::test]
async fn a_rerun_job_keeps_stored_variations_and_never_duplicates_them() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let owner = support::signed_in(&state, "maker@example.com").await.user;
    let view = service::submit(&state, owner, submission("Grand opening", "linkedin", "2"))
        .await
        .unwrap();
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let done = wait_final(&state, owner.id, view.id, 60).await;
    worker.shutdown().await;
    assert_eq!(done.status, GenerationStatus::Succeeded);

    // As if the worker had died after storing variation 0 only: forget variation 1 and
    // requeue the job.
    db.batch(&format!(
        "DELETE FROM images WHERE generation_id = '{id}' AND variation = 1; \
         UPDATE generations SET status = 'running', progress = 50 WHERE id = '{id}'; \
         UPDATE jobs SET status = 'queued', run_at = now(), finished_at = NULL",
        id = view.id
    ))
    .await;
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let again = wait_final(&state, owner.id, view.id, 60).await;
    worker.shutdown().await;
    assert_eq!(again.status, GenerationStatus::Succeeded);
    assert_eq!(again.images.len(), 2);
    assert_eq!(again.images[0], done.images[0], "variation 0 untouched");
    assert_eq!(db.count("images").await, 2);
}

/// Every notification on `channel`, as it arrives, from a LISTEN connection of its own; the
/// receiver's first message (`None`) says the subscription is in place.
fn listen(
    db: &TestDb,
    channel: &'static str,
) -> tokio::sync::mpsc::UnboundedReceiver<Option<String>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(domain::db::listener::listen(
        db.url.clone(),
        channel,
        move |payload| {
            let _ = tx.send(payload.map(str::to_owned));
        },
    ));
    rx
}

/// The next notification's payload, waiting at most `secs`.
async fn next_note(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
    secs: u64,
) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .ok()
        .flatten()
        .flatten()
}

#[tokio::test]
async fn a_submission_and_each_step_of_its_generation_are_announced_after_commit() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let mut generations = listen(&db, domain::create::records::CHANNEL);
    let mut queue = listen(&db, domain::jobs::CHANNEL);
    for rx in [&mut generations, &mut queue] {
        let subscribed = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(subscribed, Ok(Some(None))), "listening");
    }
    let owner = support::signed_in(&state, "maker@example.com").await.user;
    let view = service::submit(&state, owner, submission("Spring sale", "linkedin", "1"))
        .await
        .unwrap();
    // No trigger sends these any more: the service does, once the rows are committed.
    assert_eq!(
        next_note(&mut queue, 5).await.as_deref(),
        Some(domain::create::GENERATE_JOB)
    );
    let id = view.id.to_string();
    assert_eq!(
        next_note(&mut generations, 5).await.as_deref(),
        Some(id.as_str())
    );

    // The worker announces running, progress and success: at least three more.
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let done = wait_final(&state, owner.id, view.id, 60).await;
    worker.shutdown().await;
    assert_eq!(done.status, GenerationStatus::Succeeded);
    let mut seen = 0;
    while let Some(payload) = next_note(&mut generations, 1).await {
        assert_eq!(payload, id);
        seen += 1;
    }
    assert!(seen >= 3, "{seen} notifications for the worker's steps");
}

/// Reads an SSE response to its end: (event name, data) pairs.
async fn read_events(res: axum::response::Response, secs: u64) -> Vec<(String, serde_json::Value)> {
    let mut body = res.into_body();
    let mut text = String::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("frame").into_data() {
                text.push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(secs), read)
        .await
        .expect("the stream ends after a final event");
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            Some((name?, serde_json::from_str(&data).expect("JSON data")))
        })
        .collect()
}

#[tokio::test]
async fn the_event_stream_reports_queued_running_and_succeeded_with_urls() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let forward = tokio::spawn(domain::create::events::forward_changes(
        db.url.clone(),
        state.changes.clone(),
    ));
    let app = server::web::app(state.clone(), support::leptos_options());
    let session = support::signed_in(&state, "maker@example.com").await;
    let view = service::submit(&state, session.user, submission("Launch day", "story", "3"))
        .await
        .unwrap();

    let res = app
        .clone()
        .oneshot(with_session(
            Request::get(format!("/api/generations/{}/events", view.id))
                .body(Body::empty())
                .unwrap(),
            &session,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let reader = tokio::spawn(read_events(res, 60));
    // Let the stream send its first event before the worker starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let events = reader.await.unwrap();
    worker.shutdown().await;
    forward.abort();

    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"), "{names:?}");
    assert_eq!(names.last(), Some(&"succeeded"), "{names:?}");
    assert!(names.contains(&"running"), "{names:?}");
    let progress: Vec<u64> = events
        .iter()
        .map(|(_, d)| d["progress"].as_u64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let last = &events.last().unwrap().1;
    assert_eq!(last["progress"], 100);
    let images = last["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for img in images {
        assert!(img["png_url"].as_str().unwrap().starts_with("/media/"));
        assert!(img["small_url"].as_str().unwrap().ends_with(".webp"));
    }

    // Unknown and malformed IDs are a 404, not a stream.
    for bad in ["00000000-0000-0000-0000-000000000000", "nope"] {
        let res = send(
            &app,
            with_session(get_req(&format!("/api/generations/{bad}/events")), &session),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn the_event_stream_reports_a_failure_with_its_reason() {
    let db = TestDb::new().await;
    let mut state = state_for(&db);
    // A generation made for a provider this worker does not run fails for good.
    state.create = Arc::new(CreateSettings {
        provider: "retired".into(),
        ..(*state.create).clone()
    });
    let app = server::web::app(state.clone(), support::leptos_options());
    let session = support::signed_in(&state, "maker@example.com").await;
    let view = service::submit(
        &state,
        session.user,
        submission("Flash sale", "x_post", "1"),
    )
    .await
    .unwrap();
    let res = send(
        &app,
        with_session(
            get_req(&format!("/api/generations/{}/events", view.id)),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let reader = tokio::spawn(read_events(res, 60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin)]);
    let events = reader.await.unwrap();
    worker.shutdown().await;

    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"), "{names:?}");
    assert_eq!(names.last(), Some(&"failed"), "{names:?}");
    let reason = events.last().unwrap().1["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("not available"), "{reason}");
    assert_eq!(db.count("jobs WHERE status = 'dead'").await, 1);
}

// ---- The HTTP provider against a loopback image API ----

/// What the stand-in API answers, call by call (the last answer repeats).
#[derive(Clone)]
enum Answer {
    Image(u32, u32),
    Status(u16, &'static str),
    RateLimited,
    Body(&'static str),
}

/// One call to the stand-in: its `Authorization` header and JSON body.
type Call = (Option<String>, serde_json::Value);

#[derive(Clone, Default)]
struct Seen {
    calls: Arc<Mutex<Vec<Call>>>,
}

fn png_b64(w: u32, h: u32) -> String {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

/// Starts the stand-in on 127.0.0.1 and returns its base URL.
async fn image_api(answers: Vec<Answer>, seen: Seen) -> String {
    let answers = Arc::new(answers);
    let handler = move |headers: axum::http::HeaderMap, body: axum::Json<serde_json::Value>| {
        let answers = answers.clone();
        let seen = seen.clone();
        async move {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            let n = {
                let mut calls = seen.calls.lock().unwrap();
                calls.push((auth, body.0));
                calls.len() - 1
            };
            let answer = answers[n.min(answers.len() - 1)].clone();
            use axum::response::IntoResponse;
            match answer {
                Answer::Image(w, h) => axum::Json(serde_json::json!({
                    "created": 1,
                    "data": [{ "b64_json": png_b64(w, h) }]
                }))
                .into_response(),
                Answer::Status(code, message) => (
                    StatusCode::from_u16(code).unwrap(),
                    axum::Json(serde_json::json!({
                        "error": { "message": message, "type": "server_error", "code": null }
                    })),
                )
                    .into_response(),
                Answer::RateLimited => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "0")],
                    axum::Json(serde_json::json!({
                        "error": { "message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded" }
                    })),
                )
                    .into_response(),
                Answer::Body(text) => (StatusCode::OK, text).into_response(),
            }
        }
    };
    let app = Router::new().route("/v1/images/generations", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn openai(url: &str, retries: u32) -> Arc<dyn ImageProvider> {
    Arc::new(
        OpenAi::new(OpenAiSettings {
            url: url.to_owned(),
            key: Secret::new("sk-test-key"),
            model: "dall-e-3".into(),
            timeout: Duration::from_secs(10),
            retries,
            cost_per_image_micros: 40_000,
        })
        .unwrap()
        .with_retry_delay(Duration::from_millis(10)),
    )
}

fn openai_state(db: &TestDb) -> AppState {
    let mut state = state_for(db);
    state.create = Arc::new(CreateSettings {
        provider: "openai".into(),
        ..(*state.create).clone()
    });
    state
}

/// Submits one image of `prompt` at `format` with the HTTP provider, lets a worker run it
/// against a stand-in answering `answers`, and returns the final view, the calls the
/// stand-in saw and the database.
async fn run_openai(
    answers: Vec<Answer>,
    prompt: &str,
    format: &str,
    retries: u32,
) -> (GenerationView, Vec<Call>, TestDb) {
    let db = TestDb::new().await;
    let state = openai_state(&db);
    let seen = Seen::default();
    let url = image_api(answers, seen.clone()).await;
    let owner = support::signed_in(&state, "maker@example.com").await.user;
    let view = service::submit(&state, owner, submission(prompt, format, "1"))
        .await
        .unwrap();
    let worker = start_worker(&db, &state, vec![Arc::new(Builtin), openai(&url, retries)]);
    let done = wait_final(&state, owner.id, view.id, 60).await;
    worker.shutdown().await;
    let calls = seen.calls.lock().unwrap().clone();
    (done, calls, db)
}

async fn last_dead_error(db: &TestDb) -> String {
    let mut conn = db.conn().await;
    let dead = domain::jobs::list_dead(&mut conn, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "one dead job");
    dead[0].last_error.clone().unwrap_or_default()
}

#[tokio::test]
async fn the_http_provider_fits_the_answer_to_the_format() {
    let (done, calls, _db) = run_openai(
        vec![Answer::Image(1024, 1536)],
        "Rooftop yoga",
        "instagram_portrait",
        2,
    )
    .await;
    assert_eq!(done.status, GenerationStatus::Succeeded, "{done:?}");
    assert_eq!((done.images[0].width, done.images[0].height), (1080, 1350));
    assert_eq!(calls.len(), 1);
    let (auth, body) = &calls[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(body["model"], "dall-e-3");
    assert_eq!(body["size"], "1024x1536");
    assert_eq!(body["response_format"], "b64_json");
    let prompt = body["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("Rooftop yoga") && prompt.contains("vibrant"),
        "{prompt}"
    );
}

#[tokio::test]
async fn the_http_provider_retries_a_429_and_succeeds() {
    let answers = vec![Answer::RateLimited, Answer::Image(1024, 1024)];
    let (done, calls, _db) = run_openai(answers, "Coffee tasting", "instagram_square", 2).await;
    assert_eq!(done.status, GenerationStatus::Succeeded, "{done:?}");
    assert_eq!(calls.len(), 2);
}

#[tokio::test]
async fn each_paid_provider_call_is_in_the_ledger_with_its_cost_and_stays_there() {
    let (done, _calls, db) = run_openai(
        vec![Answer::Image(1024, 1024), Answer::Image(1024, 1024)],
        "Ledger check",
        "instagram_square",
        0,
    )
    .await;
    assert_eq!(done.status, GenerationStatus::Succeeded, "{done:?}");
    let billed = format!(
        "usage_ledger WHERE kind = 'provider_call' AND cost_micros = 40000 \
         AND generation_id = '{}'",
        done.id
    );
    assert_eq!(db.count(&billed).await, 1);
    assert_eq!(db.count("usage_ledger WHERE kind = 'generation'").await, 1);
    // Deleting the work leaves what it used on the books.
    db.exec("DELETE FROM generations").await;
    assert_eq!(db.count(&billed).await, 1);
}

#[tokio::test]
async fn the_http_provider_dead_letters_after_repeated_500s() {
    let answers = vec![Answer::Status(500, "upstream exploded")];
    let (done, calls, db) = run_openai(answers, "Team offsite", "x_post", 1).await;
    assert_eq!(done.status, GenerationStatus::Failed, "{done:?}");
    let reason = done.error.unwrap();
    assert!(reason.contains("having trouble"), "{reason}");
    // Every job attempt tried twice (one retry within the attempt).
    let attempts = service::GENERATE_MAX_ATTEMPTS as usize;
    let jobs = db.count("jobs").await;
    assert_eq!(
        calls.len(),
        attempts * 2,
        "calls seen by the stand-in ({jobs} job rows; failure: {reason})"
    );
    let last_error = last_dead_error(&db).await;
    assert!(
        last_error.contains("500") && last_error.contains("upstream exploded"),
        "{last_error}"
    );
    assert_eq!(db.count("images").await, 0);
}

#[tokio::test]
async fn a_malformed_reply_fails_at_once_with_a_clear_error() {
    let answers = vec![Answer::Body(
        r#"{"data": [{"url": "https://example.com/a.png"}]}"#,
    )];
    let (done, calls, db) = run_openai(answers, "Bakery news", "story", 2).await;
    assert_eq!(done.status, GenerationStatus::Failed);
    assert!(done.error.unwrap().contains("could not read"));
    assert_eq!(calls.len(), 1, "not retried");
    assert!(last_dead_error(&db).await.contains("b64_json"));
}

#[tokio::test]
async fn an_api_refusal_is_passed_on_to_the_creator() {
    let answers = vec![Answer::Status(
        400,
        "Your request was rejected by the safety system",
    )];
    let (done, calls, _db) = run_openai(answers, "Something edgy", "story", 2).await;
    assert_eq!(done.status, GenerationStatus::Failed);
    assert!(done.error.unwrap().contains("safety system"));
    assert_eq!(calls.len(), 1);
}
