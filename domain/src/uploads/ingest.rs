//! `PUT /api/uploads/{token}`: receives one file for the upload URL `crate::uploads` issued,
//! checks it, and stores it once per content; plus the job that makes its variants.
//!
//! Order of work, each step refusing with a stable code and leaving nothing behind:
//! 1. The token: signature, expiry, owner; then the ticket row makes it single-use.
//! 2. The storage quota is reserved for the declared size (given back on any failure).
//! 3. The body streams to a spool file while it is hashed and counted: longer than declared
//!    stops at once; shorter, or another SHA-256 than declared, is refused at the end.
//! 4. The type comes from the bytes' magic number and must be the declared one.
//! 5. Content already stored (by SHA-256) is not checked or stored again: the user gets their
//!    existing asset, or a new asset on the stored content.
//! 6. Otherwise the file is inspected (`inspect`: limits from the header, structure to the end
//!    marker, a full decode; SVG sanitised), then streamed from the spool to the store, and
//!    the blob, the asset and the variants job are recorded in one transaction.

use super::{inspect, metadata};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::accounts::auth::CurrentUser;
use crate::state::AppState;
use crate::uploads::records::{self, Consumed, NewBlob, Recorded};
use crate::uploads::service::to_asset;
use crate::uploads::token::{UploadClaims, UploadTokenError};
use crate::uploads::{Mime, UploadOutcome, codes, reject};
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use shared::error::{AppError, ErrorCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Upload settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadsConfig {
    /// `UPLOAD_MAX_BYTES`: the largest file, default 10,000,000 (10 MB).
    pub max_bytes: u64,
    /// `UPLOAD_TIMEOUT_SECS`: how long one upload request may take, default 600 (a 10 MB
    /// file on a slow phone link); other requests keep `REQUEST_TIMEOUT_SECS`.
    pub timeout: Duration,
}

/// Bytes kept from the start of the body to decide its type.
const HEAD_BYTES: usize = 1024;

/// Full decodes at once: each may hold up to 160 MB of pixels, so a burst of uploads queues
/// here instead of exhausting memory.
fn decode_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(2))
}

fn respond(e: AppError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

fn token_error(e: UploadTokenError) -> AppError {
    match e {
        UploadTokenError::Malformed | UploadTokenError::Forged => reject(
            ErrorCode::BadRequest,
            codes::TOKEN_INVALID,
            "This upload link is not valid. Start the upload again.",
        ),
        UploadTokenError::Expired => expired(),
    }
}

fn expired() -> AppError {
    reject(
        ErrorCode::Forbidden,
        codes::TOKEN_EXPIRED,
        "This upload link has expired. Start the upload again.",
    )
}

/// The spool file, removed when dropped (whatever happened).
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the upload at `from` to `to` without its metadata.
fn strip_metadata(from: &Path, to: &Path, mime: Mime) -> Result<(), AppError> {
    let spool_failed = |e: std::io::Error| {
        tracing::error!(error = %e, "could not rewrite an upload without its metadata");
        AppError::unavailable()
    };
    let data = std::fs::read(from).map_err(spool_failed)?;
    let clean = metadata::strip(mime, &data).map_err(|_| {
        reject(
            ErrorCode::Validation,
            codes::DECODE_FAILED,
            "This image's structure could not be read. Export it again and upload the new file.",
        )
    })?;
    std::fs::write(to, clean).map_err(spool_failed)
}

/// The handler.
pub async fn put_upload(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    UrlPath(token): UrlPath<String>,
    body: Body,
) -> Response {
    let Some(Extension(user)) = user else {
        return respond(AppError::new(ErrorCode::Unauthorized, "Sign in to upload."));
    };
    match receive(&state, &user, &token, body).await {
        Ok((outcome, created)) => {
            if outcome.duplicate {
                crate::metrics::global().duplicates_avoided.inc();
            }
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(outcome)).into_response()
        }
        Err(e) => respond(e),
    }
}

