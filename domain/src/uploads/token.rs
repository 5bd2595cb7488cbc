//! Upload tokens: the signed part of an upload URL.
//!
//! A token binds the upload to its user, the declared size, type and (optional) SHA-256, the
//! random key prefix its file will be stored under and an expiry 15 minutes out. It is
//! `base64url(claims JSON) . base64url(HMAC-SHA256)`; the MAC is checked (in constant time)
//! before the claims are parsed, so nothing a client edits is ever believed. Single use is
//! the ticket row's job (`records::consume_ticket`): a signature cannot be un-signed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Mime;
use crate::signing::SigningKey;

/// Bytes of the MAC kept: 128 bits.
const MAC_LEN: usize = 16;
/// Longest token looked at (ours are about 300 characters).
const MAX_TOKEN_LEN: usize = 1024;

/// What an upload token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadClaims {
    /// The ticket row that makes the token single-use.
    pub ticket: Uuid,
    /// Who may use it.
    pub user: Uuid,
    /// The declared size in bytes.
    pub size: u64,
    /// The declared type.
    pub mime: Mime,
    /// The declared SHA-256, lowercase hex.
    pub sha256: Option<String>,
    /// The random key prefix the original is stored under (16 hex digits).
    pub prefix: String,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UploadTokenError {
    /// Not two base64url parts, too long, or claims that do not parse.
    #[error("malformed upload token")]
    Malformed,
    /// The MAC does not match our key: edited, or not ours.
    #[error("upload token signature does not match")]
    Forged,
    /// Past its expiry.
    #[error("upload token expired")]
    Expired,
}

/// The key upload tokens are signed with, derived from `SECRET_KEY` with its own label.
#[derive(Clone)]
pub struct UploadKey(SigningKey);

impl std::fmt::Debug for UploadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadKey(..)")
    }
}

impl UploadKey {
    /// Derives the key from the application secret.
    pub fn from_secret(secret: &str) -> Self {
        Self(SigningKey::derive(secret, b"socialcraft upload tokens v1"))
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &UploadClaims) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let tag = self.0.tag(&[&payload]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
        )
    }

    /// Checks `token` and returns its claims if it is ours and not expired at `now` (seconds
    /// since the Unix epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<UploadClaims, UploadTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(UploadTokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(UploadTokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| UploadTokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| UploadTokenError::Malformed)?;
        if tag.len() != MAC_LEN {
            return Err(UploadTokenError::Malformed);
        }
        if !self.0.verify(&[&payload], &tag, MAC_LEN) {
            return Err(UploadTokenError::Forged);
        }
        let claims: UploadClaims =
            serde_json::from_slice(&payload).map_err(|_| UploadTokenError::Malformed)?;
        if now >= claims.exp {
            return Err(UploadTokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> UploadClaims {
        UploadClaims {
            ticket: Uuid::from_u128(1),
            user: Uuid::from_u128(2),
            size: 1234,
            mime: Mime::Png,
            sha256: None,
            prefix: "0123456789abcdef".into(),
            exp,
        }
    }

    #[test]
    fn tokens_round_trip_until_they_expire() {
        let key = UploadKey::from_secret("secret");
        let token = key.sign(&claims(1000));
        assert_eq!(key.verify(&token, 999), Ok(claims(1000)));
        assert_eq!(key.verify(&token, 1000), Err(UploadTokenError::Expired));
    }

    #[test]
    fn edited_or_foreign_tokens_are_refused() {
        let key = UploadKey::from_secret("secret");
        let token = key.sign(&claims(1000));
        // Raise the declared size without re-signing.
        let (payload, tag) = token.split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let edited = URL_SAFE_NO_PAD.encode(json.replace("1234", "99999999"));
        assert_eq!(
            key.verify(&format!("{edited}.{tag}"), 0),
            Err(UploadTokenError::Forged)
        );
        assert_eq!(
            UploadKey::from_secret("other").verify(&token, 0),
            Err(UploadTokenError::Forged)
        );
        for junk in ["", "abc", "a.b", &"x".repeat(2000)] {
            assert_eq!(
                key.verify(junk, 0),
                Err(UploadTokenError::Malformed),
                "{junk}"
            );
        }
    }
}
