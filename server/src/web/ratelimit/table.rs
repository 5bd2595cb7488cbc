//! The in-process limiter: governor's GCRA over `Table`, a sharded, bounded key store that
//! evicts the least-spent keys first when full.

use governor::clock::Clock;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::MonotonicClock;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::keys::{Denied, Group, Key};

/// Most shards of a table: enough that two cores rarely meet on one lock.
pub(super) const SHARDS: usize = 16;

/// A limiter's counts in process, as a governor state store: per key, the GCRA's theoretical
/// arrival time (TAT) as governor keeps it, in nanoseconds after the limiter's start. A key
/// whose TAT has passed has its whole burst again, exactly like a key never seen, which is
/// what makes dropping such keys lossless. governor computes every decision; this table only
/// decides what is kept, so that a flood of new keys evicts instead of growing or resetting
/// (governor's own keyed stores can only grow until `retain_recent`).
pub(super) struct Table<K> {
    pub(super) shards: Box<[Mutex<HashMap<K, u64>>]>,
    pub(super) hasher: std::hash::RandomState,
    /// Most keys one shard holds (shards x this is at most `max_keys`).
    pub(super) per_shard: usize,
    /// Made just before the governor limiter that owns this table, so `now` here runs a few
    /// nanoseconds ahead of its clock: a key counts as full again that much early, which
    /// gives away nothing anyone could use.
    pub(super) epoch: Instant,
}

impl<K: Key> Table<K> {
    pub(super) fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shards = SHARDS.min(max_keys);
        Self {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::hash::RandomState::new(),
            per_shard: max_keys / shards,
            epoch: Instant::now(),
        }
    }

    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX / 2)
    }

    pub(super) fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
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
pub(super) fn evict<K: Key>(shard: &mut HashMap<K, u64>, now: u64, cap: usize) {
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

pub(super) struct Limiter<K: Key> {
    pub(super) group: Group,
    /// Where this limiter's keys live in Redis: `sc:rl:{name}:`.
    pub(super) prefix: &'static str,
    /// The GCRA's emission interval (the time one request's allowance takes to come back)
    /// and its tolerance (that times the burst beyond the first request, as governor has
    /// it), in microseconds for the Redis script and in nanoseconds in process.
    pub(super) interval_us: u64,
    pub(super) tolerance_us: u64,
    pub(super) governor: RateLimiter<K, Table<K>, MonotonicClock>,
    pub(super) denied: AtomicU64,
}

impl<K: Key> Limiter<K> {
    pub(super) fn new(
        group: Group,
        prefix: &'static str,
        per_minute: u32,
        max_keys: usize,
    ) -> Self {
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
    pub(super) fn check(&self, key: &K) -> Result<(), Denied> {
        self.governor.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.governor.clock().now());
            self.refused(key, wait)
        })
    }

    /// Drops the keys that are full again and gives back the room they took.
    pub(super) fn prune(&self) {
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
    }

    /// Counts (and now and then logs) a refusal, whichever store made it.
    pub(super) fn refused(&self, key: &K, retry_after: Duration) -> Denied {
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
