//! Sessions end to end through the real router and a real PostgreSQL: sign-up and sign-in
//! cookies, silent refresh with rotation, reuse detection, forged and expired tokens,
//! brute-force limits, sign-out flavours, and the per-tier allowances.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::RunQueryDsl;
use domain::accounts::auth::{Auth, AuthSettings, CurrentUser, TierLimits};
use domain::accounts::tokens::AccessClaims;
use domain::state::AppState;
use support::{Session, TestDb, form_post, json, send, set_cookies, signed_in, with_session};

const PASSWORD: &str = "correct horse battery";

fn state_with(db: &TestDb, tweak: impl FnOnce(&mut AuthSettings)) -> AppState {
    let mut state = support::state_for(db);
    let mut settings = support::test_auth_settings();
    tweak(&mut settings);
    state.auth = Arc::new(Auth::new(support::TEST_SECRET, settings));
    state
}

fn app_with(state: &AppState, limits: server::web::ratelimit::Limits) -> Router {
    let settings = server::web::HttpSettings {
        rate_limits: server::web::ratelimit::RateLimits::new(&limits),
        ..Default::default()
    };
    server::web::app_with(state.clone(), support::leptos_options(), &settings)
}

/// Limits high enough that only the one under test can refuse.
fn roomy() -> server::web::ratelimit::Limits {
    server::web::ratelimit::Limits {
        auth_per_minute: 1000,
        generate_per_minute: 1000,
        api_per_minute: 1000,
        tier_api_per_minute: [1000, 1000, 1000],
        ..Default::default()
    }
}

fn from_ip(mut req: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    req
}

fn with_cookie(mut req: Request<Body>, cookie: &str) -> Request<Body> {
    req.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    req
}

/// Posts the sign-in form for `email` and `password` from `ip`.
async fn sign_in_from(app: &Router, email: &str, password: &str, ip: [u8; 4]) -> Response<Body> {
    send(
        app,
        from_ip(
            form_post("/api/auth/sign_in", &credentials(email, password)),
            ip,
        ),
    )
    .await
}

fn credentials(email: &str, password: &str) -> String {
    format!(
        "email={}&password={}",
        email.replace('@', "%40"),
        password.replace(' ', "+")
    )
}

/// Who `/api/account/me` says the cookie belongs to (`None` when signed out), and the
/// cookies the response set.
async fn whoami(
    app: &Router,
    cookie: &str,
) -> (Option<String>, std::collections::HashMap<String, String>) {
    let res = send(app, with_cookie(form_post("/api/account/me", ""), cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    let body = json(res).await;
    (body["email"].as_str().map(str::to_owned), cookies)
}

#[tokio::test]
async fn sign_up_sets_http_only_cookies_and_signs_in() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let res = send(
        &app,
        form_post(
            "/api/auth/sign_up",
            &credentials("ana@example.com", PASSWORD),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let raw: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(raw.len(), 2, "{raw:?}");
    for c in &raw {
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(c.contains("Path=/"), "{c}");
    }
    let cookies = set_cookies(&res);
    let cookie = format!(
        "sc_access={}; sc_refresh={}",
        cookies["sc_access"], cookies["sc_refresh"]
    );
    assert_eq!(
        whoami(&app, &cookie).await.0.as_deref(),
        Some("ana@example.com")
    );
    // Only the hash of the refresh token is stored.
    let mut conn = db.conn().await;
    let stored: Vec<Vec<u8>> = diesel::sql_query("SELECT token_hash FROM refresh_tokens")
        .load::<HashRow>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.token_hash)
        .collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], cookies["sc_refresh"].as_bytes());
    assert_eq!(stored[0].len(), 32);
}

#[derive(diesel::QueryableByName)]
struct HashRow {
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    token_hash: Vec<u8>,
}

