//! Create: a creator submits a prompt, a style, a platform format and a number of variations;
//! the submission becomes a generation, queued as a job; the worker renders each variation
//! and stores it with its variants; the page follows the progress live.
//!
//! What lives where:
//! - Here: the server functions and [`ui`], the create page.
//! - `shared::create`: the rules and formats, the same code in the browser and the server.
//! - `domain::create` (server only): the blocklist, the service these functions call, the
//!   records, the `generate` job with its providers and renderer, and the progress stream.

pub use formats::{Format, Rect};
use leptos::prelude::*;
pub use shared::create::*;

#[cfg(feature = "ssr")]
use domain::create::service;
use shared::error::AppError;
use uuid::Uuid;
pub use validation::{Style, Submission, validate_submission};

pub mod ui;

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
    let user = domain::accounts::auth::require_user()?;
    let brand = match brand.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
            AppError::validation(vec![shared::error::FieldError::new(
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
    let state = domain::state::AppState::from_context()?;
    service::submit_with_brand(&state, user, valid, brand).await
}

/// One of the signed-in creator's generations, for the page's polling fallback when the live
/// stream breaks. Somebody else's is 404, like one that does not exist.
#[server(endpoint = "generations/status")]
pub async fn get_generation(id: Uuid) -> Result<GenerationView, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::view(&state, user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such generation."))
}

/// The signed-in creator's most recent generations, newest first (none when signed out).
#[server(endpoint = "generations/recent")]
pub async fn recent_generations() -> Result<Vec<GenerationView>, AppError> {
    let Some(user) = domain::accounts::auth::current_user() else {
        return Ok(Vec::new());
    };
    let state = domain::state::AppState::from_context()?;
    service::recent(&state, user.id, RECENT_LIMIT).await
}
