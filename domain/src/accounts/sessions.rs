//! Sessions and their refresh tokens.
//!
//! A session is one sign-in on one device and the family of every refresh token it has
//! held. Exchanging a refresh token marks it used and issues the next one (rotation). A
//! used token presented again means two parties hold it, one of them not the user: the whole
//! session is revoked and the event logged (reuse detection). The one exception is a token
//! used within the last `reuse_grace` (parallel requests from the same page racing to
//! refresh): it identifies the session for a read-only request (GET or HEAD) without
//! rotating again; a state-changing request on it is refused, so a thief replaying a token
//! just used cannot act within the window.
//!
//! Ending a session announces its id on [`REVOKED_CHANNEL`]; every web process listens and
//! refuses that session's access tokens from then on.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::Tier;
use super::auth::{Auth, CurrentUser};
use super::records::UserRow;
use super::tokens::{AccessClaims, hash_refresh_token, new_refresh_token};
use crate::db::schema::{refresh_tokens, sessions, users};
use shared::error::AppError;

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The user signed out on that device.
    SignedOut,
    /// The user revoked it from the sessions list.
    Revoked,
    /// The user changed their password on another session.
    PasswordChanged,
    /// The user signed out everywhere.
    SignedOutEverywhere,
    /// A used refresh token was presented again.
    ReuseDetected,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::SignedOut => "signed_out",
            EndReason::Revoked => "revoked",
            EndReason::PasswordChanged => "password_changed",
            EndReason::SignedOutEverywhere => "signed_out_everywhere",
            EndReason::ReuseDetected => "reuse_detected",
        }
    }
}

/// A session as the sessions list reads it.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    /// Identifier.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Browser's user agent at sign-in.
    pub user_agent: String,
    /// Client address at sign-in.
    pub ip: String,
    /// Signed in at.
    pub created_at: DateTime<Utc>,
    /// Last refreshed at.
    pub last_used_at: DateTime<Utc>,
    /// Ends then unless refreshed.
    pub expires_at: DateTime<Utc>,
}

/// Tokens for a browser: put them in its cookies.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Who they are for.
    pub user: CurrentUser,
    /// The access token (JWT).
    pub access: String,
    /// The refresh token (only its hash is stored).
    pub refresh: String,
}

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug)]
pub enum Refreshed {
    /// A fresh pair; the presented token is now spent.
    Rotated(Issued),
    /// Just used by a parallel request: valid for this (read-only) request, no new tokens.
    Grace(CurrentUser),
    /// Just used by a parallel request, but the request changes state: refused, and the
    /// session is left alone (a page's own parallel requests are not theft).
    Spent,
    /// A spent token came back: its session is now revoked.
    Reused {
        /// The revoked session.
        session_id: Uuid,
    },
    /// Unknown, expired, or its session has ended.
    Invalid,
}

/// (user id, revoked at, expires at, tier) of a token's session.
type SessionState = (Uuid, Option<DateTime<Utc>>, DateTime<Utc>, String);

fn internal(what: &'static str) -> impl FnOnce(diesel::result::Error) -> AppError {
    move |e| shared::error::query_failed(what, e)
}

fn access_for(auth: &Auth, user: CurrentUser, now: DateTime<Utc>) -> String {
    let ttl = chrono::Duration::from_std(auth.settings.access_ttl)
        .unwrap_or(chrono::Duration::minutes(15));
    auth.key.issue(&AccessClaims {
        sub: user.id,
        sid: user.session_id,
        tier: user.tier.slug().to_owned(),
        iat: now.timestamp(),
        exp: (now + ttl).timestamp(),
    })
}

fn refresh_expiry(auth: &Auth, now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(auth.settings.refresh_ttl).unwrap_or(chrono::Duration::days(7))
}

fn random_token() -> Result<(String, [u8; 32]), AppError> {
    new_refresh_token().map_err(|e| {
        tracing::error!(error = %e, "no randomness for a refresh token");
        AppError::internal()
    })
}

