//! Typed configuration, read once from the environment (and `.env` in development) and
//! validated before anything starts. Every error names the variable to fix.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The least length we accept for a production secret.
pub const MIN_SECRET_LEN: usize = 32;

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

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object a line.
    Json,
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Database settings.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; `None` means the embedded cluster (development only).
    pub url: Option<Secret>,
    /// `DATABASE_POOL_SIZE`, default 20.
    pub pool_size: usize,
    /// `DATABASE_POOL_TIMEOUT_MS`: how long a request waits for a connection, default 5000.
    pub pool_timeout: Duration,
    /// `RUN_MIGRATIONS`: apply pending migrations when `serve` starts, default true.
    pub run_migrations: bool,
    /// `PG_BIN_DIR`: where the embedded cluster's PostgreSQL binaries are.
    pub pg_bin_dir: Option<PathBuf>,
    /// `DATABASE_PGBOUNCER`: connect through PgBouncer; turns the prepared-statement cache
    /// off so no statement outlives the server connection it was prepared on. Default false.
    pub pgbouncer: bool,
}

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

/// Where media lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// `STORAGE_PROVIDER=local` (the default): files under `DATA_DIR/media`.
    Local,
    /// `STORAGE_PROVIDER=s3`: an S3-compatible bucket.
    S3(S3Config),
}

/// An S3-compatible bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `S3_BUCKET` (required).
    pub bucket: String,
    /// `S3_REGION`, default `us-east-1`.
    pub region: String,
    /// `S3_ENDPOINT`: for S3-compatible services (MinIO, R2, ...); AWS when unset.
    pub endpoint: Option<String>,
    /// `S3_ACCESS_KEY_ID` (required).
    pub access_key_id: String,
    /// `S3_SECRET_ACCESS_KEY` (required).
    pub secret_access_key: Secret,
    /// `S3_ALLOW_HTTP`: allow a plain-HTTP endpoint, default false (true makes sense only on
    /// a private network or loopback).
    pub allow_http: bool,
}

/// Which image provider makes new generations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderConfig {
    /// `IMAGE_PROVIDER=builtin` (the default): the built-in renderer; no network, no key.
    Builtin,
    /// `IMAGE_PROVIDER=openai`: an OpenAI-compatible `/v1/images/generations` API.
    OpenAi(OpenAiSettings),
}

/// An OpenAI-compatible image API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiSettings {
    /// `IMAGE_API_URL`: the base URL, default `https://api.openai.com`.
    pub url: String,
    /// `IMAGE_API_KEY` (required for `openai`).
    pub key: Secret,
    /// `IMAGE_API_MODEL`, default `gpt-image-1`.
    pub model: String,
    /// `IMAGE_API_TIMEOUT_SECS`: one request's limit, default 120.
    pub timeout: Duration,
    /// `IMAGE_API_RETRIES`: extra tries on 429, 5xx and timeouts within one job attempt,
    /// default 2 (the job queue retries later again).
    pub retries: u32,
    /// `IMAGE_API_COST_PER_IMAGE`: what one image costs, recorded in the usage ledger with
    /// each call, in millionths of the operator's currency (given as a decimal, default 0).
    pub cost_per_image_micros: u64,
}

/// Create settings.
#[derive(Clone, Debug)]
pub struct CreateConfig {
    /// The provider.
    pub provider: ProviderConfig,
    /// `MODERATION_BLOCKLIST_FILE`: replaces the shipped blocklist.
    pub blocklist_file: Option<PathBuf>,
    /// `MODERATION_BLOCKLIST`: more rules, separated by `;` (`spam: buy likes; crypto pump`).
    pub blocklist_extra: Option<String>,
}

/// Trends ranking settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrendsConfig {
    /// `TRENDS_REFRESH_SECS`: how often the ranking is recomputed in the background, default
    /// 60. The cache keeps a ranking for five times as long if refreshing fails.
    pub refresh: Duration,
    /// `TRENDS_WINDOW_DAYS`: how far back prompts and feed rows count, default 7.
    pub window: Duration,
    /// `TRENDS_HALF_LIFE_HOURS`: how fast a prompt's weight halves, default 24.
    pub half_life: Duration,
}

/// Upload settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadsConfig {
    /// `UPLOAD_MAX_BYTES`: the largest file, default 10,000,000 (10 MB).
    pub max_bytes: u64,
    /// `UPLOAD_TIMEOUT_SECS`: how long one upload request may take, default 600 (a 10 MB
    /// file on a slow phone link); other requests keep `REQUEST_TIMEOUT_SECS`.
    pub timeout: Duration,
}

/// Database backups (`socialcraft backup …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupConfig {
    /// `BACKUP_DIR`: where dumps, checksums and manifests are written, default
    /// `DATA_DIR/backups`.
    pub dir: PathBuf,
    /// `BACKUP_KEEP_DAILY_DAYS`: a daily run deletes daily backups older than this, default 7.
    pub keep_daily: Duration,
    /// `BACKUP_KEEP_WEEKLY_DAYS`: a weekly run deletes weekly backups older than this,
    /// default 30.
    pub keep_weekly: Duration,
}

/// HTTP hardening settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// `ALLOWED_ORIGINS`: comma-separated origins (`https://app.example.com`) allowed to call
    /// the API cross-site, for CORS and the cross-site request check. Empty by default; `*`
    /// is refused (credentials cannot go with a wildcard, and it would switch the check off).
    pub allowed_origins: Vec<String>,
    /// `REQUEST_TIMEOUT_SECS`: longest time to produce a response, default 30.
    pub request_timeout: Duration,
    /// `MAX_BODY_BYTES`: largest request body outside uploads, default 65536.
    pub max_body_bytes: usize,
    /// `MAX_HEADER_BYTES`: largest total size of a request's headers, default 16384.
    pub max_header_bytes: usize,
    /// `PAGE_CACHE_TTL_MS` (2000; 0 turns it off) and `PAGE_CACHE_MAX_ENTRIES` (500): how
    /// long a visitor page is served from memory before it is rendered again, and how many
    /// are kept.
    pub page_cache: crate::pagecache::PageCacheSettings,
    /// Slow and many clients: `HEADER_READ_TIMEOUT_SECS` (10), `BODY_IDLE_TIMEOUT_SECS`
    /// (20), `MAX_CONNECTIONS` (4096), `MAX_CONNECTIONS_PER_IP` (128) and
    /// `EVENT_STREAMS_PER_USER` (16).
    pub connections: crate::serving::ConnectionLimits,
}

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

