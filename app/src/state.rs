//! Server state handed to server functions through Leptos context. Only compiled with `ssr`.

use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::media::MediaStore;

/// Everything a server function may need from the host. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL connection pool.
    pub db: DbPool,
    /// Where images live.
    pub media: MediaStore,
}

impl AppState {
    /// The state the host provided to this request.
    ///
    /// Missing state is a wiring bug in the host, reported as an internal error rather than a
    /// panic so one broken route cannot take the process down.
    pub fn from_context() -> Result<Self, AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            AppError::internal()
        })
    }

    /// A pooled connection, or `unavailable` when the database cannot be reached in time.
    pub async fn conn(&self) -> Result<DbConn, AppError> {
        self.db.get().await.map_err(|e| {
            tracing::error!(error = %e, "could not get a database connection");
            AppError::unavailable()
        })
    }
}
