//! What the gallery's server functions call.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::cache::ReloadClaim;
use super::cursor::Position;
use super::records::{self, CardRow};
use super::{ImageDetail, PAGE_SIZE, Page, RatingView, Scope, creator_name};
use crate::create::{Format, Style};
use crate::state::AppState;
use shared::error::{AppError, ErrorCode};

fn bad_cursor() -> AppError {
    AppError::new(
        ErrorCode::BadRequest,
        "That page link is not valid for this gallery. Start again from the first page.",
    )
}

fn db(e: diesel::result::Error) -> AppError {
    tracing::error!(error = %e, "gallery query failed");
    AppError::unavailable()
}

async fn load_page(
    state: &AppState,
    scope: Scope,
    viewer: Option<Uuid>,
    after: Option<Position>,
) -> Result<Page, AppError> {
    let mut conn = state.conn().await?;
    // One extra row says whether there is a next page without a count.
    let mut rows = records::page(&mut conn, scope, viewer, after, PAGE_SIZE as i64 + 1)
        .await
        .map_err(db)?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let next = match rows.last() {
        Some(last) if more => Some(state.gallery.cursors.encode(scope, viewer, last.position())),
        _ => None,
    };
    Ok(Page {
        items: rows.iter().map(CardRow::card).collect(),
        next,
    })
}

/// A page of `scope` as `viewer` sees it, after the cursor `after`.
pub async fn page(
    state: &AppState,
    scope: Scope,
    viewer: Option<Uuid>,
    after: Option<&str>,
) -> Result<Page, AppError> {
    let position = match after {
        Some(c) => Some(
            state
                .gallery
                .cursors
                .decode(scope, viewer, c)
                .map_err(|_| bad_cursor())?,
        ),
        None => None,
    };
    match scope {
        Scope::Mine => load_page(state, scope, viewer, position).await,
        Scope::Explore => {
            let gallery = &state.gallery;
            match gallery.cached(position) {
                Some((page, true)) => Ok((*page).clone()),
                Some((stale, false)) => {
                    if !gallery.claim_reload(position) {
                        return Ok((*stale).clone());
                    }
                    // Released even if this request is dropped mid-reload (client gone).
                    let _claim = ReloadClaim { gallery, position };
                    let version = gallery.public_version();
                    let loaded = load_page(state, scope, None, position).await;
                    match loaded {
                        Ok(page) => {
                            gallery.store(position, version, Arc::new(page.clone()));
                            Ok(page)
                        }
                        // The database is away: the last page is better than an error.
                        Err(_) => Ok((*stale).clone()),
                    }
                }
                None => {
                    let version = gallery.public_version();
                    let page = load_page(state, scope, None, position).await?;
                    gallery.store(position, version, Arc::new(page.clone()));
                    Ok(page)
                }
            }
        }
    }
}

/// The image page for `viewer`, or `None` when they may not see it.
pub async fn detail(
    state: &AppState,
    viewer: Option<Uuid>,
    id: Uuid,
) -> Result<Option<ImageDetail>, AppError> {
    let mut conn = state.conn().await?;
    let Some(row) = records::visible(&mut conn, viewer, id).await.map_err(db)? else {
        return Ok(None);
    };
    let my_rating = match viewer {
        Some(v) => records::rating_of(&mut conn, v, id).await.map_err(db)?,
        None => None,
    };
    let (Some(style), Some(format)) =
        (Style::from_slug(&row.style), Format::from_slug(&row.format))
    else {
        tracing::error!(image_id = %id, "image with an unknown style or format");
        return Err(AppError::internal());
    };
    Ok(Some(ImageDetail {
        card: row.card(),
        style,
        format,
        creator: creator_name(row.user_id),
        mine: viewer.is_some() && viewer == row.user_id,
        my_rating,
        png_bytes: u64::try_from(row.bytes).unwrap_or(0),
        created_at: row.created_at,
    }))
}

/// Rates (or with `None` clears the rating of) an image `user` can see.
pub async fn rate(
    state: &AppState,
    user: Uuid,
    id: Uuid,
    stars: Option<u8>,
) -> Result<RatingView, AppError> {
    let mut conn = state.conn().await?;
    let totals = records::set_rating(&mut conn, user, id, stars)
        .await
        .map_err(db)?;
    let Some((count, sum)) = totals else {
        return Err(AppError::not_found("No such image, or it is not shared."));
    };
    Ok(RatingView {
        rating: records::mean(count, sum),
        ratings: u32::try_from(count).unwrap_or(0),
        mine: stars,
    })
}

/// Shares or unshares `user`'s image.
///
/// Sharing only flips the flag: the URLs stay, and `/media/` caches them publicly from now
/// on. Unsharing also moves the image to new keys under a fresh random prefix, because a URL
/// once public may have been copied anywhere: making the image private must end it. See
/// [`unshare`].
pub async fn share(state: &AppState, user: Uuid, id: Uuid, public: bool) -> Result<(), AppError> {
    if !public {
        return unshare(state, user, id).await;
    }
    let mut conn = state.conn().await?;
    if !records::set_public(&mut conn, user, id, true)
        .await
        .map_err(db)?
    {
        return Err(AppError::not_found("No such image."));
    }
    state.gallery.explore_changed();
    tracing::info!(image_id = %id, public, "image sharing changed");
    Ok(())
}

