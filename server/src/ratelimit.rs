//! Rate limiting per client IP and route group (governor's GCRA, one keyed limiter per group).
//!
//! - Groups: `auth` (sign-in, sign-up, refresh: 5 a minute), `generate` (submissions: 10 a
//!   minute), `api` (every other server function and API call: 100 a minute). All
//!   configurable. Per-user and per-tier limits join when accounts exist (issue 4).
//! - The client IP is the TCP peer, unless the peer is a configured trusted proxy: then it is
//!   the nearest address in `X-Forwarded-For` that is not a trusted proxy itself.
//! - A limited request gets 429, `Retry-After` in whole seconds and a JSON body with the
//!   stable code `rate_limited`. Denials are counted per group and logged for the first of
//!   every 100, so a flood cannot flood the logs too.
//! - Memory stays bounded: every minute keys idle long enough to be full again are dropped,
//!   and a group whose table still holds more than `max_keys` addresses (a flood of distinct
//!   sources) is reset, forgetting those sources rather than growing without end.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Sign-in, sign-up, token refresh.
    Auth,
    /// Generation submissions.
    Generate,
    /// Other API calls and server functions.
    Api,
}

impl Group {
    /// The name used in logs, metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Auth => "auth",
            Group::Generate => "generate",
            Group::Api => "api",
        }
    }

    /// The group of a request, or `None` for what is never limited (pages, static files,
    /// media, health and readiness checks).
    pub fn of(method: &Method, path: &str) -> Option<Group> {
        if !path.starts_with("/api/") || matches!(path, "/api/health" | "/api/ready") {
            return None;
        }
        if *method == Method::OPTIONS {
            return None;
        }
        if path.starts_with("/api/auth/") {
            Some(Group::Auth)
        } else if path == "/api/generations/submit" {
            Some(Group::Generate)
        } else {
            Some(Group::Api)
        }
    }
}

/// Limits per minute and per client IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `RATE_LIMIT_AUTH_PER_MINUTE`, default 5.
    pub auth_per_minute: u32,
    /// `RATE_LIMIT_GENERATE_PER_MINUTE`, default 10.
    pub generate_per_minute: u32,
    /// `RATE_LIMIT_API_PER_MINUTE`, default 100.
    pub api_per_minute: u32,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most client addresses remembered per group before it is reset.
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            auth_per_minute: 5,
            generate_per_minute: 10,
            api_per_minute: 100,
            trusted_proxies: Vec::new(),
            max_keys: 100_000,
        }
    }
}

struct Limiter {
    group: Group,
    quota: Quota,
    // Read-locked per check (uncontended reads cost nanoseconds); write-locked only to swap
    // in an empty table when a flood overfills it (governor has no way to empty one).
    limiter: RwLock<DefaultKeyedRateLimiter<IpAddr>>,
    denied: AtomicU64,
}

impl Limiter {
    fn table(&self) -> std::sync::RwLockReadGuard<'_, DefaultKeyedRateLimiter<IpAddr>> {
        // A poisoned lock only means a panic elsewhere mid-check; the table is still sound.
        self.limiter.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The limiters of every group. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Arc<[Limiter; 3]>,
    trusted: Arc<[IpAddr]>,
    max_keys: usize,
}

/// A refusal: how long until the next request would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The group that refused.
    pub group: Group,
    /// Time until a request would be allowed.
    pub retry_after: Duration,
}

