//! `serve`, `migrate` and the other subcommands' bodies: resolving the database, migrating,
//! serving, shutting down.

use std::future::Future;
use std::path::Path;

use app::create::service::Changes;
use app::state::{AppState, CreateSettings};
use leptos_config::LeptosOptions;

use app::jobs::Backoff;
use tokio::sync::watch;

use crate::config::Config;
use crate::create::pipeline::GenerateHandler;
use crate::pg_embedded::{self, EmbeddedPg};
use crate::worker::{Worker, WorkerConfig};

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
async fn with_database<T, F, Fut>(config: &Config, f: F) -> Result<T, String>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let db = Database::resolve(config).await?;
    let result = f(db.url.clone()).await;
    db.shutdown().await;
    result
}

/// `socialcraft migrate`: applies pending migrations and exits.
pub async fn migrate(config: Config) -> Result<(), String> {
    let applied = with_database(&config, |url| async move {
        crate::db::run_migrations(&url).await
    })
    .await?;
    if applied.is_empty() {
        tracing::info!("no pending migrations");
    } else {
        tracing::info!(applied = ?applied, "migrations applied");
    }
    Ok(())
}

/// `socialcraft serve`: migrates (unless turned off), serves until SIGINT or SIGTERM, lets
/// in-flight requests finish, then stops the embedded database if it started one.
pub async fn serve(config: Config) -> Result<(), String> {
    let options = leptos_options()?;
    let db = Database::resolve(&config).await?;
    let result = serve_with(&config, &db, options).await;
    db.shutdown().await;
    result
}

async fn serve_with(config: &Config, db: &Database, options: LeptosOptions) -> Result<(), String> {
    if config.database.run_migrations {
        let applied = crate::db::run_migrations(&db.url).await?;
        if !applied.is_empty() {
            tracing::info!(applied = ?applied, "migrations applied");
        }
    }
    let pool = crate::db::build_pool_for(&db.url, &config.database)?;
    let state = build_state(config, pool.clone())?;
    // Live progress streams hear about changes made by any worker process.
    let forwarder = tokio::spawn(crate::create::events::forward_changes(
        db.url.clone(),
        state.changes.clone(),
    ));
    let addr = options.site_addr;
    let mut settings = crate::http::HttpSettings::from_config(config, &options)?;
    // Compressed once in the background; until then the files are served as they are.
    settings.assets = Some(crate::assets::Assets::load(
        std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref()),
    ));
    tracing::info!(
        store = settings.rate_limits.store(),
        "rate limits counted {}",
        if settings.rate_limits.store() == "redis" {
            "in Redis, shared by every instance"
        } else {
            "in this process"
        }
    );
    let pruner = tokio::spawn(
        settings
            .rate_limits
            .clone()
            .prune_every(std::time::Duration::from_secs(60)),
    );
    let sweeper = tokio::spawn(sweep_sessions(state.clone()));
    let media_sweeper = tokio::spawn(sweep_media(state.clone()));
    let trends = tokio::spawn(crate::trends::refresh_loop(
        state.clone(),
        config.trends.refresh,
    ));
    // Sessions ended by any process stop working here at once.
    let revocations = tokio::spawn(forward_revocations(db.url.clone(), state.auth.clone()));
    let router = crate::http::app_with(state.clone(), options, &settings);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("could not listen on {addr}: {e}"))?;

    // One signal, two listeners: the HTTP server and the in-process worker stop together.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let metrics = spawn_metrics(
        config,
        &state,
        Some(settings.rate_limits.clone()),
        settings.ready.clone(),
        stop_rx.clone(),
    )
    .await?;
    let worker = match config.worker.in_process {
        true => Some(tokio::spawn(
            build_worker(config, &state, &db.url)?.run(stopped(stop_rx.clone())),
        )),
        false => None,
    };

    tracing::info!(%addr, env = ?config.env, "SocialCraft is listening on http://{addr}");
    // Our own accept loop rather than `axum::serve`: header-read timeout and connection caps.
    crate::serving::serve(
        listener,
        router,
        settings.connections,
        settings.rate_limits.clone(),
        stopped(stop_rx),
    )
    .await;
    if let Some(worker) = worker
        && let Err(e) = worker.await
    {
        tracing::error!(error = %e, "the job worker ended abnormally");
    }
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    forwarder.abort();
    pruner.abort();
    sweeper.abort();
    media_sweeper.abort();
    trends.abort();
    revocations.abort();
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Starts the separate metrics listener when `METRICS_ADDR` is set (bound now, so a taken
/// port stops the start), serving until `stop`.
async fn spawn_metrics(
    config: &Config,
    state: &AppState,
    rate_limits: Option<crate::ratelimit::RateLimits>,
    ready: crate::health::ReadySettings,
    stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let Some(addr) = config.observability.metrics_addr else {
        return Ok(None);
    };
    let listener = crate::metrics::bind(addr).await?;
    let sources = crate::metrics::ScrapeSources {
        state: state.clone(),
        rate_limits,
        ready: Some(ready),
    };
    Ok(Some(tokio::spawn(crate::metrics::serve_listener(
        listener,
        sources,
        stopped(stop),
    ))))
}

/// Resolves once `rx` says stop (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Deletes stored files no record references any more (left by a delete that could not
/// remove them at the time), hourly.
async fn sweep_media(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        // Contents whose owners' accounts went first, so their files join the sweep.
        match app::uploads::service::sweep(&state, std::time::Duration::from_secs(600)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "unreferenced uploads swept"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
        }
        match app::gallery::service::sweep(&state, std::time::Duration::from_secs(600)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "unreferenced media swept"),
            Err(e) => tracing::warn!(error = %e, "media sweep failed"),
        }
    }
}

