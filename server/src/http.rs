//! The axum router and the middleware every request goes through.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use app::error::ErrorCode;
use app::state::AppState;
use app::{App, shell};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

use crate::ratelimit::RateLimits;
use crate::security::Security;
use tracing::Instrument;

/// The header that carries the request ID in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest server-function error body we read back to pick its status.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Longest pause in a page's (or server function's) response body.
pub const PAGE_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// All routes: pages, server functions, static files, health, readiness and (with a token)
/// metrics. No middleware.
pub fn routes(state: AppState, leptos_options: LeptosOptions, settings: &HttpSettings) -> Router {
    let route_list = generate_route_list(App);
    let context_state = state.clone();
    let provide_state = move || {
        provide_context(context_state.clone());
        app::csp::provide_page_nonce();
    };

    let api = Router::new()
        .route("/api/health", get(crate::health::health))
        .route(
            "/api/ready",
            get(crate::health::ready).with_state((state.clone(), settings.ready.clone())),
        )
        .route(
            "/api/generations/{id}/events",
            get(crate::create::events::generation_events),
        )
        .route(
            "/api/admin/trends/import",
            axum::routing::post(crate::trends::admin_import),
        )
        .route(
            "/api/uploads/{token}",
            axum::routing::put(crate::uploads::put_upload),
        )
        .route("/media/{*key}", get(media));
    let api = match &settings.metrics_token {
        Some(token) => api.route(
            "/metrics",
            get(crate::metrics::scrape_with_token).with_state((
                crate::metrics::ScrapeSources {
                    state: state.clone(),
                    rate_limits: Some(settings.rate_limits.clone()),
                    ready: None,
                },
                token.clone(),
            )),
        ),
        None => api,
    }
    .with_state(state);

    Router::<LeptosOptions>::new()
        .leptos_routes_with_context(&leptos_options, route_list, provide_state.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            provide_state,
            shell,
        ))
        // A page whose body stops arriving is cut off instead of held open forever (the
        // request timeout covers only the time to the response head). Leptos has known rare
        // stalls in server-rendered streams (leptos-rs/leptos#4851); this bounds them. Not on
        // the API routes: progress streams are long-lived by design.
        .layer(tower_http::timeout::ResponseBodyTimeoutLayer::new(
            PAGE_BODY_IDLE_TIMEOUT,
        ))
        .with_state(leptos_options)
        .merge(api)
}

/// Settings for the middleware stack.
#[derive(Clone)]
pub struct HttpSettings {
    /// Rate limiters (shared with the task that prunes them).
    pub rate_limits: RateLimits,
    /// Headers, cross-site checks and CORS.
    pub security: Security,
    /// Longest time to produce a response (a stream's body may take longer).
    pub request_timeout: Duration,
    /// Largest request body (sign-in and sign-up take at most [`AUTH_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// Largest total size of a request's headers.
    pub max_header_bytes: usize,
    /// Largest upload body (`PUT /api/uploads/...`).
    pub max_upload_bytes: usize,
    /// Longest time an upload request may take.
    pub upload_timeout: Duration,
    /// What `/api/ready` checks besides the database and storage.
    pub ready: crate::health::ReadySettings,
    /// With a token, `/metrics` is served on this listener to requests bearing it.
    pub metrics_token: Option<crate::config::Secret>,
    /// Report errors and sampled traces to Sentry (the client is set up in `main`).
    pub sentry: bool,
    /// Visitor pages kept rendered for a moment.
    pub page_cache: crate::pagecache::PageCacheSettings,
    /// The bundle, precompressed in memory (`None`: served as files, compressed per request).
    pub assets: Option<crate::assets::Assets>,
}

/// Largest body of a sign-in, sign-up or refresh request: an email and a password.
pub const AUTH_MAX_BODY_BYTES: usize = 8 * 1024;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::new(&crate::ratelimit::Limits::default()),
            security: Security::default(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_upload_bytes: app::uploads::DEFAULT_MAX_UPLOAD_BYTES as usize,
            upload_timeout: Duration::from_secs(600),
            ready: crate::health::ReadySettings::default(),
            metrics_token: None,
            sentry: false,
            page_cache: crate::pagecache::PageCacheSettings::default(),
            assets: None,
        }
    }
}

