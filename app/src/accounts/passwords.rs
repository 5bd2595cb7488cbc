//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB of memory, two
//! passes, one lane). Verification compares in constant time (the argon2 crate's), and an
//! unknown email runs a verification against a fixed hash too, so the time a sign-in takes
//! does not reveal whether the account exists.

use std::sync::OnceLock;

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

#[cfg(test)]
mod tests {
    use super::*;

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