/// Starts a session for `user` (a sign-in or sign-up) and issues its first tokens.
pub async fn start(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    user: &UserRow,
    ip: &str,
    user_agent: &str,
) -> Result<Issued, AppError> {
    let now = Utc::now();
    let expires = refresh_expiry(auth, now);
    let (refresh, hash) = random_token()?;
    let session_id: Uuid = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let id: Uuid = diesel::insert_into(sessions::table)
                .values((
                    sessions::user_id.eq(user.id),
                    sessions::user_agent.eq(user_agent),
                    sessions::ip.eq(ip),
                    sessions::created_at.eq(now),
                    sessions::last_used_at.eq(now),
                    sessions::expires_at.eq(expires),
                ))
                .returning(sessions::id)
                .get_result(conn)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::token_hash.eq(hash.to_vec()),
                    refresh_tokens::session_id.eq(id),
                    refresh_tokens::created_at.eq(now),
                    refresh_tokens::expires_at.eq(expires),
                ))
                .execute(conn)
                .await?;
            Ok(id)
        })
        .await
        .map_err(internal("start session"))?;
    let current = CurrentUser {
        id: user.id,
        session_id,
        tier: Tier::from_slug(&user.tier).unwrap_or(Tier::Free),
    };
    tracing::info!(user_id = %user.id, session_id = %session_id, "session started");
    Ok(Issued {
        user: current,
        access: access_for(auth, current, now),
        refresh,
    })
}

/// Exchanges a refresh token (see the module notes for rotation, grace and reuse).
/// `read_only` says whether the request is a GET or HEAD, the only ones the grace window
/// lets through.
pub async fn refresh(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    token: &str,
    read_only: bool,
) -> Result<Refreshed, AppError> {
    let Some(hash) = hash_refresh_token(token) else {
        return Ok(Refreshed::Invalid);
    };
    let now = Utc::now();
    let grace = chrono::Duration::from_std(auth.settings.reuse_grace).unwrap_or_default();
    let outcome = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            // Locking the token row makes two refreshes with the same token take turns: the
            // second sees the first's `used_at`.
            let found: Option<(Option<DateTime<Utc>>, DateTime<Utc>, Uuid)> = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(hash.to_vec()))
                .select((
                    refresh_tokens::used_at,
                    refresh_tokens::expires_at,
                    refresh_tokens::session_id,
                ))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some((used_at, token_expires, session_id)) = found else {
                return Ok(Refreshed::Invalid);
            };
            let session: Option<SessionState> = sessions::table
                .inner_join(users::table)
                .filter(sessions::id.eq(session_id))
                .select((
                    users::id,
                    sessions::revoked_at,
                    sessions::expires_at,
                    users::tier,
                ))
                .first(conn)
                .await
                .optional()?;
            let Some((user_id, revoked_at, session_expires, tier)) = session else {
                return Ok(Refreshed::Invalid);
            };
            if revoked_at.is_some() || session_expires <= now || token_expires <= now {
                return Ok(Refreshed::Invalid);
            }
            let user = CurrentUser {
                id: user_id,
                session_id,
                tier: Tier::from_slug(&tier).unwrap_or(Tier::Free),
            };
            if let Some(used_at) = used_at {
                if now - used_at <= grace {
                    return Ok(if read_only {
                        Refreshed::Grace(user)
                    } else {
                        Refreshed::Spent
                    });
                }
                end_one(conn, user_id, session_id, EndReason::ReuseDetected, now).await?;
                tracing::warn!(
                    user_id = %user_id,
                    session_id = %session_id,
                    used_at = %used_at,
                    "refresh token reused: session revoked (stolen token?)"
                );
                return Ok(Refreshed::Reused { session_id });
            }
            let (next, next_hash) = match new_refresh_token() {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "no randomness for a refresh token");
                    return Err(diesel::result::Error::RollbackTransaction);
                }
            };
            let expires = refresh_expiry(auth, now);
            diesel::update(refresh_tokens::table.find(hash.to_vec()))
                .set(refresh_tokens::used_at.eq(now))
                .execute(conn)
                .await?;
            diesel::insert_into(refresh_tokens::table)
                .values((
                    refresh_tokens::token_hash.eq(next_hash.to_vec()),
                    refresh_tokens::session_id.eq(session_id),
                    refresh_tokens::created_at.eq(now),
                    refresh_tokens::expires_at.eq(expires),
                ))
                .execute(conn)
                .await?;
            diesel::update(sessions::table.find(session_id))
                .set((
                    sessions::last_used_at.eq(now),
                    sessions::expires_at.eq(expires),
                ))
                .execute(conn)
                .await?;
            Ok(Refreshed::Rotated(Issued {
                user,
                access: access_for(auth, user, now),
                refresh: next,
            }))
        })
        .await
        .map_err(internal("refresh session"))?;
    if let Refreshed::Reused { session_id } = &outcome {
        auth.mark_revoked(*session_id);
    }
    Ok(outcome)
}

