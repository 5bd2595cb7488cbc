//! Trends: topics and hashtags ranked from what creators prompt and rate, with time decay,
//! merged with trends imported from external feeds, each labelled by its sources. The create
//! page shows the top ones; choosing one fills the prompt.
//!
//! What lives where:
//! - [`rank`] (server only): the hot-rank, a pure function of events and a clock.
//! - [`feed`] (server only): parsing JSON and CSV feeds, reporting bad rows by line.
//! - `service` (server only): reads the events, caches the ranking, stores imports.

#[cfg(feature = "ssr")]
pub mod feed;
#[cfg(feature = "ssr")]
pub mod rank;

use serde::{Deserialize, Serialize};

/// The source label of trends computed from SocialCraft's own prompts and ratings.
pub const COMPUTED_SOURCE: &str = "socialcraft";

/// A trending topic as the create page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    /// The topic, lowercase words (`"golden hour"`), what choosing it puts in the prompt.
    pub topic: String,
    /// Its hashtag with the `#` (`"#goldenhour"`).
    pub hashtag: String,
    /// Where it comes from, sorted: [`COMPUTED_SOURCE`] and/or the feeds' source names.
    pub sources: Vec<String>,
    /// The hot-rank score, higher is hotter; only comparable within one ranking.
    pub score: f64,
}

#[cfg(feature = "ssr")]
pub mod service;

/// How many trends the create page shows.
pub const TOP_LIMIT: usize = 8;

/// The top trends right now, hottest first (the same for everyone, served from a cache).
#[leptos::server(endpoint = "trends/top")]
pub async fn top_trends() -> Result<Vec<Trend>, crate::error::AppError> {
    let state = crate::state::AppState::from_context()?;
    let all = state.trends.top(&state).await?;
    Ok(all.iter().take(TOP_LIMIT).cloned().collect())
}
