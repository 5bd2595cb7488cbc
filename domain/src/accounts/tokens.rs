//! Access tokens (JWT, HS256 only) and refresh tokens (256 random bits, stored as SHA-256).
//!
//! Why a small JWT implementation of our own rather than a general JWT crate: we accept
//! exactly one shape, `{"alg":"HS256","typ":"JWT"}` signed with our key, so `none`, RS/ES
//! algorithms and key-confusion tricks are refused by construction rather than by
//! configuration, and the WASM and server builds pull in no extra crypto stacks. The
//! signature is checked (in constant time, by `hmac`) before the claims are even parsed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::signing::SigningKey;

/// The only header we issue or accept, base64url-encoded.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// Longest token we look at (ours are about 300 bytes); anything bigger is refused unread.
const MAX_TOKEN_LEN: usize = 2048;

/// What an access token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user's id.
    pub sub: Uuid,
    /// The session (sign-in) the token belongs to.
    pub sid: Uuid,
    /// The user's tier when the token was issued (`free`, `pro`, `enterprise`).
    pub tier: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
}

/// Why an access token was refused. Never shown to users (they are simply signed out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, too long, or unparseable JSON.
    #[error("malformed token")]
    Malformed,
    /// The header names another algorithm (`none`, `RS256`, ...) or carries extra fields.
    #[error("algorithm not allowed")]
    Algorithm,
    /// The signature does not match our key.
    #[error("bad signature")]
    Signature,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

/// The key access tokens are signed with, derived from `SECRET_KEY`.
#[derive(Clone)]
pub struct TokenKey(SigningKey);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// Derives the signing key from the application secret. A purpose label keeps this key
    /// distinct from anything else derived from the same secret (upload URLs, later).
    pub fn from_secret(secret: &str) -> Self {
        Self(SigningKey::derive(secret, b"socialcraft access tokens v1"))
    }

    /// Signs `claims` into a compact JWT.
    pub fn issue(&self, claims: &AccessClaims) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER_JSON),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = URL_SAFE_NO_PAD.encode(self.0.tag(&[signing_input.as_bytes()]));
        format!("{signing_input}.{sig}")
    }

    /// Checks a token's shape, algorithm, signature and expiry (at `now`, Unix seconds), in
    /// that order, and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| TokenError::Malformed)?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Header {
            alg: String,
            typ: Option<String>,
        }
        let h: Header = serde_json::from_slice(&header_json).map_err(|_| TokenError::Algorithm)?;
        if h.alg != "HS256" || h.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err(TokenError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        if !self
            .0
            .verify(&[header.as_bytes(), b".", payload.as_bytes()], &sig, 32)
        {
            return Err(TokenError::Signature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A new refresh token: what goes in the cookie, and the hash that goes in the database.
pub fn new_refresh_token() -> Result<(String, [u8; 32]), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token).unwrap_or_default();
    Ok((token, hash))
}

/// The stored form of a refresh token, or `None` when it cannot be one of ours (so junk
/// never reaches the database).
pub fn hash_refresh_token(token: &str) -> Option<[u8; 32]> {
    // 32 bytes are 43 base64url characters without padding.
    if token.len() != 43 || URL_SAFE_NO_PAD.decode(token).is_err() {
        return None;
    }
    Some(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            tier: "free".into(),
            iat: 1_000,
            exp,
        }
    }

    fn forge(header: &str, payload: &AccessClaims, key: &SigningKey) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap())
        );
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(key.tag(&[input.as_bytes()]))
        )
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let key = TokenKey::from_secret("a very secret application key!!");
        let c = claims(2_000);
        let t = key.issue(&c);
        assert_eq!(key.verify(&t, 1_999).unwrap(), c);
        assert_eq!(key.verify(&t, 2_000), Err(TokenError::Expired));
        // Another key's token is refused.
        let other = TokenKey::from_secret("another application key entirely");
        assert_eq!(other.verify(&t, 1_500), Err(TokenError::Signature));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let key = TokenKey::from_secret("a very secret application key!!");
        let c = claims(2_000);
        // `none` with an empty signature: the classic.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
        );
        assert_eq!(key.verify(&none, 1_500), Err(TokenError::Algorithm));
        // HS512 or RS256 headers, even validly "signed" with our own key bytes.
        for alg in [
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"alg":"HS256","typ":"JWT","kid":"../../x"}"#,
        ] {
            assert_eq!(
                key.verify(&forge(alg, &c, &key.0), 1_500),
                Err(TokenError::Algorithm),
                "{alg}"
            );
        }
        // The right header and our key: accepted (so the forger above is sound).
        assert!(key.verify(&forge(HEADER_JSON, &c, &key.0), 1_500).is_ok());
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let key = TokenKey::from_secret("a very secret application key!!");
        let t = key.issue(&claims(2_000));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut c = claims(9_999_999);
        c.tier = "enterprise".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        assert_eq!(
            key.verify(&parts.join("."), 1_500),
            Err(TokenError::Signature)
        );
        assert_eq!(key.verify("a.b", 1_500), Err(TokenError::Malformed));
        assert_eq!(key.verify("a.b.c.d", 1_500), Err(TokenError::Malformed));
        assert_eq!(
            key.verify(&"x".repeat(5_000), 1_500),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn refresh_tokens_are_256_random_bits_stored_as_hashes() {
        let (a, ha) = new_refresh_token().unwrap();
        let (b, hb) = new_refresh_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash_refresh_token(&a), Some(ha));
        assert_eq!(hash_refresh_token("short"), None);
        assert_eq!(hash_refresh_token(&"!".repeat(43)), None);
    }
}
