//! Logging setup: readable lines in development, JSON in production, request IDs via spans;
//! and, when `SENTRY_DSN` is set, error reporting to Sentry through the same `tracing`
//! events (an `error!` becomes a Sentry event, `warn!` and `info!` its breadcrumbs).

use domain::secret::Secret;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// Logging settings.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `LOG_FORMAT` (`pretty` or `json`); defaults to JSON in production.
    pub format: LogFormat,
    /// `RUST_LOG` filter, default `info`.
    pub filter: String,
}

/// Sentry error reporting.
#[derive(Clone, Debug)]
pub struct SentryConfig {
    /// `SENTRY_DSN`: where events go (`https://KEY@HOST/PROJECT`).
    pub dsn: Secret,
    /// `SENTRY_TRACES_SAMPLE_RATE`: share of requests sent as performance traces, 0 to 1,
    /// default 0.1.
    pub traces_sample_rate: f32,
    /// `SENTRY_ENVIRONMENT`: default the `APP_ENV` name.
    pub environment: String,
    /// `SENTRY_RELEASE`: default `socialcraft@<version>`.
    pub release: String,
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
/// With `sentry`, `tracing` events also feed the Sentry client set up by [`init_sentry`].
pub fn init(log: &LogConfig, sentry: bool) {
    init_to(log, sentry, std::io::stdout);
}

/// [`init`], writing the log lines to `writer` (the tests read what is logged).
pub fn init_to<W>(log: &LogConfig, sentry: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|e| {
        eprintln!("RUST_LOG `{}` is invalid ({e}); using `info`", log.filter);
        EnvFilter::new("info")
    });
    // Error-level events become Sentry events, info and warn lines their breadcrumbs, and
    // spans (requests, jobs) the spans of sampled traces. Only with a Sentry client.
    let sentry_layers = sentry.then(|| {
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer, SpanLayer};
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::LevelFilter;
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
            .and_then(SpanLayer::new().with_filter(LevelFilter::INFO))
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(sentry_layers);
    let _ = match log.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(writer),
            )
            .try_init(),
    };
}

/// Routes panics through `tracing`, so a panic is logged once, as one structured line, inside
/// the span of the request it happened in (and so with its request ID).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(panic = %message, location = %location, "a handler panicked");
    }));
}

/// What Sentry reporting needs to know about the request being handled. It lives in a task
/// local rather than on the Sentry scope because the tracing integration gives each span
/// entry a scope of its own, which forgets what was set on it when the span is left.
#[derive(Default)]
pub struct RequestReport {
    /// Whether anything was reported during the request, so a failed request is reported
    /// once (its error, or else its status), not twice.
    pub reported: std::sync::atomic::AtomicBool,
    /// The signed-in user's id, once the session middleware knows it.
    pub user_id: std::sync::OnceLock<String>,
}

tokio::task_local! {
    /// The report of the request this task is handling.
    pub static REQUEST_REPORT: std::sync::Arc<RequestReport>;
}

/// Names the signed-in user of the current request for its Sentry events (by id only).
pub fn set_request_user(id: String) {
    let _ = REQUEST_REPORT.try_with(|r| {
        let _ = r.user_id.set(id);
    });
}

/// Fields that may name a person (or their address) and never go to Sentry.
const PERSONAL_FIELDS: &[&str] = &["key", "ip", "client_ip", "email", "user_agent", "filename"];

/// `path` with its capabilities taken out: a media key (`/media/…`, unguessable, so whoever
/// holds it can fetch a private image) and an upload token (`/api/uploads/…`, which lets its
/// holder upload). What logs, spans and Sentry see of a request's path. Cursors and every
/// other query value never get that far: only paths are recorded, never query strings.
pub fn redact_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/media/", "/api/uploads/"] {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return format!("{prefix}{REDACTED}").into();
        }
    }
    path.into()
}

/// What stands where a secret was.
pub const REDACTED: &str = "redacted";

