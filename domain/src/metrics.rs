//! Prometheus metrics: what the process counts as it works, and what is read at scrape time.
//!
//! Counters and histograms live in one process-wide registry ([`global`]), like Prometheus's
//! own default registry: the request middleware, the job worker, the generation pipeline and
//! the upload handler all record into it without being handed anything. Values owned by
//! someone else (rate-limit denials, sign-in lockouts, the database pool, the job queue in
//! PostgreSQL) are read when `/metrics` is scraped, into a registry built for that scrape.
//!
//! Names follow Prometheus conventions: a `socialcraft_` prefix, base units (seconds,
//! bytes), `_total` on counters (added by the encoder). Label values are bounded: routes are
//! axum's route patterns (`/images/{id}`), never raw paths.
//!
//! `/metrics` is served on its own listener (`METRICS_ADDR`, no authentication: bind it to a
//! private address), or on the main listener behind `Authorization: Bearer METRICS_TOKEN`;
//! with neither, it is not served at all (recording still happens, and costs nanoseconds).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::time::Duration;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/images/{id}`), `/pkg/*` for built assets, or `unmatched`.
    pub route: String,
    /// `GET`, `POST`, ... (`other` for anything unusual).
    pub method: &'static str,
    /// The response status code.
    pub status: u16,
}

/// Labels of a job observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job kind (`generate`, `upload_variants`).
    pub kind: String,
    /// `succeeded`, `retrying`, `dead`, `lost` or `released`.
    pub outcome: &'static str,
}

/// Labels naming a job kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The job kind.
    pub kind: String,
}

/// Labels of a provider call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// `builtin` or `openai`.
    pub provider: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels saying where variants were made.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `generation` or `upload`.
    pub source: &'static str,
}

/// Everything the process records as it works.
pub struct Metrics {
    /// The registry every family below is in: the host encodes it for the scrape endpoint.
    pub registry: Registry,
    /// Requests answered, by route, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Time to the response head, by route, method and status.
    pub http_duration: Family<HttpLabels, Histogram>,
    /// Requests being handled right now.
    pub http_in_flight: Gauge,
    /// Time a job attempt ran, by kind and outcome.
    pub job_duration: Family<JobLabels, Histogram>,
    /// Time from a job becoming ready to a worker claiming it, by kind.
    pub job_wait: Family<KindLabels, Histogram>,
    /// Job attempts that failed (retried or dead-lettered), by kind.
    pub job_failures: Family<KindLabels, Counter>,
    /// Jobs dead-lettered, by kind.
    pub job_dead_letters: Family<KindLabels, Counter>,
    /// WebP variants written, by source.
    pub variants: Family<SourceLabels, Counter>,
    /// Uploads whose content was stored already (no second copy written).
    pub duplicates_avoided: Counter,
    /// Time an image provider took per picture, by provider and outcome.
    pub provider_duration: Family<ProviderLabels, Histogram>,
    /// Visitor pages asked of the page cache, by outcome.
    pub page_cache: Family<OutcomeLabels, Counter>,
    /// Connections open now (admitted by the accept loop, not yet closed).
    pub http_connections_open: Gauge,
    /// Connections closed unserved at accept, by reason (`process_limit`, `ip_limit`).
    pub http_connections_refused: Family<ReasonLabels, Counter>,
    /// Connections closed because a request head did not arrive in time.
    pub http_header_timeouts: Counter,
    /// Requests cut off because their body stopped arriving (408).
    pub http_body_timeouts: Counter,
}

/// Labels naming why something was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `process_limit` or `ip_limit`.
    pub reason: &'static str,
}

/// Labels naming an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `hit`, `stale` or `miss`.
    pub outcome: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

