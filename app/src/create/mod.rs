//! Create: a creator submits a prompt, a style, a platform format and a number of variations;
//! the submission becomes a generation, queued as a job; the worker renders each variation
//! and stores it with its variants; the page follows the progress live.
//!
//! What lives where:
//! - [`validation`], [`formats`]: the rules, shared with the browser.
//! - [`ui`]: the create page.
//! - `moderation`, `service`, `records` (server only): the blocklist, what the server functions
//!   call, and the generation and image records the worker writes.
//! - The worker's job handler, the providers and the live progress stream are in the `server`
//!   crate (`server::create`), since they need the renderer and the HTTP stack.

pub mod formats;
pub mod ui;
pub mod validation;

#[cfg(feature = "ssr")]
pub mod moderation;
#[cfg(feature = "ssr")]
pub mod records;
#[cfg(feature = "ssr")]
pub mod service;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;
pub use formats::{Format, Rect};
pub use validation::{Style, Submission, validate_submission};

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

/// Validates a submission and queues it. Invalid or blocked input is a 422 naming each
/// failing field, and nothing is stored.
#[server(endpoint = "generations/submit")]
pub async fn submit_generation(
    prompt: String,
    style: String,
    format: String,
    variations: Option<String>,
    brand: Option<String>,
) -> Result<GenerationView, AppError> {
    let user = crate::accounts::auth::require_user()?;
    let brand = match brand.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
            AppError::validation(vec![crate::error::FieldError::new(
                "brand",
                "invalid",
                "Choose one of your brand kits.",
            )])
        })?),
    };
    let valid = validate_submission(
        &prompt,
        &style,
        &format,
        variations.as_deref().unwrap_or(""),
    )
    .map_err(AppError::validation)?;
    let state = crate::state::AppState::from_context()?;
    service::submit_with_brand(&state, user, valid, brand).await
}

/// One of the signed-in creator's generations, for the page's polling fallback when the live
/// stream breaks. Somebody else's is 404, like one that does not exist.
#[server(endpoint = "generations/status")]
pub async fn get_generation(id: Uuid) -> Result<GenerationView, AppError> {
    let user = crate::accounts::auth::require_user()?;
    let state = crate::state::AppState::from_context()?;
    service::view(&state, user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such generation."))
}

/// The signed-in creator's most recent generations, newest first (none when signed out).
#[server(endpoint = "generations/recent")]
pub async fn recent_generations() -> Result<Vec<GenerationView>, AppError> {
    let Some(user) = crate::accounts::auth::current_user() else {
        return Ok(Vec::new());
    };
    let state = crate::state::AppState::from_context()?;
    service::recent(&state, user.id, RECENT_LIMIT).await
}
