//! Rate limiting per client IP and route group, and per user and tier (governor's GCRA, one
//! keyed limiter per group).
//!
//! - Per IP: `auth` (sign-in, sign-up, refresh: 5 a minute), `generate` (submissions: 10 a
//!   minute), `api` (every other server function and API call, uploads included: 100 a
//!   minute), `media` (files under `/media/`: 600 a minute).
//! - An IPv6 client is counted by its network prefix (`RATE_LIMIT_IPV6_PREFIX`, a /64 by
//!   default), since one subscriber is routinely handed a whole /64 and could otherwise take
//!   a fresh address for every request; an IPv4 client by its address.
//! - Per signed-in user: every `api`, `generate` and `upload` request counts against the
//!   tier's allowance (free 100, pro 500, enterprise 2000 a minute), and uploads also
//!   against 5 a minute. All configurable. (The 5 failed sign-ins per account per 15 minutes
//!   are `domain::accounts::auth`, since only the sign-in itself knows a sign-in failed.)
//! - The client IP is the TCP peer, unless the peer is a configured trusted proxy (an
//!   address or a CIDR range): then it is the nearest address in `X-Forwarded-For` that is not
//!   a trusted proxy itself.
//! - A limited request gets 429, `Retry-After` in whole seconds and a JSON body with the
//!   stable code `rate_limited`. Denials are counted per group and logged for the first of
//!   every 100, so a flood cannot flood the logs too.
//! - The 429 is held on a timer before it is sent, for `RATE_LIMIT_REFUSAL_DELAY_MS`
//!   (1000 ms) or its `Retry-After`, whichever is shorter (see [`RateLimits::refuse`]).
//!   A client that sends again as soon as it is answered (every flood tool does) would
//!   otherwise get thousands of cheap 429s a second per address, and even cheap answers at
//!   that rate take the CPU from everybody else; held, one address's connections (at most
//!   `MAX_CONNECTIONS_PER_IP`) get at most about one answer each a second, and a timer costs
//!   no CPU while it waits. The client was told to wait that long anyway. The request is
//!   dropped before the wait, so a held refusal keeps only its connection.
//! - Memory stays bounded: every minute keys idle long enough to be full again are dropped
//!   (forgetting them changes no answer). A table that reaches `max_keys` evicts instead of
//!   resetting: first the keys that are full again, then those with the least of their
//!   allowance spent, i.e. the least recently seen weighted by use. A flood of new keys, each
//!   seen once, is what goes; a client that is still limited keeps its count. (A reset, as
//!   before, let a flood of fresh sources clear every attacker's count.)
//!
//! ## In process
//!
//! Each limiter is a governor `RateLimiter` (GCRA) over a keyed state store of ours,
//! `Table`: the theoretical arrival time of each key, split over up to 16 mutex-guarded
//! shards by key hash. A check is one hash, one uncontended lock and governor's compare, with
//! no await point and no allocation but a new key's slot. governor's own keyed stores can
//! only grow until swept; ours evicts when a shard is full, freeing a quarter of it, so its
//! O(n) pass is paid once per n/4 new keys.
//!
//! ## Several instances: `RATE_LIMIT_STORE=redis`
//!
//! In process, each instance counts alone, so N instances behind a load balancer let a
//! client through N times each limit. With `RATE_LIMIT_STORE=redis` every check runs the
//! same GCRA in Redis instead, atomically in one Lua script (sent as `EVALSHA`, loaded on
//! `NOSCRIPT`): it reads the key's theoretical arrival time, decides, and stores the new one
//! with an expiry at the moment the key would be full again. The clock is Redis's own
//! `TIME`, so instances whose clocks disagree still agree on every limit. Keys are
//! `sc:rl:{group}:{key}` (`sc:rl:api:203.0.113.7`, `sc:rl:user:pro:{uuid}`); they expire by
//! themselves, so Redis's memory stays bounded as the in-process tables do.
//!
//! When Redis is unreachable, errs, or takes longer than `RATE_LIMIT_REDIS_TIMEOUT_MS`
//! (50 ms), the check is answered by the in-process limiter instead, the fallback is counted
//! ([`RateLimits::fallbacks`]) and a warning logged at most every few seconds; for a second
//! after a failure checks go straight to the in-process limiter, so an outage costs no
//! latency. A rate limiter is there to blunt floods, not to be a source of truth: refusing
//! every request because the limiter's store is down would turn a Redis outage into a full
//! outage, while per-instance limits for a while still hold each instance to its limit (the
//! cluster to N times it). Availability wins. (The sign-in lockout, which does guard
//! accounts, lives in PostgreSQL: see `domain::accounts::auth::Auth`.)

mod keys;
mod shared;
mod table;
#[cfg(test)]
mod tests;

pub use keys::{Group, IpRange, client_key};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::accounts::Tier;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::accounts::auth::{ClientIp, CurrentUser};
use uuid::Uuid;

