//! `/media/*`: stored pictures, public or private, with their caching and the media
//! content security policy.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::response::Response;
use domain::state::AppState;

/// How a file that a shared image uses is cached: for a year, by anyone. Its key is
/// content-addressed, so the bytes at it never change.
pub(crate) const MEDIA_PUBLIC: &str = "public, max-age=31536000, immutable";

/// How every other file is cached: by the browser only, revalidated on each use (a cheap
/// 304), so a deleted image, or one made private again, stops showing as soon as its URL
/// stops answering.
pub(crate) const MEDIA_PRIVATE: &str = "private, max-age=0, must-revalidate";

/// `GET /media/{key}`: a stored file, streamed from the store (never read whole into memory),
/// all of it or one byte range (206; several ranges are refused with 416, see
/// `domain::media::resolve_range`). The content hash in the key is the ETag.
///
/// The URL is the capability (no session is checked): keys carry a random prefix, and
/// unsharing an image moves it to a new one. What is cached publicly is decided from
/// `media_blobs`: a file that a shared image uses is `public, immutable`; anything else is
/// `private` and revalidated. A file whose every record is gone (refs at zero, awaiting
/// deletion) is already a 404. Without the database the file is still served, as private.
pub(crate) async fn media(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(parts) = domain::media::parse_key(&key) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", parts.sha256);
    // Straight from the pool, not `state.conn()`: a file is still served (as private) without
    // the database, so its absence is a warning here, not an error to report.
    let uses = match state.db.get().await {
        Ok(mut conn) => domain::gallery::records::blob_uses(&mut conn, &key)
            .await
            // The key is a capability: logs name the content by its hash only.
            .map_err(|e| tracing::warn!(error = %e, sha256 = %parts.sha256, "media: could not read its uses")),
        Err(e) => {
            tracing::warn!(error = %e, "media: no database connection; served as private");
            Err(())
        }
    };
    // `recorded`: a record uses it, so it exists without asking the store.
    let (recorded, public) = match uses {
        Ok(Some((0, _))) => return StatusCode::NOT_FOUND.into_response(),
        Ok(Some((_, public_refs))) => (true, public_refs > 0),
        Ok(None) | Err(()) => (false, false),
    };
    let cache = [
        (
            header::CACHE_CONTROL,
            if public { MEDIA_PUBLIC } else { MEDIA_PRIVATE },
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let unavailable = |e: domain::media::MediaError| {
        tracing::error!(error = %e, sha256 = %parts.sha256, "could not read media");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    };
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let matches = header_str(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        // A revalidation must not keep a deleted file alive in someone's cache: answer 304
        // only for what still exists.
        if !recorded {
            match state.media.size(&key).await {
                Ok(Some(_)) => {}
                Ok(None) => return StatusCode::NOT_FOUND.into_response(),
                Err(e) => return unavailable(e),
            }
        }
        return (StatusCode::NOT_MODIFIED, cache, [(header::ETAG, etag)]).into_response();
    }
    // If-Range: the range only holds for this exact content; a date or another tag means
    // "send it all" (our content never changes, but a date cannot say which content it saw).
    let range_header = header_str(header::RANGE)
        .filter(|_| header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag));
    let mut range = None;
    if let Some(value) = range_header {
        let size = match state.media.size(&key).await {
            Ok(Some(size)) => size,
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(e) => return unavailable(e),
        };
        match domain::media::resolve_range(value, size) {
            domain::media::RangeAnswer::Whole => {}
            domain::media::RangeAnswer::Part(r) => range = Some(r),
            domain::media::RangeAnswer::Unsatisfiable | domain::media::RangeAnswer::Multiple => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    cache,
                    [
                        (header::CONTENT_RANGE, format!("bytes */{size}")),
                        (header::ACCEPT_RANGES, "bytes".to_owned()),
                    ],
                )
                    .into_response();
            }
        }
    }
    let partial = range.is_some();
    let stream = match state.media.stream(&key, range).await {
        Ok(Some(stream)) => stream,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return unavailable(e),
    };
    let length = stream.range.end.saturating_sub(stream.range.start);
    let mut res = (
        if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        },
        cache,
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, parts.kind.content_type().to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(stream.body),
    )
        .into_response();
    if partial
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            stream.range.start,
            stream.range.end.saturating_sub(1),
            stream.size
        ))
    {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    if parts.original {
        // An uploaded original is the uploader's bytes: a download, never a document
        // rendered on our origin (the sandboxing CSP covers the rest).
        let name = format!(
            "attachment; filename=\"{}.{}\"",
            &parts.sha256[..16],
            parts.kind.ext()
        );
        if let Ok(v) = HeaderValue::from_str(&name) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    res
}
