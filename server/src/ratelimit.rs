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
//!   are `app::accounts::auth`, since only the sign-in itself knows a sign-in failed.)
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
//! accounts, lives in PostgreSQL: see `app::accounts::auth::Auth`.)

use crate::secret::Secret;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::accounts::Tier;
use app::accounts::auth::{ClientIp, CurrentUser};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, MonotonicClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

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
    /// Files under `/media/`, per IP only (they are served without a session).
    Media,
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
            Group::Media => "media",
        }
    }

    /// The group of a request, or `None` for what is never limited (pages, static files,
    /// health and readiness checks).
    pub fn of(method: &Method, path: &str) -> Option<Group> {
        if *method == Method::OPTIONS {
            return None;
        }
        if path.starts_with("/media/") {
            return Some(Group::Media);
        }
        if !path.starts_with("/api/") || matches!(path, "/api/health" | "/api/ready") {
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

/// What a limiter is keyed by (client addresses, user ids).
trait Key: std::hash::Hash + Eq + Clone + std::fmt::Display {}
impl<K: std::hash::Hash + Eq + Clone + std::fmt::Display> Key for K {}

/// An address or a CIDR range (`10.0.0.0/8`, `fd00::/8`; a bare address is a range of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or a CIDR range"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The key a client address is counted under: an IPv4 address as it is (also when it came
/// IPv4-mapped), an IPv6 address cut to its first `ipv6_prefix` bits.
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// Most shards of a table: enough that two cores rarely meet on one lock.
const SHARDS: usize = 16;

/// A limiter's counts in process, as a governor state store: per key, the GCRA's theoretical
/// arrival time (TAT) as governor keeps it, in nanoseconds after the limiter's start. A key
/// whose TAT has passed has its whole burst again, exactly like a key never seen, which is
/// what makes dropping such keys lossless. governor computes every decision; this table only
/// decides what is kept, so that a flood of new keys evicts instead of growing or resetting
/// (governor's own keyed stores can only grow until `retain_recent`).
struct Table<K> {
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    hasher: std::hash::RandomState,
    /// Most keys one shard holds (shards x this is at most `max_keys`).
    per_shard: usize,
    /// Made just before the governor limiter that owns this table, so `now` here runs a few
    /// nanoseconds ahead of its clock: a key counts as full again that much early, which
    /// gives away nothing anyone could use.
    epoch: Instant,
}

impl<K: Key> Table<K> {
    fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = SHARDS.min(max_keys);
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::hash::RandomState::new(),
            per_shard: max_keys / shards,
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX / 2)
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        // A poisoned lock only means a panic elsewhere mid-check; the counts are still sound.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Key> StateStore for Table<K> {
    type Key = K;

    /// governor's one step: `f` sees the key's TAT (none for a new key) and answers with the
    /// next one or a refusal; a refusal stores nothing, so refusals cost nothing.
    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(key);
        if let Some(tat) = shard.get_mut(key) {
            let (outcome, next) = f(Some(Nanos::new(*tat)))?;
            *tat = next.as_u64();
            return Ok(outcome);
        }
        let (outcome, next) = f(None)?;
        if shard.len() >= self.per_shard {
            evict(&mut shard, self.now(), self.per_shard);
        }
        shard.insert(key.clone(), next.as_u64());
        Ok(outcome)
    }
}

