//! Server state handed to server functions through Leptos context. Only compiled with `ssr`.

use std::sync::Arc;

use crate::accounts::auth::Auth;
use crate::create::moderation::Blocklist;
use crate::create::service::Changes;
use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::media::MediaStore;

/// Settings the create service needs from the host's configuration.
#[derive(Clone, Debug)]
pub struct CreateSettings {
    /// The provider new generations are made with (`builtin`, `openai`).
    pub provider: String,
    /// Prompts matching a rule here are refused.
    pub blocklist: Blocklist,
}

impl Default for CreateSettings {
    fn default() -> Self {
        Self {
            provider: "builtin".to_owned(),
            blocklist: Blocklist::default(),
        }
    }
}

/// Everything a server function may need from the host. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL connection pool.
    pub db: DbPool,
    /// Where images live.
    pub media: MediaStore,
    /// Create settings.
    pub create: Arc<CreateSettings>,
    /// Generation changes, for live progress streams.
    pub changes: Changes,
    /// Sessions, sign-in lockout and tier limits.
    pub auth: Arc<Auth>,
    /// Gallery cursors and the Explore page cache.
    pub gallery: Arc<crate::gallery::service::Gallery>,
    /// The trends ranking and its cache.
    pub trends: Arc<crate::trends::service::Trends>,
    /// Upload settings and the upload-URL key.
    pub uploads: Arc<crate::uploads::service::Uploads>,
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
