//! Account records. Only compiled with `ssr`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::Tier;
use super::passwords;
use super::validation::{validate_email, validate_new_password};
use crate::db::schema::users;
use crate::error::{AppError, FieldError};

/// An account as the server sees it (never sent to a browser: it holds the hash).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    /// Identifier.
    pub id: Uuid,
    /// Lowercased email.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Tier slug.
    pub tier: String,
    /// Signed up at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

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
/// letter case) is 422 on `email`.
pub async fn create(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
) -> Result<UserRow, AppError> {
    let email_result = validate_email(email);
    let password_result = validate_new_password(password, email);
    let email = match (email_result, password_result) {
        (Ok(email), Ok(())) => email,
        (e, p) => {
            return Err(AppError::validation(
                [e.err(), p.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let password = password.to_owned();
    let hash = blocking(move || passwords::hash(&password))
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "could not hash a password");
            AppError::internal()
        })?;
    let inserted = diesel::insert_into(users::table)
        .values((users::email.eq(&email), users::password_hash.eq(&hash)))
        .on_conflict(users::email)
        .do_nothing()
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(|e| crate::db::query_failed("create user", e))?;
    inserted.ok_or_else(|| {
        AppError::validation(vec![FieldError::new(
            "email",
            "taken",
            "An account with this email already exists. Sign in instead.",
        )])
    })
}

/// Checks an email and password. Every failure is the same error and takes the same time.
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
        .map_err(|e| crate::db::query_failed("find user", e))?;
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
