//! The keyset cursor: where the previous page ended, `(created_at, id)`, signed for the
//! gallery and viewer it was made for.
//!
//! It is opaque to clients (base64url) and carries an HMAC over its position and its
//! context, so a cursor from another gallery or another account, or one edited by hand, is
//! refused with a 400 instead of silently paging somewhere else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Scope;
use crate::signing::SigningKey;

const VERSION: u8 = 1;
/// Bytes of the MAC kept: 80 bits is far beyond guessing through a rate-limited API.
const MAC_LEN: usize = 10;
const LEN: usize = 1 + 8 + 16 + MAC_LEN;

/// The last item of a page: the next page starts strictly after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// Its creation time (microsecond precision, as PostgreSQL stores it).
    pub created_at: DateTime<Utc>,
    /// Its id, which breaks ties between equal times.
    pub id: Uuid,
}

/// Why a cursor was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not base64url, the wrong length or an unknown version.
    #[error("malformed cursor")]
    Malformed,
    /// The MAC does not match: tampered with, or made for another gallery or viewer.
    #[error("cursor signature does not match")]
    Forged,
}

/// Signs and checks cursors. Derived from the application secret with its own purpose label.
#[derive(Clone)]
pub struct CursorKey(SigningKey);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// Derives the key from the application secret.
    pub fn from_secret(secret: &str) -> Self {
        Self(SigningKey::derive(
            secret,
            b"socialcraft gallery cursors v1",
        ))
    }

    /// The cursor for the page after `last`, in `scope` as `viewer` sees it.
    pub fn encode(&self, scope: Scope, viewer: Option<Uuid>, last: Position) -> String {
        let mut bytes = Vec::with_capacity(LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&last.created_at.timestamp_micros().to_be_bytes());
        bytes.extend_from_slice(last.id.as_bytes());
        let tag = self
            .0
            .tag(&signed(scope, &viewer.unwrap_or_default(), &bytes));
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor made by [`CursorKey::encode`] for the same scope and viewer.
    pub fn decode(
        &self,
        scope: Scope,
        viewer: Option<Uuid>,
        cursor: &str,
    ) -> Result<Position, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor.as_bytes())
            .map_err(|_| CursorError::Malformed)?;
        if bytes.len() != LEN || bytes[0] != VERSION {
            return Err(CursorError::Malformed);
        }
        let (body, tag) = bytes.split_at(LEN - MAC_LEN);
        if !self.0.verify(
            &signed(scope, &viewer.unwrap_or_default(), body),
            tag,
            MAC_LEN,
        ) {
            return Err(CursorError::Forged);
        }
        let micros = i64::from_be_bytes(body[1..9].try_into().map_err(|_| CursorError::Malformed)?);
        let id = Uuid::from_slice(&body[9..25]).map_err(|_| CursorError::Malformed)?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(CursorError::Malformed)?;
        Ok(Position { created_at, id })
    }
}

/// What a cursor's tag covers: its gallery, its viewer (nil when signed out) and its body.
fn signed<'a>(scope: Scope, viewer: &'a Uuid, body: &'a [u8]) -> [&'a [u8]; 3] {
    let scope: &'static [u8] = match scope {
        Scope::Mine => b"mine",
        Scope::Explore => b"expl",
    };
    [scope, viewer.as_bytes(), body]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position {
            created_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        }
    }

    #[test]
    fn round_trips_in_its_own_context_only() {
        let key = CursorKey::from_secret("a secret of at least thirty-two bytes!!");
        let me = Uuid::new_v4();
        let p = position();
        let c = key.encode(Scope::Mine, Some(me), p);
        assert_eq!(key.decode(Scope::Mine, Some(me), &c), Ok(p));
        assert_eq!(
            key.decode(Scope::Mine, Some(Uuid::new_v4()), &c),
            Err(CursorError::Forged)
        );
        assert_eq!(
            key.decode(Scope::Explore, None, &c),
            Err(CursorError::Forged)
        );
        let other = CursorKey::from_secret("another secret of at least thirty-two bytes");
        assert_eq!(
            other.decode(Scope::Mine, Some(me), &c),
            Err(CursorError::Forged)
        );
        let e = key.encode(Scope::Explore, None, p);
        assert_eq!(key.decode(Scope::Explore, None, &e), Ok(p));
        assert_eq!(
            key.decode(Scope::Mine, Some(me), &e),
            Err(CursorError::Forged)
        );
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let key = CursorKey::from_secret("a secret of at least thirty-two bytes!!");
        let c = key.encode(Scope::Explore, None, position());
        let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let tampered = URL_SAFE_NO_PAD.encode(&b);
            assert!(
                key.decode(Scope::Explore, None, &tampered).is_err(),
                "byte {i}"
            );
        }
        for bad in ["", "abc", "!!!!", &c[..c.len() - 2], &format!("{c}AA")] {
            assert_eq!(
                key.decode(Scope::Explore, None, bad),
                Err(CursorError::Malformed),
                "{bad}"
            );
        }
    }
}
