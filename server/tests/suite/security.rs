//! Security headers on every kind of response, the cross-site request check, CORS and the
//! body limit, through the real middleware stack on a real PostgreSQL.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use server::web::HttpSettings;
use server::web::security::Security;
use support::{
    Session, TestDb, form_post, get_req, send, signed_in, state_for, text, with_session,
};

fn settings(hsts: bool) -> HttpSettings {
    HttpSettings {
        security: Security {
            allowed_origins: vec!["https://partner.example".into()],
            hsts,
        },
        ..HttpSettings::default()
    }
}

fn app(db: &TestDb, hsts: bool) -> axum::Router {
    server::web::app_with(state_for(db), support::leptos_options(), &settings(hsts))
}

/// The app and a signed-in creator on it.
async fn app_signed_in(db: &TestDb, hsts: bool) -> (axum::Router, Session) {
    let state = state_for(db);
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app_with(state, support::leptos_options(), &settings(hsts));
    (app, session)
}

fn assert_common(res: &axum::response::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(
        h["referrer-policy"], "strict-origin-when-cross-origin",
        "{what}"
    );
    assert!(h.contains_key("permissions-policy"), "{what}");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") || csp.contains("sandbox"),
        "{what}: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let stored = state
        .media
        .put(b"\x89PNG fake".to_vec(), domain::media::MediaKind::Png)
        .await
        .unwrap();
    let session = signed_in(&state, "maker@example.com").await;
    let app = server::web::app_with(state, support::leptos_options(), &settings(false));

    // The page (the studio, signed in): its CSP carries the nonce that is on its scripts.
    let res = send(&app, with_session(get_req("/"), &session)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_common(&res, "page");
    assert!(
        !res.headers().contains_key("strict-transport-security"),
        "no HSTS in development"
    );
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("nonce in the page's CSP")
        .to_owned();
    let page = text(res).await;
    assert!(
        page.contains(&format!("nonce=\"{nonce}\"")),
        "scripts carry the CSP's nonce"
    );
    assert!(
        !page.contains(" style=\""),
        "no inline styles under the CSP"
    );

    // A second page view gets a different nonce.
    let again = send(&app, with_session(get_req("/"), &session)).await;
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce)
    );

    // The signed-out page is under the same policy.
    let res = send(&app, get_req("/")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_common(&res, "signed-out page");
    assert!(
        !text(res).await.contains(" style=\""),
        "no inline styles under the CSP"
    );

    for (what, req, status) in [
        (
            "server function",
            with_session(form_post("/api/generations/recent", ""), &session),
            StatusCode::OK,
        ),
        (
            "validation error",
            with_session(
                form_post(
                    "/api/generations/submit",
                    "prompt=x&style=bold&format=story",
                ),
                &session,
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "signed out",
            form_post(
                "/api/generations/submit",
                "prompt=Signed+out&style=bold&format=story",
            ),
            StatusCode::UNAUTHORIZED,
        ),
        ("health", get_req("/api/health"), StatusCode::OK),
        ("404 page", get_req("/no/such/page"), StatusCode::NOT_FOUND),
    ] {
        let res = send(&app, req).await;
        assert_eq!(res.status(), status, "{what}");
        assert_common(&res, what);
    }

    let res = send(&app, get_req(&format!("/media/{}", stored.key))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_common(&res, "media");
    assert_eq!(
        res.headers()["content-security-policy"],
        server::web::security::MEDIA_CSP
    );
}

#[tokio::test]
async fn production_adds_hsts() {
    let db = TestDb::new().await;
    let res = send(&app(&db, true), get_req("/api/health")).await;
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

/// A submission from `origin`, carrying the creator's session cookies (as a browser would
/// send them to a cross-site form post: SameSite=Lax cookies are not the defence here).
fn submit_from(session: &Session, origin: &str, fetch_site: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/api/generations/submit")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "127.0.0.1:3000")
        .header("origin", origin)
        .header("cookie", session.cookie.as_str());
    if let Some(site) = fetch_site {
        req = req.header("sec-fetch-site", site);
    }
    req.body(Body::from(
        "prompt=Cross+site+attempt&style=bold&format=story&variations=1",
    ))
    .unwrap()
}

#[tokio::test]
async fn a_cross_site_post_is_403_and_changes_nothing() {
    let db = TestDb::new().await;
    let (app, session) = app_signed_in(&db, false).await;
    for (origin, site) in [
        ("https://evil.example", Some("cross-site")),
        ("https://evil.example", None),
        ("null", None),
    ] {
        let res = send(&app, submit_from(&session, origin, site)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin} {site:?}");
        assert_common(&res, "refusal");
        assert_eq!(support::json(res).await["code"], "forbidden");
    }
    assert_eq!(db.count("generations").await, 0, "nothing stored");

    // The same request from our own page, or from an allowed origin, goes through.
    let res = send(
        &app,
        submit_from(&session, "http://127.0.0.1:3000", Some("same-origin")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(
        &app,
        submit_from(&session, "https://partner.example", Some("cross-site")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(db.count("generations").await, 2);
}

fn preflight(origin: &str) -> Request<Body> {
    Request::options("/api/generations/submit")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let db = TestDb::new().await;
    let app = app(&db, false);
    let res = send(&app, preflight("https://evil.example")).await;
    assert!(
        !res.headers().contains_key("access-control-allow-origin"),
        "an unlisted origin is not allowed"
    );
    let res = send(&app, preflight("https://partner.example")).await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://partner.example"
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_and_stores_nothing() {
    let db = TestDb::new().await;
    let (app, session) = app_signed_in(&db, false).await;
    let big = format!(
        "prompt={}&style=bold&format=story",
        "a".repeat(HttpSettings::default().max_body_bytes + 1)
    );
    // Refused from its declared length, before any of it is read.
    let mut req = with_session(form_post("/api/generations/submit", &big), &session);
    req.headers_mut()
        .insert("content-length", big.len().to_string().parse().unwrap());
    let res = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_common(&res, "413");
    assert_eq!(support::json(res).await["code"], "payload_too_large");
    assert_eq!(db.count("generations").await, 0);
}

#[tokio::test]
async fn the_eleventh_submission_in_a_minute_is_429_with_retry_after() {
    let db = TestDb::new().await;
    let (app, session) = app_signed_in(&db, false).await;
    let body = "prompt=Rate+limit+check&style=bold&format=story&variations=1";
    let submit = || with_session(form_post("/api/generations/submit", body), &session);
    for i in 0..10 {
        let res = send(&app, submit()).await;
        assert_eq!(res.status(), StatusCode::OK, "submission {i}");
    }
    let res = send(&app, submit()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_common(&res, "429");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "retry-after {wait}");
    let err = support::json(res).await;
    assert_eq!(err["code"], "rate_limited");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{wait} s"))
    );
    assert_eq!(
        db.count("generations").await,
        10,
        "the refused one stored nothing"
    );
    // Other groups and unlimited routes still answer.
    assert_eq!(
        send(
            &app,
            with_session(form_post("/api/generations/recent", ""), &session)
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, with_session(get_req("/"), &session))
            .await
            .status(),
        StatusCode::OK
    );
}