impl<K: Key> ShrinkableKeyedStateStore<K> for Table<K> {
    /// Drops the keys whose TAT lies before `drop_below` (governor passes a time at which
    /// such keys are full again, so forgetting them changes no answer).
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, tat| *tat > drop_below);
        }
    }

    fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            if shard.capacity() > 2 * shard.len() + 64 {
                shard.shrink_to_fit();
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: the keys that are full again go first (losslessly), then, if
/// that freed less than a quarter, the keys with the earliest TATs, the ones nearest to full
/// again: a key's TAT moves on each time it is allowed, so these are the least recently seen
/// weighted by use. A key at its limit has the latest TAT there is and is evicted last.
fn evict<K: Key>(shard: &mut HashMap<K, u64>, now: u64, cap: usize) {
    shard.retain(|_, tat| *tat > now);
    let target = cap - (cap / 4).max(1);
    if shard.len() > target {
        let mut tats: Vec<u64> = shard.values().copied().collect();
        let cut = shard.len() - target;
        let (_, threshold, _) = tats.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        shard.retain(|_, tat| *tat > threshold);
    }
}

struct Limiter<K: Key> {
    group: Group,
    /// Where this limiter's keys live in Redis: `sc:rl:{name}:`.
    prefix: &'static str,
    /// The GCRA's emission interval (the time one request's allowance takes to come back)
    /// and its tolerance (that times the burst beyond the first request, as governor has
    /// it), in microseconds for the Redis script and in nanoseconds in process.
    interval_us: u64,
    tolerance_us: u64,
    governor: RateLimiter<K, Table<K>, MonotonicClock>,
    denied: AtomicU64,
}

impl<K: Key> Limiter<K> {
    fn new(group: Group, prefix: &'static str, per_minute: u32, max_keys: usize) -> Self {
        // The whole minute's allowance may be used in a burst, then it refills evenly.
        let per_minute = per_minute.max(1);
        let interval_us = (60_000_000 / u64::from(per_minute)).max(1);
        Self {
            group,
            prefix,
            interval_us,
            tolerance_us: interval_us * u64::from(per_minute - 1),
            governor: RateLimiter::new(
                Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN)),
                Table::new(max_keys),
                MonotonicClock,
            ),
            denied: AtomicU64::new(0),
        }
    }

    /// The in-process check.
    fn check(&self, key: &K) -> Result<(), Denied> {
        self.governor.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.governor.clock().now());
            self.refused(key, wait)
        })
    }

    /// Drops the keys that are full again and gives back the room they took.
    fn prune(&self) {
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
    }

    /// Counts (and now and then logs) a refusal, whichever store made it.
    fn refused(&self, key: &K, retry_after: Duration) -> Denied {
        let n = self.denied.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(100) {
            tracing::warn!(group = self.group.as_str(), key = %key, denied_total = n + 1, "rate limited (1 in 100 logged)");
        }
        Denied {
            group: self.group,
            retry_after,
        }
    }
}

/// GCRA in Redis, the algorithm governor runs in process, on Redis's clock (`TIME`), so
/// every instance sees the same time. Integer microseconds throughout: they stay exact in
/// Lua's doubles (about 2^50 now), and `%d` writes them back without rounding (a plain
/// number would be stored with 14 significant digits).
///
/// KEYS[1]: the key. ARGV[1]: emission interval T, ARGV[2]: tolerance T x (burst - 1).
/// Returns {1, 0} when allowed, {0, microseconds until a request would be}.
const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then tat = math.max(tonumber(stored) or now, now) end
local earliest = tat - tolerance
if now < earliest then
  return {0, earliest - now}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1)
return {1, 0}
";

/// How long checks skip Redis after it failed one (then the next check tries it again).
const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Least time between two "Redis is failing" warnings.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// The shared store: a self-reconnecting connection, the script, and the fallback books.
struct Shared {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    timeout: Duration,
    /// What the millisecond counters below count from.
    epoch: Instant,
    /// Checks skip Redis until this many milliseconds after `epoch`.
    skip_until_ms: AtomicU64,
    /// When the last warning was logged (ms after `epoch`; 0 = never).
    warned_at_ms: AtomicU64,
    fallbacks: AtomicU64,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One check in Redis, or in process when Redis cannot answer in time.
    async fn check<K: Key>(&self, limiter: &Limiter<K>, key: &K) -> Result<(), Denied> {
        if self.now_ms() >= self.skip_until_ms.load(Ordering::Relaxed) {
            match tokio::time::timeout(self.timeout, self.gcra(limiter, key)).await {
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(wait))) => return Err(limiter.refused(key, wait)),
                Ok(Err(e)) => self.failed(limiter.group, &e),
                Err(_) => self.failed(limiter.group, &"timed out"),
            }
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        limiter.check(key)
    }

    /// `None` when allowed, else the wait.
    async fn gcra<K: Key>(
        &self,
        limiter: &Limiter<K>,
        key: &K,
    ) -> redis::RedisResult<Option<Duration>> {
        let mut conn = self.conn.clone();
        let (allowed, wait_us): (i64, i64) = self
            .script
            .key(format!("{}{key}", limiter.prefix))
            .arg(limiter.interval_us)
            .arg(limiter.tolerance_us)
            .invoke_async(&mut conn)
            .await?;
        Ok((allowed == 0).then(|| Duration::from_micros(wait_us.max(0).unsigned_abs())))
    }

    fn failed(&self, group: Group, error: &dyn std::fmt::Display) {
        let now = self.now_ms();
        self.skip_until_ms.store(
            now.saturating_add(SKIP_AFTER_FAILURE.as_millis() as u64),
            Ordering::Relaxed,
        );
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        // One winner per interval, however many checks fail at once.
        if due
            && self
                .warned_at_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                group = group.as_str(),
                error = %error,
                fallbacks_total = self.fallbacks.load(Ordering::Relaxed) + 1,
                "Redis did not answer a rate-limit check; counting in process for now (at most one warning every 5 s)"
            );
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

