//! The one keyed signer behind everything the server signs: access tokens, upload tokens and
//! gallery cursors.
//!
//! Each use derives its own key from `SECRET_KEY` and a purpose label (HMAC-SHA256 of the
//! label under the secret), so a tag made for one purpose never verifies for another. A tag
//! is HMAC-SHA256 over the given parts in order (the same as over their concatenation), may
//! be kept truncated to its left bytes, and is always compared in constant time and at the
//! exact length its use keeps.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// A key for one purpose. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

impl SigningKey {
    /// The key for `purpose` (a label such as `b"socialcraft upload tokens v1"`) under the
    /// application secret.
    pub fn derive(secret: &str, purpose: &[u8]) -> Self {
        let mut m = mac(secret.as_bytes());
        m.update(purpose);
        Self(m.finalize().into_bytes().into())
    }

    fn over(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut m = mac(&self.0);
        for part in parts {
            m.update(part);
        }
        m
    }

    /// The full 32-byte tag of `parts`; a use that keeps fewer bytes keeps the left ones.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.over(parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the left `kept` bytes of the tag of `parts`, compared in constant
    /// time; a tag of any other length is refused.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8], kept: usize) -> bool {
        tag.len() == kept
            && (1..=32).contains(&kept)
            && self.over(parts).verify_truncated_left(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_and_parts_make_different_tags_and_only_exact_tags_verify() {
        let a = SigningKey::derive("secret", b"one");
        let b = SigningKey::derive("secret", b"two");
        let tag = a.tag(&[b"x", b"y"]);
        assert_eq!(
            tag,
            a.tag(&[b"xy"]),
            "parts are read in order, as one message"
        );
        assert_ne!(tag, b.tag(&[b"xy"]), "another purpose, another key");
        assert!(a.verify(&[b"xy"], &tag, 32));
        assert!(a.verify(&[b"xy"], &tag[..16], 16));
        assert!(!a.verify(&[b"xy"], &tag[..16], 32), "shorter than kept");
        assert!(!a.verify(&[b"xy"], &tag, 16), "longer than kept");
        assert!(!b.verify(&[b"xy"], &tag, 32));
        let mut edited = tag;
        edited[0] ^= 1;
        assert!(!a.verify(&[b"xy"], &edited, 32));
        assert!(!a.verify(&[b"xy"], &[], 0), "an empty tag proves nothing");
        assert_eq!(format!("{a:?}"), "SigningKey(..)");
    }
}
