//! Gallery: "My images" (the signed-in creator's), the public Explore feed, the image page
//! (download, share, delete) and ratings.
//!
//! What lives where:
//! - Here: the server functions and [`ui`], the two galleries with their infinite scroll and
//!   the image page; the cards and pages they carry are `shared::gallery`.
//! - `domain::gallery` (server only): the signed keyset cursor, the queries, and the service
//!   these functions call.
//!
//! Pages are keyset pages on `(created_at, id)`, newest first, so page 500 costs what page 1
//! does and images arriving while someone scrolls neither repeat nor hide others.

use leptos::prelude::*;
use shared::error::AppError;
pub use shared::gallery::*;

#[cfg(feature = "ssr")]
use domain::gallery::service;
use uuid::Uuid;

pub mod ui;

/// A page of a gallery. `after` is the cursor from the previous page; a cursor from another
/// gallery, another account or tampered with is a 400. "My images" needs a signed-in user.
#[server(endpoint = "gallery/page")]
pub async fn gallery_page(scope: Scope, after: Option<String>) -> Result<Page, AppError> {
    let state = domain::state::AppState::from_context()?;
    let viewer = match scope {
        Scope::Mine => Some(domain::accounts::auth::require_user()?.id),
        Scope::Explore => None,
    };
    service::page(
        &state,
        scope,
        viewer,
        after.as_deref().filter(|a| !a.is_empty()),
    )
    .await
}

/// The image page: the owner always sees it, anyone sees it once shared; otherwise 404.
#[server(endpoint = "gallery/image")]
pub async fn get_image(id: Uuid) -> Result<ImageDetail, AppError> {
    let state = domain::state::AppState::from_context()?;
    let viewer = domain::accounts::auth::current_user().map(|u| u.id);
    service::detail(&state, viewer, id)
        .await?
        .ok_or_else(|| AppError::not_found("No such image, or it is not shared."))
}

/// Rates an image the viewer can see (1 to 5 stars; 0 clears their rating).
#[server(endpoint = "gallery/rate")]
pub async fn rate_image(id: Uuid, stars: String) -> Result<RatingView, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let stars = parse_stars(&stars).map_err(|e| AppError::validation(vec![e]))?;
    let state = domain::state::AppState::from_context()?;
    service::rate(&state, user.id, id, stars).await
}

/// Shares the viewer's image on Explore (`public` = `"true"`) or makes it private again.
#[server(endpoint = "gallery/share")]
pub async fn share_image(id: Uuid, public: String) -> Result<bool, AppError> {
    let user = domain::accounts::auth::require_user()?;
    let public = match public.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(AppError::validation(vec![shared::error::FieldError::new(
                "public",
                "invalid",
                "Choose shared or private.",
            )]));
        }
    };
    let state = domain::state::AppState::from_context()?;
    service::share(&state, user.id, id, public).await?;
    Ok(public)
}

/// Deletes the viewer's image and, unless another record uses the same content, its files;
/// then goes to "My images".
#[server(endpoint = "gallery/delete")]
pub async fn delete_image(id: Uuid) -> Result<(), AppError> {
    let user = domain::accounts::auth::require_user()?;
    let state = domain::state::AppState::from_context()?;
    service::delete(&state, user.id, id).await?;
    leptos_axum::redirect("/gallery?deleted=1");
    Ok(())
}
