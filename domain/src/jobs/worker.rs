//! The job worker: claims jobs from the PostgreSQL queue (`crate::jobs`), runs each with the
//! handler registered for its kind, keeps its lease alive while it runs, and records the
//! outcome. Runs inside `serve` by default, or alone as `socialcraft worker`.
//!
//! Wake-up is by LISTEN/NOTIFY on the `jobs` channel (whoever makes a job ready notifies
//! after committing: `crate::jobs::wake`), with polling as the fallback when the listening connection is down or a backoff
//! ends. On shutdown, running jobs get a grace period to finish; the rest are released,
//! uncounted, for another worker.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::db::DbPool;
use crate::jobs::{self, Backoff, FailOutcome, Job};
use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Job worker settings.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// `WORKER_IN_PROCESS`: run the worker inside `serve`, default true. Turn it off when
    /// workers run as their own `socialcraft worker` processes.
    pub in_process: bool,
    /// `WORKER_CONCURRENCY`: jobs run at once per worker, default 2.
    pub concurrency: usize,
    /// `JOB_LEASE_SECS`: how long a claimed job stays with a silent worker, default 30.
    pub lease: Duration,
    /// `JOB_POLL_INTERVAL_MS`: polling when no notification arrives, default 2000.
    pub poll_interval: Duration,
    /// `JOB_BACKOFF_BASE_MS`: first retry delay before jitter, default 1000.
    pub backoff_base: Duration,
    /// `JOB_BACKOFF_CAP_SECS`: longest retry delay before jitter, default 300.
    pub backoff_cap: Duration,
    /// `WORKER_SHUTDOWN_GRACE_SECS`: time running jobs get to finish on shutdown, default 30.
    pub shutdown_grace: Duration,
}

/// Why a job attempt failed.
#[derive(Debug, Clone)]
pub struct JobFailure {
    /// What went wrong, for the job record and the operator.
    pub message: String,
    /// Whether another attempt could succeed (a timeout, a 503) or not (bad input).
    pub retryable: bool,
}

impl JobFailure {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
    /// A failure no retry can fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// The future a handler returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<(), JobFailure>> + Send + 'a>>;

/// Runs jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// The job kind this handler runs.
    fn kind(&self) -> &'static str;
    /// Runs one attempt of `job`. It may run again after a crash, so it must be idempotent.
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a>;
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Identifies this worker in `locked_by` (host, process and a random part).
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Lease length; renewed every third of it while a job runs.
    pub lease: Duration,
    /// How often to look for work when no notification arrives.
    pub poll_interval: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long running jobs may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: default_worker_id(),
            concurrency: 2,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            backoff: Backoff::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A name for this worker process, unique enough to tell workers apart in `locked_by`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let nonce = crate::secret::random_hex(4).unwrap_or_default();
    format!("{host}:{}:{nonce}", std::process::id())
}

/// The worker.
pub struct Worker {
    pool: DbPool,
    listen_url: Option<String>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    config: WorkerConfig,
}

struct Shared {
    pool: DbPool,
    config: WorkerConfig,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl Worker {
    /// A worker on `pool`. `listen_url`, when given, is used for LISTEN/NOTIFY wake-ups.
    pub fn new(pool: DbPool, listen_url: Option<String>, config: WorkerConfig) -> Self {
        Self {
            pool,
            listen_url,
            handlers: HashMap::new(),
            config,
        }
    }

    /// Registers the handler for its kind.
    pub fn handle(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// Runs until `shutdown` resolves, then finishes or releases the jobs in hand.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let kinds: Vec<String> = self.handlers.keys().map(|k| (*k).to_owned()).collect();
        if kinds.is_empty() {
            // Nothing to claim: hold no connections, just wait to be told to stop.
            tracing::info!("job worker has no job kinds to run; idle");
            shutdown.await;
            return;
        }
        let shared = Arc::new(Shared {
            pool: self.pool,
            config: self.config,
            handlers: self.handlers,
        });
        let cfg = &shared.config;
        tracing::info!(worker = %cfg.id, concurrency = cfg.concurrency, kinds = ?kinds, "job worker started");

        let wake = Arc::new(Notify::new());
        let listener = self.listen_url.map(|url| {
            let wake = wake.clone();
            tokio::spawn(crate::db::listener::listen(
                url,
                crate::jobs::CHANNEL,
                move |_| wake.notify_one(),
            ))
        });
        let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        tokio::pin!(shutdown);

        loop {
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = running.join_next() => continue,
                    () = &mut shutdown => break,
                }
            }
            let claimed = match claim(&shared, &kinds, free).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim jobs; retrying after the poll interval");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(cfg.poll_interval) => {}
                    _ = running.join_next(), if !running.is_empty() => {}
                    () = &mut shutdown => break,
                }
                continue;
            }
            for job in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let shared = shared.clone();
                let cancel = cancel_rx.clone();
                let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, attempt = job.attempts);
                running.spawn(
                    async move {
                        run_job(&shared, job, cancel).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }

        tracing::info!(in_flight = running.len(), "job worker stopping");
        let finished = tokio::time::timeout(cfg.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            // Out of patience: ask the rest to hand their jobs back, and wait for that.
            let _ = cancel_tx.send(true);
            while running.join_next().await.is_some() {}
        }
        if let Some(listener) = listener {
            listener.abort();
        }
        tracing::info!("job worker stopped");
    }
}

