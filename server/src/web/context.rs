//! The request context: the request id, the tracing span and Sentry scope each request runs
//! in, and the error pages and statuses a failure turns into.

use axum::response::IntoResponse;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, Response};
use shared::error::ErrorCode;

/// The header that carries the request ID in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest server-function error body we read back to pick its status.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

pub(crate) fn valid_request_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then_some(s)
}

/// Gives each request an ID (the caller's `x-request-id` when it is sane, else a new UUID),
/// runs it inside a span carrying that ID so every log line of the request has it, returns
/// the ID in the response, logs the outcome, and turns a panic into a friendly error.
pub(crate) async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(valid_request_id)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let id_header = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"));
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), id_header.clone());

    let path = req.uri().path().to_owned();
    let wants_json = path.starts_with("/api/")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"));
    let route = route_label(&req, &path);
    let method = domain::metrics::method_label(req.method());
    // The path without its capabilities (media keys, upload tokens); never the query, which
    // may hold a cursor or a prompt.
    let logged_path = crate::telemetry::redact_path(&path).into_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %logged_path);
    let started = Instant::now();
    let in_flight = domain::metrics::InFlight::start();
    // Without a Sentry client these do nothing.
    sentry::configure_scope(|scope| {
        scope.set_tag("request_id", &id);
        scope.set_tag("route", &route);
        scope.set_transaction(Some(&format!("{method} {route}")));
        // The transaction Sentry's layer started carries the request's whole URL; events are
        // scrubbed before sending, transactions are not, so its copy is scrubbed here.
        if let Some(span) = scope.get_span() {
            let mut request = sentry::protocol::Request {
                url: sentry_url(&req, &logged_path),
                method: Some(method.to_owned()),
                ..Default::default()
            };
            crate::telemetry::scrub_request(&mut request);
            span.set_request(request);
        }
    });

    let report = std::sync::Arc::new(crate::telemetry::RequestReport::default());
    let outcome = crate::telemetry::REQUEST_REPORT
        .scope(
            report.clone(),
            AssertUnwindSafe(next.run(req))
                .catch_unwind()
                .instrument(span.clone()),
        )
        .await;
    // The panic hook has already logged the panic, inside this request's span.
    let mut res = outcome.unwrap_or_else(|_| internal_error_response(wants_json, &id));
    res.headers_mut().insert(X_REQUEST_ID.clone(), id_header);
    drop(in_flight);

    let status = res.status().as_u16();
    let took = started.elapsed();
    domain::metrics::global().observe_request(&route, method, status, took);
    if status >= 500
        && !is_probe(&path)
        && !report.reported.load(std::sync::atomic::Ordering::Relaxed)
    {
        report_server_error(status, method, &route);
    }
    let latency_ms = took.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request failed");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    });
    res
}

/// The URL Sentry records for a request: scheme and host as Sentry's layer sees them, the
/// redacted path, no query.
pub(crate) fn sentry_url(req: &Request, path: &str) -> Option<sentry::protocol::Url> {
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })?;
    let scheme = req.uri().scheme_str().unwrap_or("http");
    format!("{scheme}://{host}{path}").parse().ok()
}

/// The route a request matched, as a bounded metric label: the route pattern, `/pkg/*` for
/// built assets, `/media/*`, or `fallback` for static files and unknown paths.
pub(crate) fn route_label(req: &Request, path: &str) -> String {
    if let Some(matched) = req.extensions().get::<axum::extract::MatchedPath>() {
        let pattern = matched.as_str();
        if pattern.starts_with("/media/") {
            return "/media/*".to_owned();
        }
        return pattern.to_owned();
    }
    if path.starts_with("/pkg/") {
        "/pkg/*".to_owned()
    } else {
        "fallback".to_owned()
    }
}

/// Probes answer 503 by design while a dependency is away; they are not errors to report.
pub(crate) fn is_probe(path: &str) -> bool {
    matches!(path, "/api/health" | "/api/ready" | "/metrics")
}

/// Sends a 5xx to Sentry, for a request that reported nothing else (an error logged with
/// `tracing::error!`, a panic): one event per failed request, carrying the request's tags.
/// Without a Sentry client this does nothing.
pub(crate) fn report_server_error(status: u16, method: &str, route: &str) {
    let hub = sentry::Hub::current();
    if hub.client().is_none() {
        return;
    }
    hub.capture_message(
        &format!("HTTP {status} on {method} {route}"),
        sentry::Level::Error,
    );
}

/// The response for a request whose handler panicked: a JSON error for API callers, the
/// friendly error page for people. Neither reveals anything about the failure but its ID.
pub fn internal_error_response(wants_json: bool, request_id: &str) -> Response {
    if wants_json {
        let body = serde_json::json!({
            "code": ErrorCode::Internal.as_str(),
            "message": "Something went wrong on our side. Please try again.",
            "request_id": request_id,
        });
        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(error_page(request_id)),
        )
            .into_response()
    }
}

pub(crate) fn error_page(request_id: &str) -> String {
    // The ID is a validated token (alphanumerics and -_.:) or a UUID, so it is HTML-safe.
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · SocialCraft</title><link rel="stylesheet" href="/pkg/{name}.css"></head>
<body><main><section class="message-page">
<h1>Something went wrong</h1>
<p>We could not finish that request. It has been logged and we will look into it.</p>
<p>If it keeps happening, mention this reference: <code>{request_id}</code></p>
<p><a href="/">Back to SocialCraft</a></p>
</section></main></body></html>"#,
        name = app::OUTPUT_NAME
    )
}

/// Server functions answer every error with 500; this gives each the status its stable code
/// calls for (422 for validation, 503 for an unavailable dependency, ...), in one place.
///
/// Redirects (a form posted without JavaScript) are left alone: the browser must follow them.
pub(crate) async fn server_fn_error_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !res.headers().contains_key("serverfnerror")
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(_) => return internal_error_response(true, "-"),
    };
    #[derive(serde::Deserialize)]
    struct Coded {
        code: ErrorCode,
    }
    if let Ok(Coded { code }) = serde_json::from_slice::<Coded>(&bytes)
        && let Ok(status) = StatusCode::from_u16(code.http_status())
    {
        parts.status = status;
        // Every 503 (a dependency down, the password queue full) is worth retrying soon.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            parts
                .headers
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("1"));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

pub(crate) fn coded(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (
        status,
        axum::Json(shared::error::AppError::new(code, message)),
    )
        .into_response()
}

/// Names the signed-in user (by id only) for the request's Sentry events. Runs after the
/// session middleware; does nothing with Sentry off.
pub(crate) async fn sentry_user(
    axum::extract::State(enabled): axum::extract::State<bool>,
    req: Request,
    next: Next,
) -> Response {
    if enabled
        && let Some(user) = req
            .extensions()
            .get::<domain::accounts::auth::CurrentUser>()
    {
        crate::telemetry::set_request_user(user.id.to_string());
    }
    next.run(req).await
}
