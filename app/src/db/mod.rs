//! Database types shared by the server functions and the host. Only compiled with `ssr`.

pub mod schema;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};

use crate::error::AppError;

/// The application's PostgreSQL pool.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`].
pub type DbConn = Object<AsyncPgConnection>;

/// Logs a failed query once, with what was being done, and turns it into the client-safe error.
///
/// A lost connection means the database went away: that is `unavailable` (503), which a
/// retry may fix; anything else is `internal`.
pub fn query_failed(what: &str, error: diesel::result::Error) -> AppError {
    use diesel::result::{DatabaseErrorKind, Error};
    let gone = matches!(
        &error,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
    );
    tracing::error!(error = %error, query = what, "database query failed");
    if gone {
        AppError::unavailable()
    } else {
        AppError::internal()
    }
}

/// Lets a transaction whose body returns `AppError` (a rule refused, not only a query
/// failed) be rolled back on either; the query's failure is logged and classified as above.
impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        query_failed("transaction", error)
    }
}
