//! Logs, metrics, error reporting and readiness.
//!
//! Variables: `LOG_FORMAT`, `RUST_LOG`, `METRICS_ADDR`, `METRICS_TOKEN`, `SENTRY_DSN`,
//! `SENTRY_TRACES_SAMPLE_RATE`, `SENTRY_ENVIRONMENT`, `SENTRY_RELEASE`,
//! `READY_MAX_JOB_AGE_SECS`, `READY_CHECK_TIMEOUT_MS`.

use std::time::Duration;

use super::vars::{Vars, check_secret, err};
use super::{AppEnv, ConfigError};
use crate::telemetry::{LogConfig, LogFormat, SentryConfig};
use domain::secret::Secret;

/// Metrics, error reporting and readiness.
#[derive(Clone, Debug)]
pub struct ObservabilityConfig {
    /// `METRICS_ADDR`: a separate listener for `/metrics` (and `/api/health`), without
    /// authentication, e.g. `127.0.0.1:9464`. Unset: no separate listener.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `METRICS_TOKEN`: serves `/metrics` on the main listener to requests carrying
    /// `Authorization: Bearer <token>`. Unset: not on the main listener.
    pub metrics_token: Option<Secret>,
    /// Error reporting to Sentry; `None` without `SENTRY_DSN`.
    pub sentry: Option<SentryConfig>,
    /// `READY_MAX_JOB_AGE_SECS`: readiness fails when the oldest ready job has waited longer
    /// than this (a stuck queue), default 600.
    pub ready_max_job_age: Duration,
    /// `READY_CHECK_TIMEOUT_MS`: how long each readiness check may take, default 2000.
    pub ready_check_timeout: Duration,
}

pub(super) fn log(v: &Vars, env: AppEnv) -> Result<LogConfig, ConfigError> {
    let format = match v.get("LOG_FORMAT") {
        None if env == AppEnv::Production => LogFormat::Json,
        None => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some("pretty" | "text") => LogFormat::Pretty,
        Some(other) => {
            return Err(err(
                "LOG_FORMAT",
                format!("`{other}` is not one of pretty, json"),
            ));
        }
    };
    Ok(LogConfig {
        format,
        filter: v.get("RUST_LOG").unwrap_or("info").to_owned(),
    })
}

pub(super) fn parse(v: &Vars, env: AppEnv) -> Result<ObservabilityConfig, ConfigError> {
    let metrics_addr = match v.get("METRICS_ADDR") {
        None => None,
        Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
            err(
                "METRICS_ADDR",
                format!("`{a}` is not an address with a port, like 127.0.0.1:9464"),
            )
        })?),
    };
    let metrics_token = match v.get("METRICS_TOKEN") {
        None => None,
        Some(t) => {
            check_secret(t).map_err(|p| err("METRICS_TOKEN", p))?;
            Some(Secret::new(t))
        }
    };
    Ok(ObservabilityConfig {
        metrics_addr,
        metrics_token,
        sentry: sentry(v, env)?,
        ready_max_job_age: v.secs("READY_MAX_JOB_AGE_SECS", 600)?,
        ready_check_timeout: v.millis("READY_CHECK_TIMEOUT_MS", 2000)?,
    })
}

fn sentry(v: &Vars, env: AppEnv) -> Result<Option<SentryConfig>, ConfigError> {
    let Some(dsn) = v.get("SENTRY_DSN") else {
        return Ok(None);
    };
    if dsn.parse::<sentry::types::Dsn>().is_err() {
        return Err(err(
            "SENTRY_DSN",
            "not a Sentry DSN (https://PUBLIC_KEY@HOST/PROJECT_ID)",
        ));
    }
    let traces_sample_rate = match v.get("SENTRY_TRACES_SAMPLE_RATE") {
        None => 0.1,
        Some(rate) => match rate.parse::<f32>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                return Err(err(
                    "SENTRY_TRACES_SAMPLE_RATE",
                    format!("`{rate}` is not a number from 0 to 1"),
                ));
            }
        },
    };
    Ok(Some(SentryConfig {
        dsn: Secret::new(dsn),
        traces_sample_rate,
        environment: v.get("SENTRY_ENVIRONMENT").unwrap_or(env.name()).to_owned(),
        release: v
            .get("SENTRY_RELEASE")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("socialcraft@{}", env!("CARGO_PKG_VERSION"))),
    }))
}
