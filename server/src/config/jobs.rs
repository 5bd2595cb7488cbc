//! The job worker.
//!
//! Variables: `WORKER_IN_PROCESS`, `WORKER_CONCURRENCY`, `JOB_LEASE_SECS`,
//! `JOB_POLL_INTERVAL_MS`, `JOB_BACKOFF_BASE_MS`, `JOB_BACKOFF_CAP_SECS`,
//! `WORKER_SHUTDOWN_GRACE_SECS`.

use std::time::Duration;

use super::ConfigError;
use super::vars::Vars;
use domain::jobs::worker::WorkerSettings;

pub(super) fn parse(v: &Vars) -> Result<WorkerSettings, ConfigError> {
    Ok(WorkerSettings {
        in_process: v.flag("WORKER_IN_PROCESS", true)?,
        concurrency: v.positive("WORKER_CONCURRENCY", 2)?,
        lease: v.secs("JOB_LEASE_SECS", 30)?,
        poll_interval: v.millis("JOB_POLL_INTERVAL_MS", 2000)?,
        backoff_base: v.millis("JOB_BACKOFF_BASE_MS", 1000)?,
        backoff_cap: v.secs("JOB_BACKOFF_CAP_SECS", 300)?,
        // 0 is allowed: running jobs are abandoned at once (their leases expire elsewhere).
        shutdown_grace: Duration::from_secs(v.num("WORKER_SHUTDOWN_GRACE_SECS", 30)? as u64),
    })
}
