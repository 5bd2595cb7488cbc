//! What the gallery keeps between requests: the key that signs its cursors and Explore's page
//! cache (each page cached for `EXPLORE_TTL`, one reload at a time per page).

use super::cursor::{CursorKey, Position};
use super::{Page, Scope};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long an Explore page is served from memory. Explore is the same for everyone, so a
/// burst of visitors costs one query per page per interval; a shared or deleted image clears
/// it at once in this process (other processes catch up within this time).
pub const EXPLORE_TTL: Duration = Duration::from_secs(2);

/// Explore pages kept at most (a crawler walking deep pages cannot grow memory without end).
const EXPLORE_CACHED_PAGES: usize = 512;

/// A cached Explore page and when it was loaded.
struct Cached {
    page: Arc<Page>,
    loaded: Instant,
}

/// The gallery's per-process parts: the cursor key and the Explore page cache.
///
/// The cache is a plain map under a read-write lock, serving a page that is past its TTL
/// while exactly one request reloads it (stale-while-revalidate): under load, nobody queues
/// behind a reload. (moka, which the trends use, showed multi-second tail latencies here at
/// 500 connections; see docs/PERFORMANCE.md.)
pub struct Gallery {
    pub(super) cursors: CursorKey,
    explore: RwLock<HashMap<Option<Position>, Cached>>,
    reloading: Mutex<HashSet<Option<Position>>>,
    /// Bumped whenever public content changes (a share, unshare or delete), so caches of
    /// pages built from it (the host's page cache) know to drop what they hold.
    version: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery").finish_non_exhaustive()
    }
}

impl Gallery {
    /// Cursors signed with a key derived from the application secret.
    pub fn new(secret: &str) -> Self {
        Self {
            cursors: CursorKey::from_secret(secret),
            explore: RwLock::new(HashMap::new()),
            reloading: Mutex::new(HashSet::new()),
            version: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Changes each time public content changes in this process.
    pub fn public_version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `cursor` is one this server made for Explore: the host's page cache keys on
    /// valid cursors only, so made-up ones cannot fill it.
    pub fn explore_cursor_is_valid(&self, cursor: &str) -> bool {
        self.cursors.decode(Scope::Explore, None, cursor).is_ok()
    }

    /// Forgets every cached Explore page (an image was shared, unshared or deleted).
    pub fn explore_changed(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Ok(mut map) = self.explore.write() {
            map.clear();
        }
    }

    /// The cached page at `position`, and whether it is still fresh.
    pub(super) fn cached(&self, position: Option<Position>) -> Option<(Arc<Page>, bool)> {
        let map = self.explore.read().ok()?;
        map.get(&position)
            .map(|c| (c.page.clone(), c.loaded.elapsed() < EXPLORE_TTL))
    }

    /// Keeps `page`, loaded while the public version was `version`, unless public content
    /// changed since: a load that read the database before a share committed must not
    /// outlive the share's invalidation and serve the old page for a whole TTL.
    pub(super) fn store(&self, position: Option<Position>, version: u64, page: Arc<Page>) {
        if let Ok(mut map) = self.explore.write() {
            // Checked under the write lock, which `explore_changed` also takes after its
            // bump: either the bump is seen here, or its clear comes after this insert.
            if self.public_version() != version {
                return;
            }
            if map.len() >= EXPLORE_CACHED_PAGES && !map.contains_key(&position) {
                map.clear();
            }
            map.insert(
                position,
                Cached {
                    page,
                    loaded: Instant::now(),
                },
            );
        }
    }

    /// Claims the reload of a stale page; `false` when another request is reloading it.
    pub(super) fn claim_reload(&self, position: Option<Position>) -> bool {
        self.reloading
            .lock()
            .map(|mut set| set.insert(position))
            .unwrap_or(false)
    }

    fn release_reload(&self, position: Option<Position>) {
        if let Ok(mut set) = self.reloading.lock() {
            set.remove(&position);
        }
    }
}

/// Releases a reload claim when dropped.
pub(super) struct ReloadClaim<'a> {
    pub(super) gallery: &'a Gallery,
    pub(super) position: Option<Position>,
}

impl Drop for ReloadClaim<'_> {
    fn drop(&mut self) {
        self.gallery.release_reload(self.position);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(next: &str) -> Arc<Page> {
        Arc::new(Page {
            items: Vec::new(),
            next: Some(next.to_owned()),
        })
    }

    #[test]
    fn a_load_that_began_before_a_share_is_not_cached() {
        let gallery = Gallery::new("test secret, long enough for a key");
        // A load reads the version, then the database; a share commits and invalidates
        // before the load finishes.
        let before = gallery.public_version();
        gallery.explore_changed();
        gallery.store(None, before, page("old"));
        assert!(
            gallery.cached(None).is_none(),
            "the pre-share page was kept"
        );

        // A load that began after the share is kept and fresh.
        let after = gallery.public_version();
        gallery.store(None, after, page("new"));
        let (kept, fresh) = gallery.cached(None).expect("the post-share page is kept");
        assert_eq!(kept.next.as_deref(), Some("new"));
        assert!(fresh);
    }
}
