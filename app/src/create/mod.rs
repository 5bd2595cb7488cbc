//! Create: a creator submits a prompt and a style.
//!
//! This is the walking skeleton's vertical slice: the prompt is validated by the shared rules,
//! stored, and listed under "Recent prompts". The real generation pipeline builds on it.

pub mod formats;
pub mod ui;
pub mod validation;

#[cfg(feature = "ssr")]
pub mod service;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;
pub use formats::{Format, Rect};
pub use validation::{Style, ValidPrompt, validate_prompt};

/// How many prompts the "Recent prompts" list shows.
pub const RECENT_LIMIT: i64 = 20;

/// A stored prompt as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSummary {
    /// The prompt's identifier.
    pub id: Uuid,
    /// The trimmed prompt text.
    pub prompt: String,
    /// The style it was submitted with.
    pub style: Style,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// Validates and stores a prompt. Invalid input is a 422 naming each failing field, and
/// nothing is stored.
#[server(endpoint = "prompts/submit")]
pub async fn submit_prompt(prompt: String, style: String) -> Result<PromptSummary, AppError> {
    let valid = validate_prompt(&prompt, &style).map_err(AppError::validation)?;
    let state = crate::state::AppState::from_context()?;
    service::submit(&state, valid).await
}

/// The most recent prompts, newest first.
#[server(endpoint = "prompts/recent")]
pub async fn recent_prompts() -> Result<Vec<PromptSummary>, AppError> {
    let state = crate::state::AppState::from_context()?;
    service::recent(&state, RECENT_LIMIT).await
}
