//! How a failed query or an unreachable database becomes an [`AppError`] (native builds with
//! the `server` feature only; the browser never links Diesel).
//!
//! The conversions are the whole policy, so a bare `?` on a query or a pool checkout does the
//! right thing and every path logs the same way, once, at the place of the `?` (the caller's
//! location, through `#[track_caller]`):
//! - a row that is not there (`NotFound`) is `not_found` (404), not logged: a request for
//!   something absent is expected;
//! - a lost connection or a pool that cannot hand one out in time means the database went
//!   away: `unavailable` (503), which a retry may fix;
//! - anything else is `internal` (500), its detail in the log only.

use std::panic::Location;

use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::pooled_connection::deadpool::PoolError;

use super::AppError;

impl From<Error> for AppError {
    #[track_caller]
    fn from(error: Error) -> Self {
        from_query(Location::caller(), error)
    }
}

impl From<PoolError> for AppError {
    #[track_caller]
    fn from(error: PoolError) -> Self {
        let at = Location::caller();
        tracing::error!(error = %error, at = %at, "could not get a database connection");
        AppError::unavailable()
    }
}

/// [`AppError::from`] for a query, with a label for the log beside the caller's location
/// (for a closure that cannot be `#[track_caller]`, such as a `map_err` shared by a module).
#[track_caller]
pub fn query_failed(what: &str, error: Error) -> AppError {
    let at = Location::caller();
    if matches!(error, Error::NotFound) {
        return AppError::not_found("That is not here.");
    }
    tracing::error!(error = %error, query = what, at = %at, "database query failed");
    classify(&error)
}

fn from_query(at: &Location<'_>, error: Error) -> AppError {
    if matches!(error, Error::NotFound) {
        return AppError::not_found("That is not here.");
    }
    tracing::error!(error = %error, at = %at, "database query failed");
    classify(&error)
}

fn classify(error: &Error) -> AppError {
    let gone = matches!(
        error,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _)
    );
    if gone {
        AppError::unavailable()
    } else {
        AppError::internal()
    }
}
