//! Accounts: the records, and what the account server functions call.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::auth;
use super::passwords;
use super::quota;
use super::records::UserRow;
use super::sessions::{self, EndReason, Refreshed};
use super::validation::{validate_email, validate_new_password};
use super::{Account, SessionView, Tier};
use crate::db::schema::users;
use crate::state::AppState;
use shared::error::{AppError, ErrorCode, FieldError};

/// The one answer to every failed sign-in, whatever failed.
pub fn wrong_credentials() -> AppError {
    AppError::validation(vec![FieldError::new(
        "password",
        "wrong_credentials",
        "That email and password do not match an account.",
    )])
}

/// Hashing is deliberately slow (tens of milliseconds): keep it off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "password task failed");
        AppError::internal()
    })
}

/// Creates an account. Bad input is 422 per field; an email already registered (in any
/// letter case) is 422 on `email`. (For tools and tests: it hashes outside the process's
/// [`PasswordGate`](super::passwords::PasswordGate) and holds `conn` meanwhile; sign-up
/// through the site goes through [`sign_up`].)
pub async fn create(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
) -> Result<UserRow, AppError> {
    let email = validate_sign_up(email, password)?;
    let password = password.to_owned();
    let hash = blocking(move || passwords::hash(&password))
        .await?
        .map_err(hash_failed)?;
    insert_user(conn, &email, &hash).await
}

/// The normalised email of a valid sign-up, or every field's error.
fn validate_sign_up(email: &str, password: &str) -> Result<String, AppError> {
    let email_result = validate_email(email);
    let password_result = validate_new_password(password, email);
    match (email_result, password_result) {
        (Ok(email), Ok(())) => Ok(email),
        (e, p) => Err(AppError::validation(
            [e.err(), p.err()].into_iter().flatten().collect(),
        )),
    }
}

fn hash_failed(e: String) -> AppError {
    tracing::error!(error = %e, "could not hash a password");
    AppError::internal()
}

/// The answer when the process's password work is at capacity: 503, and the host adds
/// `Retry-After`.
fn hashing_busy() -> AppError {
    AppError::new(
        ErrorCode::Unavailable,
        "Too many sign-ins are being checked right now. Please try again in a moment.",
    )
}

/// A place at the process's password gate, or 503.
fn enter_gate(state: &AppState) -> Result<super::passwords::Ticket, AppError> {
    state.auth.passwords.enter().ok_or_else(hashing_busy)
}

/// Runs password work through `ticket` (a running slot of the gate, no connection held).
async fn gated<T: Send + 'static>(
    ticket: &super::passwords::Ticket,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    ticket.run(f).await.map_err(|e| {
        tracing::error!(error = %e, "password task failed");
        AppError::internal()
    })
}

async fn insert_user(
    conn: &mut AsyncPgConnection,
    email: &str,
    hash: &str,
) -> Result<UserRow, AppError> {
    let inserted = diesel::insert_into(users::table)
        .values((users::email.eq(email), users::password_hash.eq(hash)))
        .on_conflict(users::email)
        .do_nothing()
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(|e| shared::error::query_failed("create user", e))?;
    inserted.ok_or_else(|| {
        AppError::validation(vec![FieldError::new(
            "email",
            "taken",
            "An account with this email already exists. Sign in instead.",
        )])
    })
}

/// Checks an email and password. Every failure is the same error and takes the same time.
/// (For tools and tests, like [`create`]; the site's sign-in is [`sign_in`].)
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
) -> Result<UserRow, AppError> {
    let password = password.to_owned();
    let Ok(email) = validate_email(email) else {
        blocking(move || passwords::verify_nothing(&password)).await?;
        return Err(wrong_credentials());
    };
    let user: Option<UserRow> = users::table
        .filter(users::email.eq(&email))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(|e| shared::error::query_failed("find user", e))?;
    match user {
        Some(user) => {
            let hash = user.password_hash.clone();
            if blocking(move || passwords::verify(&password, &hash)).await? {
                Ok(user)
            } else {
                Err(wrong_credentials())
            }
        }
        None => {
            blocking(move || passwords::verify_nothing(&password)).await?;
            Err(wrong_credentials())
        }
    }
}

/// Sets the tier of the account with `email`; `false` when there is none.
pub async fn set_tier(conn: &mut AsyncPgConnection, email: &str, tier: Tier) -> QueryResult<bool> {
    let email = email.trim().to_lowercase();
    let n = diesel::update(users::table.filter(users::email.eq(&email)))
        .set((
            users::tier.eq(tier.slug()),
            users::updated_at.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()")),
        ))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Grants (`admin`) or takes away administration rights from the account with `email`;
/// `false` when there is no such account.
pub async fn set_admin(
    conn: &mut AsyncPgConnection,
    email: &str,
    admin: bool,
) -> QueryResult<bool> {
    let email = email.trim().to_lowercase();
    let n = diesel::update(users::table.filter(users::email.eq(&email)))
        .set(users::is_admin.eq(admin))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// The account with `id`.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<UserRow>, AppError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(|e| shared::error::query_failed("find user", e))
}

/// The account with `email` (any letter case).
pub async fn find_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<UserRow>, AppError> {
    let mut rows: Vec<UserRow> = by_email_query(email)
        .load(conn)
        .await
        .map_err(|e| shared::error::query_failed("find user", e))?;
    Ok(rows.pop())
}

/// The statement [`find_by_email`] (and so every sign-in) runs.
pub fn by_email_query(
    email: &str,
) -> impl diesel_async::methods::LoadQuery<'static, AsyncPgConnection, UserRow>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryId
+ Send
+ 'static {
    users::table
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select(UserRow::as_select())
        .limit(1)
}

