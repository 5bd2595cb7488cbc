//! Trend feeds in: `socialcraft trends import FILE` and `POST /api/admin/trends/import`
//! (admins only), and the background refresh of the cached ranking.

use std::time::Duration;

use crate::accounts::auth::CurrentUser;
use crate::state::AppState;
use crate::trends::feed::{self, FeedFormat, RowError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use shared::error::{AppError, ErrorCode};

/// Trends ranking settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrendsConfig {
    /// `TRENDS_REFRESH_SECS`: how often the ranking is recomputed in the background, default
    /// 60. The cache keeps a ranking for five times as long if refreshing fails.
    pub refresh: Duration,
    /// `TRENDS_WINDOW_DAYS`: how far back prompts and feed rows count, default 7.
    pub window: Duration,
    /// `TRENDS_HALF_LIFE_HOURS`: how fast a prompt's weight halves, default 24.
    pub half_life: Duration,
}

/// Largest feed the admin endpoint accepts.
pub const MAX_FEED_BYTES: usize = 8 * 1024 * 1024;

/// What an import did: rows stored, and the rows skipped with their line numbers.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// Rows written (new or updated).
    pub imported: usize,
    /// Rows skipped, with why.
    pub skipped: Vec<RowError>,
}

/// Why a whole import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole is unreadable (not JSON or CSV, no header, too many rows).
    #[error("{0}")]
    Feed(String),
    /// The database refused or is away.
    #[error("database: {0}")]
    Database(String),
}

/// Parses `body` and stores its good rows (all or none of them); bad rows are reported.
pub async fn import(
    conn: &mut AsyncPgConnection,
    body: &str,
    format: FeedFormat,
) -> Result<ImportReport, ImportError> {
    let parsed =
        feed::parse(body, format, Utc::now()).map_err(|e| ImportError::Feed(e.to_string()))?;
    let imported = crate::trends::service::import(conn, &parsed.rows)
        .await
        .map_err(|e| ImportError::Database(e.to_string()))?;
    Ok(ImportReport {
        imported,
        skipped: parsed.errors,
    })
}

fn error(e: AppError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

async fn is_admin(conn: &mut AsyncPgConnection, user: &CurrentUser) -> Result<bool, AppError> {
    use crate::db::schema::users;
    users::table
        .find(user.id)
        .select(users::is_admin)
        .first::<bool>(conn)
        .await
        .optional()
        .map(|a| a.unwrap_or(false))
        .map_err(|e| {
            tracing::error!(error = %e, "admin check failed");
            AppError::unavailable()
        })
}

/// `POST /api/admin/trends/import`: the body is the feed (JSON or CSV, told apart by
/// `Content-Type` or by its first character). 401 signed out, 403 for non-admins, 422 when
/// the file as a whole is unreadable; otherwise 200 with the report, bad rows included.
pub async fn admin_import(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(Extension(user)) = user else {
        return error(AppError::new(
            ErrorCode::Unauthorized,
            "Sign in as an administrator.",
        ));
    };
    // One connection for the check and the import.
    let mut conn = match state.conn().await {
        Ok(c) => c,
        Err(e) => return error(e),
    };
    match is_admin(&mut conn, &user).await {
        Ok(true) => {}
        Ok(false) => {
            return error(AppError::new(
                ErrorCode::Forbidden,
                "Only administrators may import trend feeds.",
            ));
        }
        Err(e) => return error(e),
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = FeedFormat::detect(None, content_type, &body);
    match import(&mut conn, &body, format).await {
        Ok(report) => {
            tracing::info!(
                user_id = %user.id,
                imported = report.imported,
                skipped = report.skipped.len(),
                "trend feed imported"
            );
            // Show the new trends now rather than at the next refresh.
            if let Err(e) = state.trends.refresh(&state.db).await {
                tracing::warn!(error = %e.message, "trends refresh after import failed");
            }
            (StatusCode::OK, Json(report)).into_response()
        }
        Err(ImportError::Feed(message)) => {
            error(AppError::validation(vec![shared::error::FieldError::new(
                "feed",
                "unreadable",
                message,
            )]))
        }
        Err(ImportError::Database(e)) => {
            tracing::error!(error = %e, "trend import failed");
            error(AppError::unavailable())
        }
    }
}

/// Recomputes the ranking every `every`, so pages read a warm cache; stops when dropped.
pub async fn refresh_loop(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.trends.refresh(&state.db).await {
            tracing::warn!(error = %e.message, "trends refresh failed; the cached ranking stays");
        }
    }
}