fn job_buckets() -> impl Iterator<Item = f64> {
    [
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
    ]
    .into_iter()
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("socialcraft");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register_with_unit(
            "http_request_duration",
            "Time to the response head, by route pattern, method and status",
            Unit::Seconds,
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being handled now",
            http_in_flight.clone(),
        );
        let job_duration =
            Family::<JobLabels, Histogram>::new_with_constructor(|| Histogram::new(job_buckets()));
        registry.register_with_unit(
            "job_duration",
            "Time one job attempt ran, by kind and outcome",
            Unit::Seconds,
            job_duration.clone(),
        );
        let job_wait =
            Family::<KindLabels, Histogram>::new_with_constructor(|| Histogram::new(job_buckets()));
        registry.register_with_unit(
            "job_wait",
            "Time from a job becoming ready to a worker claiming it, by kind",
            Unit::Seconds,
            job_wait.clone(),
        );
        let job_failures = Family::<KindLabels, Counter>::default();
        registry.register(
            "job_failures",
            "Job attempts that failed (retried or dead-lettered), by kind",
            job_failures.clone(),
        );
        let job_dead_letters = Family::<KindLabels, Counter>::default();
        registry.register(
            "job_dead_letters",
            "Jobs dead-lettered after their last attempt or a permanent failure, by kind",
            job_dead_letters.clone(),
        );
        let variants = Family::<SourceLabels, Counter>::default();
        registry.register(
            "variants_generated",
            "WebP variants written, by source (generation or upload)",
            variants.clone(),
        );
        let duplicates_avoided = Counter::default();
        registry.register(
            "upload_duplicates_avoided",
            "Uploads whose content was stored already, so no second copy was written",
            duplicates_avoided.clone(),
        );
        let provider_duration = Family::<ProviderLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(job_buckets())
        });
        registry.register_with_unit(
            "generation_provider_duration",
            "Time an image provider took for one picture, by provider and outcome",
            Unit::Seconds,
            provider_duration.clone(),
        );
        let page_cache = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "page_cache_requests",
            "Visitor pages asked of the page cache: hit, stale (served while one request renders it anew) or miss",
            page_cache.clone(),
        );
        let http_connections_open = Gauge::default();
        registry.register(
            "http_connections_open",
            "HTTP connections open now",
            http_connections_open.clone(),
        );
        let http_connections_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "Connections closed at accept, by reason: process_limit (MAX_CONNECTIONS) or ip_limit (MAX_CONNECTIONS_PER_IP)",
            http_connections_refused.clone(),
        );
        let http_header_timeouts = Counter::default();
        registry.register(
            "http_header_timeouts",
            "Connections closed because a request head did not arrive within HEADER_READ_TIMEOUT_SECS",
            http_header_timeouts.clone(),
        );
        let http_body_timeouts = Counter::default();
        registry.register(
            "http_request_body_timeouts",
            "Requests cut off (408) because their body made no progress for BODY_IDLE_TIMEOUT_SECS",
            http_body_timeouts.clone(),
        );
        Self {
            registry,
            http_connections_open,
            http_connections_refused,
            http_header_timeouts,
            http_body_timeouts,
            page_cache,
            http_requests,
            http_duration,
            http_in_flight,
            job_duration,
            job_wait,
            job_failures,
            job_dead_letters,
            variants,
            duplicates_avoided,
            provider_duration,
        }
    }

    /// Records one answered request.
    pub fn observe_request(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        let labels = HttpLabels {
            route: route.to_owned(),
            method,
            status,
        };
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Records one finished job attempt.
    pub fn observe_job(&self, kind: &str, outcome: &'static str, took: Duration) {
        self.job_duration
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome,
            })
            .observe(took.as_secs_f64());
        let kind = KindLabels {
            kind: kind.to_owned(),
        };
        match outcome {
            "retrying" => {
                self.job_failures.get_or_create(&kind).inc();
            }
            "dead" => {
                self.job_failures.get_or_create(&kind).inc();
                self.job_dead_letters.get_or_create(&kind).inc();
            }
            _ => {}
        }
    }

    /// Records how long a claimed job waited after becoming ready.
    pub fn observe_job_wait(&self, kind: &str, waited: Duration) {
        self.job_wait
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    /// Records `n` variants written for `source` (`generation` or `upload`).
    pub fn variants_made(&self, source: &'static str, n: u64) {
        self.variants
            .get_or_create(&SourceLabels { source })
            .inc_by(n);
    }

    /// Records a page served from the page cache (`fresh`, or stale while it is renewed).
    pub fn page_cache_hit(&self, fresh: bool) {
        let outcome = if fresh { "hit" } else { "stale" };
        self.page_cache
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Records a visitor page the cache did not have.
    pub fn page_cache_miss(&self) {
        self.page_cache
            .get_or_create(&OutcomeLabels { outcome: "miss" })
            .inc();
    }

    /// Records a connection closed at accept.
    pub fn connection_refused(&self, reason: Refused) {
        self.http_connections_refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Connections refused so far for `reason`.
    pub fn connections_refused(&self, reason: Refused) -> u64 {
        self.http_connections_refused
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .get()
    }

    /// Records one call to an image provider.
    pub fn observe_provider(&self, provider: &str, ok: bool, took: Duration) {
        self.provider_duration
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .observe(took.as_secs_f64());
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// A bounded name for a request method.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Keeps the in-flight gauge right even when a request is cancelled or panics.
pub struct InFlight;

impl InFlight {
    /// Counts one more request in flight until dropped.
    pub fn start() -> Self {
        global().http_in_flight.inc();
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        global().http_in_flight.dec();
    }
}

/// Why a connection was closed unserved (the metric's `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `MAX_CONNECTIONS` reached.
    ProcessLimit,
    /// `MAX_CONNECTIONS_PER_IP` reached for the client's address.
    IpLimit,
}

impl Refused {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::ProcessLimit => "process_limit",
            Refused::IpLimit => "ip_limit",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.observe_request("/images/{id}", "GET", 200, Duration::from_millis(3));
        m.observe_job("generate", "dead", Duration::from_secs(2));
        m.variants_made("upload", 3);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
        for expected in [
            "# TYPE socialcraft_http_requests counter",
            r#"socialcraft_http_requests_total{route="/images/{id}",method="GET",status="200"} 1"#,
            "# UNIT socialcraft_http_request_duration_seconds seconds",
            r#"socialcraft_http_request_duration_seconds_bucket{le="0.005",route="/images/{id}",method="GET",status="200"} 1"#,
            r#"socialcraft_job_dead_letters_total{kind="generate"} 1"#,
            r#"socialcraft_job_failures_total{kind="generate"} 1"#,
            r#"socialcraft_variants_generated_total{source="upload"} 3"#,
        ] {
            assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
        }
    }
}