use domain::secret::Secret;
use keys::{Denied, Key};
use shared::{GCRA_SCRIPT, Shared};
use table::Limiter;

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
    /// `RATE_LIMIT_MEDIA_PER_MINUTE` (per IP, files under `/media/`), default 600.
    pub media_per_minute: u32,
    /// `TRUSTED_PROXIES`: peers (addresses or CIDR ranges) whose `X-Forwarded-For` is
    /// believed.
    pub trusted_proxies: Vec<IpRange>,
    /// `RATE_LIMIT_IPV6_PREFIX`: IPv6 clients are counted by this many leading bits of their
    /// address, default 64.
    pub ipv6_prefix: u8,
    /// Most keys remembered per group; past it the least active are evicted.
    pub max_keys: usize,
    /// `RATE_LIMIT_REFUSAL_DELAY_MS`: how long a refusal is held before it is answered (a 429,
    /// never longer than its `Retry-After`; a connection past `MAX_CONNECTIONS_PER_IP`,
    /// before it is closed), default 1000; 0 answers at once.
    pub refusal_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            auth_per_minute: 5,
            generate_per_minute: 10,
            api_per_minute: 100,
            upload_per_minute: 5,
            tier_api_per_minute: [100, 500, 2000],
            media_per_minute: 600,
            trusted_proxies: Vec::new(),
            ipv6_prefix: 64,
            max_keys: 100_000,
            refusal_delay: Duration::from_secs(1),
        }
    }
}

/// The limiters of every group. Cheap to clone: one reference count, since several
/// middleware layers hold it and axum clones each layer's state for every request (each
/// shared counter touched per request is a cache line the two cores pass back and forth).
#[derive(Clone)]
pub struct RateLimits(Arc<Parts>);

/// What [`RateLimits`] holds.
#[derive(Clone)]
pub struct Parts {
    /// Per IP: auth, generate, api, media.
    limiters: Arc<[Limiter<IpAddr>; 4]>,
    /// Per user: free, pro, enterprise allowances, then uploads.
    users: Arc<[Limiter<Uuid>; 4]>,
    trusted: Arc<[IpRange]>,
    ipv6_prefix: u8,
    refusal_delay: Duration,
    /// Redis, with `RATE_LIMIT_STORE=redis`; `None` counts in process only.
    shared: Option<Arc<Shared>>,
}

impl std::ops::Deref for RateLimits {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl std::ops::DerefMut for RateLimits {
    fn deref_mut(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.0)
    }
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("store", &self.store())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// In-process limiters for `limits` (`RATE_LIMIT_STORE=memory`).
    pub fn new(limits: &Limits) -> Self {
        let [free, pro, enterprise] = limits.tier_api_per_minute;
        let n = limits.max_keys;
        Self(Arc::new(Parts {
            limiters: Arc::new([
                Limiter::new(Group::Auth, "sc:rl:auth:", limits.auth_per_minute, n),
                Limiter::new(
                    Group::Generate,
                    "sc:rl:generate:",
                    limits.generate_per_minute,
                    n,
                ),
                Limiter::new(Group::Api, "sc:rl:api:", limits.api_per_minute, n),
                Limiter::new(Group::Media, "sc:rl:media:", limits.media_per_minute, n),
            ]),
            users: Arc::new([
                Limiter::new(Group::User, "sc:rl:user:free:", free, n),
                Limiter::new(Group::User, "sc:rl:user:pro:", pro, n),
                Limiter::new(Group::User, "sc:rl:user:enterprise:", enterprise, n),
                Limiter::new(Group::Upload, "sc:rl:upload:", limits.upload_per_minute, n),
            ]),
            trusted: limits.trusted_proxies.clone().into(),
            ipv6_prefix: limits.ipv6_prefix,
            refusal_delay: limits.refusal_delay,
            shared: None,
        }))
    }

