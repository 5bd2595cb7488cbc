//! The account row as the server reads it: both the service and the sessions read it, so it
//! lives beside them rather than in either.

use crate::db::schema::users;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

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