async fn claim(shared: &Shared, kinds: &[String], free: usize) -> Result<Vec<Job>, String> {
    let mut conn = conn(shared).await?;
    jobs::claim(
        &mut conn,
        &shared.config.id,
        kinds,
        shared.config.lease,
        free as i64,
    )
    .await
    .map_err(|e| e.to_string())
}

/// Runs one claimed job to an outcome, renewing its lease meanwhile. Runs inside the job's
/// span, so every line it logs names the job.
async fn run_job(shared: &Shared, job: Job, mut cancel: watch::Receiver<bool>) {
    let cfg = &shared.config;
    let Some(handler) = shared.handlers.get(job.kind.as_str()).cloned() else {
        // Claimed only for kinds we handle, so this is a bug; give it back untouched.
        tracing::error!("no handler for a claimed job");
        release(shared, job.id).await;
        return;
    };

    let metrics = crate::metrics::global();
    let waited = (chrono::Utc::now() - job.run_at)
        .to_std()
        .unwrap_or_default();
    metrics.observe_job_wait(&job.kind, waited);
    let started = std::time::Instant::now();
    let work = AssertUnwindSafe(handler.run(&job)).catch_unwind();
    tokio::pin!(work);
    let mut renew_every = tokio::time::interval(cfg.lease / 3);
    renew_every.tick().await;

    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = renew_every.tick() => match conn(shared).await {
                Ok(mut c) => match jobs::renew(&mut c, job.id, &cfg.id, cfg.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("lost the lease; another worker owns the job now");
                        metrics.observe_job(&job.kind, "lost", started.elapsed());
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
                },
                // The database may come back before the lease ends; keep working.
                Err(e) => tracing::warn!(error = %e, "could not renew the lease"),
            },
            Ok(()) = cancel.changed() => {
                if *cancel.borrow() {
                    release(shared, job.id).await;
                    metrics.observe_job(&job.kind, "released", started.elapsed());
                    return;
                }
            }
        }
    };

    let elapsed_ms = started.elapsed().as_millis() as u64;
    let failure = match result {
        Ok(Ok(())) => {
            let recorded = match conn(shared).await {
                Ok(mut c) => jobs::complete(&mut c, job.id, &cfg.id)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match recorded {
                Ok(true) => {
                    metrics.observe_job(&job.kind, "succeeded", started.elapsed());
                    tracing::info!(elapsed_ms, "job succeeded")
                }
                Ok(false) => {
                    metrics.observe_job(&job.kind, "lost", started.elapsed());
                    tracing::warn!(
                        "finished after losing the lease; the other worker's outcome stands"
                    )
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "could not record success; the job will run again after its lease"
                ),
            }
            return;
        }
        Ok(Err(failure)) => failure,
        Err(_) => JobFailure::retryable("the handler panicked"),
    };
    let recorded = match conn(shared).await {
        Ok(mut c) => jobs::fail(
            &mut c,
            job.id,
            &cfg.id,
            &failure.message,
            failure.retryable,
            cfg.backoff,
        )
        .await
        .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match recorded {
        Ok(FailOutcome::Retrying) => {
            metrics.observe_job(&job.kind, "retrying", started.elapsed());
            tracing::warn!(error = %failure.message, elapsed_ms, "job failed; will retry")
        }
        Ok(FailOutcome::Dead) => {
            metrics.observe_job(&job.kind, "dead", started.elapsed());
            tracing::error!(error = %failure.message, "job dead-lettered")
        }
        Ok(FailOutcome::Lost) => {
            metrics.observe_job(&job.kind, "lost", started.elapsed());
            tracing::warn!("failed after losing the lease")
        }
        Err(e) => tracing::error!(
            error = %e,
            "could not record the failure; the job will run again after its lease"
        ),
    }
}

async fn conn(shared: &Shared) -> Result<crate::db::DbConn, String> {
    shared.pool.get().await.map_err(|e| e.to_string())
}

/// Hands a job back uncounted (shutdown, or a job we cannot run).
async fn release(shared: &Shared, id: i64) {
    let released = match conn(shared).await {
        Ok(mut c) => jobs::release(&mut c, id, &shared.config.id)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match released {
        Ok(_) => tracing::info!("job handed back for another worker"),
        Err(e) => tracing::warn!(error = %e, "could not hand the job back; its lease will run out"),
    }
}