#[tokio::test]
async fn production_cookies_are_host_prefixed_and_secure() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| s.secure_cookies = true);
    let app = app_with(&state, roomy());
    let res = send(
        &app,
        form_post(
            "/api/auth/sign_up",
            &credentials("ana@example.com", PASSWORD),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let raw: Vec<String> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        raw.iter().any(|c| c.starts_with("__Host-sc_access=")),
        "{raw:?}"
    );
    assert!(
        raw.iter().any(|c| c.starts_with("__Host-sc_refresh=")),
        "{raw:?}"
    );
    assert!(raw.iter().all(|c| c.ends_with("; Secure")), "{raw:?}");
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_token_kills_the_whole_session() {
    let db = TestDb::new().await;
    // No grace: any second use of a token is reuse.
    let state = state_with(&db, |s| s.reuse_grace = Duration::ZERO);
    let app = app_with(&state, roomy());
    let session = signed_in(&state, "ana@example.com").await;

    // Token 1 (no access cookie, as after 15 minutes) is exchanged for token 2.
    let t1 = session.refresh.clone();
    let (who, cookies) = whoami(&app, &format!("sc_refresh={t1}")).await;
    assert_eq!(who.as_deref(), Some("ana@example.com"));
    let t2 = cookies["sc_refresh"].clone();
    assert_ne!(t1, t2, "rotated");
    assert!(!cookies["sc_access"].is_empty());
    // Token 2 works and yields token 3.
    let (who, cookies) = whoami(&app, &format!("sc_refresh={t2}")).await;
    assert_eq!(who.as_deref(), Some("ana@example.com"));
    let t3 = cookies["sc_refresh"].clone();

    // An attacker replays token 2 (N-1 after N = 3 was issued): signed out, cookies cleared.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (who, cookies) = whoami(&app, &format!("sc_refresh={t2}")).await;
    assert_eq!(who, None);
    assert_eq!(cookies.get("sc_refresh").map(String::as_str), Some(""));
    // ...and the family is dead: the legitimate holder of token 3 is signed out too.
    let (who, _) = whoami(&app, &format!("sc_refresh={t3}")).await;
    assert_eq!(who, None, "reuse revokes every token of the session");
    assert_eq!(
        db.count("sessions WHERE revoked_reason = 'reuse_detected'")
            .await,
        1
    );
    // The access token issued with token 3 stops working at once in this process.
    let (who, _) = whoami(&app, &session.cookie).await;
    assert_eq!(who, None);
}

/// Whether the page at `/` renders signed in as `email` with `cookie`, and the cookies set.
async fn page_signed_in(
    app: &Router,
    cookie: &str,
    email: &str,
) -> (bool, std::collections::HashMap<String, String>) {
    let res = send(app, with_cookie(support::get_req("/"), cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    (support::text(res).await.contains(email), cookies)
}

#[tokio::test]
async fn parallel_page_loads_within_the_grace_period_do_not_look_like_theft() {
    let db = TestDb::new().await;
    let state = support::state_for(&db); // 2 s grace
    let app = app_with(&state, roomy());
    let session = signed_in(&state, "ana@example.com").await;
    let cookie = format!("sc_refresh={}", session.refresh);
    let (a, b) = tokio::join!(
        page_signed_in(&app, &cookie, "ana@example.com"),
        page_signed_in(&app, &cookie, "ana@example.com")
    );
    assert!(a.0 && b.0, "both loads are signed in");
    // Exactly one of them rotated.
    let rotated = [&a.1, &b.1]
        .iter()
        .filter(|c| c.get("sc_refresh").is_some_and(|v| !v.is_empty()))
        .count();
    assert_eq!(rotated, 1);
    assert_eq!(db.count("sessions WHERE revoked_at IS NOT NULL").await, 0);
}

#[tokio::test]
async fn a_just_spent_refresh_token_passes_a_get_but_a_post_on_it_is_refused() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let spent = format!("sc_refresh={}", ana.refresh);
    // A quick GET spends it (the window is short; a debug-build page render is not).
    let res = send(
        &app,
        with_cookie(
            support::get_req(&format!("/api/generations/{}/events", uuid::Uuid::new_v4())),
            &spent,
        ),
    )
    .await;
    assert!(
        set_cookies(&res)
            .get("sc_refresh")
            .is_some_and(|v| !v.is_empty()),
        "rotated"
    );
    // Within the window a state-changing request on it is refused outright, cookies left
    // alone, and nothing revoked (a page's own parallel requests are not theft)...
    for path in [
        "/api/account/sign_out_everywhere",
        "/api/account/me",
        "/api/auth/refresh",
    ] {
        let res = send(&app, with_cookie(form_post(path, ""), &spent)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(set_cookies(&res).is_empty(), "{path}");
        assert_eq!(json(res).await["code"], "unauthorized");
    }
    // ...while a GET on it still identifies the session, without rotating again.
    let (signed, cookies) = page_signed_in(&app, &spent, "ana@example.com").await;
    assert!(signed, "a parallel page load stays signed in");
    assert!(cookies.is_empty(), "nothing rotated again");
    assert_eq!(db.count("sessions WHERE revoked_at IS NOT NULL").await, 0);
}

fn forge(header_json: &str, claims: &AccessClaims, key: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
    );
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    )
}

#[tokio::test]
async fn forged_tampered_and_expired_access_tokens_are_refused() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let session = signed_in(&state, "ana@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        sub: session.user.id,
        sid: session.user.session_id,
        tier: "enterprise".into(),
        iat: now,
        exp: now + 600,
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let hs512 = forge(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, b"guess");
    let wrong_key = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, b"guess");
    let issued = state.auth.key.issue(&AccessClaims {
        tier: "free".into(),
        ..claims.clone()
    });
    let mut parts: Vec<&str> = issued.split('.').collect();
    parts[1] = &payload; // claims swapped for "enterprise", signature kept
    let tampered = parts.join(".");
    let expired = state.auth.key.issue(&AccessClaims {
        iat: now - 1000,
        exp: now - 1,
        ..claims.clone()
    });
    for (name, token) in [
        ("alg none", none),
        ("HS512", hs512),
        ("wrong key", wrong_key),
        ("tampered", tampered),
        ("expired", expired),
    ] {
        let (who, _) = whoami(&app, &format!("sc_access={token}")).await;
        assert_eq!(who, None, "{name} must not sign anyone in");
    }
    // The genuine one does (so the refusals above are about the forgeries).
    let (who, _) = whoami(&app, &format!("sc_access={issued}")).await;
    assert_eq!(who.as_deref(), Some("ana@example.com"));
}

