//! Sessions, sign-in lockout, password hashing and the tiers' allowances.
//!
//! Variables: `ACCESS_TOKEN_MINUTES`, `REFRESH_TOKEN_DAYS`, `REFRESH_REUSE_GRACE_SECS`,
//! `COOKIE_SECURE`, `SIGNIN_LOCKOUT_FAILURES`, `SIGNIN_LOCKOUT_ACCOUNT_FAILURES`,
//! `SIGNIN_LOCKOUT_MINUTES`, `PASSWORD_HASH_CONCURRENCY`, `PASSWORD_HASH_QUEUE`, and for
//! each tier (`FREE`, `PRO`, `ENTERPRISE`) `TIER_<TIER>_API_PER_MINUTE`,
//! `TIER_<TIER>_GENERATIONS_PER_DAY`, `TIER_<TIER>_STORAGE_MB`.

use std::time::Duration;

use domain::accounts::auth::{AuthSettings, MAX_REUSE_GRACE, Plans, TierLimits};

use super::vars::{Vars, err};
use super::{AppEnv, ConfigError};

/// The tiers, by the name their variables carry.
pub(super) const TIERS: [&str; 3] = ["FREE", "PRO", "ENTERPRISE"];
/// What each tier's variables set.
pub(super) const TIER_LIMITS: [&str; 3] = ["API_PER_MINUTE", "GENERATIONS_PER_DAY", "STORAGE_MB"];

pub(super) fn parse(v: &Vars, env: AppEnv) -> Result<AuthSettings, ConfigError> {
    let defaults = Plans::default();
    let tier = |name: &str, d: TierLimits| -> Result<TierLimits, ConfigError> {
        // Leaked once per tier at start-up, so error messages can name the variable.
        let var = |what: &str| -> &'static str {
            Box::leak(format!("TIER_{name}_{what}").into_boxed_str())
        };
        let [api, generations, storage] = TIER_LIMITS;
        Ok(TierLimits {
            api_per_minute: v.per_minute(var(api), d.api_per_minute as usize)?,
            generations_per_day: v.per_minute(var(generations), d.generations_per_day as usize)?,
            storage_bytes: v.positive(var(storage), (d.storage_bytes / 1_000_000) as usize)? as u64
                * 1_000_000,
        })
    };
    let plans = Plans {
        free: tier(TIERS[0], defaults.free)?,
        pro: tier(TIERS[1], defaults.pro)?,
        enterprise: tier(TIERS[2], defaults.enterprise)?,
    };
    // 0 is allowed (no grace at all); more than the ceiling is not.
    let reuse_grace = Duration::from_secs(v.num("REFRESH_REUSE_GRACE_SECS", 2)? as u64);
    if reuse_grace > MAX_REUSE_GRACE {
        return Err(err(
            "REFRESH_REUSE_GRACE_SECS",
            "at most 2 (a longer window lets a replayed refresh token through)",
        ));
    }
    let auth = AuthSettings {
        access_ttl: Duration::from_secs(v.positive("ACCESS_TOKEN_MINUTES", 15)? as u64 * 60),
        refresh_ttl: Duration::from_secs(v.positive("REFRESH_TOKEN_DAYS", 7)? as u64 * 86_400),
        reuse_grace,
        secure_cookies: v.flag("COOKIE_SECURE", env != AppEnv::Development)?,
        lockout_failures: v.per_minute("SIGNIN_LOCKOUT_FAILURES", 5)?,
        lockout_account_failures: v.per_minute("SIGNIN_LOCKOUT_ACCOUNT_FAILURES", 50)?,
        lockout_window: Duration::from_secs(v.positive("SIGNIN_LOCKOUT_MINUTES", 15)? as u64 * 60),
        hash_concurrency: v.positive(
            "PASSWORD_HASH_CONCURRENCY",
            domain::accounts::auth::default_hash_concurrency(),
        )?,
        hash_queue: v.num("PASSWORD_HASH_QUEUE", 32)?,
        plans,
    };
    if auth.lockout_account_failures < auth.lockout_failures {
        return Err(err(
            "SIGNIN_LOCKOUT_ACCOUNT_FAILURES",
            "must be at least SIGNIN_LOCKOUT_FAILURES (it counts every address together)",
        ));
    }
    if env == AppEnv::Production && !auth.secure_cookies {
        return Err(err(
            "COOKIE_SECURE",
            "must be on in production (session cookies would travel over plain HTTP)",
        ));
    }
    Ok(auth)
}