impl HttpSettings {
    /// From configuration and the Leptos options. Fails only on a `REDIS_URL` the Redis
    /// client cannot use (call it inside a Tokio runtime: the Redis connection is made in the
    /// background).
    pub fn from_config(
        config: &crate::config::Config,
        options: &LeptosOptions,
    ) -> Result<Self, String> {
        let rate_limits = RateLimits::from_config(&config.rate_limits, &config.rate_limit_store)?;
        Ok(Self {
            rate_limits: rate_limits.clone(),
            security: Security {
                allowed_origins: config.http.allowed_origins.clone(),
                hsts: config.is_production(),
            },
            request_timeout: config.http.request_timeout,
            max_body_bytes: config.http.max_body_bytes,
            max_header_bytes: config.http.max_header_bytes,
            max_upload_bytes: usize::try_from(config.uploads.max_bytes).unwrap_or(usize::MAX),
            upload_timeout: config.uploads.timeout,
            ready: crate::health::ReadySettings {
                rate_limits: Some(rate_limits),
                ..crate::health::ReadySettings::from_config(config, options)
            },
            metrics_token: config.observability.metrics_token.clone(),
            sentry: config.observability.sentry.is_some(),
            page_cache: config.http.page_cache,
            assets: None,
        })
    }
}

/// Wraps `router` in the middleware stack, outermost first: request IDs, logging and panics
/// (so it sees every response); security headers (so every response gets them, refusals
/// included); the header size limit; per-IP rate limits (cheap, before any database work);
/// the cross-site request check; the session (who is asking; silent refresh); per-user rate
/// limits; CORS; compression; the response timeout; body limits per route group;
/// server-function error statuses. With Sentry on, a hub per request and a sampled
/// transaction wrap all of it.
pub fn with_middleware(router: Router, state: &AppState, settings: &HttpSettings) -> Router {
    let router = router
        .layer(middleware::from_fn(server_fn_error_status))
        // Plain form posts come back with codes, never text (`forms`).
        .layer(middleware::from_fn(crate::forms::outcomes))
        .layer(middleware::from_fn_with_state(
            BodyLimits {
                max: settings.max_body_bytes,
                upload: settings.max_upload_bytes,
            },
            body_limit,
        ))
        .layer(middleware::from_fn_with_state(
            Timeouts {
                request: settings.request_timeout,
                upload: settings.upload_timeout,
            },
            timeout,
        ))
        // Inside compression (it stores pages as rendered and serves its own compressed
        // copies), outside the timeout (a hit needs no timer).
        .layer(middleware::from_fn_with_state(
            crate::pagecache::PageCache::new(state, settings.page_cache),
            crate::pagecache::serve,
        ))
        .layer(middleware::from_fn_with_state(
            settings.assets.clone().unwrap_or_default(),
            crate::assets::serve,
        ))
        // The fastest level: the default gzip level cuts page throughput roughly tenfold on
        // a 2-core machine for a few percent smaller bodies.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .layer(crate::security::cors(&settings.security))
        .layer(middleware::from_fn_with_state(
            settings.rate_limits.clone(),
            crate::ratelimit::limit_user,
        ))
        .layer(middleware::from_fn_with_state(settings.sentry, sentry_user))
        .layer(middleware::from_fn_with_state(
            crate::auth::SessionLayer {
                state: state.clone(),
                limits: settings.rate_limits.clone(),
            },
            crate::auth::session,
        ))
        // Before the session: a refused cross-site request never reaches a token refresh.
        .layer(middleware::from_fn_with_state(
            settings.security.clone(),
            crate::security::cross_site_check,
        ))
        .layer(middleware::from_fn_with_state(
            settings.rate_limits.clone(),
            crate::ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            settings.max_header_bytes,
            header_limit,
        ))
        .layer(middleware::from_fn_with_state(
            settings.security.clone(),
            crate::security::headers,
        ))
        .layer(middleware::from_fn(request_context));
    if settings.sentry {
        // Outermost: each request gets its own hub (so its tags and events stay its own)
        // before anything inside runs; the user is named once the session is known.
        router
            .layer(sentry::integrations::tower::SentryHttpLayer::new().enable_transaction())
            .layer(sentry::integrations::tower::NewSentryLayer::<Request>::new_from_top())
    } else {
        router
    }
}

/// Names the signed-in user (by id only) for the request's Sentry events. Runs after the
/// session middleware; does nothing with Sentry off.
async fn sentry_user(
    axum::extract::State(enabled): axum::extract::State<bool>,
    req: Request,
    next: Next,
) -> Response {
    if enabled && let Some(user) = req.extensions().get::<app::accounts::auth::CurrentUser>() {
        crate::telemetry::set_request_user(user.id.to_string());
    }
    next.run(req).await
}

/// The complete application with default settings (development; tests).
pub fn app(state: AppState, leptos_options: LeptosOptions) -> Router {
    app_with(state, leptos_options, &HttpSettings::default())
}