/// The request as Sentry keeps it for a transaction or an event: the method, the URL with its
/// path redacted ([`redact_path`]) and no query, and no headers but harmless ones.
pub fn scrub_request(request: &mut sentry::protocol::Request) {
    request.query_string = None;
    request.cookies = None;
    request.data = None;
    request.env.clear();
    request.headers.retain(|k, _| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "content-type" | "content-length" | "accept" | "x-request-id"
        )
    });
    if let Some(url) = request.url.as_mut() {
        url.set_query(None);
        url.set_fragment(None);
        let redacted = redact_path(url.path()).into_owned();
        url.set_path(&redacted);
    }
}

/// Starts the Sentry client when configured. Keep the guard alive until the process ends: it
/// flushes what is queued when dropped. Without a DSN nothing is set up and nothing is sent.
pub fn init_sentry(config: Option<&SentryConfig>) -> Option<sentry::ClientInitGuard> {
    let config = config?;
    let dsn = match config.dsn.expose().parse::<sentry::types::Dsn>() {
        Ok(d) => d,
        Err(e) => {
            // Validated with the configuration already; stay up without Sentry if not.
            eprintln!("SENTRY_DSN is not usable ({e}); error reporting is off");
            return None;
        }
    };
    // `dsn` parses again; it was parsed above, so this cannot fail.
    let options = sentry::ClientOptions::new()
        .dsn(&dsn.to_string())
        .release(config.release.clone())
        .environment(config.environment.clone())
        .traces_sample_rate(config.traces_sample_rate)
        // The user id is set on each request's scope; nothing else about people is sent.
        .send_default_pii(false)
        .before_send(|mut event| {
            // Outside a request (a job, a background task) there is no report.
            let _ = REQUEST_REPORT.try_with(|r| {
                r.reported.store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(id) = r.user_id.get() {
                    event.user = Some(sentry::User {
                        id: Some(id.clone()),
                        ..Default::default()
                    });
                }
            });
            Some(scrub_event(event))
        })
        .before_breadcrumb(|mut crumb| {
            crumb
                .data
                .retain(|k, _| !PERSONAL_FIELDS.contains(&k.as_str()));
            Some(crumb)
        });
    Some(sentry::init(options))
}

/// Keeps an event to what helps fix a bug: the user's id but nothing else about them, the
/// request's method and route but not its query, cookies or headers (an upload URL's token
/// and a media key are capabilities, a query may hold a prompt or a cursor).
pub fn scrub_event(
    mut event: sentry::protocol::Event<'static>,
) -> sentry::protocol::Event<'static> {
    if let Some(user) = event.user.take() {
        event.user = Some(sentry::User {
            id: user.id,
            ..Default::default()
        });
    }
    if let Some(request) = event.request.as_mut() {
        scrub_request(request);
    }
    event
        .extra
        .retain(|k, _| !PERSONAL_FIELDS.contains(&k.as_str()));
    for crumb in event.breadcrumbs.values.iter_mut() {
        crumb
            .data
            .retain(|k, _| !PERSONAL_FIELDS.contains(&k.as_str()));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_user_id_and_lose_personal_details() {
        let mut event = sentry::protocol::Event {
            user: Some(sentry::User {
                id: Some("u-1".into()),
                email: Some("ana@example.com".into()),
                ip_address: Some(sentry::protocol::IpAddress::Auto),
                ..Default::default()
            }),
            request: Some(sentry::protocol::Request {
                url: "https://app.example.com/api/uploads/SECRET-TOKEN?x=1"
                    .parse()
                    .ok(),
                query_string: Some("prompt=hello".into()),
                cookies: Some("__Host-sc_access=abc".into()),
                headers: [
                    ("Cookie".to_owned(), "a=b".to_owned()),
                    ("X-Request-Id".to_owned(), "r-1".to_owned()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        event.extra.insert("email".into(), "ana@example.com".into());
        event.extra.insert("job_id".into(), 7.into());
        let shown = format!("{:?}", scrub_event(event));
        for gone in [
            "ana@example.com",
            "SECRET-TOKEN",
            "prompt=hello",
            "sc_access",
            "a=b",
        ] {
            assert!(!shown.contains(gone), "{gone} in {shown}");
        }
        for kept in ["u-1", "r-1", "job_id", "/api/uploads/redacted"] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
    }
}
