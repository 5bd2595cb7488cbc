//! The axum router and the middleware every request goes through.

pub mod assets;
pub mod context;
pub mod forms;
pub mod health;
pub mod limits;
pub mod media;
pub mod metrics;
pub mod pagecache;
pub mod ratelimit;
pub mod security;
pub mod serving;
pub mod session;

use crate::web::ratelimit::RateLimits;
use crate::web::security::Security;
use app::{App, shell};
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self};
use axum::routing::get;
use context::{request_context, sentry_user, server_fn_error_status};
use domain::state::AppState;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use limits::{BodyLimits, PAGE_BODY_IDLE_TIMEOUT, Timeouts, body_limit, header_limit, timeout};
use media::media;
use session::admin_only;
use std::time::Duration;
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;

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
        .route("/api/health", get(crate::web::health::health))
        .route(
            "/api/ready",
            get(crate::web::health::ready).with_state((state.clone(), settings.ready.clone())),
        )
        .route(
            "/api/generations/{id}/events",
            get(domain::create::events::generation_events).with_state((
                state.clone(),
                domain::create::events::EventStreams::new(
                    settings.connections.event_streams_per_user,
                ),
            )),
        )
        // The caller is checked before the body is read: a stranger's upload of a feed
        // costs a session check, not 8 MB read into memory.
        .route(
            "/api/admin/trends/import",
            axum::routing::post(domain::trends::admin_import)
                .layer(middleware::from_fn_with_state(state.clone(), admin_only)),
        )
        .route(
            "/api/uploads/{token}",
            axum::routing::put(domain::uploads::put_upload),
        )
        .route("/media/{*key}", get(media));
    let api = match &settings.metrics_token {
        Some(token) => api.route(
            "/metrics",
            get(crate::web::metrics::scrape_with_token).with_state((
                crate::web::metrics::ScrapeSources {
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
    pub ready: crate::web::health::ReadySettings,
    /// With a token, `/metrics` is served on this listener to requests bearing it.
    pub metrics_token: Option<domain::secret::Secret>,
    /// Report errors and sampled traces to Sentry (the client is set up in `main`).
    pub sentry: bool,
    /// Visitor pages kept rendered for a moment.
    pub page_cache: crate::web::pagecache::PageCacheSettings,
    /// The bundle, precompressed in memory (`None`: served as files, compressed per request).
    pub assets: Option<crate::web::assets::Assets>,
    /// Header and body timeouts, connection caps, progress streams per user.
    pub connections: crate::web::serving::ConnectionLimits,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::new(&crate::web::ratelimit::Limits::default()),
            security: Security::default(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_upload_bytes: app::uploads::DEFAULT_MAX_UPLOAD_BYTES as usize,
            upload_timeout: Duration::from_secs(600),
            ready: crate::web::health::ReadySettings::default(),
            metrics_token: None,
            sentry: false,
            page_cache: crate::web::pagecache::PageCacheSettings::default(),
            assets: None,
            connections: crate::web::serving::ConnectionLimits::default(),
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
            ready: crate::web::health::ReadySettings {
                rate_limits: Some(rate_limits),
                ..crate::web::health::ReadySettings::from_config(config, options)
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
        .layer(middleware::from_fn(crate::web::forms::outcomes))
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
            crate::web::pagecache::PageCache::new(state, settings.page_cache),
            crate::web::pagecache::serve,
        ))
        .layer(middleware::from_fn_with_state(
            settings.assets.clone().unwrap_or_default(),
            crate::web::assets::serve,
        ))
        // The fastest level: the default gzip level cuts page throughput roughly tenfold on
        // a 2-core machine for a few percent smaller bodies.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .layer(crate::web::security::cors(&settings.security))
        .layer(middleware::from_fn_with_state(
            settings.rate_limits.clone(),
            crate::web::ratelimit::limit_user,
        ))
        .layer(middleware::from_fn_with_state(settings.sentry, sentry_user))
        .layer(middleware::from_fn_with_state(
            crate::web::session::SessionLayer {
                state: state.clone(),
                limits: settings.rate_limits.clone(),
            },
            crate::web::session::session,
        ))
        // Before the session: a refused cross-site request never reaches a token refresh.
        .layer(middleware::from_fn_with_state(
            settings.security.clone(),
            crate::web::security::cross_site_check,
        ))
        .layer(middleware::from_fn_with_state(
            settings.rate_limits.clone(),
            crate::web::ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            settings.max_header_bytes,
            header_limit,
        ))
        .layer(middleware::from_fn_with_state(
            settings.security.clone(),
            crate::web::security::headers,
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