/// Checks the token, reserves the quota, and runs the upload; the reservation is given back
/// when the upload fails or turns out to need no new storage. `Ok((outcome, new_asset))`.
async fn receive(
    state: &AppState,
    user: &CurrentUser,
    token: &str,
    body: Body,
) -> Result<(UploadOutcome, bool), AppError> {
    let claims = state
        .uploads
        .key
        .verify(token, chrono::Utc::now().timestamp())
        .map_err(token_error)?;
    if claims.user != user.id {
        return Err(reject(
            ErrorCode::Forbidden,
            codes::TOKEN_WRONG_USER,
            "This upload link belongs to another account.",
        ));
    }
    // Checked again here: the cap may have been lowered since the link was issued.
    if claims.size == 0 || claims.size > state.uploads.max_bytes {
        return Err(crate::uploads::check_declared(
            "f",
            claims.size,
            claims.mime.as_str(),
            None,
            state.uploads.max_bytes,
        )
        .err()
        .unwrap_or_else(AppError::internal));
    }
    let filename = {
        let mut conn = state.conn().await?;
        let consumed = records::consume_ticket(&mut conn, claims.ticket, user.id)
            .await
            .map_err(|e| shared::error::query_failed("consume upload ticket", e))?;
        let filename = match consumed {
            Consumed::Ok(name) => name,
            Consumed::Used => {
                return Err(reject(
                    ErrorCode::Forbidden,
                    codes::TOKEN_USED,
                    "This upload link was used already. Start the upload again.",
                ));
            }
            Consumed::Expired => return Err(expired()),
            Consumed::Unknown => return Err(token_error(UploadTokenError::Forged)),
        };
        let limits = state.auth.settings.plans.of(user.tier);
        if let Err(e) =
            crate::accounts::quota::reserve_storage(&mut conn, user.id, claims.size, limits).await
        {
            if e.code == ErrorCode::QuotaExceeded {
                let used = crate::accounts::quota::storage_used(&mut conn, user.id).await?;
                return Err(crate::uploads::service::quota_message(
                    used,
                    claims.size,
                    limits.storage_bytes,
                ));
            }
            return Err(e);
        }
        filename
    };
    let result = upload(state, user, &claims, &filename, body).await;
    let keep = matches!(&result, Ok((_, true)));
    if !keep {
        // Failed, or the user already had this content: nothing new is held.
        match state.conn().await {
            Ok(mut conn) => {
                if let Err(e) =
                    crate::accounts::quota::release_storage(&mut conn, user.id, claims.size).await
                {
                    tracing::error!(error = %e, "could not give back an upload's reserved storage");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not give back an upload's reserved storage")
            }
        }
    }
    result
}

/// Receives, checks and records the body. `Ok((outcome, new_asset))`: a new asset holds the
/// reserved storage.
async fn upload(
    state: &AppState,
    user: &CurrentUser,
    claims: &UploadClaims,
    filename: &str,
    body: Body,
) -> Result<(UploadOutcome, bool), AppError> {
    let spool = Spool(
        state
            .uploads
            .spool_dir
            .join(format!("{}.part", claims.ticket)),
    );
    let (sha256, head) = spool_body(&spool.0, &state.uploads.spool_dir, body, claims.size).await?;
    if claims.sha256.as_deref().is_some_and(|d| d != sha256) {
        return Err(reject(
            ErrorCode::Validation,
            codes::SHA256_MISMATCH,
            "The file changed on the way (its checksum does not match). Upload it again.",
        ));
    }
    let Some(actual) = Mime::sniff(&head) else {
        return Err(reject(
            ErrorCode::UnsupportedMediaType,
            codes::UNSUPPORTED_TYPE,
            "This file is not a PNG, JPEG, WebP or SVG image.",
        ));
    };
    if actual != claims.mime {
        return Err(reject(
            ErrorCode::UnsupportedMediaType,
            codes::TYPE_MISMATCH,
            format!(
                "This file was sent as {} but its content is {}.",
                claims.mime.label(),
                actual.label()
            ),
        ));
    }

    // Content we hold already: checked and stored before, so neither again.
    let (own, stored) = {
        let mut conn = state.conn().await?;
        let own = records::asset_by_content(&mut conn, user.id, &sha256)
            .await
            .map_err(|e| shared::error::query_failed("find asset by content", e))?;
        if let Some((asset, blob)) = &own {
            records::count_duplicate(&mut conn, &sha256)
                .await
                .map_err(|e| shared::error::query_failed("count duplicate", e))?;
            tracing::info!(asset_id = %asset.id, "upload was already this user's asset");
            return Ok((
                UploadOutcome {
                    asset: to_asset(asset, blob),
                    duplicate: true,
                },
                false,
            ));
        }
        let stored = records::blob(&mut conn, &sha256)
            .await
            .map_err(|e| shared::error::query_failed("find blob", e))?;
        (own, stored)
    };
    debug_assert!(own.is_none());

    let new_blob = match &stored {
        Some(b) => (b.original_key.clone(), b.width, b.height),
        None => {
            let inspected = {
                let _slot = decode_slots()
                    .acquire()
                    .await
                    .map_err(|_| AppError::internal())?;
                let path = spool.0.clone();
                let mime = claims.mime;
                tokio::task::spawn_blocking(move || inspect::inspect(&path, mime))
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "upload inspection panicked");
                        AppError::internal()
                    })??
            };
            let key = format!(
                "{}{}/{sha256}.{}",
                crate::media::UPLOADS_PREFIX,
                claims.prefix,
                claims.mime.ext()
            );
            // What is stored is never the bytes as sent: an SVG as rebuilt (see `svg`), a
            // raster original without its metadata (GPS and the rest, see `metadata`), under
            // the key of the upload as sent.
            let clean = Spool(spool.0.with_extension("clean"));
            match &inspected.sanitized {
                Some(svg) => {
                    tokio::fs::write(&clean.0, svg.as_bytes())
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, "could not write a sanitised upload");
                            AppError::unavailable()
                        })?;
                }
                None => {
                    let (from, to, mime) = (spool.0.clone(), clean.0.clone(), claims.mime);
                    tokio::task::spawn_blocking(move || strip_metadata(&from, &to, mime))
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, "taking out an upload's metadata panicked");
                            AppError::internal()
                        })??;
                }
            }
            state.media.put_file(&key, &clean.0).await.map_err(|e| {
                tracing::error!(error = %e, "could not store an upload");
                AppError::unavailable()
            })?;
            (key, inspected.width as i32, inspected.height as i32)
        }
    };
    let (key, width, height) = new_blob;
    let recorded = {
        let mut conn = state.conn().await?;
        let recorded = records::record(
            &mut conn,
            user.id,
            filename,
            NewBlob {
                sha256: &sha256,
                mime: claims.mime.as_str(),
                // The upload's size, which the quota counts (a rebuilt SVG's differs a little).
                bytes: claims.size as i64,
                width,
                height,
                original_key: &key,
            },
        )
        .await;
        // The variants job is queued inside that transaction; wake a worker now it is committed.
        if let Ok(Recorded::Created {
            blob_created: true, ..
        }) = &recorded
        {
            crate::jobs::wake(&mut conn, crate::uploads::VARIANTS_JOB).await;
        }
        recorded
    };
    let recorded = match recorded {
        Ok(r) => r,
        Err(e) => {
            // A statement the server refused rolled everything back; anything else (the
            // connection lost, even at COMMIT) may have committed with only its answer lost.
            let definite = matches!(
                &e,
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation
                        | diesel::result::DatabaseErrorKind::ForeignKeyViolation
                        | diesel::result::DatabaseErrorKind::NotNullViolation
                        | diesel::result::DatabaseErrorKind::CheckViolation
                        | diesel::result::DatabaseErrorKind::SerializationFailure
                        | diesel::result::DatabaseErrorKind::ReadOnlyTransaction,
                    _
                )
            );
            let failure = shared::error::query_failed("record upload", e);
            // Telling the creator to try again about an upload that is stored, or deleting
            // the file its row names, would be untrue: look first.
            return match recorded_after_all(state, user, &sha256, !definite).await {
                Ok(Some((asset, blob))) => {
                    tracing::warn!(asset_id = %asset.id, "recording an upload reported an error, but it was committed");
                    if stored.is_none() && blob.original_key != key {
                        remove_surplus(state, &key).await;
                    }
                    if blob.state == "processing"
                        && let Ok(mut conn) = state.conn().await
                    {
                        crate::jobs::wake(&mut conn, crate::uploads::VARIANTS_JOB).await;
                    }
                    let duplicate = blob.original_key != key;
                    Ok((
                        UploadOutcome {
                            asset: to_asset(&asset, &blob),
                            duplicate,
                        },
                        true,
                    ))
                }
                Ok(None) if definite => {
                    // Rolled back: the file is ours alone.
                    if stored.is_none() {
                        remove_surplus(state, &key).await;
                    }
                    Err(failure)
                }
                // Not there (yet), or cannot tell: the file stays. A stored file with no row
                // costs only space; a row whose file was deleted is a broken asset.
                _ => Err(failure),
            };
        }
    };
    match recorded {
        Recorded::Created {
            asset,
            blob,
            blob_created,
        } => {
            if stored.is_none() && !blob_created {
                // Someone stored the same content while we checked ours: theirs is used.
                remove_surplus(state, &key).await;
            }
            let duplicate = !blob_created;
            tracing::info!(asset_id = %asset.id, bytes = asset.bytes, duplicate, "upload stored");
            Ok((
                UploadOutcome {
                    asset: to_asset(&asset, &blob),
                    duplicate,
                },
                true,
            ))
        }
        Recorded::Existing { asset, blob } => {
            if stored.is_none() {
                remove_surplus(state, &key).await;
            }
            Ok((
                UploadOutcome {
                    asset: to_asset(&asset, &blob),
                    duplicate: true,
                },
                false,
            ))
        }
    }
}

