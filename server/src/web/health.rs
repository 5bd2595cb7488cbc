//! Liveness and readiness endpoints for load balancers and orchestrators.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::state::AppState;
use serde_json::{Map, Value, json};

/// The chunk loader `cargo leptos build --split` writes beside the bundle (the underscores
/// stand where a content hash goes when file hashing is on; it is off here).
pub const SPLIT_LOADER: &str = "__wasm_split.______________________.js";

/// The split build's map from each lazy function to the WASM chunks it needs.
pub const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";

/// What readiness checks besides the database and storage, and how patiently.
#[derive(Clone, Debug)]
pub struct ReadySettings {
    /// How long each check may take before it counts as failed.
    pub check_timeout: Duration,
    /// The oldest a ready, unclaimed job may be before the queue counts as stuck.
    pub max_job_age: Duration,
    /// Files a release build must have to serve working pages (the WASM bundle and its
    /// loader); empty in development, where cargo-leptos builds them as it goes.
    pub required_files: Vec<PathBuf>,
    /// A directory the process must be able to write (the upload spool).
    pub writable_dir: Option<PathBuf>,
    /// The rate limiters, whose shared store (Redis) is reported but never fails readiness:
    /// without it, limits fall back to each process, and taking every instance out of
    /// rotation for that would turn a Redis outage into a full one.
    pub rate_limits: Option<crate::web::ratelimit::RateLimits>,
    /// How long one run of the checks answers every request: a flood of probes then costs
    /// one run a second, not one each. Zero runs them for every request (one at a time).
    pub cache_for: Duration,
    /// The last report, shared by every clone of these settings.
    pub cache: ReadyCache,
}

impl Default for ReadySettings {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(2),
            max_job_age: Duration::from_secs(600),
            required_files: Vec::new(),
            writable_dir: None,
            rate_limits: None,
            cache_for: READY_CACHE_FOR,
            cache: ReadyCache::default(),
        }
    }
}

/// How long a readiness report is reused.
pub const READY_CACHE_FOR: Duration = Duration::from_secs(1);

/// The last readiness report and the lock that lets one request at a time run the checks.
#[derive(Clone, Debug, Default)]
pub struct ReadyCache(Arc<CacheInner>);

#[derive(Debug, Default)]
struct CacheInner {
    last: std::sync::Mutex<Option<(Instant, Arc<Report>)>>,
    running: tokio::sync::Mutex<()>,
    runs: AtomicU64,
}

impl ReadyCache {
    /// How many times the checks have run (not how many requests asked).
    pub fn runs(&self) -> u64 {
        self.0.runs.load(Ordering::Relaxed)
    }

    fn fresh(&self, max_age: Duration) -> Option<Arc<Report>> {
        let last = self.0.last.lock().ok()?;
        last.as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, r)| r.clone())
    }
}

/// What one run of the checks found.
#[derive(Debug)]
pub struct Report {
    /// Whether every check that gates readiness passed.
    pub ok: bool,
    /// The names of the checks that failed.
    pub failing: Vec<&'static str>,
    /// The names of the checks that failed without failing readiness.
    pub degraded: Vec<&'static str>,
    /// Each check with its detail (errors, paths, endpoints): for operators only.
    pub checks: Map<String, Value>,
}

impl ReadySettings {
    /// From configuration and the Leptos options: in a release build (`LEPTOS_ENV=PROD`),
    /// the site's bundle must be present.
    pub fn from_config(
        config: &crate::config::Config,
        options: &leptos_config::LeptosOptions,
    ) -> Self {
        let required_files = if options.env == leptos_config::Env::PROD {
            let pkg = PathBuf::from(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
            let name = options.output_name.as_ref();
            vec![
                pkg.join(format!("{name}.js")),
                pkg.join(format!("{name}.wasm")),
                pkg.join(format!("{name}.css")),
                // The split build's chunk loader, which the main module imports, and the
                // manifest the server reads to preload a lazy page's chunks.
                pkg.join(SPLIT_LOADER),
                pkg.join(SPLIT_MANIFEST),
            ]
        } else {
            Vec::new()
        };
        Self {
            check_timeout: config.observability.ready_check_timeout,
            max_job_age: config.observability.ready_max_job_age,
            required_files,
            writable_dir: Some(config.data_dir.join("tmp").join("uploads")),
            rate_limits: None,
            cache_for: READY_CACHE_FOR,
            cache: ReadyCache::default(),
        }
    }

    /// For a process without a web listener (`socialcraft worker`): no site, no spool.
    pub fn for_worker(config: &crate::config::Config) -> Self {
        Self {
            check_timeout: config.observability.ready_check_timeout,
            max_job_age: config.observability.ready_max_job_age,
            ..Self::default()
        }
    }
}

/// `GET /api/health`: 200 while the process serves requests. Touches nothing else, so a
/// database outage never gets healthy instances restarted.
pub async fn health() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// `GET /api/ready`: 200 only when the database answers, no migration is pending, the
/// media store takes a write and a read, the configuration's files and directories are
/// usable, and the job queue is moving; otherwise 503. The answer names the failing checks
/// and nothing else: their detail (errors, paths, endpoints) would tell a stranger how the
/// service is built, so it goes to the log and to [`ready_detail`] on the metrics listener.
/// One run of the checks answers every request for [`ReadySettings::cache_for`].
pub async fn ready(State((state, settings)): State<(AppState, ReadySettings)>) -> Response {
    let report = report(&state, &settings).await;
    (
        status_of(&report),
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "ok": report.ok,
            "failing": report.failing,
            "degraded": report.degraded,
        })),
    )
        .into_response()
}

