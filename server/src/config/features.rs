//! The trends ranking and uploads.
//!
//! Variables: `TRENDS_REFRESH_SECS`, `TRENDS_WINDOW_DAYS`, `TRENDS_HALF_LIFE_HOURS`,
//! `UPLOAD_MAX_BYTES`, `UPLOAD_TIMEOUT_SECS`.

use std::time::Duration;

use super::ConfigError;
use super::vars::Vars;
use domain::trends::TrendsConfig;
use domain::uploads::UploadsConfig;

pub(super) fn trends(v: &Vars) -> Result<TrendsConfig, ConfigError> {
    Ok(TrendsConfig {
        refresh: v.secs("TRENDS_REFRESH_SECS", 60)?,
        window: Duration::from_secs(v.positive("TRENDS_WINDOW_DAYS", 7)? as u64 * 86_400),
        half_life: Duration::from_secs(v.positive("TRENDS_HALF_LIFE_HOURS", 24)? as u64 * 3_600),
    })
}

pub(super) fn uploads(v: &Vars) -> Result<UploadsConfig, ConfigError> {
    Ok(UploadsConfig {
        max_bytes: v.positive(
            "UPLOAD_MAX_BYTES",
            app::uploads::DEFAULT_MAX_UPLOAD_BYTES as usize,
        )? as u64,
        timeout: v.secs("UPLOAD_TIMEOUT_SECS", 600)?,
    })
}
