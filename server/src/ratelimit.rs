//! Rate limiting per client IP and route group, and per user and tier (governor's GCRA, one
//! keyed limiter per group).
//!
//! - Per IP: `auth` (sign-in, sign-up, refresh: 5 a minute), `generate` (submissions: 10 a
//!   minute), `api` (every other server function and API call, uploads included: 100 a
//!   minute).
//! - Per signed-in user: every `api`, `generate` and `upload` request counts against the
//!   tier's allowance (free 100, pro 500, enterprise 2000 a minute), and uploads also
//!   against 5 a minute. All configurable. (The 5 failed sign-ins per account per 15 minutes
//!   are `app::accounts::auth`, since only the sign-in itself knows a sign-in failed.)
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

use app::accounts::Tier;
use app::accounts::auth::{ClientIp, CurrentUser};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Sign-in, sign-up, token refresh.
    Auth,
    /// Generation submissions.
    Generate,
    /// Other API calls and server functions.
    Api,
    /// Uploads (`/api/uploads/...`): per IP as `api`, per user also on their own.
    Upload,
    /// A user's tier allowance (every `api`, `generate` and `upload` request of a user).
    User,
}

impl Group {
    /// The name used in logs, metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Auth => "auth",
            Group::Generate => "generate",
            Group::Api => "api",
            Group::Upload => "upload",
            Group::User => "user",
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
        } else if path.starts_with("/api/uploads/") {
            Some(Group::Upload)
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
    /// `RATE_LIMIT_UPLOAD_PER_MINUTE` (per user), default 5.
    pub upload_per_minute: u32,
    /// Per user, by tier (free, pro, enterprise): `TIER_{FREE,PRO,ENTERPRISE}_API_PER_MINUTE`,
    /// defaults 100, 500, 2000.
    pub tier_api_per_minute: [u32; 3],
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
            upload_per_minute: 5,
            tier_api_per_minute: [100, 500, 2000],
            trusted_proxies: Vec::new(),
            max_keys: 100_000,
        }
    }
}

struct Limiter<K: std::hash::Hash + Eq + Clone> {
    group: Group,
    quota: Quota,
    // Read-locked per check (uncontended reads cost nanoseconds); write-locked only to swap
    // in an empty table when a flood overfills it (governor has no way to empty one).
    limiter: RwLock<DefaultKeyedRateLimiter<K>>,
    denied: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone + std::fmt::Display> Limiter<K> {
    fn new(group: Group, per_minute: u32) -> Self {
        Self {
            group,
            quota: quota(per_minute),
            limiter: RwLock::new(RateLimiter::keyed(quota(per_minute))),
            denied: AtomicU64::new(0),
        }
    }

    fn table(&self) -> std::sync::RwLockReadGuard<'_, DefaultKeyedRateLimiter<K>> {
        // A poisoned lock only means a panic elsewhere mid-check; the table is still sound.
        self.limiter.read().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, key: &K) -> Result<(), Denied> {
        let checked = self.table().check_key(key);
        match checked {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let n = self.denied.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(100) {
                    tracing::warn!(group = self.group.as_str(), key = %key, denied_total = n + 1, "rate limited (1 in 100 logged)");
                }
                Err(Denied {
                    group: self.group,
                    retry_after: not_until.wait_time_from(DefaultClock::default().now()),
                })
            }
        }
    }

    fn prune(&self, max_keys: usize) {
        let keys = {
            let table = self.table();
            table.retain_recent();
            table.shrink_to_fit();
            table.len()
        };
        if keys > max_keys {
            tracing::warn!(
                group = self.group.as_str(),
                keys,
                "rate-limit table over its bound (a flood of sources?); resetting it"
            );
            let mut table = self.limiter.write().unwrap_or_else(|e| e.into_inner());
            *table = RateLimiter::keyed(self.quota);
        }
    }
}

