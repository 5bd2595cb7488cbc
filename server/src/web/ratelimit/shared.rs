//! The shared limiter: the same GCRA as one Lua script in Redis, with the in-process
//! limiter answering whenever Redis is slow or away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::keys::{Denied, Group, Key};
use super::table::Limiter;

/// GCRA in Redis, the algorithm governor runs in process, on Redis's clock (`TIME`), so
/// every instance sees the same time. Integer microseconds throughout: they stay exact in
/// Lua's doubles (about 2^50 now), and `%d` writes them back without rounding (a plain
/// number would be stored with 14 significant digits).
///
/// KEYS[1]: the key. ARGV[1]: emission interval T, ARGV[2]: tolerance T x (burst - 1).
/// Returns {1, 0} when allowed, {0, microseconds until a request would be}.
pub(super) const GCRA_SCRIPT: &str = r"
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
pub(super) const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Least time between two "Redis is failing" warnings.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(5);

/// The shared store: a self-reconnecting connection, the script, and the fallback books.
pub(super) struct Shared {
    pub(super) conn: redis::aio::ConnectionManager,
    pub(super) script: redis::Script,
    pub(super) timeout: Duration,
    /// What the millisecond counters below count from.
    pub(super) epoch: Instant,
    /// Checks skip Redis until this many milliseconds after `epoch`.
    pub(super) skip_until_ms: AtomicU64,
    /// When the last warning was logged (ms after `epoch`; 0 = never).
    pub(super) warned_at_ms: AtomicU64,
    pub(super) fallbacks: AtomicU64,
}

impl Shared {
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One check in Redis, or in process when Redis cannot answer in time.
    pub(super) async fn check<K: Key>(&self, limiter: &Limiter<K>, key: &K) -> Result<(), Denied> {
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
    pub(super) async fn gcra<K: Key>(
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

    pub(super) fn failed(&self, group: Group, error: &dyn std::fmt::Display) {
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
