//! Trends: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::trends`; the records and services behind them are server-only.

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

/// How many trends the create page shows.
pub const TOP_LIMIT: usize = 8;