/// Deletes sessions that ended or expired more than a day ago, hourly (their spent refresh
/// tokens go with them; until then they serve reuse detection), and failed sign-ins that
/// have aged out of the lockout window.
async fn sweep_sessions(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Ok(mut conn) = state.conn().await else {
            continue;
        };
        match app::accounts::sessions::delete_stale(
            &mut conn,
            std::time::Duration::from_secs(86_400),
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "stale sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete stale sessions"),
        }
        match state.auth.sweep_failures(&mut conn).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "aged-out failed sign-ins deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete aged-out failed sign-ins"),
        }
    }
}

/// Marks sessions revoked by any process as revoked here, until the task is dropped. Each
/// time its LISTEN connection is (re)established it first reloads the sessions revoked
/// within an access-token lifetime, so a revocation committed before this process started,
/// or while its listener was down, is refused here too.
pub async fn forward_revocations(url: String, auth: std::sync::Arc<app::accounts::auth::Auth>) {
    let reload_auth = auth.clone();
    crate::notify::listen_and_catch_up(
        url,
        app::accounts::sessions::REVOKED_CHANNEL,
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
async fn reload_revocations(client: &tokio_postgres::Client, auth: &app::accounts::auth::Auth) {
    let within = auth.settings.access_ttl.as_secs_f64();
    loop {
        match client
            .query(app::accounts::sessions::RECENTLY_REVOKED_SQL, &[&within])
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

/// The state server functions and handlers share, built from `config`.
pub fn build_state(config: &Config, pool: app::db::DbPool) -> Result<AppState, String> {
    let blocklist = crate::create::blocklist(config)?;
    tracing::info!(
        rules = blocklist.len(),
        provider = crate::create::provider_name(config),
        "create settings loaded"
    );
    Ok(AppState::new(app::state::AppStateParts {
        db: pool,
        media: crate::storage::media_store(config)?,
        create: std::sync::Arc::new(CreateSettings {
            provider: crate::create::provider_name(config).to_owned(),
            blocklist,
        }),
        changes: Changes::default(),
        auth: std::sync::Arc::new(app::accounts::auth::Auth::new(
            config.secret_key.expose(),
            config.auth.clone(),
        )),
        gallery: std::sync::Arc::new(app::gallery::service::Gallery::new(
            config.secret_key.expose(),
        )),
        trends: std::sync::Arc::new(trends_cache(&config.trends)),
        uploads: std::sync::Arc::new(app::uploads::service::Uploads::new(
            config.secret_key.expose(),
            config.uploads.max_bytes,
            config.data_dir.join("tmp").join("uploads"),
        )),
    }))
}

/// The trends cache: a ranking lives five refresh intervals, so pages keep showing the last
/// good one while the database is briefly away.
pub fn trends_cache(config: &crate::config::TrendsConfig) -> app::trends::service::Trends {
    let delta = |d: std::time::Duration| {
        chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::days(7))
    };
    app::trends::service::Trends::new(
        config.refresh * 5,
        app::trends::rank::RankSettings {
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
        crate::create::providers(config)?,
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
    .handle(crate::uploads::variants::UploadVariantsHandler::new(
        state.db.clone(),
        state.media.clone(),
    )))
}

/// `socialcraft worker`: runs the job worker alone until SIGINT or SIGTERM.
pub async fn worker(config: Config) -> Result<(), String> {
    let config = &config;
    with_database(config, |url| async move {
        let pool = crate::db::build_pool_for(&url, &config.database)?;
        let state = build_state(config, pool)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        // A worker process has no web listener: METRICS_ADDR is how its job metrics are read.
        let ready = crate::health::ReadySettings::for_worker(config);
        let metrics = spawn_metrics(config, &state, None, ready, stop_rx.clone()).await?;
        build_worker(config, &state, &url)?
            .run(stopped(stop_rx))
            .await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        Ok(())
    })
    .await
}

/// `socialcraft jobs dead`: prints dead-lettered jobs, one a line.
pub async fn jobs_dead(config: Config, limit: i64) -> Result<(), String> {
    let dead = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        app::jobs::list_dead(&mut conn, limit)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if dead.is_empty() {
        println!("no dead jobs");
    }
    for job in dead {
        println!(
            "{}\t{}\tattempts={}/{}\t{}\t{}",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            job.updated_at.to_rfc3339(),
            job.last_error.unwrap_or_default().replace('\n', " ")
        );
    }
    Ok(())
}

/// `socialcraft jobs retry ID`: re-queues a dead job.
pub async fn jobs_retry(config: Config, id: i64) -> Result<(), String> {
    let revived = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        app::jobs::retry_dead(&mut conn, id)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if !revived {
        return Err(format!("job {id} is not a dead job"));
    }
    println!("job {id} re-queued");
    Ok(())
}

/// `socialcraft users set-tier EMAIL TIER`.
pub async fn users_set_tier(config: Config, email: &str, tier: &str) -> Result<(), String> {
    let tier = app::accounts::Tier::from_slug(tier)
        .ok_or_else(|| format!("`{tier}` is not one of free, pro, enterprise"))?;
    let found = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        app::accounts::service::set_tier(&mut conn, email, tier)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if !found {
        return Err(format!("no account with the email {email}"));
    }
    println!("{email} is now on the {} tier", tier.slug());
    Ok(())
}

/// `socialcraft users sign-out EMAIL`.
pub async fn users_sign_out(config: Config, email: &str) -> Result<(), String> {
    let auth = app::accounts::auth::Auth::new(config.secret_key.expose(), config.auth.clone());
    let ended = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        let user = app::accounts::service::find_by_email(&mut conn, email)
            .await
            .map_err(|e| e.message)?
            .ok_or_else(|| format!("no account with the email {email}"))?;
        app::accounts::sessions::end_all(
            &mut conn,
            &auth,
            user.id,
            None,
            app::accounts::sessions::EndReason::SignedOutEverywhere,
        )
        .await
        .map_err(|e| e.message)
    })
    .await?;
    println!("{email}: {ended} session(s) ended");
    Ok(())
}

/// `socialcraft users grant-admin|revoke-admin EMAIL`.
pub async fn users_set_admin(config: Config, email: &str, admin: bool) -> Result<(), String> {
    use app::db::schema::users;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let n = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        diesel::update(users::table.filter(users::email.eq(email.trim().to_lowercase())))
            .set(users::is_admin.eq(admin))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if n == 0 {
        return Err(format!("no account with the email {email}"));
    }
    println!(
        "{email} is {} an administrator",
        if admin { "now" } else { "no longer" }
    );
    Ok(())
}

/// `socialcraft trends import FILE`: imports a JSON or CSV feed, reports skipped rows.
pub async fn trends_import(config: Config, file: &std::path::Path) -> Result<(), String> {
    let body = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let format = app::trends::feed::FeedFormat::detect(
        file.file_name().and_then(|n| n.to_str()),
        None,
        &body,
    );
    let report = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        crate::trends::import(&mut conn, &body, format)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    for skipped in &report.skipped {
        eprintln!(
            "{}:{}: skipped: {}",
            file.display(),
            skipped.line,
            skipped.message
        );
    }
    println!(
        "{}: {} row(s) imported, {} skipped",
        file.display(),
        report.imported,
        report.skipped.len()
    );
    Ok(())
}

/// `socialcraft seed --images N`.
pub async fn seed(config: Config, images: usize) -> Result<(), String> {
    let media = crate::storage::media_store(&config)?;
    let seeded = with_database(&config, |url| async move {
        crate::db::run_migrations(&url).await?;
        let mut conn = connect(&url).await?;
        crate::seed::seed(&mut conn, &media, images).await
    })
    .await?;
    println!(
        "seeded {} images ({} stored pictures, {} ratings) in {:.1} s",
        seeded.images, seeded.stored, seeded.ratings, seeded.seconds
    );
    Ok(())
}

/// `socialcraft backup daily|weekly|manual`: dumps the database into `BACKUP_DIR` with its
/// checksum and manifest, then prunes backups of that kind past their retention.
pub async fn backup_run(config: Config, kind: crate::backup::Kind) -> Result<(), String> {
    let config = &config;
    let report = with_database(config, |url| async move {
        // Abandoning the run on a signal kills pg_dump and removes the partial files.
        Ok(tokio::select! {
            r = crate::backup::backup(config, &url, kind) => r,
            () = shutdown_signal() => Err(crate::backup::BackupError::Interrupted),
        })
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    Ok(())
}

/// `socialcraft backup list`: the backups in `BACKUP_DIR`, newest first. Needs no database.
pub fn backup_list(config: &Config) -> Result<(), String> {
    let dir = &config.backup.dir;
    let backups = crate::backup::list(dir).map_err(|e| e.to_string())?;
    print!("{}", crate::backup::format_list(dir, &backups));
    Ok(())
}

/// `socialcraft backup verify FILE`: checksum, a restore into a scratch database, row counts
/// against the manifest. Fails when anything differs.
pub async fn backup_verify(config: Config, file: &Path) -> Result<(), String> {
    let config = &config;
    let report = with_database(config, |url| async move {
        Ok(crate::backup::verify(config, &url, file, shutdown_signal()).await)
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    if !report.ok() {
        return Err(crate::backup::BackupError::Mismatch {
            file: file.to_owned(),
            differing: report.differing(),
        }
        .to_string());
    }
    Ok(())
}

/// `socialcraft backup restore FILE --yes`: replaces the configured database with the backup.
/// Without `--yes` it only says what it would overwrite (and starts nothing).
pub async fn backup_restore(config: Config, file: &Path, yes: bool) -> Result<(), String> {
    use crate::backup::BackupError;
    if !file.is_file() {
        return Err(BackupError::NotFound(file.to_owned()).to_string());
    }
    if !yes {
        let target = match &config.database.url {
            Some(url) => {
                crate::backup::describe_database(url.expose()).map_err(|e| e.to_string())?
            }
            None => format!(
                "the embedded database `{EMBEDDED_DATABASE}` under {}",
                config.data_dir.join("postgres").display()
            ),
        };
        return Err(BackupError::NotConfirmed {
            target,
            file: file.to_owned(),
        }
        .to_string());
    }
    let config = &config;
    let report = with_database(config, |url| async move {
        // Abandoning it kills pg_restore, and its single transaction rolls back.
        Ok(tokio::select! {
            r = crate::backup::restore(config, &url, file, true) => r,
            () = shutdown_signal() => Err(BackupError::Interrupted),
        })
    })
    .await?
    .map_err(|e| e.to_string())?;
    print!("{report}");
    if report.differing() > 0 {
        return Err(BackupError::Mismatch {
            file: file.to_owned(),
            differing: report.differing(),
        }
        .to_string());
    }
    Ok(())
}

async fn connect(url: &str) -> Result<diesel_async::AsyncPgConnection, String> {
    use diesel_async::AsyncConnection;
    diesel_async::AsyncPgConnection::establish(url)
        .await
        .map_err(|e| format!("could not connect to the database: {e}"))
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
