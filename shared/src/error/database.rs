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
        failed(None, Location::caller(), error)
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
    failed(Some(what), Location::caller(), error)
}

/// The one policy both entries share: absent is 404 and not logged; anything else is logged
/// once, then 503 when the connection went away and 500 otherwise.
fn failed(what: Option<&str>, at: &Location<'_>, error: Error) -> AppError {
    if matches!(error, Error::NotFound) {
        return AppError::not_found("That is not here.");
    }
    tracing::error!(error = %error, query = what.unwrap_or(""), at = %at, "database query failed");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn database(kind: DatabaseErrorKind) -> Error {
        Error::DatabaseError(kind, Box::new("detail".to_owned()))
    }

    #[test]
    fn a_bare_question_mark_classifies_the_failure() {
        let code = |e: Error| AppError::from(e).code;
        assert_eq!(code(Error::NotFound), ErrorCode::NotFound);
        assert_eq!(
            code(database(DatabaseErrorKind::ClosedConnection)),
            ErrorCode::Unavailable
        );
        assert_eq!(
            code(database(DatabaseErrorKind::UnableToSendCommand)),
            ErrorCode::Unavailable
        );
        assert_eq!(
            code(database(DatabaseErrorKind::UniqueViolation)),
            ErrorCode::Internal
        );
        assert_eq!(
            query_failed("label", Error::NotFound).code,
            ErrorCode::NotFound
        );
    }
}
