//! Integration tests against a real PostgreSQL: server functions, pages, health, readiness,
//! request IDs and panic handling, all through the same router and middleware as `serve`.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use support::{TestDb, app_for, form_post, get_req, json, send, signed_in, text, with_session};

#[tokio::test]
async fn health_answers_ok_and_carries_a_request_id() {
    let db = TestDb::new().await;
    let app = app_for(&db);

    let res = send(&app, get_req("/api/health")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = res
        .headers()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID is made when none is sent: {id}");
    assert_eq!(json(res).await, serde_json::json!({ "ok": true }));

    // A sane incoming ID is kept; a hostile one is replaced.
    let mut req = get_req("/api/health");
    req.headers_mut()
        .insert("x-request-id", "lb-1234.abc".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.headers()["x-request-id"], "lb-1234.abc");

    let mut req = get_req("/api/health");
    req.headers_mut()
        .insert("x-request-id", "<script>alert(1)</script>".parse().unwrap());
    let res = send(&app, req).await;
    assert_ne!(res.headers()["x-request-id"], "<script>alert(1)</script>");
}

#[tokio::test]
async fn ready_when_database_answers_and_migrations_are_applied() {
    let db = TestDb::new().await;
    let res = send(&app_for(&db), get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = json(res).await;
    assert_eq!(
        body,
        serde_json::json!({ "ok": true, "failing": [], "degraded": [] })
    );
    // The detail is on the metrics listener.
    let (status, body) = ready_detail(&db, uncached()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["checks"]["database"]["ok"], true);
    assert_eq!(body["checks"]["migrations"]["ok"], true);
    assert_eq!(body["checks"]["storage"]["ok"], true);
    assert_eq!(body["checks"]["jobs"]["ok"], true);
    assert_eq!(body["checks"]["configuration"]["ok"], true);
}

fn app_with_ready(db: &TestDb, ready: server::web::health::ReadySettings) -> axum::Router {
    let settings = server::web::HttpSettings {
        ready,
        ..Default::default()
    };
    server::web::app_with(support::state_for(db), support::leptos_options(), &settings)
}

/// Readiness settings that run the checks for every request, for tests that change what
/// they find between requests.
fn uncached() -> server::web::health::ReadySettings {
    server::web::health::ReadySettings {
        cache_for: std::time::Duration::ZERO,
        ..Default::default()
    }
}

/// `/ready` on the metrics listener: every check with its detail.
async fn ready_detail(
    db: &TestDb,
    ready: server::web::health::ReadySettings,
) -> (StatusCode, serde_json::Value) {
    let listener = server::web::metrics::listener_router(server::web::metrics::ScrapeSources {
        state: support::state_for(db),
        rate_limits: None,
        ready: Some(ready),
    });
    let res = send(&listener, get_req("/ready")).await;
    (res.status(), json(res).await)
}

#[tokio::test]
async fn public_readiness_names_failing_checks_only_and_runs_them_once_for_a_flood() {
    let db = TestDb::new().await;
    let dir = tempdir("ready-public");
    let missing = dir.join("pkg").join("socialcraft.wasm");
    let ready = server::web::health::ReadySettings {
        required_files: vec![missing.clone()],
        ..Default::default()
    };
    let app = app_with_ready(&db, ready.clone());
    db.cut().await;

    let before = ready.cache.runs();
    let requests = (0..50).map(|_| send(&app, get_req("/api/ready")));
    let answers = futures_util::future::join_all(requests).await;
    // Fifty probes within the cache time: the checks ran once.
    assert_eq!(ready.cache.runs() - before, 1);
    for res in answers {
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json(res).await;
        assert_eq!(body["ok"], false);
        let failing: Vec<&str> = body["failing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            failing.contains(&"database") && failing.contains(&"configuration"),
            "{body}"
        );
        // Names and status only: no error strings, paths, endpoints or database messages.
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["degraded", "failing", "ok"], "{body}");
        let shown = body.to_string();
        for private in [
            "socialcraft.wasm",
            "ready-public",
            "127.0.0.1",
            "unreachable",
            "error",
        ] {
            assert!(!shown.contains(private), "{private} in {shown}");
        }
    }
    // The operator's view has the detail.
    let (status, body) = ready_detail(&db, ready).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let why = body["checks"]["configuration"]["error"].as_str().unwrap();
    assert!(why.contains(&missing.display().to_string()), "{body}");
    assert_eq!(body["checks"]["database"]["ok"], false, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn not_ready_while_a_ready_job_waits_longer_than_allowed() {
    let db = TestDb::new().await;
    let ready = server::web::health::ReadySettings {
        max_job_age: std::time::Duration::from_secs(60),
        ..uncached()
    };
    let app = app_with_ready(&db, ready.clone());
    // A job that became ready 30 s ago: a worker may simply be busy.
    db.exec("INSERT INTO jobs (kind, run_at) VALUES ('generate', now() - interval '30 seconds')")
        .await;
    let res = send(&app, get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(res).await);
    // A job scheduled for later does not count, however old its row.
    db.exec(
        "INSERT INTO jobs (kind, run_at, created_at) \
         VALUES ('generate', now() + interval '1 hour', now() - interval '1 day')",
    )
    .await;
    assert_eq!(
        send(&app, get_req("/api/ready")).await.status(),
        StatusCode::OK
    );
    // Ten minutes unclaimed: no worker is taking jobs.
    db.exec(
        "INSERT INTO jobs (kind, run_at) VALUES ('upload_variants', now() - interval '10 minutes')",
    )
    .await;
    let res = send(&app, get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    assert_eq!(body["failing"], serde_json::json!(["jobs"]), "{body}");
    let (_, body) = ready_detail(&db, ready).await;
    let why = body["checks"]["jobs"]["error"].as_str().unwrap();
    assert!(why.contains("stuck") && why.contains("limit 60 s"), "{why}");
    // A running job whose lease ran out long ago (its worker died, none took over) too.
    db.exec("DELETE FROM jobs").await;
    db.exec(
        "INSERT INTO jobs (kind, status, locked_by, lease_until) \
         VALUES ('generate', 'running', 'gone', now() - interval '5 minutes')",
    )
    .await;
    let res = send(&app, get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn not_ready_without_the_built_site_or_a_writable_spool() {
    let db = TestDb::new().await;
    let dir = tempdir("ready-config");
    let site_file = dir.join("pkg").join("socialcraft.wasm");
    let ready = server::web::health::ReadySettings {
        required_files: vec![site_file.clone()],
        writable_dir: Some(dir.join("spool")),
        ..uncached()
    };
    let app = app_with_ready(&db, ready.clone());
    let res = send(&app, get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    assert_eq!(
        body["failing"],
        serde_json::json!(["configuration"]),
        "{body}"
    );
    let (_, body) = ready_detail(&db, ready.clone()).await;
    assert!(
        body["checks"]["configuration"]["error"]
            .as_str()
            .unwrap()
            .contains("socialcraft.wasm"),
        "{body}"
    );
    std::fs::create_dir_all(site_file.parent().unwrap()).unwrap();
    std::fs::write(&site_file, b"\0asm").unwrap();
    assert_eq!(
        send(&app, get_req("/api/ready")).await.status(),
        StatusCode::OK
    );
    // The spool path taken by a file: uploads could not be received.
    let blocked = server::web::health::ReadySettings {
        writable_dir: Some(site_file.clone()),
        ..ready
    };
    let res = send(&app_with_ready(&db, blocked), get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "socialcraft-{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn metrics_need_the_token_and_show_requests_jobs_pool_and_limits() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let token = "m3tr1cs-Tok3n-for-the-scraper-0123456789";
    let settings = server::web::HttpSettings {
        metrics_token: Some(domain::secret::Secret::new(token)),
        rate_limits: server::web::ratelimit::RateLimits::new(&server::web::ratelimit::Limits {
            api_per_minute: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    let app = server::web::app_with(state, support::leptos_options(), &settings);

    // Without the token, or with a wrong one: 401, and nothing about the process.
    let res = send(&app, get_req("/metrics")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let mut req = get_req("/metrics");
    req.headers_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!text(res).await.contains("socialcraft_"));

    // Some traffic: an image page pattern, a 429, a queued job.
    let id = uuid::Uuid::new_v4();
    let res = send(&app, get_req(&format!("/images/{id}"))).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    for _ in 0..3 {
        send(&app, form_post("/api/trends/top", "")).await;
    }
    db.exec("INSERT INTO jobs (kind) VALUES ('generate'), ('generate')")
        .await;

    let mut req = get_req("/metrics");
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = text(res).await;
    let value = |needle: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{body}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // The route is the pattern, never the raw path with its id.
    assert!(
        value(r#"socialcraft_http_requests_total{route="/images/{id}",method="GET",status="404"}"#)
            >= 1.0
    );
    assert!(
        !body.contains(&id.to_string()),
        "raw ids must not become labels"
    );
    assert!(
        value(
            r#"socialcraft_http_requests_total{route="/api/trends/top",method="POST",status="429"}"#
        ) >= 1.0
    );
    assert!(
        value(
            r#"socialcraft_http_request_duration_seconds_count{route="/images/{id}",method="GET",status="404"}"#
        ) >= 1.0
    );
    assert_eq!(
        value(r#"socialcraft_rate_limit_denials_total{group="api"}"#),
        1.0
    );
    assert_eq!(
        value(r#"socialcraft_job_queue_depth{kind="generate",state="queued"}"#),
        2.0
    );
    assert!(value(r#"socialcraft_job_queue_oldest_ready_seconds{kind="generate"}"#) >= 0.0);
    assert_eq!(value("socialcraft_job_queue_scrape_ok"), 1.0);
    assert_eq!(value("socialcraft_db_pool_max_connections"), 4.0);
    assert!(value(r#"socialcraft_db_pool_connections{state="idle"}"#) >= 1.0);
    assert!(body.contains("# TYPE socialcraft_http_requests_in_flight gauge"));
    assert!(body.trim_end().ends_with("# EOF"));

    // Without a token configured, there is no /metrics on the main listener.
    let res = send(&app_for(&db), get_req("/metrics")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The separate listener (METRICS_ADDR, a worker's only one) answers without a token.
    let listener = server::web::metrics::listener_router(server::web::metrics::ScrapeSources {
        state: support::state_for(&db),
        rate_limits: None,
        ready: None,
    });
    let res = send(&listener, get_req("/metrics")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = text(res).await;
    assert!(
        body.contains(r#"socialcraft_job_queue_depth{kind="generate",state="queued"} 2"#),
        "{body}"
    );
    assert!(
        !body.contains("rate_limit_denials"),
        "a worker has no limiters"
    );
    assert_eq!(
        send(&listener, get_req("/api/health")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn media_is_served_with_its_hash_as_etag_and_private_until_shared() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let png = b"\x89PNG\r\n\x1a\nnot really".to_vec();
    let stored = state
        .media
        .put(png.clone(), domain::media::MediaKind::Png)
        .await
        .unwrap();
    let app = server::web::app(state, support::leptos_options());

    let res = send(&app, get_req(&format!("/media/{}", stored.key))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    // No shared image uses this file, so no cache may keep it (issue 16: only shared media is
    // public; `gallery::unsharing_ends_the_old_urls_...` checks the shared case).
    assert_eq!(
        res.headers()["cache-control"],
        "private, max-age=0, must-revalidate"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", stored.sha256));
    assert_eq!(support::bytes(res).await, png);

    let mut req = get_req(&format!("/media/{}", stored.key));
    req.headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    assert_eq!(send(&app, req).await.status(), StatusCode::NOT_MODIFIED);

    for path in [
        "/media/../../etc/passwd".to_owned(),
        format!("/media/0000000000000000/{}.png", "0".repeat(64)),
        format!("/media/{}.svg", stored.key.trim_end_matches(".png")),
    ] {
        assert_eq!(
            send(&app, get_req(&path)).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn not_ready_while_a_migration_is_pending() {
    let db = TestDb::new().await;
    let latest = domain::db::pool::embedded_versions()
        .pop()
        .expect("at least one migration");
    db.exec(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{latest}'"
    ))
    .await;

    let res = send(&app_for(&db), get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    assert_eq!(body["failing"], serde_json::json!(["migrations"]), "{body}");
    let (_, body) = ready_detail(&db, uncached()).await;
    assert!(
        body["checks"]["migrations"]["error"]
            .as_str()
            .unwrap()
            .contains(&latest)
    );

    // Undo it for real (its down.sql), then apply it: the instance is ready again.
    db.batch(&support::down_sql(&latest)).await;
    domain::db::pool::run_migrations(&db.url)
        .await
        .expect("migrate");
    let res = send(&app_for(&db), get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn not_ready_while_the_database_is_down_but_still_alive() {
    let db = TestDb::new().await;
    let app = app_with_ready(&db, uncached());
    assert_eq!(
        send(&app, get_req("/api/ready")).await.status(),
        StatusCode::OK
    );

    db.cut().await;
    let res = send(&app, get_req("/api/ready")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(res).await;
    let failing = body["failing"].as_array().expect("failing list");
    assert!(failing.contains(&"database".into()), "{body}");
    // Liveness does not depend on the database.
    assert_eq!(
        send(&app, get_req("/api/health")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_valid_submission_queues_a_generation_and_its_job_together() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app(state, support::leptos_options());

    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=++Neon+city+at+night++&style=neon&format=story&variations=2",
            ),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let stored = json(res).await;
    assert_eq!(stored["prompt"], "Neon city at night");
    assert_eq!(stored["style"], "neon");
    assert_eq!(stored["format"], "story");
    assert_eq!(stored["variations"], 2);
    assert_eq!(stored["status"], "queued");
    assert_eq!(stored["progress"], 0);

    // Variations default to four when the form leaves them out.
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=Coffee+shop+opening&style=retro&format=x_post",
            ),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["variations"], 4);
    assert_eq!(db.count("generations").await, 2);
    assert_eq!(db.count("jobs WHERE kind = 'generate'").await, 2);
    assert_eq!(
        db.count(
            "generations g JOIN jobs j ON j.id = g.job_id \
             WHERE j.payload->>'generation_id' = g.id::text AND g.provider = 'builtin'"
        )
        .await,
        2,
        "each generation points at its own job"
    );
    assert_eq!(
        db.count(&format!(
            "generations WHERE user_id = '{}'",
            session.user.id
        ))
        .await,
        2,
        "each generation belongs to its creator"
    );

    let res = send(
        &app,
        with_session(form_post("/api/generations/recent", ""), &session),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let list = json(res).await;
    let prompts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["Coffee shop opening", "Neon city at night"]);

    let id = list[0]["id"].as_str().unwrap();
    let res = send(
        &app,
        with_session(
            form_post("/api/generations/status", &format!("id={id}")),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["status"], "queued");
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/status",
                "id=00000000-0000-0000-0000-000000000000",
            ),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_blocked_prompt_names_its_rule_and_stores_nothing() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app(state, support::leptos_options());
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=Get+FREE+followers+today&style=bold&format=story",
            ),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err = json(res).await;
    assert_eq!(err["fields"][0]["field"], "prompt", "{err}");
    assert_eq!(err["fields"][0]["code"], "blocked", "{err}");
    let message = err["fields"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("spam") && message.contains("free followers"),
        "{message}"
    );
    assert_eq!(db.count("generations").await, 0);
    assert_eq!(db.count("jobs").await, 0);
}

#[tokio::test]
async fn invalid_prompts_are_422_with_field_messages_and_store_nothing() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app(state, support::leptos_options());
    let submit = |body: &str| with_session(form_post("/api/generations/submit", body), &session);

    for (body, field, code) in [
        ("prompt=hi&style=bold", "prompt", "too_short"),
        ("prompt=+++&style=bold", "prompt", "too_short"),
        (
            "prompt=bad%00byte+here&style=bold",
            "prompt",
            "control_chars",
        ),
        ("prompt=A+fine+prompt&style=comic", "style", "unknown_style"),
        (
            "prompt=A+fine+prompt&style=bold&format=myspace",
            "format",
            "unknown_format",
        ),
        (
            "prompt=A+fine+prompt&style=bold&variations=9",
            "variations",
            "out_of_range",
        ),
    ] {
        let body = if body.contains("format=") {
            body.to_owned()
        } else {
            format!("{body}&format=instagram_square")
        };
        let res = send(&app, submit(&body)).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let err = json(res).await;
        assert_eq!(err["code"], "validation", "{body}: {err}");
        assert_eq!(err["fields"][0]["field"], field, "{body}: {err}");
        assert_eq!(err["fields"][0]["code"], code, "{body}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let long = "a".repeat(501);
    let res = send(
        &app,
        submit(&format!("prompt={long}&style=bold&format=story")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A request that cannot even be read is a 400, not a 500.
    let res = send(&app, submit("style=bold&format=story")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(res).await["code"], "bad_request");

    assert_eq!(db.count("generations").await, 0, "nothing may be stored");
    assert_eq!(db.count("jobs").await, 0, "nothing may be queued");
}

#[tokio::test]
async fn without_javascript_an_invalid_post_returns_to_the_form_with_its_message() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app(state, support::leptos_options());

    let req = Request::post("/api/generations/submit")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html,application/xhtml+xml")
        .header("referer", "http://127.0.0.1:3000/")
        .body(Body::from("prompt=x&style=bold&format=story&variations=4"))
        .unwrap();
    let res = send(&app, with_session(req, &session)).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    // The outcome comes back as codes, never as text a page would show (issue 16).
    assert!(
        location.contains("error=validation") && !location.contains("__err"),
        "{location}"
    );
    assert_eq!(db.count("generations").await, 0);

    // Following the redirect renders the form with the message beside the field.
    let path = location.trim_start_matches("http://127.0.0.1:3000");
    let page = text(send(&app, with_session(get_req(path), &session)).await).await;
    assert!(
        page.contains("at least 3 characters"),
        "message missing from the page"
    );

    // A valid post without JavaScript stores and returns to the page.
    let req = Request::post("/api/generations/submit")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("referer", "http://127.0.0.1:3000/")
        .body(Body::from(
            "prompt=Plain+HTML+works&style=minimal&format=linkedin&variations=1",
        ))
        .unwrap();
    let res = send(&app, with_session(req, &session)).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(db.count("generations").await, 1);
    // ...where the queued generation is listed.
    let page = text(send(&app, with_session(get_req("/"), &session)).await).await;
    assert!(
        page.contains("Plain HTML works"),
        "listed after the redirect"
    );
}

#[tokio::test]
async fn the_home_page_is_server_rendered_with_recent_generations() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    db.exec(&format!(
        "INSERT INTO generations (prompt, style, format, variations, provider, seed, user_id) \
         VALUES ('Tacos & <b>tequila</b> night', 'bold', 'story', 2, 'builtin', 1, '{}')",
        session.user.id
    ))
    .await;
    let app = server::web::app(state, support::leptos_options());

    let res = send(&app, with_session(get_req("/"), &session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = text(res).await;
    assert!(
        page.contains("<label for=\"prompt\">Prompt</label>"),
        "prompt label"
    );
    assert!(page.contains("<textarea id=\"prompt\""), "prompt field");
    assert!(page.contains("Your generations"));
    assert!(page.contains("<select id=\"format\""), "format field");
    assert!(
        page.contains("Story / Reel / TikTok (1080×1920)"),
        "formats with sizes"
    );
    // Stored text is escaped, never injected.
    assert!(
        page.contains("Tacos &amp; &lt;b&gt;tequila&lt;/b&gt; night"),
        "escaped prompt"
    );
    assert!(!page.contains("<b>tequila</b>"));
    // The hydration bundle is referenced.
    assert!(page.contains("/pkg/socialcraft.js"), "hydration script");
}

#[tokio::test]
async fn generations_are_private_to_their_creator_and_creating_needs_an_account() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let ana = signed_in(&state, "ana@example.com").await;
    let ben = signed_in(&state, "ben@example.com").await;
    let app = server::web::app(state, support::leptos_options());

    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=Ana%27s+private+launch&style=bold&format=story&variations=1",
            ),
            &ana,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let id = json(res).await["id"].as_str().unwrap().to_owned();

    // Ana sees her own generation everywhere.
    let res = send(
        &app,
        with_session(
            form_post("/api/generations/status", &format!("id={id}")),
            &ana,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["id"], id.as_str());
    let res = send(
        &app,
        with_session(get_req(&format!("/api/generations/{id}/events")), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    drop(res);
    let res = send(
        &app,
        with_session(form_post("/api/generations/recent", ""), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let list = json(res).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id.as_str());

    // To Ben it is the same as an id that does not exist.
    let res = send(
        &app,
        with_session(
            form_post("/api/generations/status", &format!("id={id}")),
            &ben,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let err = json(res).await;
    assert_eq!(err["code"], "not_found", "{err}");
    assert!(
        !err.to_string().contains("private launch"),
        "nothing of it leaks: {err}"
    );
    let res = send(
        &app,
        with_session(get_req(&format!("/api/generations/{id}/events")), &ben),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(res).await["code"], "not_found");
    let res = send(
        &app,
        with_session(form_post("/api/generations/recent", ""), &ben),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::json!([]), "not in Ben's list");
    let page = text(send(&app, with_session(get_req("/"), &ben)).await).await;
    assert!(!page.contains("private launch"), "not on Ben's page");

    // Signed out: no list, no status, no stream, and submitting stores nothing.
    let res = send(&app, form_post("/api/generations/recent", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::json!([]));
    let res = send(
        &app,
        form_post("/api/generations/status", &format!("id={id}")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(res).await["code"], "unauthorized");
    let res = send(&app, get_req(&format!("/api/generations/{id}/events"))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(res).await["code"], "unauthorized");
    let res = send(
        &app,
        form_post(
            "/api/generations/submit",
            "prompt=Anonymous+attempt&style=bold&format=story&variations=1",
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(res).await["code"], "unauthorized");
    assert_eq!(
        db.count("generations").await,
        1,
        "nothing stored signed out"
    );
    assert_eq!(db.count("jobs").await, 1, "nothing queued signed out");
}

#[tokio::test]
async fn unknown_pages_are_a_friendly_404() {
    let db = TestDb::new().await;
    let res = send(&app_for(&db), get_req("/no/such/page")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(text(res).await.contains("We could not find that page"));
}

#[tokio::test]
async fn server_functions_answer_503_when_the_database_is_down() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app(state, support::leptos_options());
    db.cut().await;
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=Still+there%3F&style=bold&format=story",
            ),
            &session,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err = json(res).await;
    assert_eq!(err["code"], "unavailable");
    assert!(
        !err["message"].as_str().unwrap().contains("connection"),
        "no internals: {err}"
    );
}

async fn explode() -> &'static str {
    panic!("secret internal detail")
}

#[tokio::test]
async fn a_panicking_handler_gets_the_error_page_and_the_server_keeps_serving() {
    server::telemetry::install_panic_hook();
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let routes = server::web::routes(
        state.clone(),
        support::leptos_options(),
        &Default::default(),
    )
    .route("/explode", get(explode))
    .route("/api/explode", get(explode));
    let app = server::web::with_middleware(routes, &state, &Default::default());

    let res = send(&app, get_req("/explode")).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let page = text(res).await;
    assert!(page.contains("Something went wrong"));
    assert!(
        page.contains(&id),
        "the page gives the request ID as a reference"
    );
    assert!(!page.contains("secret internal detail"));

    let res = send(&app, get_req("/api/explode")).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(res).await;
    assert_eq!(body["code"], "internal");
    assert!(!body.to_string().contains("secret internal detail"));

    assert_eq!(
        send(&app, get_req("/api/health")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn visitor_pages_come_from_the_cache_with_hashed_scripts_and_signed_in_ones_never() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let maker = signed_in(&state, "cached@example.com").await;
    let app = server::web::app(state.clone(), support::leptos_options());
    let explore = || {
        let mut r = get_req("/explore");
        r.headers_mut()
            .insert("accept-encoding", "gzip, br".parse().unwrap());
        r
    };

    // The first visitor renders it, with a nonce like any page.
    let first = send(&app, explore()).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["x-page-cache"], "miss");
    let first_csp = first.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(first_csp.contains("'nonce-"), "{first_csp}");

    // The next is served from memory, brotli-compressed, its scripts allowed by hash.
    let second = send(&app, explore()).await;
    assert_eq!(second.headers()["x-page-cache"], "hit");
    assert_eq!(second.headers()["content-encoding"], "br");
    assert_eq!(second.headers()["vary"], "accept-encoding");
    let csp = second.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("nonce") && csp.contains("'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // The security middleware still adds the rest.
    assert_eq!(second.headers()["x-content-type-options"], "nosniff");
    let compressed = support::bytes(second).await;
    let mut html = String::new();
    std::io::Read::read_to_string(&mut brotli_decompress(&compressed), &mut html).unwrap();
    assert!(
        html.contains("<!DOCTYPE html>") && !html.contains("nonce="),
        "{html}"
    );
    // Every inline script is covered by a hash in the policy, and nothing else is.
    let hashes = server::web::pagecache::inline_script_hashes(&html);
    assert!(!hashes.is_empty());
    for h in &hashes {
        assert!(csp.contains(&format!("'sha256-{h}'")), "{h} not in {csp}");
    }
    assert_eq!(csp.matches("'sha256-").count(), hashes.len(), "{csp}");

    // Without Accept-Encoding: the page itself.
    let plain = send(&app, get_req("/explore")).await;
    assert_eq!(plain.headers()["x-page-cache"], "hit");
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(text(plain).await, html);

    // Signed in: rendered for that user every time, never stored or served from the cache.
    for _ in 0..2 {
        let res = send(&app, with_session(get_req("/explore"), &maker)).await;
        assert!(res.headers().get("x-page-cache").is_none());
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("'nonce-")
        );
    }

    // Sharing changes what visitors see: the cached page is not served again.
    state.gallery.explore_changed();
    let after = send(&app, explore()).await;
    assert_eq!(after.headers()["x-page-cache"], "miss");
    // Pages outside the cached set (an account page, a POST) pass straight through.
    let res = send(&app, get_req("/signin")).await;
    assert!(res.headers().get("x-page-cache").is_none());
}

#[tokio::test]
async fn made_up_query_parameters_neither_add_cache_entries_nor_evict_real_ones() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let cache = server::web::pagecache::PageCache::new(
        &state,
        server::web::pagecache::PageCacheSettings {
            ttl: std::time::Duration::from_secs(60),
            max_entries: 3,
        },
    );
    let app = server::web::routes(
        state.clone(),
        support::leptos_options(),
        &server::web::HttpSettings::default(),
    )
    .layer(axum::middleware::from_fn_with_state(
        cache.clone(),
        server::web::pagecache::serve,
    ));
    let outcome = |res: &axum::http::Response<Body>| {
        res.headers()
            .get("x-page-cache")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let res = send(&app, get_req("/explore")).await;
    assert_eq!(outcome(&res).as_deref(), Some("miss"));
    assert_eq!(cache.len(), 1);
    // `/` reads no query parameter for a visitor: every `/?x=N` is the one page.
    for n in 0..50 {
        let res = send(&app, get_req(&format!("/?x={n}"))).await;
        assert_eq!(res.status(), StatusCode::OK);
        let expected = if n == 0 { "miss" } else { "hit" };
        assert_eq!(outcome(&res).as_deref(), Some(expected), "/?x={n}");
    }
    assert_eq!(cache.len(), 2);
    // Explore reads its cursor, but only one this server signed makes an entry; nor does an
    // image id that is not one, nor letter case make one image many.
    for n in 0..20 {
        let res = send(&app, get_req(&format!("/explore?after=forged{n}&x={n}"))).await;
        assert_eq!(outcome(&res), None);
        send(&app, get_req(&format!("/images/not-an-id-{n}"))).await;
    }
    assert_eq!(cache.len(), 2);
    // The real page is still there.
    let res = send(&app, get_req("/explore?utm_source=flood")).await;
    assert_eq!(outcome(&res).as_deref(), Some("hit"));
    assert_eq!(cache.len(), 2);
}

fn brotli_decompress(bytes: &[u8]) -> impl std::io::Read + '_ {
    brotli::Decompressor::new(bytes, 4096)
}

#[tokio::test]
async fn the_bundle_is_served_precompressed_with_an_etag() {
    let db = TestDb::new().await;
    let dir = tempdir("pkg");
    let wasm: Vec<u8> = (0..200_000u32)
        .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
        .collect();
    std::fs::write(dir.join("socialcraft.wasm"), &wasm).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not part of the bundle").unwrap();
    let assets = server::web::assets::Assets::load(dir.clone());
    for _ in 0..200 {
        if assets.ready() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(assets.ready(), "compressed within 5 s");
    let settings = server::web::HttpSettings {
        assets: Some(assets),
        ..Default::default()
    };
    let app = server::web::app_with(
        support::state_for(&db),
        support::leptos_options(),
        &settings,
    );

    let mut req = get_req("/pkg/socialcraft.wasm");
    req.headers_mut()
        .insert("accept-encoding", "gzip, br".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/wasm");
    assert_eq!(res.headers()["content-encoding"], "br");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body = support::bytes(res).await;
    assert!(body.len() < wasm.len());
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut brotli_decompress(&body), &mut back).unwrap();
    assert_eq!(back, wasm);

    // gzip for clients without brotli; the bytes themselves without either.
    let mut req = get_req("/pkg/socialcraft.wasm");
    req.headers_mut()
        .insert("accept-encoding", "gzip".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let res = send(&app, get_req("/pkg/socialcraft.wasm")).await;
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(support::bytes(res).await, wasm);

    // A browser that has it already gets a 304.
    let mut req = get_req("/pkg/socialcraft.wasm");
    req.headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // What is not the bundle's is left to the ordinary file handler.
    let res = send(&app, get_req("/pkg/notes.txt")).await;
    assert_ne!(
        res.headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some(etag)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Text as the page shows it inside an element (Leptos escapes these).
fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[tokio::test]
async fn form_outcomes_come_back_as_codes_and_pages_show_only_their_own_sentences() {
    use base64::Engine;
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    signed_in(&state, "known@example.com").await;
    let app = server::web::app(state, support::leptos_options());
    let page = |q: String| {
        let app = app.clone();
        async move {
            let res = send(&app, get_req(&format!("/signin?{q}"))).await;
            assert_eq!(res.status(), StatusCode::OK, "{q}");
            text(res).await
        }
    };
    let form = "form=/api/auth/sign_in";

    // Whatever text an address carries, none of it is shown.
    let evil = "Your account is suspended. Call 555-0100";
    let encoded = "Your%20account%20is%20suspended.%20Call%20555-0100";
    for q in [
        format!("{form}&error={encoded}"),
        format!("{form}&error=validation&fields=password:{encoded},email:{encoded}"),
        format!("{form}&error=rate_limited&wait={encoded}"),
        format!("form={encoded}&error={encoded}"),
    ] {
        let html = page(q.clone()).await;
        assert!(
            !html.contains("suspended") && !html.contains("555-0100"),
            "{q}: {html}"
        );
    }
    // An unknown code gets the generic sentence.
    let html = page(format!("{form}&error={encoded}")).await;
    assert!(
        html.contains("Something went wrong on our side. Please try again."),
        "{html}"
    );

    // Leptos's own parameters carry whole errors with their text: such an address is sent to
    // the same page without them, so no page ever decodes one.
    let forged = shared::error::AppError::new(shared::error::ErrorCode::Validation, evil);
    let err =
        base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&forged).unwrap());
    let res = send(
        &app,
        get_req(&format!(
            "/images/{}?keep=1&__path=/api/gallery/rate&__err={err}",
            uuid::Uuid::new_v4()
        )),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()["location"].to_str().unwrap();
    assert!(to.ends_with("?keep=1") && !to.contains("__err"), "{to}");

    // Each code shows its page's sentence.
    for code in [
        "validation",
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "rate_limited",
        "quota_exceeded",
        "unavailable",
        "internal",
    ] {
        let sentence =
            app::posted::form_sentence("/api/auth/sign_in", app::posted::parse_code(code), None);
        let html = page(format!("{form}&error={code}")).await;
        assert!(
            html.contains(&html_escaped(&sentence)),
            "{code}: {sentence}"
        );
    }
    let html = page(format!("{form}&error=rate_limited&wait=14")).await;
    assert!(
        html.contains("Too many failed sign-ins for this account. Try again in 14 minutes."),
        "{html}"
    );

    // The real thing: a plain form post with a wrong password comes back with codes only,
    // and the page it lands on says so in its own words.
    let res = send(
        &app,
        Request::post("/api/auth/sign_in")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .header(
                "referer",
                "http://localhost/signin?form=/old&error=internal",
            )
            .body(Body::from(
                "email=known%40example.com&password=not+the+password",
            ))
            .unwrap(),
    )
    .await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        "http://localhost/signin?form=/api/auth/sign_in&error=validation&fields=password:wrong_credentials"
    );
    let html = page(to.split_once('?').unwrap().1.to_owned()).await;
    assert!(
        html.contains("That email and password do not match an account."),
        "{html}"
    );
}
