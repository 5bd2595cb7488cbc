//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB of memory, two
//! passes, one lane). Verification compares in constant time (the argon2 crate's), and an
//! unknown email runs a verification against a fixed hash too, so the time a sign-in takes
//! does not reveal whether the account exists.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory (OWASP: 2).
pub const PASSES: u32 = 2;
/// Lanes (OWASP: 1).
pub const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds; `Params::new` cannot fail on them,
    // and the default is the same algorithm should a future version disagree.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt into a PHC string (`$argon2id$v=19$...`).
pub fn hash(password: &str) -> Result<String, String> {
    // A salt must be unique, not secret: 16 bytes from a v4 UUID (the OS's random source,
    // 122 random bits) are plenty.
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| format!("salt: {e}"))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Whether `password` matches the stored `phc` hash. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification without an account, so "no such email" and "wrong
/// password" take as long as each other.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a real password: timing only").unwrap_or_default());
    let _ = verify(password, dummy);
}

/// Bounds the argon2 work of the whole process: at most `concurrency` hashes or
/// verifications run at once (each takes tens of milliseconds of a core and 19 MiB), and at
/// most `queue` more requests wait for a turn. Anyone past that gets 503 `unavailable` at
/// once, before any database work, so a flood of sign-ins cannot pile up memory, blocking
/// threads and pool connections behind the CPU.
#[derive(Debug)]
pub struct PasswordGate {
    permits: Arc<tokio::sync::Semaphore>,
    concurrency: usize,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    refused: AtomicU64,
}

/// A request's place at the [`PasswordGate`]: held from admission until its password work
/// is done, so it counts against the queue meanwhile.
#[derive(Debug)]
pub struct Ticket {
    permits: Arc<tokio::sync::Semaphore>,
    admitted: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordGate {
    /// At most `concurrency` (at least one) running and `queue` waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            concurrency,
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: concurrency.saturating_add(queue),
            refused: AtomicU64::new(0),
        }
    }

    /// A place in line, or `None` when every running slot and queue place is taken.
    pub fn enter(&self) -> Option<Ticket> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        if before >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            let n = self.refused.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(100) {
                tracing::warn!(
                    refused_total = n + 1,
                    "password work refused: the hashing queue is full (1 in 100 logged)"
                );
            }
            return None;
        }
        Some(Ticket {
            permits: self.permits.clone(),
            admitted: self.admitted.clone(),
        })
    }

    /// Hashes or verifications running now.
    pub fn running(&self) -> usize {
        self.concurrency - self.permits.available_permits()
    }

    /// Requests refused because the queue was full, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Ticket {
    /// Runs `f` (the password work) on a blocking thread once a running slot is free. The
    /// slot goes with the work, so a request abandoned meanwhile does not free it early.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("password gate closed: {e}"))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| format!("password task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_runs_so_many_queues_so_many_and_refuses_the_rest() {
        let gate = PasswordGate::new(1, 1);
        let running = gate.enter().expect("a running slot");
        let queued = gate.enter().expect("a queue place");
        assert!(gate.enter().is_none(), "full: refused");
        assert_eq!(gate.refused(), 1);
        // The first holds the only slot while its work runs; the queued one waits for it.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn(async move { running.run(move || rx.recv().is_ok()).await });
        while gate.running() == 0 {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn(async move { queued.run(|| 2).await });
        tokio::task::yield_now().await;
        assert_eq!(gate.running(), 1, "one at a time");
        tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        assert_eq!(second.await.unwrap(), Ok(2));
        // Finished tickets give their places back.
        assert!(gate.enter().is_some());
    }

    #[test]
    fn hashes_with_owasp_parameters_and_verifies() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a hash"));
        // A fresh salt each time.
        assert_ne!(h, hash("correct horse battery").unwrap());
    }
}
