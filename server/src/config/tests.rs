//! The configuration's tests: defaults, every variable's checks, and that each variable is
//! listed in its section's header, `.env.example` and the README.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{AppEnv, Config};
use crate::telemetry::LogFormat;
use crate::web::ratelimit::RateLimitStore;
use domain::create::ProviderConfig;
use domain::media::storage::StorageConfig;
use domain::secret::MIN_SECRET_LEN;

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
    assert!(domain::accounts::auth::AuthSettings::default().reuse_grace <= Duration::from_secs(2));
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
        crate::web::serving::ConnectionLimits::default()
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

/// Every section's source with its name, as the build sees it.
const SECTIONS: [(&str, &str); 11] = [
    ("accounts.rs", include_str!("accounts.rs")),
    ("backup.rs", include_str!("backup.rs")),
    ("create.rs", include_str!("create.rs")),
    ("database.rs", include_str!("database.rs")),
    ("deployment.rs", include_str!("deployment.rs")),
    ("features.rs", include_str!("features.rs")),
    ("http.rs", include_str!("http.rs")),
    ("jobs.rs", include_str!("jobs.rs")),
    ("observability.rs", include_str!("observability.rs")),
    ("ratelimit.rs", include_str!("ratelimit.rs")),
    ("storage.rs", include_str!("storage.rs")),
];

/// The variables `source` reads: each getter of `vars.rs` takes the name as a literal first
/// argument (rustfmt may put it on the next line), plus the tier variables built by name.
fn variables_in(source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for call in [
        "get(",
        "required(",
        "num(",
        "positive(",
        "secs(",
        "millis(",
        "per_minute(",
        "flag(",
        "micros(",
        "keep_days(",
    ] {
        for piece in source.split(call).skip(1) {
            let Some(piece) = piece.trim_start().strip_prefix('"') else {
                continue;
            };
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > 2 && piece[name.len()..].starts_with('"') {
                names.push(name);
            }
        }
    }
    if source.contains("TIER_{name}_{what}") {
        for tier in super::accounts::TIERS {
            for what in super::accounts::TIER_LIMITS {
                names.push(format!("TIER_{tier}_{what}"));
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The variables every section reads.
fn variables_read() -> Vec<String> {
    let mut names: Vec<String> = SECTIONS
        .iter()
        .flat_map(|(_, source)| variables_in(source))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_section_is_listed_and_lists_the_variables_it_reads_in_its_header() {
    let on_disk: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config"))
            .expect("the config folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !["mod.rs", "vars.rs", "tests.rs"].contains(&n.as_str()))
            .collect();
    for name in &on_disk {
        assert!(
            SECTIONS.iter().any(|(n, _)| n == name),
            "config/{name} is not in SECTIONS"
        );
    }
    for (name, source) in SECTIONS {
        let header: String = source
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ");
        let read = variables_in(source);
        assert!(!read.is_empty(), "config/{name} reads no variable");
        for var in read {
            let listed = header.contains(&format!("`{var}`"))
                || (var.starts_with("TIER_") && header.contains("`TIER_<TIER>_"));
            assert!(
                listed,
                "config/{name} reads {var} but its header does not list it"
            );
        }
    }
}

#[test]
fn every_variable_is_in_env_example_and_the_readme() {
    let example = include_str!("../../../.env.example");
    let readme = include_str!("../../../README.md");
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
