//! Uploads: files a creator brings (logos, photos, artwork) for brand kits and later use.
//!
//! The flow (`domain::uploads::ingest`, behind `PUT /api/uploads/{token}`, does the middle step):
//! 1. The browser asks [`request_upload`] for an upload URL, declaring the file's name, size,
//!    type and optionally its SHA-256. Obvious problems (too big, empty, a type we never take,
//!    over the storage quota) are refused here, beside the file, before any byte moves.
//! 2. It sends the bytes to that URL with upload progress events. The host streams them to a
//!    spool file while hashing and counting, decides the type from the bytes themselves,
//!    decodes the image under limits (or sanitises the SVG) and only then stores it, once per
//!    content; anything wrong is a 4xx with a stable code and leaves nothing behind.
//! 3. A job makes the 320/720/full WebP variants (metadata stripped); the page polls
//!    [`get_asset`] until they are ready.
//!
//! Every rejection carries one [`FieldError`] on the field `file` whose `code` is one of the
//! constants in [`codes`], so clients (and tests) branch on it.

use leptos::prelude::*;
use shared::error::AppError;
pub use shared::uploads::*;

#[cfg(feature = "ssr")]
use domain::uploads::service;
use uuid::Uuid;

pub mod ui;

/// Asks for an upload URL for one file. Everything that can be judged from the declaration
/// (size, type, checksum format, quota) is judged here.
#[server(endpoint = "assets/ticket")]
pub async fn request_upload(
    filename: String,
    size: u64,
    mime: String,
    sha256: Option<String>,
) -> Result<Ticket, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    let declared = check_declared(
        &filename,
        size,
        &mime,
        sha256.as_deref(),
        state.uploads.max_bytes,
    )?;
    service::ticket(&state, &user, &declared).await
}

/// The signed-in user's uploads, newest first, with their storage use.
#[server(endpoint = "assets/list")]
pub async fn list_assets() -> Result<AssetList, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::list(&state, &user).await
}

/// One of the signed-in user's uploads (the page polls it while variants are made).
#[server(endpoint = "assets/get")]
pub async fn get_asset(id: Uuid) -> Result<Asset, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::get(&state, user.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such upload."))
}

/// Deletes one of the signed-in user's uploads; its files go when no one else holds the
/// same content.
#[server(endpoint = "assets/delete")]
pub async fn delete_asset(id: Uuid) -> Result<(), AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::delete(&state, user.id, id).await
}