/// The complete application: routes plus middleware.
pub fn app_with(state: AppState, leptos_options: LeptosOptions, settings: &HttpSettings) -> Router {
    with_middleware(
        routes(state.clone(), leptos_options, settings),
        &state,
        settings,
    )
}

fn coded(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, axum::Json(app::error::AppError::new(code, message))).into_response()
}

/// Refuses requests whose headers add up to more than the limit (431). hyper already caps
/// a request head at about 400 KB and 100 headers; this keeps what reaches the handlers
/// (cookies included) to the configured size.
async fn header_limit(
    axum::extract::State(max): axum::extract::State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > max {
        return coded(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            "The request's headers are too large. Clearing this site's cookies may help.",
        );
    }
    next.run(req).await
}

#[derive(Clone, Copy)]
struct BodyLimits {
    max: usize,
    upload: usize,
}

/// Body limits per route group: sign-in and friends take a few kilobytes, uploads the upload
/// cap, everything else the configured maximum. A declared length over the limit is refused
/// before reading (413); a body that turns out longer is cut off at the limit while being
/// read.
async fn body_limit(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    let max = limits.max;
    let limit = match crate::ratelimit::Group::of(req.method(), req.uri().path()) {
        Some(crate::ratelimit::Group::Auth) => AUTH_MAX_BODY_BYTES.min(max),
        Some(crate::ratelimit::Group::Upload) => limits.upload,
        // Trend feeds are files; only administrators get past the handler's check.
        _ if req.uri().path().starts_with("/api/admin/") => crate::trends::MAX_FEED_BYTES,
        _ => max,
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return coded(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "The request is larger than this endpoint accepts.",
        );
    }
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

#[derive(Clone, Copy)]
struct Timeouts {
    request: Duration,
    upload: Duration,
}

/// The response timeout (503 when it passes): uploads get their own, longer one, since the
/// body of a 10 MB file on a slow link takes minutes to arrive.
async fn timeout(
    axum::extract::State(t): axum::extract::State<Timeouts>,
    req: Request,
    next: Next,
) -> Response {
    let upload = req.method() == axum::http::Method::PUT
        && matches!(
            crate::ratelimit::Group::of(req.method(), req.uri().path()),
            Some(crate::ratelimit::Group::Upload)
        );
    let limit = if upload { t.upload } else { t.request };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn valid_request_id(v: &HeaderValue) -> Option<&str> {
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
async fn request_context(mut req: Request, next: Next) -> Response {
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
    let method = crate::metrics::method_label(req.method());
    // The path without its capabilities (media keys, upload tokens); never the query, which
    // may hold a cursor or a prompt.
    let logged_path = crate::telemetry::redact_path(&path).into_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %logged_path);
    let started = Instant::now();
    let in_flight = crate::metrics::InFlight::start();
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
    crate::metrics::global().observe_request(&route, method, status, took);
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
fn sentry_url(req: &Request, path: &str) -> Option<sentry::protocol::Url> {
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
fn route_label(req: &Request, path: &str) -> String {
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
fn is_probe(path: &str) -> bool {
    matches!(path, "/api/health" | "/api/ready" | "/metrics")
}

/// Sends a 5xx to Sentry, for a request that reported nothing else (an error logged with
/// `tracing::error!`, a panic): one event per failed request, carrying the request's tags.
/// Without a Sentry client this does nothing.
fn report_server_error(status: u16, method: &str, route: &str) {
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

fn error_page(request_id: &str) -> String {
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
async fn server_fn_error_status(req: Request, next: Next) -> Response {
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
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// `GET /media/{key}`: a stored image. Keys are content-addressed, so the content never
/// changes: cached for a year as immutable, with the content hash as its ETag.
async fn media(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(parts) = app::media::parse_key(&key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", parts.sha256);
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, etag)]).into_response();
    }
    match state.media.get(&key).await {
        Ok(Some(bytes)) => {
            let mut res = (
                cache,
                [
                    (header::ETAG, etag),
                    (header::CONTENT_TYPE, parts.kind.content_type().to_owned()),
                ],
                bytes,
            )
                .into_response();
            if parts.original {
                // An uploaded original is the uploader's bytes: a download, never a document
                // rendered on our origin (the sandboxing CSP covers the rest).
                let name = format!(
                    "attachment; filename=\"{}.{}\"",
                    &parts.sha256[..16],
                    parts.kind.ext()
                );
                if let Ok(v) = HeaderValue::from_str(&name) {
                    res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
                }
            }
            res
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            // The key is a capability: name the content by its hash only.
            tracing::error!(error = %e, sha256 = %parts.sha256, "could not read media");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