/// The channel revoked session ids are announced on, so every web process stops honouring
/// their access tokens at once (not only the one that revoked them).
pub const REVOKED_CHANNEL: &str = "sessions_revoked";

/// The sessions revoked within the last `$1` seconds (an access-token lifetime), as text:
/// what a web process reloads on start and whenever its LISTEN connection comes back, since
/// announcements made while nobody listened are lost. Runs on the listener's own
/// connection (plain `tokio-postgres`), a range of `sessions_revoked_at_idx`.
pub const RECENTLY_REVOKED_SQL: &str = "SELECT id::text FROM sessions \
     WHERE revoked_at IS NOT NULL AND revoked_at > now() - make_interval(secs => $1::float8)";

async fn announce(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<()> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let notes: Vec<(&str, &str)> = ids
        .iter()
        .map(|id| (REVOKED_CHANNEL, id.as_str()))
        .collect();
    // Sent at commit when inside a transaction, so a rolled-back revocation says nothing.
    crate::db::send_notifications(conn, &notes).await
}

async fn end_one(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    session_id: Uuid,
    reason: EndReason,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revoked_reason.eq(reason.as_str()),
    ))
    .execute(conn)
    .await?;
    if n == 1 {
        announce(conn, &[session_id]).await?;
    }
    Ok(n == 1)
}

/// Ends one of `user_id`'s sessions. `false` when it is not theirs or already ended, so
/// another user's session id is indistinguishable from a made-up one.
pub async fn end(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    user_id: Uuid,
    session_id: Uuid,
    reason: EndReason,
) -> Result<bool, AppError> {
    let ended = end_one(conn, user_id, session_id, reason, Utc::now())
        .await
        .map_err(internal("end session"))?;
    if ended {
        auth.mark_revoked(session_id);
        tracing::info!(user_id = %user_id, session_id = %session_id, reason = reason.as_str(), "session ended");
    }
    Ok(ended)
}

/// Ends every live session of `user_id` except `keep`; returns how many ended.
pub async fn end_all(
    conn: &mut AsyncPgConnection,
    auth: &Auth,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: EndReason,
) -> Result<usize, AppError> {
    let keep = keep.unwrap_or(Uuid::nil());
    let ended: Vec<Uuid> = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now()),
        sessions::revoked_reason.eq(reason.as_str()),
    ))
    .returning(sessions::id)
    .load(conn)
    .await
    .map_err(internal("end sessions"))?;
    announce(conn, &ended)
        .await
        .map_err(internal("announce ended sessions"))?;
    for id in &ended {
        auth.mark_revoked(*id);
    }
    tracing::info!(user_id = %user_id, ended = ended.len(), reason = reason.as_str(), "sessions ended");
    Ok(ended.len())
}

/// `user_id`'s live sessions, most recently used first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<SessionRow>, AppError> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(Utc::now()))
        .order((sessions::last_used_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
        .await
        .map_err(internal("list sessions"))
}

/// Deletes sessions (and so their tokens) that expired or ended more than `keep` ago. Spent
/// tokens must outlive their use for reuse detection, so they go with their session.
pub async fn delete_stale(
    conn: &mut AsyncPgConnection,
    keep: std::time::Duration,
) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(1));
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .lt(cutoff)
                .or(sessions::revoked_at.lt(cutoff)),
        ),
    )
    .execute(conn)
    .await
}