#[tokio::test]
async fn the_sixth_auth_request_in_a_minute_is_429_and_other_ips_are_unaffected() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, server::web::ratelimit::Limits::default());
    let attempt = |ip| {
        from_ip(
            form_post(
                "/api/auth/sign_in",
                &credentials("nobody@example.com", "wrong password!"),
            ),
            ip,
        )
    };
    for _ in 0..5 {
        let res = send(&app, attempt([203, 0, 113, 1])).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = send(&app, attempt([203, 0, 113, 1])).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(json(res).await["code"], "rate_limited");
    // Another address is not held back by this one.
    let res = sign_in_from(
        &app,
        "other@example.com",
        "wrong password!",
        [198, 51, 100, 7],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Sets its flag when the last copy of it is dropped: shows when the router let go of the
/// request it was put in.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Sends `req` and watches `dropped` meanwhile: how long the answer took, and whether the
/// request was let go before the answer came.
async fn send_watching(
    app: &Router,
    req: Request<Body>,
    dropped: &std::sync::atomic::AtomicBool,
) -> (Response<Body>, Duration, bool) {
    let started = std::time::Instant::now();
    let mut answer = std::pin::pin!(send(app, req));
    let mut let_go_first = false;
    let res = loop {
        tokio::select! {
            res = &mut answer => break res,
            () = tokio::time::sleep(Duration::from_millis(5)) => {
                let_go_first |= dropped.load(std::sync::atomic::Ordering::SeqCst);
            }
        }
    };
    (res, started.elapsed(), let_go_first)
}

#[tokio::test]
async fn a_refusal_is_held_for_the_refusal_delay_never_past_retry_after_with_the_request_let_go() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    // Any `/api/` path counts against `api`; one that does not exist costs nothing to serve.
    let call = |ip: [u8; 4]| from_ip(form_post("/api/no-such-call", ""), ip);
    let delay = Duration::from_millis(700);
    let app = app_with(
        &state,
        server::web::ratelimit::Limits {
            api_per_minute: 1,
            refusal_delay: delay,
            ..roomy()
        },
    );
    assert_eq!(
        send(&app, call([203, 0, 113, 20])).await.status(),
        StatusCode::NOT_FOUND
    );
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut req = call([203, 0, 113, 20]);
    req.extensions_mut()
        .insert(Arc::new(DropFlag(Arc::clone(&dropped))));
    let (res, took, let_go_first) = send_watching(&app, req, &dropped).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "60");
    assert!(
        took >= delay,
        "the 429 came after {took:?}, before the {delay:?} hold"
    );
    assert!(
        let_go_first,
        "the request was still held while its refusal waited"
    );
    assert_eq!(json(res).await["code"], "rate_limited");

    // A refusal whose Retry-After is shorter than the delay is held only that long: 60 a
    // minute, so once the minute's 60 are spent the next is a second away.
    let app = app_with(
        &state,
        server::web::ratelimit::Limits {
            api_per_minute: 60,
            refusal_delay: Duration::from_secs(8),
            ..roomy()
        },
    );
    for i in 0..60 {
        let res = send(&app, call([203, 0, 113, 21])).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "request {i}");
    }
    let (res, took, _) = send_watching(&app, call([203, 0, 113, 21]), &dropped).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    assert!(
        took >= Duration::from_millis(990) && took < Duration::from_secs(8),
        "held {took:?}: its Retry-After (1 s), not the 8 s delay"
    );
}