    /// Limiters counted in the Redis at `redis.url`, shared with every instance using it,
    /// with in-process limiters behind them for when Redis cannot answer. Connects in the
    /// background (a Redis that is down at start is only a warning: checks fall back until
    /// it answers). Call inside a Tokio runtime. Fails only on a URL Redis cannot use.
    pub fn with_redis(limits: &Limits, redis: &RedisConfig) -> Result<Self, String> {
        let client =
            redis::Client::open(redis.url.expose()).map_err(|e| format!("REDIS_URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Bounds what a check that timed out leaves queued on the connection.
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(2));
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("REDIS_URL: {e}"))?;
        let shared = Arc::new(Shared {
            conn,
            script: redis::Script::new(GCRA_SCRIPT),
            timeout: redis.timeout,
            epoch: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        });
        // Connect (and load the script) now rather than inside the first checks' short
        // timeouts; the manager reconnects by itself after that.
        let warm = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut conn = warm.conn.clone();
            match warm.script.prepare_invoke().load_async(&mut conn).await {
                Ok(_) => tracing::info!("rate limits are counted in Redis"),
                Err(e) => tracing::warn!(
                    error = %e,
                    "Redis did not answer at start; rate limits are counted in process until it does"
                ),
            }
        });
        let mut limiters = Self::new(limits);
        limiters.shared = Some(shared);
        Ok(limiters)
    }

    /// As configured: in process, or in Redis.
    pub fn from_config(limits: &Limits, store: &RateLimitStore) -> Result<Self, String> {
        match store {
            RateLimitStore::Memory => Ok(Self::new(limits)),
            RateLimitStore::Redis(redis) => Self::with_redis(limits, redis),
        }
    }

    /// `memory` or `redis`: where checks are counted.
    pub fn store(&self) -> &'static str {
        if self.shared.is_some() {
            "redis"
        } else {
            "memory"
        }
    }

    /// Whether the shared store answers a `PING` within `timeout`: `None` in memory mode.
    pub async fn ping(&self, timeout: Duration) -> Option<Result<(), String>> {
        let shared = self.shared.as_ref()?;
        let mut conn = shared.conn.clone();
        let pinged =
            tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut conn))
                .await;
        Some(match pinged {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        })
    }

    /// Checks answered in process because Redis could not answer (0 in memory mode).
    pub fn fallbacks(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |s| s.fallbacks.load(Ordering::Relaxed))
    }

    async fn check_in<K: Key>(&self, limiter: &Limiter<K>, key: &K) -> Result<(), Denied> {
        match &self.shared {
            // The in-process path: no await point, no allocation.
            None => limiter.check(key),
            Some(shared) => shared.check(limiter, key).await,
        }
    }

    /// The per-IP limiter of `group` (uploads count as `api` per IP).
    fn limiter(&self, group: Group) -> &Limiter<IpAddr> {
        match group {
            Group::Auth => &self.limiters[0],
            Group::Generate => &self.limiters[1],
            Group::Api | Group::Upload | Group::User => &self.limiters[2],
            Group::Media => &self.limiters[3],
        }
    }

    /// Counts one request from `ip` against `group`: under its /64 (or the configured
    /// prefix) for IPv6, in process and in Redis alike.
    pub async fn check(&self, group: Group, ip: IpAddr) -> Result<(), Denied> {
        let key = client_key(ip, self.ipv6_prefix);
        self.check_in(self.limiter(group), &key).await
    }

    /// The IPv6 prefix length clients are counted by.
    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// How long a refusal is held before it is answered (`RATE_LIMIT_REFUSAL_DELAY_MS`).
    pub fn refusal_delay(&self) -> Duration {
        self.refusal_delay
    }

    /// The 429 for `denied`, sent after the refusal delay or its `Retry-After`, whichever is
    /// shorter. Call it with nothing of the request left alive: only the connection waits.
    pub async fn refuse(&self, denied: Denied) -> Response {
        let hold = self
            .refusal_delay
            .min(Duration::from_secs(retry_after_secs(denied)));
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        too_many(denied)
    }

    /// Whether `peer` is a configured trusted proxy.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|r| r.contains(peer))
    }

    /// Counts one request of `user` on `tier` against the tier's allowance, and an upload
    /// against the per-user upload limit too. Sign-in requests (`auth`) are not counted.
    pub async fn check_user(&self, group: Group, user: Uuid, tier: Tier) -> Result<(), Denied> {
        if matches!(group, Group::Auth | Group::Media) {
            return Ok(());
        }
        let allowance = match tier {
            Tier::Free => &self.users[0],
            Tier::Pro => &self.users[1],
            Tier::Enterprise => &self.users[2],
        };
        self.check_in(allowance, &user).await?;
        if group == Group::Upload {
            self.check_in(&self.users[3], &user).await?;
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

    /// Client addresses remembered in process in `group` (in Redis mode, only those the
    /// fallback saw).
    pub fn keys(&self, group: Group) -> usize {
        self.limiter(group).governor.len()
    }

    /// Drops the keys that are full again (the bound on keys is kept as they arrive).
    pub fn prune(&self) {
        for l in self.limiters.iter() {
            l.prune();
        }
        for l in self.users.iter() {
            l.prune();
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
        let peer = peer.to_canonical();
        if !self.is_trusted_proxy(peer) {
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
            .map(|ip| ip.to_canonical())
            .find(|ip| !self.is_trusted_proxy(*ip))
            .unwrap_or(peer)
    }
}

/// The `Retry-After` of a refusal: whole seconds, at least one.
fn retry_after_secs(denied: Denied) -> u64 {
    denied.retry_after.as_secs_f64().ceil().max(1.0) as u64
}

/// The 429 answer, at once (the middleware holds it first: [`RateLimits::refuse`]).
pub fn too_many(denied: Denied) -> Response {
    let secs = retry_after_secs(denied);
    let body = ::shared::error::AppError::new(
        ::shared::error::ErrorCode::RateLimited,
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
    match limits.check(group, ip).await {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            drop(req);
            limits.refuse(denied).await
        }
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
    match limits.check_user(group, user.id, user.tier).await {
        Ok(()) => next.run(req).await,
        Err(denied) => {
            drop(req);
            limits.refuse(denied).await
        }
    }
}
