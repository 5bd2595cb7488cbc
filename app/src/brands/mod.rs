//! Brand kits: a creator's brands, each with a name, one to six colours, a logo from their
//! uploads and a font from the shipped set. The create form offers them; the built-in
//! renderer paints with the kit's colours and font and places its logo inside the format's
//! safe area.
//!
//! A generation copies the kit it was made with (`BrandKit`, stored with the generation), so
//! editing or deleting the kit later changes neither a retry nor the record.

use leptos::prelude::*;
pub use shared::brands::*;

#[cfg(feature = "ssr")]
use domain::brands::service;
use shared::error::AppError;
use uuid::Uuid;

pub mod ui;

/// The signed-in user's kits, by name.
#[server(endpoint = "brands/list")]
pub async fn list_brands() -> Result<Vec<Brand>, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::list(&state, user.id).await
}

/// Creates a kit (no `id`) or updates one of the user's kits.
#[server(endpoint = "brands/save")]
pub async fn save_brand(
    id: Option<String>,
    name: String,
    colors: String,
    font: String,
    logo: Option<String>,
) -> Result<Brand, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let valid =
        validate_brand(&name, &colors, &font, logo.as_deref()).map_err(AppError::validation)?;
    let id = match id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|_| AppError::not_found("No such kit."))?),
    };
    let state = domain::state::AppState::from_context()?;
    service::save(&state, user.id, id, valid).await
}

/// Deletes one of the user's kits (generations made with it keep their copy).
#[server(endpoint = "brands/delete")]
pub async fn delete_brand(id: Uuid) -> Result<(), AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::delete(&state, user.id, id).await
}
