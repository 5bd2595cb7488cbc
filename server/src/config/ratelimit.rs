//! Rate limits and where they are counted.
//!
//! Variables: `TRUSTED_PROXIES`, `RATE_LIMIT_AUTH_PER_MINUTE`,
//! `RATE_LIMIT_GENERATE_PER_MINUTE`, `RATE_LIMIT_API_PER_MINUTE`,
//! `RATE_LIMIT_UPLOAD_PER_MINUTE`, `RATE_LIMIT_MEDIA_PER_MINUTE`, `RATE_LIMIT_IPV6_PREFIX`,
//! `RATE_LIMIT_MAX_KEYS`, `RATE_LIMIT_REFUSAL_DELAY_MS`, `RATE_LIMIT_STORE`, `REDIS_URL`,
//! `RATE_LIMIT_REDIS_TIMEOUT_MS`.

use std::time::Duration;

use domain::accounts::auth::Plans;

use super::ConfigError;
use super::vars::{Vars, check_scheme, err};
use crate::web::ratelimit::{Limits, RateLimitStore, RedisConfig};
use domain::secret::Secret;

pub(super) fn limits(v: &Vars, plans: &Plans) -> Result<Limits, ConfigError> {
    let mut trusted_proxies = Vec::new();
    for p in v
        .get("TRUSTED_PROXIES")
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
    Ok(Limits {
        auth_per_minute: v.per_minute("RATE_LIMIT_AUTH_PER_MINUTE", 5)?,
        generate_per_minute: v.per_minute("RATE_LIMIT_GENERATE_PER_MINUTE", 10)?,
        api_per_minute: v.per_minute("RATE_LIMIT_API_PER_MINUTE", 100)?,
        upload_per_minute: v.per_minute("RATE_LIMIT_UPLOAD_PER_MINUTE", 5)?,
        tier_api_per_minute: [
            plans.free.api_per_minute,
            plans.pro.api_per_minute,
            plans.enterprise.api_per_minute,
        ],
        media_per_minute: v.per_minute("RATE_LIMIT_MEDIA_PER_MINUTE", 600)?,
        trusted_proxies,
        ipv6_prefix: match v.positive("RATE_LIMIT_IPV6_PREFIX", 64)? {
            p @ 1..=128 => p as u8,
            _ => return Err(err("RATE_LIMIT_IPV6_PREFIX", "must be 1 to 128")),
        },
        max_keys: v.positive("RATE_LIMIT_MAX_KEYS", 100_000)?,
        refusal_delay: match v.num("RATE_LIMIT_REFUSAL_DELAY_MS", 1000)? {
            // Longer than a few seconds only ties up connections (a 429 is held no longer
            // than its Retry-After anyway).
            ms @ 0..=10_000 => Duration::from_millis(ms as u64),
            _ => {
                return Err(err(
                    "RATE_LIMIT_REFUSAL_DELAY_MS",
                    "must be 0 to 10000 (milliseconds)",
                ));
            }
        },
    })
}

pub(super) fn store(v: &Vars) -> Result<RateLimitStore, ConfigError> {
    match v.get("RATE_LIMIT_STORE").unwrap_or("memory") {
        "memory" => Ok(RateLimitStore::Memory),
        "redis" => {
            let url = v.required("REDIS_URL", "when RATE_LIMIT_STORE=redis")?;
            check_scheme(
                "REDIS_URL",
                &url,
                &["redis://", "rediss://"],
                "must start with redis:// or rediss:// (TLS)",
            )?;
            Ok(RateLimitStore::Redis(RedisConfig {
                url: Secret::new(url),
                timeout: v.millis("RATE_LIMIT_REDIS_TIMEOUT_MS", 50)?,
            }))
        }
        other => Err(err(
            "RATE_LIMIT_STORE",
            format!("`{other}` is not one of memory, redis"),
        )),
    }
}
