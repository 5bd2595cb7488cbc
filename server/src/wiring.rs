//! Wiring: the parts every subcommand assembles from the configuration. The database
//! (embedded or `DATABASE_URL`), the state server functions share, the worker with every
//! handler, the cross-process session revocations, the metrics listener and the shutdown
//! signal. The CLI's commands (`cli/`) call these; nothing here parses arguments.

use std::future::Future;
use std::path::Path;

use domain::create::changes::Changes;
use domain::jobs::Backoff;
use domain::state::{AppState, CreateSettings};
use leptos_config::LeptosOptions;
use tokio::sync::watch;

use crate::config::Config;
use crate::pg_embedded::{self, EmbeddedPg};
use domain::create::pipeline::GenerateHandler;
use domain::jobs::worker::{Worker, WorkerConfig};

/// The database the embedded cluster holds the application's data in.
pub const EMBEDDED_DATABASE: &str = "socialcraft";

/// The database the process uses, and the embedded cluster behind it if there is one.
pub struct Database {
    /// Connection URL (a secret: it may hold a password).
    pub url: String,
    /// The embedded cluster, when `DATABASE_URL` was unset.
    pub embedded: Option<EmbeddedPg>,
}

impl Database {
    /// Uses `DATABASE_URL`, or starts (or reuses) the embedded cluster under `DATA_DIR`.
    pub async fn resolve(config: &Config) -> Result<Self, String> {
        if let Some(url) = &config.database.url {
            return Ok(Database {
                url: url.expose().to_owned(),
                embedded: None,
            });
        }
        tracing::info!(
            data_dir = %config.data_dir.display(),
            "DATABASE_URL is unset: using the embedded PostgreSQL under the data directory"
        );
        let data_dir = config.data_dir.clone();
        let bin_dir = config.database.pg_bin_dir.clone();
        let pg =
            tokio::task::spawn_blocking(move || EmbeddedPg::start(&data_dir, bin_dir.as_deref()))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        if let Err(e) = pg_embedded::ensure_database(&pg.url("postgres"), EMBEDDED_DATABASE).await {
            let _ = pg.stop();
            return Err(e);
        }
        Ok(Database {
            url: pg.url(EMBEDDED_DATABASE),
            embedded: Some(pg),
        })
    }

    /// Stops the embedded cluster if this process runs it.
    pub async fn shutdown(self) {
        if let Some(pg) = self.embedded {
            match tokio::task::spawn_blocking(move || pg.stop()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "could not stop the embedded PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "could not stop the embedded PostgreSQL"),
            }
        }
    }
}

/// Reads the Leptos options: `Leptos.toml` when present (as in a checkout or the container),
/// else the `LEPTOS_*` environment alone. Environment variables override the file.
pub fn leptos_options() -> Result<LeptosOptions, String> {
    let file = Path::new("Leptos.toml");
    let conf = leptos_config::get_configuration(file.exists().then_some("Leptos.toml"))
        .map_err(|e| format!("Leptos configuration: {e}"))?;
    Ok(conf.leptos_options)
}

/// Resolves the database (starting the embedded one if needed), runs `f` with its URL, and
/// stops the embedded database again whatever `f` returned.
pub async fn with_database<T, F, Fut>(config: &Config, f: F) -> Result<T, String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let db = Database::resolve(config).await?;
    let result = f(db.url.clone()).await;
    db.shutdown().await;
    result
}

/// A single connection to `url`, for the commands that run a few statements.
pub async fn connect(url: &str) -> Result<diesel_async::AsyncPgConnection, String> {
    use diesel_async::AsyncConnection;
    diesel_async::AsyncPgConnection::establish(url)
        .await
        .map_err(|e| format!("could not connect to the database: {e}"))
}

/// The state server functions and handlers share, built from `config`.
pub fn build_state(config: &Config, pool: domain::db::DbPool) -> Result<AppState, String> {
    let blocklist = domain::create::blocklist(&config.create)?;
    tracing::info!(
        rules = blocklist.len(),
        provider = domain::create::provider_name(&config.create),
        "create settings loaded"
    );
    Ok(AppState::new(domain::state::AppStateParts {
        db: pool,
        media: domain::media::storage::media_store(&config.data_dir, &config.storage)?,
        create: std::sync::Arc::new(CreateSettings {
            provider: domain::create::provider_name(&config.create).to_owned(),
            blocklist,
        }),
        changes: Changes::default(),
        auth: std::sync::Arc::new(domain::accounts::auth::Auth::new(
            config.secret_key.expose(),
            config.auth.clone(),
        )),
        gallery: std::sync::Arc::new(domain::gallery::cache::Gallery::new(
            config.secret_key.expose(),
        )),
        trends: std::sync::Arc::new(trends_cache(&config.trends)),
        uploads: std::sync::Arc::new(domain::uploads::settings::Uploads::new(
            config.secret_key.expose(),
            config.uploads.max_bytes,
            config.data_dir.join("tmp").join("uploads"),
        )),
    }))
}

