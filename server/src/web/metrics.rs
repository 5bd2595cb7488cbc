//! The metrics endpoints: `/metrics` on the main listener behind a token, and the separate
//! metrics listener (`METRICS_ADDR`) with `/metrics`, `/api/health` and `/ready`. The
//! registry itself is `domain::metrics`; what only a scrape reads (queue depth, pool, rate
//! limiter sizes) is gathered here.

use axum::response::IntoResponse;
use domain::metrics::{KindLabels, global};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use domain::state::AppState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::web::ratelimit::{Group, RateLimits};

/// How long the scrape-time database queries may take before they are left out.
const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// The OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scrape reads besides the process registry.
#[derive(Clone)]
pub struct ScrapeSources {
    /// The application state (database pool, sign-in lockouts).
    pub state: AppState,
    /// The rate limiters (denials by group), when this process serves HTTP.
    pub rate_limits: Option<RateLimits>,
    /// What readiness checks: with it, this listener serves `/ready` with every check's
    /// detail (the public `/api/ready` names failing checks only).
    pub ready: Option<crate::web::health::ReadySettings>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    kind: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(diesel::QueryableByName)]
struct QueueRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    oldest_secs: Option<f64>,
}

/// Jobs waiting, running and dead, by kind, with the age of the oldest ready job. Each
/// predicate matches one of the queue's partial indexes, so this stays cheap however many
/// finished jobs the table holds.
async fn queue_depth(state: &AppState) -> Result<Vec<QueueRow>, String> {
    use diesel_async::RunQueryDsl;
    let mut conn = state.db.get().await.map_err(|e| e.to_string())?;
    diesel::sql_query(
        "SELECT kind, 'queued' AS status, count(*) AS n, \
                extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 \
                  AS oldest_secs \
           FROM jobs WHERE status = 'queued' GROUP BY kind \
         UNION ALL \
         SELECT kind, 'running', count(*), NULL FROM jobs WHERE status = 'running' GROUP BY kind \
         UNION ALL \
         SELECT kind, 'dead', count(*), NULL FROM jobs WHERE status = 'dead' GROUP BY kind",
    )
    .load::<QueueRow>(&mut conn)
    .await
    .map_err(|e| e.to_string())
}

/// The whole exposition: the process registry, then what is read now.
pub async fn render(sources: &ScrapeSources) -> String {
    let mut now = Registry::with_prefix("socialcraft");

    let queue = Family::<QueueLabels, Gauge>::default();
    let oldest = Family::<KindLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let queue_up = Gauge::<i64>::default();
    match tokio::time::timeout(SCRAPE_DB_TIMEOUT, queue_depth(&sources.state)).await {
        Ok(Ok(rows)) => {
            queue_up.set(1);
            for row in rows {
                if let Some(secs) = row.oldest_secs {
                    oldest
                        .get_or_create(&KindLabels {
                            kind: row.kind.clone(),
                        })
                        .set(secs.max(0.0));
                }
                queue
                    .get_or_create(&QueueLabels {
                        kind: row.kind,
                        state: row.status,
                    })
                    .set(row.n);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: could not read the job queue"),
        Err(_) => tracing::warn!("metrics: reading the job queue timed out"),
    }
    now.register(
        "job_queue_depth",
        "Jobs by kind and state (queued, running, dead), read from PostgreSQL at scrape time",
        queue,
    );
    now.register_with_unit(
        "job_queue_oldest_ready",
        "Age of the oldest job that is ready to run and not yet claimed, by kind",
        Unit::Seconds,
        oldest,
    );
    now.register(
        "job_queue_scrape_ok",
        "1 when the job queue could be read for this scrape, else 0",
        queue_up,
    );

    let status = sources.state.db.status();
    let pool = Family::<PoolLabels, Gauge>::default();
    let in_use = status.size.saturating_sub(status.available);
    pool.get_or_create(&PoolLabels { state: "idle" })
        .set(status.available as i64);
    pool.get_or_create(&PoolLabels { state: "in_use" })
        .set(in_use as i64);
    now.register(
        "db_pool_connections",
        "Open database connections in this process's pool, by state",
        pool,
    );
    let max = Gauge::<i64>::default();
    max.set(status.max_size as i64);
    now.register(
        "db_pool_max_connections",
        "Largest number of connections the pool may open",
        max,
    );
    let waiting = Gauge::<i64>::default();
    waiting.set(status.waiting as i64);
    now.register(
        "db_pool_waiting",
        "Requests waiting for a database connection right now",
        waiting,
    );

    if let Some(limits) = &sources.rate_limits {
        let denied = Family::<GroupLabels, Counter>::default();
        for group in [
            Group::Auth,
            Group::Generate,
            Group::Api,
            Group::Upload,
            Group::User,
            Group::Media,
        ] {
            denied
                .get_or_create(&GroupLabels {
                    group: group.as_str(),
                })
                .inc_by(limits.denied(group));
        }
        now.register(
            "rate_limit_denials",
            "Requests refused with 429, by limit group",
            denied,
        );
        let fallbacks = Counter::<u64>::default();
        fallbacks.inc_by(limits.fallbacks());
        now.register(
            "rate_limit_store_fallbacks",
            "Rate-limit checks answered in process because the shared store (Redis) did not",
            fallbacks,
        );
    }
    let lockouts = Counter::<u64>::default();
    lockouts.inc_by(sources.state.auth.lockouts());
    now.register(
        "signin_lockouts",
        "Sign-ins refused because the account had too many recent failures",
        lockouts,
    );

    let mut out = String::with_capacity(16 * 1024);
    let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &global().registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &now))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    if let Err(e) = encoded {
        tracing::error!(error = %e, "could not encode metrics");
    }
    out
}

/// `GET /metrics` on the main listener: only with the configured bearer token.
pub async fn scrape_with_token(
    State((sources, token)): State<(ScrapeSources, domain::secret::Secret)>,
    headers: HeaderMap,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(shared::error::AppError::new(
                shared::error::ErrorCode::Unauthorized,
                "Metrics need the configured bearer token.",
            )),
        )
            .into_response();
    }
    exposition(&sources).await
}

/// `GET /metrics` on the metrics listener.
pub async fn scrape(State(sources): State<ScrapeSources>) -> Response {
    exposition(&sources).await
}

async fn exposition(sources: &ScrapeSources) -> Response {
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render(sources).await,
    )
        .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The router of the separate metrics listener: `/metrics`, `/api/health` so the listener
/// itself can be probed (a worker process has no other), and `/ready`, readiness with each
/// check's detail, for operators.
pub fn listener_router(sources: ScrapeSources) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .route(
            "/api/health",
            axum::routing::get(crate::web::health::health),
        )
        .route("/ready", axum::routing::get(ready_detail))
        .with_state(sources)
}

/// `GET /ready` on the metrics listener.
async fn ready_detail(State(sources): State<ScrapeSources>) -> Response {
    match &sources.ready {
        Some(settings) => crate::web::health::ready_detail(&sources.state, settings).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Binds the metrics listener (at start-up, so a taken port stops the start).
pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("could not listen for metrics on {addr} (METRICS_ADDR): {e}"))
}

/// Serves [`listener_router`] on `listener` until `shutdown` resolves.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    sources: ScrapeSources,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    if let Err(e) = axum::serve(listener, listener_router(sources))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn bearer_tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
