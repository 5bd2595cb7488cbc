//! HTTP hardening: origins, time and size limits, the visitor page cache and the
//! connection limits.
//!
//! Variables: `ALLOWED_ORIGINS`, `REQUEST_TIMEOUT_SECS`, `MAX_BODY_BYTES`,
//! `MAX_HEADER_BYTES`, `PAGE_CACHE_TTL_MS`, `PAGE_CACHE_MAX_ENTRIES`,
//! `HEADER_READ_TIMEOUT_SECS`, `BODY_IDLE_TIMEOUT_SECS`, `MAX_CONNECTIONS`,
//! `MAX_CONNECTIONS_PER_IP`, `EVENT_STREAMS_PER_USER`.

use std::time::Duration;

use super::ConfigError;
use super::vars::{Vars, err};
use crate::web::pagecache::PageCacheSettings;
use crate::web::serving::ConnectionLimits;

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
    pub page_cache: PageCacheSettings,
    /// Slow and many clients: `HEADER_READ_TIMEOUT_SECS` (10), `BODY_IDLE_TIMEOUT_SECS`
    /// (20), `MAX_CONNECTIONS` (4096), `MAX_CONNECTIONS_PER_IP` (128) and
    /// `EVENT_STREAMS_PER_USER` (16).
    pub connections: ConnectionLimits,
}

pub(super) fn parse(v: &Vars) -> Result<HttpConfig, ConfigError> {
    let mut allowed_origins = Vec::new();
    for origin in v
        .get("ALLOWED_ORIGINS")
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
    Ok(HttpConfig {
        allowed_origins,
        request_timeout: v.secs("REQUEST_TIMEOUT_SECS", 30)?,
        max_body_bytes: v.positive("MAX_BODY_BYTES", 64 * 1024)?,
        max_header_bytes: v.positive("MAX_HEADER_BYTES", 16 * 1024)?,
        page_cache: PageCacheSettings {
            // 0 is allowed: it turns the cache off.
            ttl: Duration::from_millis(v.num("PAGE_CACHE_TTL_MS", 2000)? as u64),
            max_entries: v.positive("PAGE_CACHE_MAX_ENTRIES", 500)?,
        },
        connections: ConnectionLimits {
            header_read_timeout: v.secs("HEADER_READ_TIMEOUT_SECS", 10)?,
            body_idle_timeout: v.secs("BODY_IDLE_TIMEOUT_SECS", 20)?,
            max_connections: v.positive("MAX_CONNECTIONS", 4096)?,
            max_per_ip: v.positive("MAX_CONNECTIONS_PER_IP", 128)?,
            event_streams_per_user: v.positive("EVENT_STREAMS_PER_USER", 16)?,
        },
    })
}