/// The trends cache: a ranking lives five refresh intervals, so pages keep showing the last
/// good one while the database is briefly away.
pub fn trends_cache(config: &domain::trends::TrendsConfig) -> domain::trends::service::Trends {
    let delta = |d: std::time::Duration| {
        chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::days(7))
    };
    domain::trends::service::Trends::new(
        config.refresh * 5,
        domain::trends::rank::RankSettings {
            window: delta(config.window),
            half_life: delta(config.half_life),
            ..Default::default()
        },
    )
}

/// The job worker with every handler the product has, configured from `config`.
pub fn build_worker(config: &Config, state: &AppState, url: &str) -> Result<Worker, String> {
    let w = &config.worker;
    let generate = GenerateHandler::new(
        state.db.clone(),
        state.media.clone(),
        domain::create::providers(&config.create)?,
    );
    Ok(Worker::new(
        state.db.clone(),
        Some(url.to_owned()),
        WorkerConfig {
            concurrency: w.concurrency,
            lease: w.lease,
            poll_interval: w.poll_interval,
            backoff: Backoff {
                base: w.backoff_base,
                cap: w.backoff_cap,
            },
            shutdown_grace: w.shutdown_grace,
            ..WorkerConfig::default()
        },
    )
    .handle(generate)
    .handle(domain::uploads::variants::UploadVariantsHandler::new(
        state.db.clone(),
        state.media.clone(),
    )))
}

/// Marks sessions revoked by any process as revoked here, until the task is dropped. Each
/// time its LISTEN connection is (re)established it first reloads the sessions revoked
/// within an access-token lifetime, so a revocation committed before this process started,
/// or while its listener was down, is refused here too.
pub async fn forward_revocations(url: String, auth: std::sync::Arc<domain::accounts::auth::Auth>) {
    let reload_auth = auth.clone();
    domain::db::listener::listen_and_catch_up(
        url,
        domain::accounts::sessions::REVOKED_CHANNEL,
        move |payload| {
            if let Some(id) = payload.and_then(|p| uuid::Uuid::parse_str(p).ok()) {
                auth.mark_revoked(id);
            }
        },
        move |client| {
            let auth = reload_auth.clone();
            async move { reload_revocations(&client, &auth).await }
        },
    )
    .await;
}

/// Loads the recently revoked sessions into `auth`, retrying every second until it works
/// (the caller cancels it when the connection goes).
async fn reload_revocations(client: &tokio_postgres::Client, auth: &domain::accounts::auth::Auth) {
    let within = auth.settings.access_ttl.as_secs_f64();
    loop {
        match client
            .query(domain::accounts::sessions::RECENTLY_REVOKED_SQL, &[&within])
            .await
        {
            Ok(rows) => {
                let mut n = 0usize;
                for row in rows {
                    if let Ok(id) = row
                        .try_get::<_, &str>(0)
                        .map_err(|e| e.to_string())
                        .and_then(|s| uuid::Uuid::parse_str(s).map_err(|e| e.to_string()))
                    {
                        auth.mark_revoked(id);
                        n += 1;
                    }
                }
                tracing::debug!(sessions = n, "recent session revocations reloaded");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reload session revocations; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Starts the separate metrics listener when `METRICS_ADDR` is set (bound now, so a taken
/// port stops the start), serving until `stop`.
pub async fn spawn_metrics(
    config: &Config,
    state: &AppState,
    rate_limits: Option<crate::web::ratelimit::RateLimits>,
    ready: crate::web::health::ReadySettings,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(addr) = config.observability.metrics_addr else {
        return Ok(None);
    };
    let listener = crate::web::metrics::bind(addr).await?;
    let sources = crate::web::metrics::ScrapeSources {
        state: state.clone(),
        rate_limits,
        ready: Some(ready),
    };
    Ok(Some(tokio::spawn(crate::web::metrics::serve_listener(
        listener,
        sources,
        stopped(stop),
    ))))
}

/// Resolves once `rx` says stop (or its sender is gone).
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}
