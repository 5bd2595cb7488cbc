//! Upload services: upload URLs, listing, deleting. The upload itself (streaming, checks,
//! storing) is `ingest`.

use chrono::Utc;
use uuid::Uuid;

use super::records::{self, AssetRow, BlobRow};
use super::token::UploadClaims;
use super::{Asset, AssetList, AssetState, Declared, Mime, Ticket, codes, reject};
use crate::accounts::auth::CurrentUser;
use crate::state::AppState;
use shared::error::{AppError, ErrorCode};

/// Most assets the assets page lists.
pub const LIST_LIMIT: i64 = 500;

fn db(what: &str) -> impl FnOnce(diesel::result::Error) -> AppError + '_ {
    move |e| shared::error::query_failed(what, e)
}

/// Issues an upload URL for `declared`, after checking the user's storage has room for it.
pub async fn ticket(
    state: &AppState,
    user: &CurrentUser,
    declared: &Declared,
) -> Result<Ticket, AppError> {
    let limits = state.auth.settings.plans.of(user.tier);
    let mut conn = state.conn().await?;
    let used = crate::accounts::quota::storage_used(&mut conn, user.id).await?;
    if used.saturating_add(declared.size) > limits.storage_bytes {
        return Err(quota_message(used, declared.size, limits.storage_bytes));
    }
    let id = Uuid::new_v4();
    let expires_at = Utc::now() + chrono::Duration::seconds(super::TICKET_TTL_SECS);
    records::insert_ticket(&mut conn, id, user.id, &declared.filename, expires_at)
        .await
        .map_err(db("insert upload ticket"))?;
    let prefix = Uuid::new_v4().simple().to_string()[..16].to_owned();
    let token = state.uploads.key.sign(&UploadClaims {
        ticket: id,
        user: user.id,
        size: declared.size,
        mime: declared.mime,
        sha256: declared.sha256.clone(),
        prefix,
        exp: expires_at.timestamp(),
    });
    Ok(Ticket {
        url: format!("/api/uploads/{token}"),
        expires_at,
    })
}

/// The quota refusal, in the upload's own terms.
pub fn quota_message(used: u64, adding: u64, limit: u64) -> AppError {
    reject(
        ErrorCode::QuotaExceeded,
        codes::QUOTA,
        format!(
            "This file would take you to {} of your plan's {} of storage. Delete some uploads or upgrade your plan.",
            super::size_label(used.saturating_add(adding)),
            super::size_label(limit)
        ),
    )
}

/// The URL of a stored file.
pub fn media_url(key: &str) -> String {
    format!("/media/{key}")
}

/// An asset as its owner sees it.
pub fn to_asset(a: &AssetRow, b: &BlobRow) -> Asset {
    Asset {
        id: a.id,
        filename: a.filename.clone(),
        mime: Mime::parse(&b.mime).unwrap_or(Mime::Png),
        bytes: a.bytes.max(0) as u64,
        width: b.width.max(0) as u32,
        height: b.height.max(0) as u32,
        state: AssetState::from_db(&b.state),
        error: b.error.clone(),
        original_url: media_url(&b.original_key),
        thumb_url: b.webp_320_key.as_deref().map(media_url),
        preview_url: b.webp_720_key.as_deref().map(media_url),
        full_url: b.webp_full_key.as_deref().map(media_url),
        created_at: a.created_at,
    }
}

/// The user's assets and storage use.
pub async fn list(state: &AppState, user: &CurrentUser) -> Result<AssetList, AppError> {
    let mut conn = state.conn().await?;
    let rows = records::list(&mut conn, user.id, LIST_LIMIT)
        .await
        .map_err(db("list assets"))?;
    let used = crate::accounts::quota::storage_used(&mut conn, user.id).await?;
    Ok(AssetList {
        assets: rows.iter().map(|(a, b)| to_asset(a, b)).collect(),
        used_bytes: used,
        limit_bytes: state.auth.settings.plans.of(user.tier).storage_bytes,
        max_upload_bytes: state.uploads.max_bytes,
    })
}

/// One of the user's assets.
pub async fn get(state: &AppState, user: Uuid, id: Uuid) -> Result<Option<Asset>, AppError> {
    let mut conn = state.conn().await?;
    Ok(records::find(&mut conn, user, id)
        .await
        .map_err(db("find asset"))?
        .map(|(a, b)| to_asset(&a, &b)))
}

/// Deletes the user's asset, gives back its storage, and deletes its files when no one else
/// holds the same content (a file that cannot be deleted now is left to the sweeper).
pub async fn delete(state: &AppState, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let Some((bytes, keys)) = records::delete(&mut conn, user, id)
        .await
        .map_err(db("delete asset"))?
    else {
        return Err(AppError::not_found("No such upload."));
    };
    crate::accounts::quota::release_storage(&mut conn, user, bytes.max(0) as u64).await?;
    drop(conn);
    if !keys.is_empty() {
        match crate::gallery::service::free(state, &keys).await {
            Ok(n) => tracing::info!(asset_id = %id, files_deleted = n, "asset deleted"),
            Err(e) => {
                tracing::warn!(asset_id = %id, error = %e, "asset deleted; files left to the sweeper")
            }
        }
    } else {
        tracing::info!(asset_id = %id, "asset deleted; its content is still used");
    }
    Ok(())
}

/// Removes contents whose owners' accounts went (their rows lost every reference long ago)
/// and expired tickets; returns how many files went.
pub async fn sweep(state: &AppState, older_than: std::time::Duration) -> Result<usize, AppError> {
    let keys = {
        let mut conn = state.conn().await?;
        records::prune_tickets(&mut conn)
            .await
            .map_err(db("prune upload tickets"))?;
        records::delete_stale_blobs(&mut conn, older_than)
            .await
            .map_err(db("delete stale upload blobs"))?
    };
    if keys.is_empty() {
        return Ok(0);
    }
    crate::gallery::service::free(state, &keys).await
}
