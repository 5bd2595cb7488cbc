//! Trends: topics and hashtags ranked from what creators prompt and rate, with time decay,
//! merged with trends imported from external feeds, each labelled by its sources. The create
//! page shows the top ones; choosing one fills the prompt.
//!
//! What lives where:
//! - [`rank`] (server only): the hot-rank, a pure function of events and a clock.
//! - [`feed`] (server only): parsing JSON and CSV feeds, reporting bad rows by line.
//! - `service` (server only): reads the events, caches the ranking, stores imports.

pub use shared::trends::*;

#[cfg(feature = "ssr")]
pub mod feed;

#[cfg(feature = "ssr")]
pub mod rank;

#[cfg(feature = "ssr")]
pub mod service;

/// The top trends right now, hottest first (the same for everyone, served from a cache).
#[leptos::server(endpoint = "trends/top")]
pub async fn top_trends() -> Result<Vec<Trend>, shared::error::AppError> {
    let state = crate::state::AppState::from_context()?;
    let all = state.trends.top(&state).await?;
    Ok(all.iter().take(TOP_LIMIT).cloned().collect())
}