/// How many times an unshare starts again when the image changed under it (another unshare
/// or a delete between reading its keys and moving them).
const UNSHARE_ATTEMPTS: usize = 3;

/// Makes `user`'s image private and moves its files to new keys.
///
/// Files are content-addressed and de-duplicated (`media_blobs` counts the records using each
/// key), so the files are copied, not moved: the copies get a new random prefix (S3 copies
/// server-side, the file store hard-links), the image row moves to them in one statement,
/// and then the old keys are freed like a delete's, which deletes them only if no other
/// record still uses them. Another image with the same content keeps its URL (which is the
/// same URL: that content is still public through it), and the owner sees this one at its
/// new URL.
///
/// The copies are counted (at zero) before they are written, so a process stopping midway
/// leaves files the sweeper removes. Once the move has committed the answer is success:
/// freeing the old files can fail and is left to the sweeper then.
async fn unshare(state: &AppState, user: Uuid, id: Uuid) -> Result<(), AppError> {
    for _ in 0..UNSHARE_ATTEMPTS {
        let mut conn = state.conn().await?;
        let Some((public, old)) = records::owned_media(&mut conn, user, id)
            .await
            .map_err(db)?
        else {
            return Err(AppError::not_found("No such image."));
        };
        if !public {
            // Already private: its URLs were rotated when it was unshared (or never public).
            return Ok(());
        }
        let prefix = crate::media::new_prefix();
        let new: Option<Vec<String>> = old
            .iter()
            .map(|k| crate::media::rotate_key(k, &prefix))
            .collect();
        let Some(Ok(new)) = new.map(<[String; 4]>::try_from) else {
            tracing::error!(image_id = %id, "image with a malformed media key");
            return Err(AppError::internal());
        };
        records::reserve_blobs(&mut conn, &new).await.map_err(db)?;
        drop(conn);
        let mut copied = HashSet::new();
        for (from, to) in old.iter().zip(&new) {
            if !copied.insert(to.as_str()) {
                continue;
            }
            if let Err(e) = state.media.copy(from, to).await {
                tracing::error!(image_id = %id, key = %from, error = %e, "could not copy a file to unshare it");
                discard(state, &new).await;
                return Err(AppError::unavailable());
            }
        }
        let moved = {
            let mut conn = state.conn().await?;
            records::unshare_to(&mut conn, user, id, &old, &new).await
        };
        match moved {
            Ok(true) => {}
            Ok(false) => {
                // Changed meanwhile: drop the copies and look again.
                discard(state, &new).await;
                continue;
            }
            Err(e) => {
                // Not moved (or, were the commit's outcome unknown, the copies are in use
                // and `free` leaves them alone).
                discard(state, &new).await;
                return Err(db(e));
            }
        }
        state.gallery.explore_changed();
        match free(state, &old).await {
            Ok(n) => {
                tracing::info!(image_id = %id, files_deleted = n, "image unshared; its files moved")
            }
            Err(e) => {
                tracing::warn!(image_id = %id, error = %e, "image unshared; old files left to the sweeper")
            }
        }
        return Ok(());
    }
    tracing::warn!(image_id = %id, "image kept changing while being unshared");
    Err(AppError::unavailable())
}

/// Removes copies made for a move that did not happen (those still unused).
async fn discard(state: &AppState, keys: &[String]) {
    if let Err(e) = free(state, keys).await {
        tracing::warn!(error = %e, "copies left to the sweeper");
    }
}

/// Deletes `user`'s image, then the files no other record uses.
pub async fn delete(state: &AppState, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let Some(keys) = records::delete(&mut conn, user, id).await.map_err(db)? else {
        return Err(AppError::not_found("No such image."));
    };
    state.gallery.explore_changed();
    // The record is gone either way; a file that cannot be deleted now stays counted at zero
    // and the sweeper retries it, so this never fails the request.
    match free(state, &keys).await {
        Ok(n) => tracing::info!(image_id = %id, files_deleted = n, "image deleted"),
        Err(e) => {
            tracing::warn!(image_id = %id, error = %e, "image deleted; files left to the sweeper")
        }
    }
    Ok(())
}

/// Deletes the files among `keys` that no record uses any more; returns how many.
pub async fn free(state: &AppState, keys: &[String]) -> Result<usize, AppError> {
    let mut conn = state.conn().await?;
    let media = state.media.clone();
    let removed = records::free_unreferenced(&mut conn, keys, move |key| {
        let media = media.clone();
        async move {
            match media.delete(&key).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not delete a stored file");
                    false
                }
            }
        }
    })
    .await
    .map_err(db)?;
    Ok(removed.len())
}

/// Frees blobs left unreferenced for at least `older_than` (a delete whose file removal
/// failed, or a process that stopped between the two). Returns how many files went.
pub async fn sweep(state: &AppState, older_than: Duration) -> Result<usize, AppError> {
    let keys = {
        let mut conn = state.conn().await?;
        records::stale_unreferenced(&mut conn, older_than, 1000)
            .await
            .map_err(db)?
    };
    if keys.is_empty() {
        return Ok(0);
    }
    free(state, &keys).await
}
