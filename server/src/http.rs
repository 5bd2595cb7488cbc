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

/// The app's route list, generated once per process. leptos_axum generates it by running the
/// app with resource loading suppressed through a process-wide flag (leptos_server's
/// `SuppressResourceLoad`), and a resource first polled anywhere in the process while that
/// flag is up waits forever (leptos-rs/leptos#4773). Made once, before any router exists,
/// nothing can be rendering meanwhile: a second router built while another served pages (as
/// tests do in parallel) hung a page render for good.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static LIST: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| generate_route_list(App)).clone()
}

/// All routes: pages, server functions, static files, health, readiness and (with a token)
/// metrics. No middleware.
pub fn routes(state: AppState, leptos_options: LeptosOptions, settings: &HttpSettings) -> Router {
    let route_list = route_list();
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
            get(crate::create::events::generation_events).with_state((
                state.clone(),
                crate::create::events::EventStreams::new(
                    settings.connections.event_streams_per_user,
                ),
            )),
        )
        // The caller is checked before the body is read: a stranger's upload of a feed
        // costs a session check, not 8 MB read into memory.
        .route(
            "/api/admin/trends/import",
            axum::routing::post(crate::trends::admin_import)
                .layer(middleware::from_fn_with_state(state.clone(), admin_only)),
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
    pub metrics_token: Option<crate::secret::Secret>,
    /// Report errors and sampled traces to Sentry (the client is set up in `main`).
    pub sentry: bool,
    /// Visitor pages kept rendered for a moment.
    pub page_cache: crate::pagecache::PageCacheSettings,
    /// The bundle, precompressed in memory (`None`: served as files, compressed per request).
    pub assets: Option<crate::assets::Assets>,
    /// Header and body timeouts, connection caps, progress streams per user.
    pub connections: crate::serving::ConnectionLimits,
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
            connections: crate::serving::ConnectionLimits::default(),
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
            connections: config.http.connections,
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
                idle: settings.connections.body_idle_timeout,
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
    /// Longest pause in a request body.
    idle: Duration,
}

fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn payload_too_large() -> Response {
    coded(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "The request is larger than this endpoint accepts.",
    )
}

/// Body limits per route group: sign-in and friends take a few kilobytes, uploads the upload
/// cap, everything else the configured maximum. A declared length over the limit is refused
/// before reading (413); a body that turns out longer is cut off at the limit while being
/// read. A body that stops arriving for `idle` is cut off too, and the request answered 408
/// (whatever the handler made of the broken body) with the connection closed; this holds for
/// every route, uploads included (progress streams have no body to wait for).
///
/// The admin endpoints' larger limit is checked by [`admin_only`] once the caller is known
/// to be an administrator, so nobody else gets a large body read or even refused for size.
async fn body_limit(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    use axum::body::HttpBody;
    let max = limits.max;
    let admin = req.uri().path().starts_with("/api/admin/");
    let limit = match crate::ratelimit::Group::of(req.method(), req.uri().path()) {
        Some(crate::ratelimit::Group::Auth) => AUTH_MAX_BODY_BYTES.min(max),
        Some(crate::ratelimit::Group::Upload) => limits.upload,
        // Trend feeds are files; only administrators get past `admin_only`.
        _ if admin => crate::trends::MAX_FEED_BYTES,
        _ => max,
    };
    if !admin && declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return payload_too_large();
    }
    if req.body().is_end_stream() {
        // Nothing to wait for (a GET, a progress stream).
        return next.run(req).await;
    }
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = stalled.clone();
    let req = req.map(|b| {
        Body::new(http_body_util::Limited::new(
            IdleBody {
                inner: b,
                idle: limits.idle,
                sleep: None,
                progressed: false,
                stalled: watch,
            },
            limit,
        ))
    });
    let res = next.run(req).await;
    if stalled.load(std::sync::atomic::Ordering::Relaxed) {
        crate::metrics::global().http_body_timeouts.inc();
        let mut res = coded(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BadRequest,
            "The request's body stopped arriving.",
        );
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    res
}