/// Where rate limits are counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateLimitStore {
    /// `RATE_LIMIT_STORE=memory` (the default): in this process. Each instance counts on its
    /// own, so N instances let through up to N times each limit.
    Memory,
    /// `RATE_LIMIT_STORE=redis`: in Redis, shared by every instance.
    Redis(RedisConfig),
}

/// The Redis that holds shared rate limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `REDIS_URL`: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (required with `RATE_LIMIT_STORE=redis`; may hold a password, so never logged).
    pub url: Secret,
    /// `RATE_LIMIT_REDIS_TIMEOUT_MS`: longest a check waits for Redis before the in-process
    /// limiter answers instead, default 50.
    pub timeout: Duration,
}

/// Logging settings.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// `LOG_FORMAT` (`pretty` or `json`); defaults to JSON in production.
    pub format: LogFormat,
    /// `RUST_LOG` filter, default `info`.
    pub filter: String,
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
    pub database: DatabaseConfig,
    /// Job worker settings.
    pub worker: WorkerSettings,
    /// Media storage.
    pub storage: StorageConfig,
    /// Create settings.
    pub create: CreateConfig,
    /// HTTP hardening.
    pub http: HttpConfig,
    /// Rate limits.
    pub rate_limits: crate::ratelimit::Limits,
    /// Where rate limits are counted: in process, or in Redis shared by every instance.
    pub rate_limit_store: RateLimitStore,
    /// Sessions, sign-in lockout and tier allowances: `ACCESS_TOKEN_MINUTES` (15),
    /// `REFRESH_TOKEN_DAYS` (7), `REFRESH_REUSE_GRACE_SECS` (2, at most 2), `COOKIE_SECURE` (on except
    /// in development), `SIGNIN_LOCKOUT_FAILURES` (5 per client prefix) and
    /// `SIGNIN_LOCKOUT_ACCOUNT_FAILURES` (50 across prefixes) within `SIGNIN_LOCKOUT_MINUTES`
    /// (15), `PASSWORD_HASH_CONCURRENCY` (the core count) and `PASSWORD_HASH_QUEUE` (32),
    /// `TIER_{FREE,PRO,ENTERPRISE}_{API_PER_MINUTE,GENERATIONS_PER_DAY,STORAGE_MB}`.
    pub auth: app::accounts::auth::AuthSettings,
    /// Trends ranking.
    pub trends: TrendsConfig,
    /// Uploads.
    pub uploads: UploadsConfig,
    /// Metrics, Sentry and readiness.
    pub observability: ObservabilityConfig,
    /// Database backups.
    pub backup: BackupConfig,
    /// Logging settings.
    pub log: LogConfig,
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

fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
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

    /// Builds and validates a configuration from variables (tests pass their own).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let env = match get("APP_ENV").unwrap_or("development") {
            "development" | "dev" => AppEnv::Development,
            "test" => AppEnv::Test,
            "production" | "prod" => AppEnv::Production,
            other => {
                return Err(err(
                    "APP_ENV",
                    format!("`{other}` is not one of development, test, production"),
                ));
            }
        };
        let production = env == AppEnv::Production;

        let secret_key = match get("SECRET_KEY") {
            Some(key) => {
                check_secret(key).map_err(|p| err("SECRET_KEY", p))?;
                Secret::new(key)
            }
            None if production => {
                return Err(err(
                    "SECRET_KEY",
                    format!(
                        "required in production: {MIN_SECRET_LEN}+ random characters (e.g. `openssl rand -hex 32`)"
                    ),
                ));
            }
            // Outside production a per-process key is fine: nothing signed must outlive it.
            None => Secret::new(
                random_hex(32)
                    .map_err(|e| err("SECRET_KEY", format!("could not generate: {e}")))?,
            ),
        };

        let url = get("DATABASE_URL").map(Secret::new);
        if let Some(url) = &url
            && !(url.expose().starts_with("postgres://")
                || url.expose().starts_with("postgresql://"))
        {
            return Err(err(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        if url.is_none() && production {
            return Err(err(
                "DATABASE_URL",
                "required in production (the embedded database is for development only)",
            ));
        }

        let pool_size = parse_num(get("DATABASE_POOL_SIZE"), "DATABASE_POOL_SIZE", 20)?;
        if !(1..=1000).contains(&pool_size) {
            return Err(err("DATABASE_POOL_SIZE", "must be between 1 and 1000"));
        }
        let pool_timeout_ms = parse_num(
            get("DATABASE_POOL_TIMEOUT_MS"),
            "DATABASE_POOL_TIMEOUT_MS",
            5000,
        )?;
        if pool_timeout_ms == 0 {
            return Err(err("DATABASE_POOL_TIMEOUT_MS", "must be above 0"));
        }
        let run_migrations = parse_bool(get("RUN_MIGRATIONS"), "RUN_MIGRATIONS", true)?;

        let positive = |var: &'static str, default: usize| -> Result<usize, ConfigError> {
            let v = parse_num(get(var), var, default)?;
            if v == 0 {
                return Err(err(var, "must be above 0"));
            }
            Ok(v)
        };
        let worker = WorkerSettings {
            in_process: parse_bool(get("WORKER_IN_PROCESS"), "WORKER_IN_PROCESS", true)?,
            concurrency: positive("WORKER_CONCURRENCY", 2)?,
            lease: Duration::from_secs(positive("JOB_LEASE_SECS", 30)? as u64),
            poll_interval: Duration::from_millis(positive("JOB_POLL_INTERVAL_MS", 2000)? as u64),
            backoff_base: Duration::from_millis(positive("JOB_BACKOFF_BASE_MS", 1000)? as u64),
            backoff_cap: Duration::from_secs(positive("JOB_BACKOFF_CAP_SECS", 300)? as u64),
            shutdown_grace: Duration::from_secs(parse_num(
                get("WORKER_SHUTDOWN_GRACE_SECS"),
                "WORKER_SHUTDOWN_GRACE_SECS",
                30,
            )? as u64),
        };

        let required = |var: &'static str, why: &str| -> Result<String, ConfigError> {
            get(var)
                .map(str::to_owned)
                .ok_or_else(|| err(var, format!("required {why}")))
        };
        let storage = match get("STORAGE_PROVIDER").unwrap_or("local") {
            "local" | "fs" => StorageConfig::Local,
            "s3" => {
                let endpoint = get("S3_ENDPOINT").map(str::to_owned);
                if let Some(e) = &endpoint
                    && !(e.starts_with("http://") || e.starts_with("https://"))
                {
                    return Err(err("S3_ENDPOINT", "must start with http:// or https://"));
                }
                StorageConfig::S3(S3Config {
                    bucket: required("S3_BUCKET", "when STORAGE_PROVIDER=s3")?,
                    region: get("S3_REGION").unwrap_or("us-east-1").to_owned(),
                    endpoint,
                    access_key_id: required("S3_ACCESS_KEY_ID", "when STORAGE_PROVIDER=s3")?,
                    secret_access_key: Secret::new(required(
                        "S3_SECRET_ACCESS_KEY",
                        "when STORAGE_PROVIDER=s3",
                    )?),
                    allow_http: parse_bool(get("S3_ALLOW_HTTP"), "S3_ALLOW_HTTP", false)?,
                })
            }
            other => {
                return Err(err(
                    "STORAGE_PROVIDER",
                    format!("`{other}` is not one of local, s3"),
                ));
            }
        };

        let provider = match get("IMAGE_PROVIDER").unwrap_or("builtin") {
            "builtin" => ProviderConfig::Builtin,
            "openai" => {
                let url = get("IMAGE_API_URL")
                    .unwrap_or("https://api.openai.com")
                    .trim_end_matches('/')
                    .to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err("IMAGE_API_URL", "must start with http:// or https://"));
                }
                ProviderConfig::OpenAi(OpenAiSettings {
                    url,
                    key: Secret::new(required("IMAGE_API_KEY", "when IMAGE_PROVIDER=openai")?),
                    model: get("IMAGE_API_MODEL").unwrap_or("gpt-image-1").to_owned(),
                    timeout: Duration::from_secs(positive("IMAGE_API_TIMEOUT_SECS", 120)? as u64),
                    retries: parse_num(get("IMAGE_API_RETRIES"), "IMAGE_API_RETRIES", 2)? as u32,
                    cost_per_image_micros: parse_micros(
                        get("IMAGE_API_COST_PER_IMAGE"),
                        "IMAGE_API_COST_PER_IMAGE",
                    )?,
                })
            }
            other => {
                return Err(err(
                    "IMAGE_PROVIDER",
                    format!("`{other}` is not one of builtin, openai"),
                ));
            }
        };
        let create = CreateConfig {
            provider,
            blocklist_file: get("MODERATION_BLOCKLIST_FILE").map(PathBuf::from),
            blocklist_extra: get("MODERATION_BLOCKLIST").map(str::to_owned),
        };

        let mut allowed_origins = Vec::new();
        for origin in get("ALLOWED_ORIGINS")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            if origin.is_empty() {
                continue;
            }
            if origin == "*" {
                return Err(err(
                    "ALLOWED_ORIGINS",
                    "`*` is not allowed: list each origin (https://app.example.com)",
                ));
            }
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if host.is_none_or(|h| h.is_empty() || h.contains('/')) {
                return Err(err(
                    "ALLOWED_ORIGINS",
                    format!("`{origin}` is not an origin like https://app.example.com"),
                ));
            }
            allowed_origins.push(origin.to_owned());
        }
        let http = HttpConfig {
            allowed_origins,
            request_timeout: Duration::from_secs(positive("REQUEST_TIMEOUT_SECS", 30)? as u64),
            max_body_bytes: positive("MAX_BODY_BYTES", 64 * 1024)?,
            max_header_bytes: positive("MAX_HEADER_BYTES", 16 * 1024)?,
            page_cache: crate::pagecache::PageCacheSettings {
                ttl: Duration::from_millis(parse_num(
                    get("PAGE_CACHE_TTL_MS"),
                    "PAGE_CACHE_TTL_MS",
                    2000,
                )? as u64),
                max_entries: positive("PAGE_CACHE_MAX_ENTRIES", 500)?,
            },
            connections: crate::serving::ConnectionLimits {
                header_read_timeout: Duration::from_secs(
                    positive("HEADER_READ_TIMEOUT_SECS", 10)? as u64
                ),
                body_idle_timeout: Duration::from_secs(
                    positive("BODY_IDLE_TIMEOUT_SECS", 20)? as u64
                ),
                max_connections: positive("MAX_CONNECTIONS", 4096)?,
                max_per_ip: positive("MAX_CONNECTIONS_PER_IP", 128)?,
                event_streams_per_user: positive("EVENT_STREAMS_PER_USER", 16)?,
            },
        };

        let trends = TrendsConfig {
            refresh: Duration::from_secs(positive("TRENDS_REFRESH_SECS", 60)? as u64),
            window: Duration::from_secs(positive("TRENDS_WINDOW_DAYS", 7)? as u64 * 86_400),
            half_life: Duration::from_secs(positive("TRENDS_HALF_LIFE_HOURS", 24)? as u64 * 3_600),
        };

        let uploads = UploadsConfig {
            max_bytes: positive(
                "UPLOAD_MAX_BYTES",
                app::uploads::DEFAULT_MAX_UPLOAD_BYTES as usize,
            )? as u64,
            timeout: Duration::from_secs(positive("UPLOAD_TIMEOUT_SECS", 600)? as u64),
        };

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or("./data"));
        let keep_days = |var: &'static str, default: usize| -> Result<Duration, ConfigError> {
            // At least a day, so a run never deletes the backup it has just written; at most
            // a century, so the arithmetic cannot overflow.
            let days = positive(var, default)?;
            if days > 36_500 {
                return Err(err(var, "must be at most 36500 days"));
            }
            Ok(Duration::from_secs(days as u64 * 86_400))
        };
        let backup = BackupConfig {
            dir: get("BACKUP_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("backups")),
            keep_daily: keep_days("BACKUP_KEEP_DAILY_DAYS", 7)?,
            keep_weekly: keep_days("BACKUP_KEEP_WEEKLY_DAYS", 30)?,
        };

        let mut trusted_proxies = Vec::new();
        for p in get("TRUSTED_PROXIES")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            if p.is_empty() {
                continue;
            }
            trusted_proxies.push(p.parse().map_err(|e: String| {
                err(
                    "TRUSTED_PROXIES",
                    format!("{e} (list each proxy's address or range, like 10.0.0.0/8)"),
                )
            })?);
        }
        let per_minute = |var: &'static str, default: usize| -> Result<u32, ConfigError> {
            let v = positive(var, default)?;
            u32::try_from(v).map_err(|_| err(var, "too large"))
        };
        let defaults = app::accounts::auth::Plans::default();
        let tier = |name: &str,
                    d: app::accounts::auth::TierLimits|
         -> Result<app::accounts::auth::TierLimits, ConfigError> {
            // Leaked once per tier at start-up, so error messages can name the variable.
            let var = |what: &str| -> &'static str {
                Box::leak(format!("TIER_{name}_{what}").into_boxed_str())
            };
            Ok(app::accounts::auth::TierLimits {
                api_per_minute: per_minute(var("API_PER_MINUTE"), d.api_per_minute as usize)?,
                generations_per_day: u32::try_from(positive(
                    var("GENERATIONS_PER_DAY"),
                    d.generations_per_day as usize,
                )?)
                .map_err(|_| err(var("GENERATIONS_PER_DAY"), "too large"))?,
                storage_bytes: positive(var("STORAGE_MB"), (d.storage_bytes / 1_000_000) as usize)?
                    as u64
                    * 1_000_000,
            })
        };
        let plans = app::accounts::auth::Plans {
            free: tier("FREE", defaults.free)?,
            pro: tier("PRO", defaults.pro)?,
            enterprise: tier("ENTERPRISE", defaults.enterprise)?,
        };
        let auth = app::accounts::auth::AuthSettings {
            access_ttl: Duration::from_secs(positive("ACCESS_TOKEN_MINUTES", 15)? as u64 * 60),
            refresh_ttl: Duration::from_secs(positive("REFRESH_TOKEN_DAYS", 7)? as u64 * 86_400),
            reuse_grace: {
                let grace = Duration::from_secs(parse_num(
                    get("REFRESH_REUSE_GRACE_SECS"),
                    "REFRESH_REUSE_GRACE_SECS",
                    2,
                )? as u64);
                if grace > app::accounts::auth::MAX_REUSE_GRACE {
                    return Err(err(
                        "REFRESH_REUSE_GRACE_SECS",
                        "at most 2 (a longer window lets a replayed refresh token through)",
                    ));
                }
                grace
            },
            secure_cookies: parse_bool(
                get("COOKIE_SECURE"),
                "COOKIE_SECURE",
                env != AppEnv::Development,
            )?,
            lockout_failures: per_minute("SIGNIN_LOCKOUT_FAILURES", 5)?,
            lockout_account_failures: per_minute("SIGNIN_LOCKOUT_ACCOUNT_FAILURES", 50)?,
            lockout_window: Duration::from_secs(
                positive("SIGNIN_LOCKOUT_MINUTES", 15)? as u64 * 60,
            ),
            hash_concurrency: positive(
                "PASSWORD_HASH_CONCURRENCY",
                app::accounts::auth::default_hash_concurrency(),
            )?,
            hash_queue: parse_num(get("PASSWORD_HASH_QUEUE"), "PASSWORD_HASH_QUEUE", 32)?,
            plans,
        };
        if auth.lockout_account_failures < auth.lockout_failures {
            return Err(err(
                "SIGNIN_LOCKOUT_ACCOUNT_FAILURES",
                "must be at least SIGNIN_LOCKOUT_FAILURES (it counts every address together)",
            ));
        }
        if production && !auth.secure_cookies {
            return Err(err(
                "COOKIE_SECURE",
                "must be on in production (session cookies would travel over plain HTTP)",
            ));
        }
        let rate_limits = crate::ratelimit::Limits {
            auth_per_minute: per_minute("RATE_LIMIT_AUTH_PER_MINUTE", 5)?,
            generate_per_minute: per_minute("RATE_LIMIT_GENERATE_PER_MINUTE", 10)?,
            api_per_minute: per_minute("RATE_LIMIT_API_PER_MINUTE", 100)?,
            upload_per_minute: per_minute("RATE_LIMIT_UPLOAD_PER_MINUTE", 5)?,
            tier_api_per_minute: [
                plans.free.api_per_minute,
                plans.pro.api_per_minute,
                plans.enterprise.api_per_minute,
            ],
            media_per_minute: per_minute("RATE_LIMIT_MEDIA_PER_MINUTE", 600)?,
            trusted_proxies,
            ipv6_prefix: match positive("RATE_LIMIT_IPV6_PREFIX", 64)? {
                p @ 1..=128 => p as u8,
                _ => return Err(err("RATE_LIMIT_IPV6_PREFIX", "must be 1 to 128")),
            },
            max_keys: positive("RATE_LIMIT_MAX_KEYS", 100_000)?,
            refusal_delay: match parse_num(
                get("RATE_LIMIT_REFUSAL_DELAY_MS"),
                "RATE_LIMIT_REFUSAL_DELAY_MS",
                1000,
            )? {
                // Longer than a few seconds only ties up connections (a 429 is held no
                // longer than its Retry-After anyway).
                ms @ 0..=10_000 => Duration::from_millis(ms as u64),
                _ => {
                    return Err(err(
                        "RATE_LIMIT_REFUSAL_DELAY_MS",
                        "must be 0 to 10000 (milliseconds)",
                    ));
                }
            },
        };
        let rate_limit_store = match get("RATE_LIMIT_STORE").unwrap_or("memory") {
            "memory" => RateLimitStore::Memory,
            "redis" => {
                let url = required("REDIS_URL", "when RATE_LIMIT_STORE=redis")?;
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(err(
                        "REDIS_URL",
                        "must start with redis:// or rediss:// (TLS)",
                    ));
                }
                RateLimitStore::Redis(RedisConfig {
                    url: Secret::new(url),
                    timeout: Duration::from_millis(
                        positive("RATE_LIMIT_REDIS_TIMEOUT_MS", 50)? as u64
                    ),
                })
            }
            other => {
                return Err(err(
                    "RATE_LIMIT_STORE",
                    format!("`{other}` is not one of memory, redis"),
                ));
            }
        };

        let metrics_addr = match get("METRICS_ADDR") {
            None => None,
            Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
                err(
                    "METRICS_ADDR",
                    format!("`{a}` is not an address with a port, like 127.0.0.1:9464"),
                )
            })?),
        };
        let metrics_token = match get("METRICS_TOKEN") {
            None => None,
            Some(t) => {
                check_secret(t).map_err(|p| err("METRICS_TOKEN", p))?;
                Some(Secret::new(t))
            }
        };
        let env_name = match env {
            AppEnv::Development => "development",
            AppEnv::Test => "test",
            AppEnv::Production => "production",
        };
        let sentry = match get("SENTRY_DSN") {
            None => None,
            Some(dsn) => {
                if dsn.parse::<sentry::types::Dsn>().is_err() {
                    return Err(err(
                        "SENTRY_DSN",
                        "not a Sentry DSN (https://PUBLIC_KEY@HOST/PROJECT_ID)",
                    ));
                }
                let rate = match get("SENTRY_TRACES_SAMPLE_RATE") {
                    None => 0.1,
                    Some(v) => match v.parse::<f32>() {
                        Ok(r) if (0.0..=1.0).contains(&r) => r,
                        _ => {
                            return Err(err(
                                "SENTRY_TRACES_SAMPLE_RATE",
                                format!("`{v}` is not a number from 0 to 1"),
                            ));
                        }
                    },
                };
                Some(SentryConfig {
                    dsn: Secret::new(dsn),
                    traces_sample_rate: rate,
                    environment: get("SENTRY_ENVIRONMENT").unwrap_or(env_name).to_owned(),
                    release: get("SENTRY_RELEASE")
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("socialcraft@{}", env!("CARGO_PKG_VERSION"))),
                })
            }
        };
        let observability = ObservabilityConfig {
            metrics_addr,
            metrics_token,
            sentry,
            ready_max_job_age: Duration::from_secs(positive("READY_MAX_JOB_AGE_SECS", 600)? as u64),
            ready_check_timeout: Duration::from_millis(
                positive("READY_CHECK_TIMEOUT_MS", 2000)? as u64
            ),
        };

        let format = match get("LOG_FORMAT") {
            None if production => LogFormat::Json,
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

        Ok(Config {
            env,
            data_dir,
            secret_key,
            database: DatabaseConfig {
                url,
                pool_size,
                pool_timeout: Duration::from_millis(pool_timeout_ms as u64),
                run_migrations,
                pg_bin_dir: get("PG_BIN_DIR").map(PathBuf::from),
                pgbouncer: parse_bool(get("DATABASE_PGBOUNCER"), "DATABASE_PGBOUNCER", false)?,
            },
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
            log: LogConfig {
                format,
                filter: get("RUST_LOG").unwrap_or("info").to_owned(),
            },
        })
    }

    /// Whether this is a production deployment.
    pub fn is_production(&self) -> bool {
        self.env == AppEnv::Production
    }
}