/// After recording failed: the user's asset on this content if it is there anyway. With
/// `patient`, an absent asset is looked for twice more over 300 ms: a commit whose answer
/// was lost becomes visible once its server process has ended.
async fn recorded_after_all(
    state: &AppState,
    user: &CurrentUser,
    sha256: &str,
    patient: bool,
) -> Result<Option<(records::AssetRow, records::BlobRow)>, AppError> {
    let tries = if patient { 3 } else { 1 };
    for attempt in 1..=tries {
        let mut conn = state.conn().await?;
        let found = records::asset_by_content(&mut conn, user.id, sha256)
            .await
            .map_err(|e| shared::error::query_failed("confirm an upload's record", e))?;
        if found.is_some() || attempt == tries {
            return Ok(found);
        }
        drop(conn);
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    Ok(None)
}

async fn remove_surplus(state: &AppState, key: &str) {
    if let Err(e) = state.media.delete(key).await {
        tracing::warn!(key, error = %e, "could not delete a surplus upload file");
    }
}

fn size_mismatch(declared: u64, got: u64) -> AppError {
    let what = if got > declared { "larger" } else { "smaller" };
    reject(
        ErrorCode::Validation,
        codes::SIZE_MISMATCH,
        format!("The file sent is {what} than declared ({declared} bytes). Upload it again."),
    )
}

/// Streams `body` into `path`, hashing and counting; stops as soon as it passes `declared`.
/// Returns the SHA-256 (hex) and the first bytes.
async fn spool_body(
    path: &Path,
    dir: &Path,
    body: Body,
    declared: u64,
) -> Result<(String, Vec<u8>), AppError> {
    let io = |e: std::io::Error| {
        tracing::error!(error = %e, "could not write an upload's spool file");
        AppError::unavailable()
    };
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let mut file = tokio::io::BufWriter::with_capacity(
        256 * 1024,
        tokio::fs::File::create(path).await.map_err(io)?,
    );
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut got: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            // The body limit cut it off, or the client went away.
            tracing::info!(error = %e, "upload body ended early");
            size_mismatch(declared, got.max(declared.saturating_add(1)))
        })?;
        got += chunk.len() as u64;
        if got > declared {
            return Err(size_mismatch(declared, got));
        }
        if head.len() < HEAD_BYTES {
            let n = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..n]);
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    if got != declared {
        return Err(size_mismatch(declared, got));
    }
    file.flush().await.map_err(io)?;
    let digest = hasher.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), head))
}