/// A request body that fails once it has made no progress for `idle` (and says so in
/// `stalled`). The clock runs only while the handler waits on the client: a handler busy
/// elsewhere does not count against the body.
struct IdleBody {
    inner: Body,
    idle: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// A frame arrived since the timer was last set.
    progressed: bool,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl axum::body::HttpBody for IdleBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            this.progressed = true;
            return Poll::Ready(frame);
        }
        let deadline = tokio::time::Instant::now() + this.idle;
        let progressed = std::mem::take(&mut this.progressed);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if progressed {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.stalled
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(
                    "the request body stopped arriving",
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// In front of the admin endpoints: 401 signed out, 403 for anyone but an administrator
/// (`users.is_admin`, read now, so a revoked grant takes effect at once), before a byte of
/// the body is read; then the admin body limit (413 for a declared length over it).
async fn admin_only(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use app::db::schema::users;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let Some(user) = req
        .extensions()
        .get::<app::accounts::auth::CurrentUser>()
        .copied()
    else {
        return coded(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "Sign in as an administrator.",
        );
    };
    let admin = match state.conn().await {
        Ok(mut conn) => users::table
            .find(user.id)
            .select(users::is_admin)
            .first::<bool>(&mut *conn)
            .await
            .optional()
            .map_err(|e| tracing::error!(error = %e, "admin check failed")),
        Err(_) => Err(()),
    };
    match admin {
        Ok(Some(true)) => {}
        Ok(_) => {
            return coded(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "Only administrators may do this.",
            );
        }
        Err(()) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(app::error::AppError::unavailable()),
            )
                .into_response();
        }
    }
    if declared_length(req.headers()).is_some_and(|n| n > crate::trends::MAX_FEED_BYTES as u64) {
        return payload_too_large();
    }
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

/// How a file that a shared image uses is cached: for a year, by anyone. Its key is
/// content-addressed, so the bytes at it never change.
const MEDIA_PUBLIC: &str = "public, max-age=31536000, immutable";

/// How every other file is cached: by the browser only, revalidated on each use (a cheap
/// 304), so a deleted image, or one made private again, stops showing as soon as its URL
/// stops answering.
const MEDIA_PRIVATE: &str = "private, max-age=0, must-revalidate";

/// `GET /media/{key}`: a stored file, streamed from the store (never read whole into memory),
/// all of it or one byte range (206; several ranges are refused with 416, see
/// `app::media::resolve_range`). The content hash in the key is the ETag.
///
/// The URL is the capability (no session is checked): keys carry a random prefix, and
/// unsharing an image moves it to a new one. What is cached publicly is decided from
/// `media_blobs`: a file that a shared image uses is `public, immutable`; anything else is
/// `private` and revalidated. A file whose every record is gone (refs at zero, awaiting
/// deletion) is already a 404. Without the database the file is still served, as private.
async fn media(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(parts) = app::media::parse_key(&key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", parts.sha256);
    // Straight from the pool, not `state.conn()`: a file is still served (as private) without
    // the database, so its absence is a warning here, not an error to report.
    let uses = match state.db.get().await {
        Ok(mut conn) => app::gallery::records::blob_uses(&mut conn, &key)
            .await
            // The key is a capability: logs name the content by its hash only.
            .map_err(|e| tracing::warn!(error = %e, sha256 = %parts.sha256, "media: could not read its uses")),
        Err(e) => {
            tracing::warn!(error = %e, "media: no database connection; served as private");
            Err(())
        }
    };
    // `recorded`: a record uses it, so it exists without asking the store.
    let (recorded, public) = match uses {
        Ok(Some((0, _))) => return StatusCode::NOT_FOUND.into_response(),
        Ok(Some((_, public_refs))) => (true, public_refs > 0),
        Ok(None) | Err(()) => (false, false),
    };
    let cache = [
        (
            header::CACHE_CONTROL,
            if public { MEDIA_PUBLIC } else { MEDIA_PRIVATE },
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let unavailable = |e: app::media::MediaError| {
        tracing::error!(error = %e, sha256 = %parts.sha256, "could not read media");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    };
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let matches = header_str(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        // A revalidation must not keep a deleted file alive in someone's cache: answer 304
        // only for what still exists.
        if !recorded {
            match state.media.size(&key).await {
                Ok(Some(_)) => {}
                Ok(None) => return StatusCode::NOT_FOUND.into_response(),
                Err(e) => return unavailable(e),
            }
        }
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, etag)]).into_response();
    }
    // If-Range: the range only holds for this exact content; a date or another tag means
    // "send it all" (our content never changes, but a date cannot say which content it saw).
    let range_header = header_str(header::RANGE)
        .filter(|_| header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag));
    let mut range = None;
    if let Some(value) = range_header {
        let size = match state.media.size(&key).await {
            Ok(Some(size)) => size,
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(e) => return unavailable(e),
        };
        match app::media::resolve_range(value, size) {
            app::media::RangeAnswer::Whole => {}
            app::media::RangeAnswer::Part(r) => range = Some(r),
            app::media::RangeAnswer::Unsatisfiable | app::media::RangeAnswer::Multiple => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    cache,
                    [
                        (header::CONTENT_RANGE, format!("bytes */{size}")),
                        (header::ACCEPT_RANGES, "bytes".to_owned()),
                    ],
                )
                    .into_response();
            }
        }
    }
    let partial = range.is_some();
    let stream = match state.media.stream(&key, range).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return unavailable(e),
    };
    let length = stream.range.end.saturating_sub(stream.range.start);
    let mut res = (
        if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        },
        cache,
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, parts.kind.content_type().to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(stream.body),
    )
        .into_response();
    if partial
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            stream.range.start,
            stream.range.end.saturating_sub(1),
            stream.size
        ))
    {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
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