/// Rejects secrets an attacker could guess: short, placeholder-like, or low in variety.
fn check_secret(key: &str) -> Result<(), String> {
    if key.chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "too short: use at least {MIN_SECRET_LEN} random characters"
        ));
    }
    let lower = key.to_ascii_lowercase();
    for weak in [
        "changeme",
        "change-me",
        "secret",
        "password",
        "example",
        "xxxxxxxx",
    ] {
        if lower.contains(weak) {
            return Err(format!("looks like a placeholder (contains `{weak}`)"));
        }
    }
    let mut distinct: Vec<char> = key.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 10 {
        return Err("too little variety: use a randomly generated value".to_owned());
    }
    Ok(())
}

/// A non-negative decimal amount (`0.04`) as millionths (`40000`); unset is 0.
fn parse_micros(v: Option<&str>, var: &'static str) -> Result<u64, ConfigError> {
    let Some(v) = v.map(str::trim) else {
        return Ok(0);
    };
    let bad = || err(var, format!("`{v}` is not an amount such as 0.04"));
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

fn parse_num(v: Option<&str>, var: &'static str, default: usize) -> Result<usize, ConfigError> {
    v.map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| err(var, format!("`{v}` is not a whole number")))
    })
}

fn parse_bool(v: Option<&str>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match v {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(err(var, format!("`{other}` is not true or false"))),
    }
}