/// A refusal: how long until the next request would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The group that refused.
    pub group: Group,
    /// Time until a request would be allowed.
    pub retry_after: Duration,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn the_sixth_auth_request_in_a_minute_is_refused_and_other_ips_are_not() {
        let rl = RateLimits::new(&Limits::default());
        for _ in 0..5 {
            rl.check(Group::Auth, ip("10.0.0.1")).await.unwrap();
        }
        let denied = rl.check(Group::Auth, ip("10.0.0.1")).await.unwrap_err();
        assert!(denied.retry_after > Duration::from_secs(5), "{denied:?}");
        assert!(denied.retry_after <= Duration::from_secs(12), "{denied:?}");
        assert_eq!(rl.denied(Group::Auth), 1);
        rl.check(Group::Auth, ip("10.0.0.2")).await.unwrap();
        // Groups are separate.
        rl.check(Group::Api, ip("10.0.0.1")).await.unwrap();
    }

    #[tokio::test]
    async fn users_are_held_to_their_tier_and_uploads_to_five_a_minute() {
        let rl = RateLimits::new(&Limits {
            tier_api_per_minute: [3, 6, 9],
            ..Limits::default()
        });
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            rl.check_user(Group::Api, a, Tier::Free).await.unwrap();
        }
        let denied = rl
            .check_user(Group::Generate, a, Tier::Free)
            .await
            .unwrap_err();
        assert_eq!(denied.group, Group::User);
        // Another user, and the same user on a bigger tier's table, are unaffected.
        rl.check_user(Group::Api, b, Tier::Free).await.unwrap();
        for _ in 0..6 {
            rl.check_user(Group::Api, a, Tier::Pro).await.unwrap();
        }
        assert!(rl.check_user(Group::Api, a, Tier::Pro).await.is_err());
        // Sign-in requests never count against a user.
        rl.check_user(Group::Auth, a, Tier::Free).await.unwrap();
        let c = Uuid::new_v4();
        for _ in 0..5 {
            rl.check_user(Group::Upload, c, Tier::Enterprise)
                .await
                .unwrap();
        }
        assert_eq!(
            rl.check_user(Group::Upload, c, Tier::Enterprise)
                .await
                .unwrap_err()
                .group,
            Group::Upload
        );
        assert_eq!(rl.denied(Group::Upload), 1);
        assert_eq!(rl.denied(Group::User), 2);
    }

    #[tokio::test]
    async fn a_spent_allowance_refills_over_the_minute() {
        // 60 a minute refills one a second.
        let rl = RateLimits::new(&Limits {
            tier_api_per_minute: [60, 60, 60],
            ..Limits::default()
        });
        let u = Uuid::new_v4();
        for _ in 0..60 {
            rl.check_user(Group::Api, u, Tier::Free).await.unwrap();
        }
        let denied = rl.check_user(Group::Api, u, Tier::Free).await.unwrap_err();
        assert!(denied.retry_after <= Duration::from_secs(1), "{denied:?}");
        tokio::time::sleep(denied.retry_after + Duration::from_millis(50)).await;
        rl.check_user(Group::Api, u, Tier::Free).await.unwrap();
        assert!(rl.check_user(Group::Api, u, Tier::Free).await.is_err());
    }

    #[test]
    fn the_in_process_check_never_waits() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let rl = RateLimits::new(&Limits::default());
        assert_eq!(rl.store(), "memory");
        let mut cx = Context::from_waker(Waker::noop());
        let check = std::pin::pin!(rl.check(Group::Api, ip("10.0.0.1")));
        assert!(matches!(check.poll(&mut cx), Poll::Ready(Ok(()))));
        let check = std::pin::pin!(rl.check_user(Group::Upload, Uuid::new_v4(), Tier::Free));
        assert!(matches!(check.poll(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(rl.fallbacks(), 0);
    }

    #[test]
    fn the_redis_parameters_are_governors() {
        // 5 a minute: one every 12 s, and 4 more beyond the first in a burst.
        let l = Limiter::<IpAddr>::new(Group::Auth, "sc:rl:auth:", 5, 10);
        assert_eq!(l.interval_us, 12_000_000);
        assert_eq!(l.tolerance_us, 48_000_000);
        // A zero limit is treated as one, as in process.
        let l = Limiter::<IpAddr>::new(Group::Auth, "sc:rl:auth:", 0, 10);
        assert_eq!((l.interval_us, l.tolerance_us), (60_000_000, 0));
    }

    #[test]
    fn groups_follow_the_path() {
        assert_eq!(Group::of(&Method::GET, "/"), None);
        assert_eq!(Group::of(&Method::GET, "/media/x"), Some(Group::Media));
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
            trusted_proxies: vec!["10.0.0.9".parse().unwrap(), "10.0.0.8".parse().unwrap()],
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

    #[tokio::test]
    async fn a_flood_of_distinct_sources_stays_bounded() {
        let rl = RateLimits::new(&Limits {
            max_keys: 1_000,
            ..Limits::default()
        });
        for i in 0..5_000u32 {
            let _ = rl.check(Group::Api, IpAddr::from(i.to_be_bytes())).await;
            if i % 1_000 == 999 {
                rl.prune();
            }
        }
        rl.prune();
        assert!(rl.keys(Group::Api) <= 1_000, "{}", rl.keys(Group::Api));
    }

    #[tokio::test]
    async fn ipv6_clients_share_a_limit_per_64_and_ipv4_per_address() {
        let rl = RateLimits::new(&Limits::default());
        for i in 0..5 {
            // Five addresses of one /64: one client.
            rl.check(Group::Auth, ip(&format!("2001:db8:1:2::{i:x}")))
                .await
                .unwrap();
        }
        assert!(
            rl.check(Group::Auth, ip("2001:db8:1:2:ffff:1:2:3"))
                .await
                .is_err()
        );
        // The neighbouring /64 is someone else.
        rl.check(Group::Auth, ip("2001:db8:1:3::1")).await.unwrap();
        // IPv4 by address, also when it arrives IPv4-mapped.
        for _ in 0..5 {
            rl.check(Group::Auth, ip("192.0.2.1")).await.unwrap();
        }
        assert!(rl.check(Group::Auth, ip("::ffff:192.0.2.1")).await.is_err());
        rl.check(Group::Auth, ip("192.0.2.2")).await.unwrap();
        // The prefix is configurable.
        let rl = RateLimits::new(&Limits {
            ipv6_prefix: 128,
            ..Limits::default()
        });
        for _ in 0..5 {
            rl.check(Group::Auth, ip("2001:db8::1")).await.unwrap();
        }
        rl.check(Group::Auth, ip("2001:db8::2")).await.unwrap();
        assert_eq!(
            client_key(ip("2001:db8:1:2:3:4:5:6"), 48),
            ip("2001:db8:1::")
        );
        assert_eq!(client_key(ip("2001:db8::1"), 0), ip("::"));
    }

    #[tokio::test]
    async fn a_flood_of_new_keys_does_not_reset_a_limited_client() {
        let rl = RateLimits::new(&Limits {
            max_keys: 1_000,
            ..Limits::default()
        });
        let attacker = ip("198.51.100.7");
        let active = ip("198.51.100.8");
        for _ in 0..100 {
            rl.check(Group::Api, attacker).await.unwrap();
        }
        assert!(rl.check(Group::Api, attacker).await.is_err());
        // Someone active but within their allowance keeps their count too.
        for _ in 0..60 {
            rl.check(Group::Api, active).await.unwrap();
        }
        // Fifty times the table's size in fresh sources, each seen once, with pruning.
        for i in 0..50_000u32 {
            let _ = rl
                .check(Group::Api, IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
                .await;
            if i % 10_000 == 9_999 {
                rl.prune();
            }
        }
        assert!(rl.keys(Group::Api) <= 1_000, "{}", rl.keys(Group::Api));
        let denied = rl.check(Group::Api, attacker).await.unwrap_err();
        assert!(denied.retry_after > Duration::ZERO);
        // 40 left of its 100 (plus whatever refilled meanwhile), not a fresh 100.
        let mut left = 0;
        while rl.check(Group::Api, active).await.is_ok() {
            left += 1;
            assert!(left < 60, "the active client's count was reset");
        }
        assert!(left >= 40, "{left}");
    }

    #[test]
    fn trusted_proxies_may_be_cidr_ranges() {
        let rl = RateLimits::new(&Limits {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
            ..Limits::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.7, 10.20.30.40"),
        );
        // Inside the ranges: believed, and the hop inside a range skipped too.
        assert_eq!(rl.client_ip(ip("10.255.0.1"), &h), ip("203.0.113.7"));
        assert_eq!(rl.client_ip(ip("fd12:3456::1"), &h), ip("203.0.113.7"));
        assert_eq!(rl.client_ip(ip("::ffff:10.1.2.3"), &h), ip("203.0.113.7"));
        // Outside: not believed.
        assert_eq!(rl.client_ip(ip("11.0.0.1"), &h), ip("11.0.0.1"));
        assert_eq!(rl.client_ip(ip("fe00::1"), &h), ip("fe00::1"));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "proxy.local",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
        assert!(
            "0.0.0.0/0"
                .parse::<IpRange>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(!"::/0".parse::<IpRange>().unwrap().contains(ip("8.8.8.8")));
    }
}