/// `GET /ready` on the metrics listener: the same report with every check's detail.
pub async fn ready_detail(state: &AppState, settings: &ReadySettings) -> Response {
    let report = report(state, settings).await;
    (
        status_of(&report),
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "ok": report.ok,
            "failing": report.failing,
            "degraded": report.degraded,
            "checks": report.checks,
        })),
    )
        .into_response()
}

fn status_of(report: &Report) -> StatusCode {
    if report.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The readiness report: the cached one while it is fresh, else a new run. Requests arriving
/// during a run wait for it rather than starting their own.
pub async fn report(state: &AppState, settings: &ReadySettings) -> Arc<Report> {
    if let Some(fresh) = settings.cache.fresh(settings.cache_for) {
        return fresh;
    }
    let _running = settings.cache.0.running.lock().await;
    if let Some(fresh) = settings.cache.fresh(settings.cache_for) {
        return fresh;
    }
    let report = Arc::new(run_checks(state, settings).await);
    settings.cache.0.runs.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut last) = settings.cache.0.last.lock() {
        *last = Some((Instant::now(), report.clone()));
    }
    if !report.ok {
        // Once per run, so a flood of probes does not become a flood of log lines.
        let detail = Value::Object(report.checks.clone()).to_string();
        tracing::warn!(failing = ?report.failing, checks = %detail, "readiness check failed");
    }
    report
}

/// Runs every check at once, each with its own time limit.
async fn run_checks(state: &AppState, settings: &ReadySettings) -> Report {
    let timeout = settings.check_timeout;
    let shared_limits = async {
        match &settings.rate_limits {
            Some(limits) => limits.ping(timeout).await,
            None => None,
        }
    };
    let (status, storage, jobs, configuration, rate_limit_store) = tokio::join!(
        domain::db::pool::check(&state.db, timeout),
        storage_check(state, timeout),
        jobs_check(state, settings),
        configuration_check(settings),
        shared_limits,
    );
    let mut checks = Map::new();
    let mut failing = Vec::new();
    // Queue progress is unknowable without the database; say so once, under `database`.
    let jobs = if status.database.is_some() {
        Some("unknown: the database is unreachable".to_owned())
    } else {
        jobs
    };
    for (name, problem) in [
        ("database", status.database),
        ("migrations", status.migrations),
        ("storage", storage),
        ("jobs", jobs),
        ("configuration", configuration),
    ] {
        match problem {
            None => {
                checks.insert(name.to_owned(), json!({ "ok": true }));
            }
            Some(problem) => {
                checks.insert(name.to_owned(), json!({ "ok": false, "error": problem }));
                failing.push(name);
            }
        }
    }
    // Reported, never failing: see `ReadySettings::rate_limits`.
    let mut degraded = Vec::new();
    match rate_limit_store {
        None => {}
        Some(Ok(())) => {
            checks.insert("rate_limit_store".to_owned(), json!({ "ok": true }));
        }
        Some(Err(problem)) => {
            checks.insert(
                "rate_limit_store".to_owned(),
                json!({
                    "ok": false,
                    "error": format!("{problem} (limits are counted per process meanwhile)"),
                }),
            );
            degraded.push("rate_limit_store");
        }
    }
    Report {
        ok: failing.is_empty(),
        failing,
        degraded,
        checks,
    }
}

async fn storage_check(state: &AppState, timeout: Duration) -> Option<String> {
    match tokio::time::timeout(timeout, state.media.probe()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Fails when a job has been ready to run for longer than allowed without a worker taking
/// it: no worker is running, or every one is stuck.
async fn jobs_check(state: &AppState, settings: &ReadySettings) -> Option<String> {
    let probe = async {
        let mut conn = state.db.get().await.map_err(|e| e.to_string())?;
        domain::jobs::oldest_ready_age(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(settings.check_timeout, probe).await {
        Ok(Ok(None)) => None,
        Ok(Ok(Some(age))) if age <= settings.max_job_age => None,
        Ok(Ok(Some(age))) => Some(format!(
            "stuck: the oldest ready job has waited {} s (limit {} s); is a worker running?",
            age.as_secs(),
            settings.max_job_age.as_secs()
        )),
        Ok(Err(e)) => Some(format!("could not read the queue: {e}")),
        Err(_) => Some(format!(
            "no answer within {} ms",
            settings.check_timeout.as_millis()
        )),
    }
}

/// The files and directories the configuration points at must be usable.
async fn configuration_check(settings: &ReadySettings) -> Option<String> {
    let mut problems = Vec::new();
    for file in &settings.required_files {
        if !tokio::fs::try_exists(file).await.unwrap_or(false) {
            problems.push(format!(
                "{} is missing (LEPTOS_SITE_ROOT points at a site without its build)",
                file.display()
            ));
        }
    }
    if let Some(dir) = &settings.writable_dir {
        let probe = dir.join(format!(".ready-{}", uuid::Uuid::new_v4()));
        let written = async {
            tokio::fs::create_dir_all(dir).await?;
            tokio::fs::write(&probe, b"ok").await?;
            tokio::fs::remove_file(&probe).await
        };
        match tokio::time::timeout(settings.check_timeout, written).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("{} is not writable: {e}", dir.display())),
            Err(_) => problems.push(format!("{} did not answer in time", dir.display())),
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
