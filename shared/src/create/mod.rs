//! Create: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::create`; the records and services behind them are server-only.

use chrono::{DateTime, Utc};
pub use formats::{Format, Rect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
pub use validation::{Style, Submission, validate_submission};

pub mod formats;

pub mod validation;

/// The job kind that renders a generation.
pub const GENERATE_JOB: &str = "generate";

/// How many generations the create page lists.
pub const RECENT_LIMIT: i64 = 12;

/// Where a generation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationStatus {
    /// Waiting for a worker (also between retries).
    Queued,
    /// A worker is making the images.
    Running,
    /// Every image is stored.
    Succeeded,
    /// It gave up; `error` says why.
    Failed,
}

impl GenerationStatus {
    /// The identifier used in the database and in progress events.
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationStatus::Queued => "queued",
            GenerationStatus::Running => "running",
            GenerationStatus::Succeeded => "succeeded",
            GenerationStatus::Failed => "failed",
        }
    }

    /// Whether nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, GenerationStatus::Succeeded | GenerationStatus::Failed)
    }
}

/// One finished image and where to fetch it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageView {
    /// The image's identifier.
    pub id: Uuid,
    /// Which variation of its generation (0-based).
    pub variation: u8,
    /// Width in pixels (the format's).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG original.
    pub png_url: String,
    /// WebP, 320 px wide.
    pub small_url: String,
    /// WebP, 720 px wide.
    pub medium_url: String,
    /// WebP at full size.
    pub full_url: String,
}

impl ImageView {
    /// A `srcset` over the WebP variants.
    pub fn srcset(&self) -> String {
        format!(
            "{} 320w, {} 720w, {} {}w",
            self.small_url, self.medium_url, self.full_url, self.width
        )
    }
}

/// A generation as the create page and the progress stream show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationView {
    /// The generation's identifier.
    pub id: Uuid,
    /// The prompt.
    pub prompt: String,
    /// The style.
    pub style: Style,
    /// The platform format.
    pub format: Format,
    /// How many images were asked for.
    pub variations: u8,
    /// Where it is.
    pub status: GenerationStatus,
    /// 0 to 100.
    pub progress: u8,
    /// Why it failed, for the creator.
    pub error: Option<String>,
    /// The images stored so far, by variation.
    pub images: Vec<ImageView>,
    /// When it was submitted.
    #[cfg_attr(
        feature = "hydrate",
        serde(deserialize_with = "crate::timestamp::deserialize")
    )]
    pub created_at: DateTime<Utc>,
}
