//! `serve`, `migrate` and `worker`: the long-running commands, with the hourly sweepers a
//! web process runs beside its listener.

use domain::state::AppState;
use leptos_config::LeptosOptions;
use tokio::sync::watch;

use crate::config::Config;
use crate::wiring::{
    Database, build_state, build_worker, forward_revocations, leptos_options, shutdown_signal,
    spawn_metrics, stopped, with_database,
};

/// `socialcraft migrate`: applies pending migrations and exits.
pub async fn migrate(config: Config) -> Result<(), String> {
    let applied = with_database(&config, |url| async move {
        domain::db::pool::run_migrations(&url).await
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
        let applied = domain::db::pool::run_migrations(&db.url).await?;
        if !applied.is_empty() {
            tracing::info!(applied = ?applied, "migrations applied");
        }
    }
    let pool = domain::db::pool::build_pool_for(&db.url, &config.database)?;
    let state = build_state(config, pool.clone())?;
    // Live progress streams hear about changes made by any worker process.
    let forwarder = tokio::spawn(domain::create::events::forward_changes(
        db.url.clone(),
        state.changes.clone(),
    ));
    let addr = options.site_addr;
    let mut settings = crate::web::HttpSettings::from_config(config, &options)?;
    // Compressed once in the background; until then the files are served as they are.
    settings.assets = Some(crate::web::assets::Assets::load(
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
    let trends = tokio::spawn(domain::trends::refresh_loop(
        state.clone(),
        config.trends.refresh,
    ));
    // Sessions ended by any process stop working here at once.
    let revocations = tokio::spawn(forward_revocations(db.url.clone(), state.auth.clone()));
    let router = crate::web::app_with(state.clone(), options, &settings);
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
    crate::web::serving::serve(
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

/// `socialcraft worker`: runs the job worker alone until SIGINT or SIGTERM.
pub async fn worker(config: Config) -> Result<(), String> {
    let config = &config;
    with_database(config, |url| async move {
        let pool = domain::db::pool::build_pool_for(&url, &config.database)?;
        let state = build_state(config, pool)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        // A worker process has no web listener: METRICS_ADDR is how its job metrics are read.
        let ready = crate::web::health::ReadySettings::for_worker(config);
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

/// Deletes stored files no record references any more (left by a delete that could not
/// remove them at the time), hourly.
async fn sweep_media(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        // Contents whose owners' accounts went first, so their files join the sweep.
        match domain::uploads::service::sweep(&state, std::time::Duration::from_secs(600)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "unreferenced uploads swept"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
        }
        match domain::gallery::service::sweep(&state, std::time::Duration::from_secs(600)).await {
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
        match domain::accounts::sessions::delete_stale(
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