#[tokio::test]
async fn a_stranger_locks_only_their_own_address_and_the_account_ceiling_covers_every_address() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| s.lockout_account_failures = 8);
    let app = app_with(&state, roomy());
    signed_in(&state, "ana@example.com").await;
    signed_in(&state, "bo@example.com").await;
    let stranger = [203, 0, 113, 66];
    for _ in 0..5 {
        let res = sign_in_from(&app, "ana@example.com", "not the password", stranger).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The stranger's address is locked out of the account, even with the right password,
    // with the wait in the message...
    let res = sign_in_from(&app, "Ana@Example.com", PASSWORD, stranger).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = json(res).await;
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["message"].as_str().unwrap().contains("15 minutes"),
        "{body}"
    );
    // ...an IPv6 stranger is one prefix whatever address of their /64 they use...
    for i in 0..5u16 {
        let ip: std::net::IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
        let mut req = form_post(
            "/api/auth/sign_in",
            &credentials("bo@example.com", "not the password"),
        );
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40_000)));
        assert_eq!(
            send(&app, req).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let ip: std::net::IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
    let mut req = form_post(
        "/api/auth/sign_in",
        &credentials("bo@example.com", PASSWORD),
    );
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::new(ip, 40_000)));
    assert_eq!(
        send(&app, req).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the owner, from their own address, still signs in, and that clears only their
    // own count (the stranger stays locked).
    let res = sign_in_from(&app, "ana@example.com", PASSWORD, [198, 51, 100, 1]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookies(&res).contains_key("sc_access"));
    let res = sign_in_from(&app, "ana@example.com", PASSWORD, stranger).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // Failures spread over many addresses meet the account's ceiling (8 here): then
    // everyone is refused, the owner too.
    for i in 0..3u8 {
        let res = sign_in_from(&app, "ana@example.com", "not the password", [192, 0, 2, i]).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = sign_in_from(&app, "ana@example.com", PASSWORD, [198, 51, 100, 1]).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn parallel_wrong_passwords_never_get_more_verifications_than_the_ceiling() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| s.hash_queue = 64);
    let app = app_with(&state, roomy());
    signed_in(&state, "ana@example.com").await;
    let results = futures_util::future::join_all((0..20).map(|_| {
        sign_in_from(
            &app,
            "ana@example.com",
            "not the password",
            [203, 0, 113, 5],
        )
    }))
    .await;
    // The rest are locked out (429) or, waiting for the small test pool, 503: none verified.
    let verified = results
        .iter()
        .filter(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!(verified, 5, "only the ceiling's worth checked");
    assert!(results.iter().all(|r| r.status() != StatusCode::OK));
    assert_eq!(db.count("signin_failures").await, 5);

    // The lockout's own step, each attempt on a connection of its own and all at once (the
    // requests above reach the database together only now and then): the check and the
    // record are one step, so the ceiling's worth get in and the rest are refused.
    let mut conns = Vec::new();
    for _ in 0..12 {
        conns.push(db.conn().await);
    }
    let attempts = futures_util::future::join_all(conns.iter_mut().map(|c| {
        state
            .auth
            .admit_attempt(c, "bo@example.com", "198.51.100.7")
    }))
    .await;
    let admitted = attempts.iter().filter(|a| matches!(a, Ok(None))).count();
    let refused = attempts.iter().filter(|a| matches!(a, Ok(Some(_)))).count();
    assert_eq!(
        (admitted, refused),
        (5, 7),
        "only the ceiling's worth admitted"
    );
    assert_eq!(
        db.count("signin_failures WHERE email = 'bo@example.com'")
            .await,
        5
    );
}

#[tokio::test]
async fn the_lockout_is_one_count_across_instances() {
    let db = TestDb::new().await;
    // Two instances: each its own `Auth` and router (as two processes have), one database.
    let (state_a, state_b) = (support::state_for(&db), support::state_for(&db));
    assert!(!Arc::ptr_eq(&state_a.auth, &state_b.auth));
    let (app_a, app_b) = (app_with(&state_a, roomy()), app_with(&state_b, roomy()));
    signed_in(&state_a, "ana@example.com").await;
    for i in 0..5u8 {
        let app = if i % 2 == 0 { &app_a } else { &app_b };
        let res = sign_in_from(
            app,
            "ana@example.com",
            "not the password",
            [203, 0, 113, 10],
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Three failures on one and two on the other are five: both refuse the right password.
    for app in [&app_a, &app_b] {
        let res = sign_in_from(app, "ana@example.com", PASSWORD, [203, 0, 113, 10]).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!((state_a.auth.lockouts(), state_b.auth.lockouts()), (1, 1));
}

#[tokio::test]
async fn failed_sign_ins_age_out_a_success_clears_them_and_the_sweep_deletes_them() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let auth = Auth::new(support::TEST_SECRET, support::test_auth_settings());
    let here = "203.0.113.1";
    for _ in 0..5 {
        assert_eq!(
            auth.admit_attempt(&mut conn, "ana@example.com", here)
                .await
                .unwrap(),
            None,
            "admitted (and counted)"
        );
    }
    let wait = auth
        .admit_attempt(&mut conn, "ana@example.com", here)
        .await
        .unwrap()
        .expect("locked out");
    assert!(
        wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60),
        "{wait:?}"
    );
    assert_eq!(auth.lockouts(), 1);
    assert_eq!(
        failure_rows(&mut conn).await,
        5,
        "a refusal records nothing"
    );
    assert_eq!(
        auth.admit_attempt(&mut conn, "bo@example.com", here)
            .await
            .unwrap(),
        None
    );
    auth.clear_failures(&mut conn, "ana@example.com", here)
        .await
        .unwrap();
    assert_eq!(
        auth.admit_attempt(&mut conn, "ana@example.com", here)
            .await
            .unwrap(),
        None
    );
    diesel::sql_query("DELETE FROM signin_failures")
        .execute(&mut conn)
        .await
        .unwrap();

    // A one-second window: the lockout ends as the oldest failure ages out.
    let short = Auth::new(
        support::TEST_SECRET,
        AuthSettings {
            lockout_window: Duration::from_secs(1),
            ..support::test_auth_settings()
        },
    );
    for _ in 0..5 {
        short
            .admit_attempt(&mut conn, "cy@example.com", here)
            .await
            .unwrap();
    }
    let wait = short
        .admit_attempt(&mut conn, "cy@example.com", here)
        .await
        .unwrap()
        .expect("locked out");
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(1100)).await;
    // Aged-out rows go with the next attempt on that email, and with the sweep for the rest.
    assert_eq!(
        short
            .admit_attempt(&mut conn, "cy@example.com", here)
            .await
            .unwrap(),
        None
    );
    assert_eq!(failure_rows(&mut conn).await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(short.sweep_failures(&mut conn).await.unwrap(), 1);
    assert_eq!(failure_rows(&mut conn).await, 0);
}

async fn failure_rows(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    use diesel::QueryDsl;
    domain::db::schema::signin_failures::table
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

/// A second sign-in of an existing account (another device).
async fn another_device(state: &AppState, email: &str) -> domain::accounts::sessions::Issued {
    let mut conn = state.conn().await.unwrap();
    let user = domain::accounts::service::authenticate(&mut conn, email, PASSWORD)
        .await
        .unwrap();
    domain::accounts::sessions::start(&mut conn, &state.auth, &user, "10.0.0.2", "x")
        .await
        .unwrap()
}

async fn refresh_works(app: &Router, session: &Session) -> bool {
    whoami(app, &format!("sc_refresh={}", session.refresh))
        .await
        .0
        .is_some()
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let phone = signed_in(&state, "ana@example.com").await;
    let laptop = another_device(&state, "ana@example.com").await;
    let mut conn = state.conn().await.unwrap();
    let laptop_cookie = format!("sc_access={}", laptop.access);

    let wrong = send(
        &app,
        with_session(
            form_post(
                "/api/account/change_password",
                "current_password=nope+nope+nope&new_password=a+brand+new+passphrase",
            ),
            &phone,
        ),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(wrong).await["fields"][0]["field"], "current_password");

    let res = send(
        &app,
        with_session(
            form_post(
                "/api/account/change_password",
                "current_password=correct+horse+battery&new_password=a+brand+new+passphrase",
            ),
            &phone,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, 1, "one other session ended");
    // The laptop is out at once (its access token) and for good (its refresh token).
    assert_eq!(whoami(&app, &laptop_cookie).await.0, None);
    assert_eq!(
        whoami(&app, &format!("sc_refresh={}", laptop.refresh))
            .await
            .0,
        None
    );
    // The phone stays in; the new password works and the old one does not.
    assert!(whoami(&app, &phone.cookie).await.0.is_some());
    assert!(refresh_works(&app, &phone).await);
    assert!(
        domain::accounts::service::authenticate(&mut conn, "ana@example.com", PASSWORD)
            .await
            .is_err()
    );
    assert!(
        domain::accounts::service::authenticate(
            &mut conn,
            "ana@example.com",
            "a brand new passphrase"
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn sessions_are_listed_revoked_and_ended_everywhere() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let bo = signed_in(&state, "bo@example.com").await;
    let second = another_device(&state, "ana@example.com").await;

    let res = send(
        &app,
        with_session(form_post("/api/account/sessions", ""), &ana),
    )
    .await;
    let list = json(res).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["current"] == true)
            .count(),
        1
    );

    // Bo cannot end Ana's session: it is "not found", like a made-up id.
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/account/revoke_session",
                &format!("id={}", second.user.session_id),
            ),
            &bo,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(db.count("sessions WHERE revoked_at IS NOT NULL").await, 0);

    // Ana can.
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/account/revoke_session",
                &format!("id={}", second.user.session_id),
            ),
            &ana,
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        whoami(&app, &format!("sc_refresh={}", second.refresh))
            .await
            .0,
        None
    );

    // Sign out everywhere: this browser too, and its cookies are cleared.
    let res = send(
        &app,
        with_session(form_post("/api/account/sign_out_everywhere", ""), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(set_cookies(&res)["sc_access"], "");
    assert_eq!(whoami(&app, &ana.cookie).await.0, None);
    assert!(!refresh_works(&app, &ana).await);
    // Bo is untouched.
    assert!(whoami(&app, &bo.cookie).await.0.is_some());
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookies() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let res = send(
        &app,
        with_session(form_post("/api/account/sign_out", ""), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    assert_eq!(cookies["sc_access"], "");
    assert_eq!(cookies["sc_refresh"], "");
    assert_eq!(whoami(&app, &ana.cookie).await.0, None);
    assert!(!refresh_works(&app, &ana).await);
    assert_eq!(
        db.count("sessions WHERE revoked_reason = 'signed_out'")
            .await,
        1
    );
}

#[tokio::test]
async fn each_tier_has_its_own_requests_per_minute() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(
        &state,
        server::web::ratelimit::Limits {
            tier_api_per_minute: [3, 6, 9],
            ..roomy()
        },
    );
    let free = signed_in(&state, "free@example.com").await;
    let other = signed_in(&state, "other@example.com").await;
    for _ in 0..3 {
        let res = send(
            &app,
            with_session(form_post("/api/generations/recent", ""), &free),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = send(
        &app,
        with_session(form_post("/api/generations/recent", ""), &free),
    )
    .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    // Per user, not per address: another user from the same address goes on.
    let res = send(
        &app,
        with_session(form_post("/api/generations/recent", ""), &other),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // A pro account (tier in a fresh token) gets its larger allowance.
    let mut conn = db.conn().await;
    domain::accounts::service::set_tier(
        &mut conn,
        "other@example.com",
        domain::accounts::Tier::Pro,
    )
    .await
    .unwrap();
    let (_, cookies) = whoami(&app, &format!("sc_refresh={}", other.refresh)).await;
    let pro_cookie = format!("sc_access={}", cookies["sc_access"]);
    let mut ok = 0;
    for _ in 0..8 {
        let res = send(
            &app,
            with_cookie(form_post("/api/generations/recent", ""), &pro_cookie),
        )
        .await;
        if res.status() == StatusCode::OK {
            ok += 1;
        }
    }
    // Pro: 6 a minute in the pro table, of which the refresh request above used one.
    assert_eq!(ok, 5);
}

fn submission_body(prompt: &str) -> String {
    format!(
        "prompt={}&style=bold&format=instagram_square&variations=1",
        prompt.replace(' ', "+")
    )
}

#[tokio::test]
async fn the_daily_generation_allowance_is_enforced_and_rolls_over() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| {
        s.plans.free = TierLimits {
            generations_per_day: 2,
            ..s.plans.free
        }
    });
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let submit = |p: &str| {
        with_session(
            form_post("/api/generations/submit", &submission_body(p)),
            &ana,
        )
    };
    assert_eq!(
        send(&app, submit("Morning coffee promo")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, submit("Evening coffee promo")).await.status(),
        StatusCode::OK
    );
    let res = send(&app, submit("Midnight coffee promo")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = json(res).await;
    assert_eq!(body["code"], "quota_exceeded");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 generations in the last 24 hours"),
        "{body}"
    );
    assert_eq!(
        db.count("generations").await,
        2,
        "nothing stored when refused"
    );
    assert_eq!(db.count("jobs").await, 2);

    // A day later the oldest has left the window: one more is allowed, then refused again.
    let mut conn = db.conn().await;
    diesel::sql_query(
        "UPDATE usage_ledger SET created_at = now() - interval '25 hours' \
         WHERE generation_id = (SELECT id FROM generations WHERE prompt = 'Morning coffee promo')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        send(&app, submit("Next day coffee promo")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, submit("One too many")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Concurrent submissions cannot both take the last one.
    let bo = signed_in(&state, "bo@example.com").await;
    let submit_bo = |p: &str| {
        with_session(
            form_post("/api/generations/submit", &submission_body(p)),
            &bo,
        )
    };
    let results = futures_util::future::join_all(
        (0..4).map(|i| send(&app, submit_bo(&format!("Bo's promo number {i}")))),
    )
    .await;
    let ok = results
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(ok, 2);
}

#[tokio::test]
async fn deleting_generations_and_images_gives_no_allowance_back() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| {
        s.plans.free = TierLimits {
            generations_per_day: 2,
            ..s.plans.free
        }
    });
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let submit = |p: &str| {
        with_session(
            form_post("/api/generations/submit", &submission_body(p)),
            &ana,
        )
    };
    for p in ["Morning coffee promo", "Evening coffee promo"] {
        assert_eq!(send(&app, submit(p)).await.status(), StatusCode::OK);
    }
    assert_eq!(
        send(&app, submit("Third coffee promo")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Every trace of the day's work deleted (images go with their generations)...
    db.exec("DELETE FROM generations").await;
    assert_eq!(db.count("generations").await, 0);
    // ...and the day's allowance is still used up, on the account page too.
    let res = send(&app, submit("Fourth coffee promo")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json(res).await["code"], "quota_exceeded");
    let res = send(&app, with_session(form_post("/api/account/me", ""), &ana)).await;
    assert_eq!(json(res).await["generations_today"], 2);
    assert_eq!(db.count("usage_ledger WHERE kind = 'generation'").await, 2);
}

#[tokio::test]
async fn storage_reservations_stop_at_the_tier_quota_even_when_concurrent() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| {
        s.plans.free = TierLimits {
            storage_bytes: 10_000_000,
            ..s.plans.free
        }
    });
    let ana = signed_in(&state, "ana@example.com").await;
    let limits = state.auth.settings.plans.free;
    let user: CurrentUser = ana.user;
    let mut conn = db.conn().await;
    domain::accounts::quota::reserve_storage(&mut conn, user.id, 6_000_000, limits)
        .await
        .unwrap();
    let e = domain::accounts::quota::reserve_storage(&mut conn, user.id, 5_000_000, limits)
        .await
        .unwrap_err();
    assert_eq!(e.code, shared::error::ErrorCode::QuotaExceeded);
    assert!(e.message.contains("10 MB"), "{}", e.message);
    domain::accounts::quota::reserve_storage(&mut conn, user.id, 4_000_000, limits)
        .await
        .unwrap();
    assert_eq!(
        domain::accounts::quota::storage_used(&mut conn, user.id)
            .await
            .unwrap(),
        10_000_000
    );
    domain::accounts::quota::release_storage(&mut conn, user.id, 3_000_000)
        .await
        .unwrap();

    // Ten uploads of 1 MB at once into the 3 MB left: exactly three fit.
    let results = futures_util::future::join_all((0..10).map(|_| {
        let pool = state.db.clone();
        async move {
            let mut c = pool.get().await.unwrap();
            domain::accounts::quota::reserve_storage(&mut c, user.id, 1_000_000, limits).await
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(
        domain::accounts::quota::storage_used(&mut conn, user.id)
            .await
            .unwrap(),
        10_000_000
    );
}

#[tokio::test]
async fn a_session_ended_by_one_process_stops_working_in_another_at_once() {
    let db = TestDb::new().await;
    // Two web processes: separate memory, one database.
    let first = support::state_for(&db);
    let second = support::state_for(&db);
    let listening = tokio::spawn(server::wiring::forward_revocations(
        db.url.clone(),
        second.auth.clone(),
    ));
    let (app_one, app_two) = (app_with(&first, roomy()), app_with(&second, roomy()));
    let ana = signed_in(&first, "ana@example.com").await;
    // Give the listener time to connect (it reconnects on its own if it has to).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(whoami(&app_two, &ana.cookie).await.0.is_some());

    let res = send(
        &app_one,
        with_session(form_post("/api/account/sign_out", ""), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !second.auth.is_revoked(ana.user.session_id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other process never heard of the revocation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The still-unexpired access token is refused by the other process too.
    assert_eq!(whoami(&app_two, &ana.cookie).await.0, None);
    listening.abort();
}

#[tokio::test]
async fn a_refused_cross_site_request_never_refreshes_a_session() {
    let db = TestDb::new().await;
    let state = support::state_for(&db);
    let app = app_with(&state, roomy());
    let ana = signed_in(&state, "ana@example.com").await;
    let mut req = with_cookie(
        form_post("/api/account/sign_out", ""),
        &format!("sc_refresh={}", ana.refresh),
    );
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(&res).is_empty(), "no cookies on a refusal");
    assert_eq!(
        db.count("refresh_tokens WHERE used_at IS NOT NULL").await,
        0
    );
    assert_eq!(db.count("sessions WHERE revoked_at IS NOT NULL").await, 0);
    // The token is still good for its owner.
    assert!(refresh_works(&app, &ana).await);
}

#[tokio::test]
async fn password_work_beyond_the_gate_and_its_queue_is_503_with_retry_after() {
    let db = TestDb::new().await;
    let state = state_with(&db, |s| {
        s.hash_concurrency = 1;
        s.hash_queue = 1;
    });
    let app = app_with(&state, roomy());
    signed_in(&state, "ana@example.com").await;
    let results = futures_util::future::join_all(
        (0..6u8).map(|i| sign_in_from(&app, "ana@example.com", PASSWORD, [203, 0, 113, i])),
    )
    .await;
    let mut ok = 0;
    let mut busy = 0;
    for res in results {
        match res.status() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(res.headers()[header::RETRY_AFTER], "1");
                assert_eq!(json(res).await["code"], "unavailable");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    // One running and one waiting get through; the other four are turned away at once.
    assert_eq!((ok, busy), (2, 4));
    assert_eq!(state.auth.passwords.refused(), 4);
    // Turned away before any database work: no failure recorded for them.
    assert_eq!(db.count("signin_failures").await, 0);
}

#[tokio::test]
async fn no_pool_connection_is_held_while_a_password_is_verified() {
    let db = TestDb::new().await;
    // One connection for everything.
    let mut state = support::state_for(&db);
    state.db = domain::db::pool::build_pool(&db.url, 1, Duration::from_secs(20)).unwrap();
    let app = app_with(&state, roomy());
    signed_in(&state, "ana@example.com").await;
    let bo = signed_in(&state, "bo@example.com").await;
    // Ana's stored hash costs 100 passes instead of 2 (verification follows the stored
    // parameters), so her sign-in spends seconds verifying.
    let slow = tokio::task::spawn_blocking(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(19 * 1024, 100, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string()
    })
    .await
    .unwrap();
    db.exec(&format!(
        "UPDATE users SET password_hash = '{slow}' WHERE email = 'ana@example.com'"
    ))
    .await;
    let signing_in = tokio::spawn({
        let app = app.clone();
        async move { sign_in_from(&app, "ana@example.com", PASSWORD, [203, 0, 113, 1]).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.auth.passwords.running() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started hashing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // While it verifies, another request that needs the pool's only connection is served.
    let (who, _) = whoami(&app, &bo.cookie).await;
    assert_eq!(who.as_deref(), Some("bo@example.com"));
    // Served during the verification, not once it ended (the sign-in still has database
    // work after it, so its being unfinished alone would not say).
    assert_eq!(
        state.auth.passwords.running(),
        1,
        "served while the sign-in was still verifying"
    );
    assert!(!signing_in.is_finished());
    assert_eq!(signing_in.await.unwrap().status(), StatusCode::OK);
}

/// A login role of the test cluster and a URL to `db` as it, for a listener whose
/// connections the test can refuse (`ALTER ROLE … NOLOGIN`) without touching anyone else's.
async fn listener_role(db: &TestDb) -> (String, String) {
    let role = format!("{}_listener", db.name);
    db.batch(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'listener'; GRANT SELECT ON sessions TO {role};"
    ))
    .await;
    let rest = db.url.split_once('@').unwrap().1;
    (role.clone(), format!("postgres://{role}:listener@{rest}"))
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn revocations_made_while_a_process_was_not_listening_are_refused_once_it_listens() {
    let db = TestDb::new().await;
    let (role, listener_url) = listener_role(&db).await;
    let first = support::state_for(&db);
    let app_one = app_with(&first, roomy());
    let ana = signed_in(&first, "ana@example.com").await;
    let bo = signed_in(&first, "bo@example.com").await;

    // Before the second process starts, Ana signs out on the first: the announcement is
    // gone by the time the second listens.
    let res = send(
        &app_one,
        with_session(form_post("/api/account/sign_out", ""), &ana),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = support::state_for(&db);
    let app_two = app_with(&second, roomy());
    assert!(!second.auth.is_revoked(ana.user.session_id));
    let listening = tokio::spawn(server::wiring::forward_revocations(
        listener_url,
        second.auth.clone(),
    ));
    wait_until(
        "the revocation from before the start was never reloaded",
        || second.auth.is_revoked(ana.user.session_id),
    )
    .await;
    assert_eq!(whoami(&app_two, &ana.cookie).await.0, None);

    // The listener's connection drops and cannot come back for a while; Bo signs out
    // meanwhile, announced to nobody.
    assert!(whoami(&app_two, &bo.cookie).await.0.is_some());
    db.batch(&format!(
        "ALTER ROLE {role} NOLOGIN; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';"
    ))
    .await;
    let res = send(
        &app_one,
        with_session(form_post("/api/account/sign_out", ""), &bo),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !second.auth.is_revoked(bo.user.session_id),
        "nobody was listening"
    );
    // Once it reconnects it reloads, and Bo's still-unexpired access token is refused.
    db.exec(&format!("ALTER ROLE {role} LOGIN")).await;
    wait_until(
        "the revocation made while disconnected was never reloaded",
        || second.auth.is_revoked(bo.user.session_id),
    )
    .await;
    assert_eq!(whoami(&app_two, &bo.cookie).await.0, None);
    listening.abort();
}
