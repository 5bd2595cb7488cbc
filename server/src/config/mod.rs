//! Typed configuration, read once from the environment (and `.env` in development) and
//! validated before anything starts. Every error names the variable to fix.
//!
//! One file per section; each lists the variables it reads in its header and parses them
//! into the settings type of the feature that uses them (`domain::db::pool::DatabaseConfig`,
//! `crate::web::ratelimit::Limits`, ...). Configuration imports the features' types, never the
//! reverse: a feature takes its own settings, not the whole [`Config`]. `vars.rs` holds the
//! typed getters every section uses.

use std::collections::HashMap;
use std::path::PathBuf;

mod accounts;
mod backup;
mod create;
mod database;
mod deployment;
mod features;
mod http;
mod jobs;
mod observability;
mod ratelimit;
mod storage;
mod vars;

#[cfg(test)]
mod tests;

pub use backup::BackupConfig;
pub use http::HttpConfig;
pub use observability::ObservabilityConfig;

use domain::secret::Secret;
use vars::{Vars, err};

/// Which kind of deployment this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    /// A developer's machine: embedded database allowed, readable logs, `.env` read.
    Development,
    /// The test suite.
    Test,
    /// A real deployment: secrets required, JSON logs.
    Production,
}

impl AppEnv {
    /// The name `APP_ENV` gives it (and the default Sentry environment).
    pub fn name(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `APP_ENV`: `development` (default), `test` or `production`.
    pub env: AppEnv,
    /// `DATA_DIR`: embedded database and local media, default `./data`.
    pub data_dir: PathBuf,
    /// `SECRET_KEY`: signs tokens and URLs; required (32+ characters, not a placeholder) in
    /// production, generated per process otherwise.
    pub secret_key: Secret,
    /// Database settings.
    pub database: domain::db::pool::DatabaseConfig,
    /// Job worker settings.
    pub worker: domain::jobs::worker::WorkerSettings,
    /// Media storage.
    pub storage: domain::media::storage::StorageConfig,
    /// Create settings.
    pub create: domain::create::CreateConfig,
    /// HTTP hardening.
    pub http: HttpConfig,
    /// Rate limits.
    pub rate_limits: crate::web::ratelimit::Limits,
    /// Where rate limits are counted: in process, or in Redis shared by every instance.
    pub rate_limit_store: crate::web::ratelimit::RateLimitStore,
    /// Sessions, sign-in lockout and tier allowances (see `accounts.rs` for the variables).
    pub auth: domain::accounts::auth::AuthSettings,
    /// Trends ranking.
    pub trends: domain::trends::TrendsConfig,
    /// Uploads.
    pub uploads: domain::uploads::UploadsConfig,
    /// Metrics, Sentry and readiness.
    pub observability: ObservabilityConfig,
    /// Database backups.
    pub backup: BackupConfig,
    /// Logging settings.
    pub log: crate::telemetry::LogConfig,
}

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Config {
    /// Reads the process environment, after loading `.env` when not in production.
    pub fn from_env() -> Result<Self, ConfigError> {
        let declared_production = std::env::var("APP_ENV").is_ok_and(|v| v == "production");
        if !declared_production {
            // A missing .env is normal; a malformed one is worth saying.
            if let Err(e) = dotenvy::dotenv()
                && !e.not_found()
            {
                return Err(err(".env", e.to_string()));
            }
        }
        Self::from_map(&std::env::vars().collect())
    }

    /// Builds and validates a configuration from variables (tests pass their own). Sections
    /// are read in the order their errors should surface.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let v = Vars(vars);
        let deployment = deployment::parse(&v)?;
        let env = deployment.env;
        let production = env == AppEnv::Production;
        let database = database::parse(&v, production)?;
        let worker = jobs::parse(&v)?;
        let storage = storage::parse(&v)?;
        let create = create::parse(&v)?;
        let http = http::parse(&v)?;
        let trends = features::trends(&v)?;
        let uploads = features::uploads(&v)?;
        let backup = backup::parse(&v, &deployment.data_dir)?;
        let auth = accounts::parse(&v, env)?;
        let rate_limits = ratelimit::limits(&v, &auth.plans)?;
        let rate_limit_store = ratelimit::store(&v)?;
        let observability = observability::parse(&v, env)?;
        let log = observability::log(&v, env)?;
        Ok(Config {
            env,
            data_dir: deployment.data_dir,
            secret_key: deployment.secret_key,
            database,
            worker,
            storage,
            create,
            http,
            rate_limits,
            rate_limit_store,
            auth,
            trends,
            uploads,
            observability,
            backup,
            log,
        })
    }

    /// Whether this is a production deployment.
    pub fn is_production(&self) -> bool {
        self.env == AppEnv::Production
    }
}
