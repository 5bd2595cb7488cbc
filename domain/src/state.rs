//! Server state handed to server functions through Leptos context.

use std::sync::Arc;

use crate::accounts::auth::Auth;
use crate::create::changes::Changes;
use crate::create::moderation::Blocklist;
use crate::db::{DbConn, DbPool};
use crate::media::MediaStore;
use shared::error::AppError;

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

/// Everything a server function may need from the host. Cheap to clone: one reference
/// count. Middleware and every Leptos request clone it, and axum clones each layer's state
/// per request; with each part its own `Arc`, that was a dozen shared counters touched per
/// request, and about a tenth of the server's CPU under load (perf; the command is in
/// docs/PERFORMANCE.md). Reads go
/// through `Deref` (`state.db`); a change (tests) copies the parts first.
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    /// The state made of `parts`.
    pub fn new(parts: AppStateParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateParts {
        Arc::make_mut(&mut self.0)
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct AppStateParts {
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
    pub gallery: Arc<crate::gallery::cache::Gallery>,
    /// The trends ranking and its cache.
    pub trends: Arc<crate::trends::service::Trends>,
    /// Upload settings and the upload-URL key.
    pub uploads: Arc<crate::uploads::settings::Uploads>,
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