/// `bytes` random bytes from the kernel, as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD_SECRET: &str = "q8Zr2LmT5vX9cB1nH4kW7pD0sF3gJ6aE";

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn development_needs_nothing() {
        let c = Config::from_map(&vars(&[])).expect("defaults are valid");
        assert_eq!(c.env, AppEnv::Development);
        assert!(c.database.url.is_none());
        assert_eq!(c.database.pool_size, 20);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.log.format, LogFormat::Pretty);
        assert!(c.secret_key.expose().len() >= MIN_SECRET_LEN);
        assert!(c.worker.in_process);
        assert_eq!(c.worker.concurrency, 2);
        assert_eq!(c.worker.lease, Duration::from_secs(30));
    }

    #[test]
    fn the_refresh_grace_window_is_two_seconds_at_most_and_lockouts_have_two_ceilings() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert_eq!(c.auth.reuse_grace, Duration::from_secs(2));
        assert!(app::accounts::auth::AuthSettings::default().reuse_grace <= Duration::from_secs(2));
        let c = Config::from_map(&vars(&[("REFRESH_REUSE_GRACE_SECS", "0")])).unwrap();
        assert_eq!(c.auth.reuse_grace, Duration::ZERO);
        let e = Config::from_map(&vars(&[("REFRESH_REUSE_GRACE_SECS", "3")])).unwrap_err();
        assert_eq!(e.var, "REFRESH_REUSE_GRACE_SECS");

        let c = Config::from_map(&vars(&[])).unwrap();
        assert_eq!(
            (c.auth.lockout_failures, c.auth.lockout_account_failures),
            (5, 50)
        );
        assert!(c.auth.hash_concurrency >= 1);
        assert_eq!(c.auth.hash_queue, 32);
        let c = Config::from_map(&vars(&[
            ("PASSWORD_HASH_CONCURRENCY", "1"),
            ("PASSWORD_HASH_QUEUE", "0"),
            ("SIGNIN_LOCKOUT_ACCOUNT_FAILURES", "20"),
        ]))
        .unwrap();
        assert_eq!(
            (
                c.auth.hash_concurrency,
                c.auth.hash_queue,
                c.auth.lockout_account_failures
            ),
            (1, 0, 20)
        );
        let e = Config::from_map(&vars(&[("PASSWORD_HASH_CONCURRENCY", "0")])).unwrap_err();
        assert_eq!(e.var, "PASSWORD_HASH_CONCURRENCY");
        let e = Config::from_map(&vars(&[("SIGNIN_LOCKOUT_ACCOUNT_FAILURES", "4")])).unwrap_err();
        assert_eq!(e.var, "SIGNIN_LOCKOUT_ACCOUNT_FAILURES");
    }

    #[test]
    fn sessions_and_tiers_are_configurable_and_production_cookies_stay_secure() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert!(
            !c.auth.secure_cookies,
            "plain-HTTP development keeps working"
        );
        assert_eq!(c.auth.access_ttl, Duration::from_secs(900));
        assert_eq!(c.auth.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(c.auth.lockout_failures, 5);
        assert_eq!(c.auth.plans.free.generations_per_day, 50);
        assert_eq!(c.auth.plans.pro.storage_bytes, 5_000_000_000);
        assert_eq!(c.rate_limits.tier_api_per_minute, [100, 500, 2000]);
        assert_eq!(c.rate_limits.upload_per_minute, 5);

        let c = Config::from_map(&vars(&[
            ("TIER_PRO_API_PER_MINUTE", "750"),
            ("TIER_FREE_GENERATIONS_PER_DAY", "20"),
            ("TIER_ENTERPRISE_STORAGE_MB", "100000"),
            ("APP_ENV", "test"),
        ]))
        .unwrap();
        assert!(c.auth.secure_cookies);
        assert_eq!(c.rate_limits.tier_api_per_minute, [100, 750, 2000]);
        assert_eq!(c.auth.plans.free.generations_per_day, 20);
        assert_eq!(c.auth.plans.enterprise.storage_bytes, 100_000_000_000);

        let e = Config::from_map(&vars(&[("TIER_FREE_GENERATIONS_PER_DAY", "lots")])).unwrap_err();
        assert_eq!(e.var, "TIER_FREE_GENERATIONS_PER_DAY");
        let e = Config::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db/app"),
            ("SECRET_KEY", GOOD_SECRET),
            ("COOKIE_SECURE", "false"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "COOKIE_SECURE");
    }

    #[test]
    fn production_requires_a_strong_secret_and_names_it() {
        let e = Config::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://u:p@db/app"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "SECRET_KEY");
        assert!(e.to_string().contains("SECRET_KEY"));

        for weak in [
            "short",
            "changeme-changeme-changeme-changeme",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            let e = Config::from_map(&vars(&[
                ("APP_ENV", "production"),
                ("DATABASE_URL", "postgres://u:p@db/app"),
                ("SECRET_KEY", weak),
            ]))
            .unwrap_err();
            assert_eq!(e.var, "SECRET_KEY", "{weak}");
        }
    }

    #[test]
    fn storage_and_provider_default_to_local_and_builtin() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert_eq!(c.storage, StorageConfig::Local);
        assert_eq!(c.create.provider, ProviderConfig::Builtin);
    }

    #[test]
    fn s3_and_openai_settings_are_read_and_required_parts_named() {
        let c = Config::from_map(&vars(&[
            ("STORAGE_PROVIDER", "s3"),
            ("S3_BUCKET", "media"),
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_ACCESS_KEY_ID", "AKID"),
            ("S3_SECRET_ACCESS_KEY", "very-secret"),
            ("S3_ALLOW_HTTP", "true"),
            ("IMAGE_PROVIDER", "openai"),
            ("IMAGE_API_URL", "http://127.0.0.1:9/"),
            ("IMAGE_API_KEY", "sk-test"),
        ]))
        .unwrap();
        let StorageConfig::S3(s3) = &c.storage else {
            panic!("expected S3: {:?}", c.storage)
        };
        assert_eq!(s3.bucket, "media");
        assert_eq!(s3.region, "us-east-1");
        assert!(s3.allow_http);
        let ProviderConfig::OpenAi(ai) = &c.create.provider else {
            panic!("expected openai")
        };
        assert_eq!(ai.url, "http://127.0.0.1:9", "trailing slash trimmed");
        assert_eq!(ai.model, "gpt-image-1");
        assert_eq!(
            ai.cost_per_image_micros, 0,
            "calls cost nothing unless told"
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("sk-test"),
            "{shown}"
        );

        let e = Config::from_map(&vars(&[("STORAGE_PROVIDER", "s3")])).unwrap_err();
        assert_eq!(e.var, "S3_BUCKET");
        let e = Config::from_map(&vars(&[("IMAGE_PROVIDER", "openai")])).unwrap_err();
        assert_eq!(e.var, "IMAGE_API_KEY");
        let e = Config::from_map(&vars(&[("IMAGE_PROVIDER", "midjourney")])).unwrap_err();
        assert_eq!(e.var, "IMAGE_PROVIDER");

        let priced = |cost: &str| {
            Config::from_map(&vars(&[
                ("IMAGE_PROVIDER", "openai"),
                ("IMAGE_API_KEY", "sk-test"),
                ("IMAGE_API_COST_PER_IMAGE", cost),
            ]))
            .map(|c| match c.create.provider {
                ProviderConfig::OpenAi(ai) => ai.cost_per_image_micros,
                ProviderConfig::Builtin => u64::MAX,
            })
        };
        assert_eq!(priced("0.04"), Ok(40_000));
        assert_eq!(priced("2"), Ok(2_000_000));
        assert_eq!(priced(".000001"), Ok(1));
        for bad in ["-1", "0.0000001", "four", "1.2.3", "."] {
            assert_eq!(
                priced(bad).unwrap_err().var,
                "IMAGE_API_COST_PER_IMAGE",
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_limits_stay_in_process_unless_redis_is_named() {
        let c = Config::from_map(&vars(&[("REDIS_URL", "redis://127.0.0.1:6379")])).unwrap();
        assert_eq!(c.rate_limit_store, RateLimitStore::Memory);

        let c = Config::from_map(&vars(&[
            ("RATE_LIMIT_STORE", "redis"),
            ("REDIS_URL", "rediss://:hunter2-redis@cache.internal:6380/2"),
        ]))
        .unwrap();
        let RateLimitStore::Redis(redis) = &c.rate_limit_store else {
            panic!("expected redis: {:?}", c.rate_limit_store)
        };
        assert_eq!(
            redis.url.expose(),
            "rediss://:hunter2-redis@cache.internal:6380/2"
        );
        assert_eq!(redis.timeout, Duration::from_millis(50));
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "the URL may hold a password"
        );

        let c = Config::from_map(&vars(&[
            ("RATE_LIMIT_STORE", "redis"),
            ("REDIS_URL", "redis://127.0.0.1"),
            ("RATE_LIMIT_REDIS_TIMEOUT_MS", "20"),
        ]))
        .unwrap();
        let RateLimitStore::Redis(redis) = &c.rate_limit_store else {
            panic!("expected redis")
        };
        assert_eq!(redis.timeout, Duration::from_millis(20));

        for (pairs, var) in [
            (&[("RATE_LIMIT_STORE", "redis")][..], "REDIS_URL"),
            (
                &[
                    ("RATE_LIMIT_STORE", "redis"),
                    ("REDIS_URL", "http://127.0.0.1:6379"),
                ][..],
                "REDIS_URL",
            ),
            (
                &[
                    ("RATE_LIMIT_STORE", "redis"),
                    ("REDIS_URL", "127.0.0.1:6379"),
                ][..],
                "REDIS_URL",
            ),
            (&[("RATE_LIMIT_STORE", "memcached")][..], "RATE_LIMIT_STORE"),
            (
                &[
                    ("RATE_LIMIT_STORE", "redis"),
                    ("REDIS_URL", "redis://127.0.0.1"),
                    ("RATE_LIMIT_REDIS_TIMEOUT_MS", "0"),
                ][..],
                "RATE_LIMIT_REDIS_TIMEOUT_MS",
            ),
        ] {
            let e = Config::from_map(&vars(pairs)).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}");
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn allowed_origins_are_listed_never_a_wildcard() {
        let c = Config::from_map(&vars(&[(
            "ALLOWED_ORIGINS",
            "https://a.example, http://127.0.0.1:5173",
        )]))
        .unwrap();
        assert_eq!(
            c.http.allowed_origins,
            ["https://a.example", "http://127.0.0.1:5173"]
        );
        for bad in ["*", "a.example", "https://a.example/path"] {
            let e = Config::from_map(&vars(&[("ALLOWED_ORIGINS", bad)])).unwrap_err();
            assert_eq!(e.var, "ALLOWED_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn backups_default_under_the_data_directory_and_keep_at_least_a_day() {
        let c = Config::from_map(&vars(&[("DATA_DIR", "/srv/sc")])).unwrap();
        assert_eq!(c.backup.dir, PathBuf::from("/srv/sc/backups"));
        assert_eq!(c.backup.keep_daily, Duration::from_secs(7 * 86_400));
        assert_eq!(c.backup.keep_weekly, Duration::from_secs(30 * 86_400));

        let c = Config::from_map(&vars(&[
            ("BACKUP_DIR", "/mnt/backups"),
            ("BACKUP_KEEP_DAILY_DAYS", "3"),
            ("BACKUP_KEEP_WEEKLY_DAYS", "90"),
        ]))
        .unwrap();
        assert_eq!(c.backup.dir, PathBuf::from("/mnt/backups"));
        assert_eq!(c.backup.keep_daily, Duration::from_secs(3 * 86_400));
        assert_eq!(c.backup.keep_weekly, Duration::from_secs(90 * 86_400));

        for (var, value) in [
            ("BACKUP_KEEP_DAILY_DAYS", "0"),
            ("BACKUP_KEEP_DAILY_DAYS", "a week"),
            ("BACKUP_KEEP_WEEKLY_DAYS", "-1"),
            ("BACKUP_KEEP_WEEKLY_DAYS", "100000"),
        ] {
            let e = Config::from_map(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{var}={value}");
        }
    }

    #[test]
    fn production_requires_a_database_url() {
        let e = Config::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("SECRET_KEY", GOOD_SECRET),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "DATABASE_URL");
    }

    #[test]
    fn production_with_everything_uses_json_logs() {
        let c = Config::from_map(&vars(&[
            ("APP_ENV", "production"),
            ("SECRET_KEY", GOOD_SECRET),
            ("DATABASE_URL", "postgres://u:p@db/app"),
        ]))
        .expect("valid");
        assert!(c.is_production());
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("APP_ENV", "staging"),
            ("DATABASE_POOL_SIZE", "many"),
            ("DATABASE_POOL_SIZE", "0"),
            ("DATABASE_POOL_TIMEOUT_MS", "0"),
            ("RUN_MIGRATIONS", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "mysql://x"),
            ("WORKER_IN_PROCESS", "sometimes"),
            ("WORKER_CONCURRENCY", "0"),
            ("JOB_LEASE_SECS", "-1"),
            ("JOB_POLL_INTERVAL_MS", "soon"),
        ] {
            let e = Config::from_map(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{var}={value}");
        }
    }

    #[test]
    fn proxy_ranges_prefixes_and_connection_limits_are_read_and_checked() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert_eq!(c.rate_limits.ipv6_prefix, 64);
        assert_eq!(c.rate_limits.media_per_minute, 600);
        assert_eq!(c.rate_limits.refusal_delay, Duration::from_secs(1));
        assert_eq!(
            c.http.connections,
            crate::serving::ConnectionLimits::default()
        );
        let c = Config::from_map(&vars(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.7"),
            ("RATE_LIMIT_IPV6_PREFIX", "56"),
            ("RATE_LIMIT_REFUSAL_DELAY_MS", "0"),
            ("HEADER_READ_TIMEOUT_SECS", "3"),
            ("BODY_IDLE_TIMEOUT_SECS", "4"),
            ("MAX_CONNECTIONS", "100"),
            ("MAX_CONNECTIONS_PER_IP", "5"),
            ("EVENT_STREAMS_PER_USER", "2"),
        ]))
        .unwrap();
        let proxies: Vec<String> = c
            .rate_limits
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"]);
        assert_eq!(c.rate_limits.ipv6_prefix, 56);
        assert_eq!(c.rate_limits.refusal_delay, Duration::ZERO);
        let k = c.http.connections;
        assert_eq!(k.header_read_timeout, Duration::from_secs(3));
        assert_eq!(k.body_idle_timeout, Duration::from_secs(4));
        assert_eq!((k.max_connections, k.max_per_ip), (100, 5));
        assert_eq!(k.event_streams_per_user, 2);
        for (var, value) in [
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("RATE_LIMIT_IPV6_PREFIX", "129"),
            ("RATE_LIMIT_IPV6_PREFIX", "0"),
            ("HEADER_READ_TIMEOUT_SECS", "0"),
            ("BODY_IDLE_TIMEOUT_SECS", "soon"),
            ("MAX_CONNECTIONS", "0"),
            ("MAX_CONNECTIONS_PER_IP", "-1"),
            ("EVENT_STREAMS_PER_USER", "0"),
            ("RATE_LIMIT_MEDIA_PER_MINUTE", "0"),
            ("RATE_LIMIT_REFUSAL_DELAY_MS", "10001"),
            ("RATE_LIMIT_REFUSAL_DELAY_MS", "-1"),
        ] {
            let e = Config::from_map(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{var}={value}");
        }
    }

    #[test]
    fn metrics_sentry_and_readiness_settings_are_read_and_checked() {
        let c = Config::from_map(&vars(&[])).unwrap();
        assert!(c.observability.metrics_addr.is_none());
        assert!(c.observability.metrics_token.is_none());
        assert!(c.observability.sentry.is_none(), "no DSN, no Sentry");
        assert_eq!(c.observability.ready_max_job_age, Duration::from_secs(600));
        assert!(!c.database.pgbouncer);

        let c = Config::from_map(&vars(&[
            ("METRICS_ADDR", "127.0.0.1:9464"),
            ("METRICS_TOKEN", GOOD_SECRET),
            ("SENTRY_DSN", "https://abc123@o1.ingest.example.com/42"),
            ("SENTRY_TRACES_SAMPLE_RATE", "0.25"),
            ("READY_MAX_JOB_AGE_SECS", "60"),
            ("DATABASE_PGBOUNCER", "true"),
        ]))
        .unwrap();
        assert_eq!(
            c.observability.metrics_addr,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let sentry = c.observability.sentry.as_ref().unwrap();
        assert_eq!(sentry.traces_sample_rate, 0.25);
        assert_eq!(sentry.environment, "development");
        assert!(sentry.release.starts_with("socialcraft@"));
        assert!(c.database.pgbouncer);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("abc123") && !shown.contains(GOOD_SECRET),
            "{shown}"
        );

        for (var, value) in [
            ("METRICS_ADDR", "localhost"),
            ("METRICS_TOKEN", "short"),
            ("SENTRY_DSN", "not a dsn"),
            ("READY_MAX_JOB_AGE_SECS", "0"),
            ("DATABASE_PGBOUNCER", "perhaps"),
        ] {
            let e = Config::from_map(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var, "{var}={value}");
        }
        let e = Config::from_map(&vars(&[
            ("SENTRY_DSN", "https://abc123@o1.ingest.example.com/42"),
            ("SENTRY_TRACES_SAMPLE_RATE", "1.5"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "SENTRY_TRACES_SAMPLE_RATE");
    }

    /// The variables this module reads, found in its own source (the calls that read one
    /// take its name as a literal), plus the tier variables it builds by name.
    fn variables_read() -> Vec<String> {
        let source = include_str!("config.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let mut names: Vec<String> = Vec::new();
        for call in [
            "get(\"",
            "positive(\"",
            "per_minute(\"",
            "required(\"",
            "keep_days(\"",
        ] {
            for piece in code.split(call).skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.len() > 2 && piece[name.len()..].starts_with('"') {
                    names.push(name);
                }
            }
        }
        for tier in ["FREE", "PRO", "ENTERPRISE"] {
            for what in ["API_PER_MINUTE", "GENERATIONS_PER_DAY", "STORAGE_MB"] {
                names.push(format!("TIER_{tier}_{what}"));
            }
        }
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn every_variable_is_in_env_example_and_the_readme() {
        let example = include_str!("../../.env.example");
        let readme = include_str!("../../README.md");
        let names = variables_read();
        assert!(names.len() > 60, "the scan found too few: {names:?}");
        for name in &names {
            let listed = example.lines().any(|l| {
                let l = l.trim_start_matches("# ");
                l.starts_with(&format!("{name}="))
            });
            assert!(listed, "{name} is missing from .env.example");
            // The README groups the tier variables as TIER_FREE_..., TIER_PRO_...
            let documented = readme.contains(&format!("`{name}`"))
                || (name.starts_with("TIER_") && readme.contains("TIER_FREE_"));
            assert!(
                documented,
                "{name} is missing from the README's configuration table"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config::from_map(&vars(&[
            ("SECRET_KEY", GOOD_SECRET),
            ("DATABASE_URL", "postgres://user:hunter2-db-pass@db/app"),
        ]))
        .expect("valid");
        let printed = format!("{c:?}");
        assert!(!printed.contains(GOOD_SECRET), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }
}