fn quota(per_minute: u32) -> Quota {
    // The whole minute's allowance may be used in a burst, then it refills evenly.
    let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

impl RateLimits {
    /// Limiters for `limits`.
    pub fn new(limits: &Limits) -> Self {
        let make = |group, per_minute| Limiter {
            group,
            quota: quota(per_minute),
            limiter: RwLock::new(RateLimiter::keyed(quota(per_minute))),
            denied: AtomicU64::new(0),
        };
        Self {
            limiters: Arc::new([
                make(Group::Auth, limits.auth_per_minute),
                make(Group::Generate, limits.generate_per_minute),
                make(Group::Api, limits.api_per_minute),
            ]),
            trusted: limits.trusted_proxies.clone().into(),
            max_keys: limits.max_keys,
        }
    }

    fn limiter(&self, group: Group) -> &Limiter {
        match group {
            Group::Auth => &self.limiters[0],
            Group::Generate => &self.limiters[1],
            Group::Api => &self.limiters[2],
        }
    }

    /// Counts one request from `ip` against `group`.
    pub fn check(&self, group: Group, ip: IpAddr) -> Result<(), Denied> {
        let l = self.limiter(group);
        let checked = l.table().check_key(&ip);
        match checked {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let n = l.denied.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(100) {
                    tracing::warn!(group = group.as_str(), %ip, denied_total = n + 1, "rate limited (1 in 100 logged)");
                }
                Err(Denied {
                    group,
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                })
            }
        }
    }

    /// Requests refused so far in `group`.
    pub fn denied(&self, group: Group) -> u64 {
        self.limiter(group).denied.load(Ordering::Relaxed)
    }

    /// Client addresses remembered in `group`.
    pub fn keys(&self, group: Group) -> usize {
        self.limiter(group).table().len()
    }

    /// Drops idle keys, and resets a group that still holds more than `max_keys`.
    pub fn prune(&self) {
        for l in self.limiters.iter() {
            let keys = {
                let table = l.table();
                table.retain_recent();
                table.shrink_to_fit();
                table.len()
            };
            if keys > self.max_keys {
                tracing::warn!(
                    group = l.group.as_str(),
                    keys,
                    "rate-limit table over its bound (a flood of sources?); resetting it"
                );
                let mut table = l.limiter.write().unwrap_or_else(|e| e.into_inner());
                *table = RateLimiter::keyed(l.quota);
            }
        }
    }

    /// Prunes every `every` until the task is dropped.
    pub async fn prune_every(self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.prune();
        }
    }

    /// The client address: the peer, or the nearest untrusted hop in `X-Forwarded-For`
    /// when the peer is a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusted.contains(ip))
            .unwrap_or(peer)
    }
}

/// The 429 answer.
pub fn too_many(denied: Denied) -> Response {
    let secs = denied.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let body = app::error::AppError::new(
        app::error::ErrorCode::RateLimited,
        format!("Too many requests. Please wait {secs} s and try again."),
    );
    let mut res = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// The middleware. Without a known peer address (a test calling the router directly), the
/// loopback address stands in.
pub async fn limit(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let Some(group) = Group::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = limits.client_ip(peer, req.headers());
    match limits.check(group, ip) {
        Ok(()) => next.run(req).await,
        Err(denied) => too_many(denied),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_sixth_auth_request_in_a_minute_is_refused_and_other_ips_are_not() {
        let rl = RateLimits::new(&Limits::default());
        for _ in 0..5 {
            rl.check(Group::Auth, ip("10.0.0.1")).unwrap();
        }
        let denied = rl.check(Group::Auth, ip("10.0.0.1")).unwrap_err();
        assert!(denied.retry_after > Duration::from_secs(5), "{denied:?}");
        assert!(denied.retry_after <= Duration::from_secs(12), "{denied:?}");
        assert_eq!(rl.denied(Group::Auth), 1);
        rl.check(Group::Auth, ip("10.0.0.2")).unwrap();
        // Groups are separate.
        rl.check(Group::Api, ip("10.0.0.1")).unwrap();
    }

    #[test]
    fn groups_follow_the_path() {
        assert_eq!(Group::of(&Method::GET, "/"), None);
        assert_eq!(Group::of(&Method::GET, "/media/x"), None);
        assert_eq!(Group::of(&Method::GET, "/api/health"), None);
        assert_eq!(
            Group::of(&Method::POST, "/api/generations/submit"),
            Some(Group::Generate)
        );
        assert_eq!(
            Group::of(&Method::POST, "/api/auth/sign_in"),
            Some(Group::Auth)
        );
        assert_eq!(
            Group::of(&Method::POST, "/api/generations/recent"),
            Some(Group::Api)
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let rl = RateLimits::new(&Limits {
            trusted_proxies: vec![ip("10.0.0.9"), ip("10.0.0.8")],
            ..Limits::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.7, 10.0.0.8"),
        );
        assert_eq!(rl.client_ip(ip("10.0.0.9"), &h), ip("203.0.113.7"));
        // An untrusted peer's header is ignored: it could say anything.
        assert_eq!(rl.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(
            rl.client_ip(ip("10.0.0.9"), &HeaderMap::new()),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn a_flood_of_distinct_sources_stays_bounded() {
        let rl = RateLimits::new(&Limits {
            max_keys: 1_000,
            ..Limits::default()
        });
        for i in 0..5_000u32 {
            let _ = rl.check(Group::Api, IpAddr::from(i.to_be_bytes()));
            if i % 1_000 == 999 {
                rl.prune();
            }
        }
        rl.prune();
        assert!(rl.keys(Group::Api) <= 1_000, "{}", rl.keys(Group::Api));
    }
}
