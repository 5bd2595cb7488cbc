//! Trends: topics and hashtags ranked from what creators prompt and rate, with time decay,
//! merged with trends imported from external feeds, each labelled by its sources. The create
//! page shows the top ones; choosing one fills the prompt.
//!
//! What lives where:
//! - Here: the server function the create page calls.
//! - `domain::trends` (server only): `rank`, the hot-rank (a pure function of events and a
//!   clock); `feed`, parsing JSON and CSV feeds with bad rows reported by line; `service`,
//!   which reads the events, caches the ranking and stores imports; `imports`, the CLI and
//!   admin import and the background refresh.

pub use shared::trends::*;

/// The top trends right now, hottest first (the same for everyone, served from a cache).
#[leptos::server(endpoint = "trends/top")]
pub async fn top_trends() -> Result<Vec<Trend>, shared::error::AppError> {
    let state = domain::state::AppState::from_context()?;
    let all = state.trends.top(&state.db).await?;
    Ok(all.iter().take(TOP_LIMIT).cloned().collect())
}