fn locked_out(wait: std::time::Duration) -> AppError {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    AppError::new(
        ErrorCode::RateLimited,
        format!(
            "Too many failed sign-ins for this account. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        ),
    )
}

/// Starts a session for `user` and puts its tokens in the response's cookies.
async fn start_session(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    user: &UserRow,
) -> Result<(), AppError> {
    let (ip, ua) = auth::client_details();
    let issued = sessions::start(conn, &state.auth, user, &ip, &ua).await?;
    auth::set_response_cookies(
        &state
            .auth
            .settings
            .session_cookies(&issued.access, &issued.refresh),
    );
    Ok(())
}

/// Sign-up: creates the account and signs it in. The password is hashed through the
/// process's gate before a connection is taken.
pub async fn sign_up(state: &AppState, email: &str, password: &str) -> Result<(), AppError> {
    let email = validate_sign_up(email, password)?;
    let ticket = enter_gate(state)?;
    let password = password.to_owned();
    let hash = gated(&ticket, move || passwords::hash(&password))
        .await?
        .map_err(hash_failed)?;
    drop(ticket);
    let mut conn = state.conn().await?;
    let user = insert_user(&mut conn, &email, &hash).await?;
    tracing::info!(user_id = %user.id, "account created");
    start_session(state, &mut conn, &user).await
}

/// Sign-in. `lockout_failures` failures within the window lock the email (existing or not)
/// for the client's prefix, `lockout_account_failures` for everyone, until the oldest ages
/// out; a success clears that prefix's count.
///
/// The order keeps password work from being a weapon: a place at the password gate first
/// (503 when full, before any database work); then one short use of a connection that admits
/// and records the attempt atomically and reads the account; the verification with no
/// connection held; then a connection again to start the session.
pub async fn sign_in(state: &AppState, email: &str, password: &str) -> Result<(), AppError> {
    let key = email.trim().to_lowercase();
    let prefix = auth::client_prefix(auth::client_ip());
    let ticket = enter_gate(state)?;
    let user = {
        let mut conn = state.conn().await?;
        if let Some(wait) = state.auth.admit_attempt(&mut conn, &key, &prefix).await? {
            return Err(locked_out(wait));
        }
        match validate_email(email) {
            Ok(email) => find_by_email(&mut conn, &email).await?,
            Err(_) => None,
        }
    };
    let password = password.to_owned();
    let user = match user {
        Some(user) => {
            let hash = user.password_hash.clone();
            gated(&ticket, move || passwords::verify(&password, &hash))
                .await?
                .then_some(user)
        }
        None => {
            gated(&ticket, move || passwords::verify_nothing(&password)).await?;
            None
        }
    };
    drop(ticket);
    let Some(user) = user else {
        // Already counted by `admit_attempt`.
        tracing::info!("sign-in failed");
        return Err(wrong_credentials());
    };
    let mut conn = state.conn().await?;
    state.auth.clear_failures(&mut conn, &key, &prefix).await?;
    start_session(state, &mut conn, &user).await
}

/// Ends this browser's session (if any) and clears its cookies. Always succeeds: signing
/// out twice is not an error.
pub async fn sign_out(state: &AppState) -> Result<(), AppError> {
    if let Some(user) = auth::current_user() {
        let mut conn = state.conn().await?;
        sessions::end(
            &mut conn,
            &state.auth,
            user.id,
            user.session_id,
            EndReason::SignedOut,
        )
        .await?;
    }
    auth::set_response_cookies(&state.auth.settings.clearing_cookies());
    Ok(())
}

/// Ends every session of the signed-in user, this one included.
pub async fn sign_out_everywhere(state: &AppState) -> Result<usize, AppError> {
    let user = auth::require_user()?;
    let mut conn = state.conn().await?;
    let n = sessions::end_all(
        &mut conn,
        &state.auth,
        user.id,
        None,
        EndReason::SignedOutEverywhere,
    )
    .await?;
    auth::set_response_cookies(&state.auth.settings.clearing_cookies());
    Ok(n)
}

/// Changes the signed-in user's password after checking the current one, and ends every
/// other session (this one stays signed in). Wrong current passwords count towards the
/// account's sign-in lockout (admitted and recorded as a sign-in is), so a borrowed session
/// cannot be used to guess it.
pub async fn change_password(
    state: &AppState,
    current_password: &str,
    new_password: &str,
) -> Result<usize, AppError> {
    let me = auth::require_user()?;
    let prefix = auth::client_prefix(auth::client_ip());
    let ticket = enter_gate(state)?;
    let user = {
        let mut conn = state.conn().await?;
        let user = find(&mut conn, me.id)
            .await?
            .ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "Sign in to continue."))?;
        if let Err(mut e) = validate_new_password(new_password, &user.email) {
            e.field = "new_password".to_owned();
            return Err(AppError::validation(vec![e]));
        }
        if let Some(wait) = state
            .auth
            .admit_attempt(&mut conn, &user.email, &prefix)
            .await?
        {
            return Err(locked_out(wait));
        }
        user
    };
    // Both hashes with no connection held.
    let (current, hash) = (current_password.to_owned(), user.password_hash.clone());
    if !gated(&ticket, move || passwords::verify(&current, &hash)).await? {
        // Already counted by `admit_attempt`.
        return Err(AppError::validation(vec![FieldError::new(
            "current_password",
            "wrong_password",
            "That is not your current password.",
        )]));
    }
    let new = new_password.to_owned();
    let new_hash = gated(&ticket, move || passwords::hash(&new))
        .await?
        .map_err(hash_failed)?;
    drop(ticket);
    let mut conn = state.conn().await?;
    state
        .auth
        .clear_failures(&mut conn, &user.email, &prefix)
        .await?;
    diesel::update(users::table.find(user.id))
        .set((
            users::password_hash.eq(&new_hash),
            users::updated_at.eq(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()")),
        ))
        .execute(&mut conn)
        .await
        .map_err(|e| shared::error::query_failed("change password", e))?;
    let ended = sessions::end_all(
        &mut conn,
        &state.auth,
        user.id,
        Some(me.session_id),
        EndReason::PasswordChanged,
    )
    .await?;
    tracing::info!(user_id = %user.id, other_sessions_ended = ended, "password changed");
    Ok(ended)
}