/// The limiters of every group. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    limiters: Arc<[Limiter<IpAddr>; 3]>,
    /// Per user: free, pro, enterprise allowances, then uploads.
    users: Arc<[Limiter<Uuid>; 4]>,
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
        let [free, pro, enterprise] = limits.tier_api_per_minute;
        Self {
            limiters: Arc::new([
                Limiter::new(Group::Auth, limits.auth_per_minute),
                Limiter::new(Group::Generate, limits.generate_per_minute),
                Limiter::new(Group::Api, limits.api_per_minute),
            ]),
            users: Arc::new([
                Limiter::new(Group::User, free),
                Limiter::new(Group::User, pro),
                Limiter::new(Group::User, enterprise),
                Limiter::new(Group::Upload, limits.upload_per_minute),
            ]),
            trusted: limits.trusted_proxies.clone().into(),
            max_keys: limits.max_keys,
        }
    }

    /// The per-IP limiter of `group` (uploads count as `api` per IP).
    fn limiter(&self, group: Group) -> &Limiter<IpAddr> {
        match group {
            Group::Auth => &self.limiters[0],
            Group::Generate => &self.limiters[1],
            Group::Api | Group::Upload | Group::User => &self.limiters[2],
        }
    }

    /// Counts one request from `ip` against `group`.
    pub fn check(&self, group: Group, ip: IpAddr) -> Result<(), Denied> {
        self.limiter(group).check(&ip)
    }

    /// Counts one request of `user` on `tier` against the tier's allowance, and an upload
    /// against the per-user upload limit too. Sign-in requests (`auth`) are not counted.
    pub fn check_user(&self, group: Group, user: Uuid, tier: Tier) -> Result<(), Denied> {
        if group == Group::Auth {
            return Ok(());
        }
        let allowance = match tier {
            Tier::Free => &self.users[0],
            Tier::Pro => &self.users[1],
            Tier::Enterprise => &self.users[2],
        };
        allowance.check(&user)?;
        if group == Group::Upload {
            self.users[3].check(&user)?;
        }
        Ok(())
    }

    /// Requests refused so far in `group`.
    pub fn denied(&self, group: Group) -> u64 {
        match group {
            Group::User => self.users[..3]
                .iter()
                .map(|l| l.denied.load(Ordering::Relaxed))
                .sum(),
            Group::Upload => self.users[3].denied.load(Ordering::Relaxed),
            other => self.limiter(other).denied.load(Ordering::Relaxed),
        }
    }

    /// Client addresses remembered in `group`.
    pub fn keys(&self, group: Group) -> usize {
        self.limiter(group).table().len()
    }

    /// Drops idle keys, and resets a group that still holds more than `max_keys`.
    pub fn prune(&self) {
        for l in self.limiters.iter() {
            l.prune(self.max_keys);
        }
        for l in self.users.iter() {
            l.prune(self.max_keys);
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

/// The per-IP middleware; it also records the client address for later layers and
/// handlers. Without a known peer address (a test calling the router directly), the
/// loopback address stands in.
pub async fn limit(State(limits): State<RateLimits>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let ip = limits.client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    let Some(group) = Group::of(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    match limits.check(group, ip) {
        Ok(()) => next.run(req).await,
        Err(denied) => too_many(denied),
    }
}

/// The per-user middleware: runs after the session middleware has found the user.
pub async fn limit_user(State(limits): State<RateLimits>, req: Request, next: Next) -> Response {
    let (Some(group), Some(user)) = (
        Group::of(req.method(), req.uri().path()),
        req.extensions().get::<CurrentUser>().copied(),
    ) else {
        return next.run(req).await;
    };
    match limits.check_user(group, user.id, user.tier) {
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
    fn users_are_held_to_their_tier_and_uploads_to_five_a_minute() {
        let rl = RateLimits::new(&Limits {
            tier_api_per_minute: [3, 6, 9],
            ..Limits::default()
        });
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            rl.check_user(Group::Api, a, Tier::Free).unwrap();
        }
        let denied = rl.check_user(Group::Generate, a, Tier::Free).unwrap_err();
        assert_eq!(denied.group, Group::User);
        // Another user, and the same user on a bigger tier's table, are unaffected.
        rl.check_user(Group::Api, b, Tier::Free).unwrap();
        for _ in 0..6 {
            rl.check_user(Group::Api, a, Tier::Pro).unwrap();
        }
        assert!(rl.check_user(Group::Api, a, Tier::Pro).is_err());
        // Sign-in requests never count against a user.
        rl.check_user(Group::Auth, a, Tier::Free).unwrap();
        let c = Uuid::new_v4();
        for _ in 0..5 {
            rl.check_user(Group::Upload, c, Tier::Enterprise).unwrap();
        }
        assert_eq!(
            rl.check_user(Group::Upload, c, Tier::Enterprise)
                .unwrap_err()
                .group,
            Group::Upload
        );
        assert_eq!(rl.denied(Group::Upload), 1);
        assert_eq!(rl.denied(Group::User), 2);
    }

    #[test]
    fn a_spent_allowance_refills_over_the_minute() {
        // 60 a minute refills one a second.
        let rl = RateLimits::new(&Limits {
            tier_api_per_minute: [60, 60, 60],
            ..Limits::default()
        });
        let u = Uuid::new_v4();
        for _ in 0..60 {
            rl.check_user(Group::Api, u, Tier::Free).unwrap();
        }
        let denied = rl.check_user(Group::Api, u, Tier::Free).unwrap_err();
        assert!(denied.retry_after <= Duration::from_secs(1), "{denied:?}");
        std::thread::sleep(denied.retry_after + Duration::from_millis(50));
        rl.check_user(Group::Api, u, Tier::Free).unwrap();
        assert!(rl.check_user(Group::Api, u, Tier::Free).is_err());
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
        assert_eq!(
            Group::of(&Method::PUT, "/api/uploads/abc"),
            Some(Group::Upload)
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