/// The signed-in account, with its plan and what it has used.
pub async fn me(state: &AppState) -> Result<Option<Account>, AppError> {
    let Some(me) = auth::current_user() else {
        return Ok(None);
    };
    let mut conn = state.conn().await?;
    let Some(user) = find(&mut conn, me.id).await? else {
        return Ok(None);
    };
    let tier = Tier::from_slug(&user.tier).unwrap_or(Tier::Free);
    let limits = state.auth.settings.plans.of(tier);
    let now = chrono::Utc::now();
    Ok(Some(Account {
        email: user.email,
        tier,
        api_per_minute: limits.api_per_minute,
        generations_per_day: limits.generations_per_day,
        generations_today: quota::generations_today(&mut conn, me.id, now).await?,
        storage_bytes: limits.storage_bytes,
        storage_used: quota::storage_used(&mut conn, me.id).await?,
    }))
}

/// The signed-in user's live sessions, this one marked.
pub async fn list_sessions(state: &AppState) -> Result<Vec<SessionView>, AppError> {
    let me = auth::require_user()?;
    let mut conn = state.conn().await?;
    Ok(sessions::list(&mut conn, me.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id,
            current: s.id == me.session_id,
            user_agent: s.user_agent,
            ip: s.ip,
            since: s.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}

/// Ends one of the signed-in user's sessions; another user's id is "not found".
pub async fn revoke_session(state: &AppState, id: Uuid) -> Result<(), AppError> {
    let me = auth::require_user()?;
    let mut conn = state.conn().await?;
    if !sessions::end(&mut conn, &state.auth, me.id, id, EndReason::Revoked).await? {
        return Err(AppError::not_found("No such session."));
    }
    if id == me.session_id {
        auth::set_response_cookies(&state.auth.settings.clearing_cookies());
    }
    Ok(())
}

/// Exchanges the refresh cookie for new tokens (for API clients; browsers are refreshed
/// silently by the host's middleware). A spent, unknown or ended token signs the browser out.
pub async fn refresh(state: &AppState) -> Result<(), AppError> {
    let settings = &state.auth.settings;
    let signed_out = || {
        auth::set_response_cookies(&settings.clearing_cookies());
        AppError::new(
            ErrorCode::Unauthorized,
            "Your session has ended. Please sign in again.",
        )
    };
    let Some(token) = auth::refresh_cookie_value(settings) else {
        return Err(signed_out());
    };
    let mut conn = state.conn().await?;
    // A server function is a POST: the grace window does not apply.
    match sessions::refresh(&mut conn, &state.auth, &token, false).await? {
        Refreshed::Rotated(issued) => {
            auth::set_response_cookies(&settings.session_cookies(&issued.access, &issued.refresh));
            Ok(())
        }
        Refreshed::Grace(_) => Ok(()),
        // Just spent by a parallel request, whose answer carries the new cookies: refused,
        // cookies left alone.
        Refreshed::Spent => Err(AppError::new(
            ErrorCode::Unauthorized,
            "This sign-in token was just used. Please try again.",
        )),
        Refreshed::Reused { .. } | Refreshed::Invalid => Err(signed_out()),
    }
}
