//! The `upload_variants` job: decodes an uploaded original once (applying its EXIF
//! orientation, or rasterising the sanitised SVG) and stores 320/720/full WebP variants.
//! Encoding from decoded pixels writes no metadata, so EXIF (GPS included), XMP and ICC text
//! never reach a variant.
//!
//! Idempotent like every job: a content no longer `processing` (done by an earlier attempt,
//! or deleted) is left alone, and files stored by an attempt that lost the race are deleted.

use std::io::Cursor;

use crate::db::DbPool;
use crate::jobs::Job;
use crate::media::{MediaKind, MediaStore};
use crate::uploads::Mime;
use crate::uploads::records;
use image::ImageDecoder;

use super::{inspect, svg};
use crate::create::provider::RgbaImage;
use crate::create::variants::encode_webp_variants;
use crate::jobs::worker::{JobFailure, JobFuture, JobHandler};

/// Runs `upload_variants` jobs.
#[derive(Clone)]
pub struct UploadVariantsHandler {
    pool: DbPool,
    media: MediaStore,
}

impl UploadVariantsHandler {
    /// A handler reading and writing `media`.
    pub fn new(pool: DbPool, media: MediaStore) -> Self {
        Self { pool, media }
    }

    async fn run_job(&self, job: &Job) -> Result<(), JobFailure> {
        let sha = job
            .payload
            .get("sha256")
            .and_then(|v| v.as_str())
            .ok_or_else(|| JobFailure::permanent("payload has no sha256"))?
            .to_owned();
        let db = |e: diesel::result::Error| JobFailure::retryable(format!("database: {e}"));
        let blob = {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| JobFailure::retryable(format!("database: {e}")))?;
            records::blob(&mut conn, &sha).await.map_err(db)?
        };
        let Some(blob) = blob.filter(|b| b.state == "processing") else {
            return Ok(());
        };
        let original = self
            .media
            .get(&blob.original_key)
            .await
            .map_err(|e| JobFailure::retryable(e.to_string()))?;
        let outcome = match original {
            None => Err("the original file is missing from storage".to_owned()),
            Some(bytes) => {
                let mime = Mime::parse(&blob.mime).unwrap_or(Mime::Png);
                tokio::task::spawn_blocking(move || make_variants(&bytes, mime))
                    .await
                    .map_err(|e| JobFailure::retryable(format!("variant task: {e}")))?
            }
        };
        let variants = match outcome {
            Ok(v) => v,
            Err(reason) => {
                // The same bytes fail the same way every time: no retry.
                let mut conn = self
                    .pool
                    .get()
                    .await
                    .map_err(|e| JobFailure::retryable(format!("database: {e}")))?;
                records::set_failed(
                    &mut conn,
                    &sha,
                    "The previews could not be made from this file.",
                )
                .await
                .map_err(db)?;
                return Err(JobFailure::permanent(reason));
            }
        };
        // Identical bytes (a picture narrower than a variant width) share one stored file.
        let mut keys: Vec<String> = Vec::with_capacity(3);
        let mut stored: Vec<String> = Vec::new();
        for (i, bytes) in variants.iter().enumerate() {
            if let Some(j) = (0..i).find(|&j| variants[j] == *bytes) {
                keys.push(keys[j].clone());
                continue;
            }
            match self.media.put(bytes.clone(), MediaKind::Webp).await {
                Ok(s) => {
                    keys.push(s.key.clone());
                    stored.push(s.key);
                }
                Err(e) => {
                    self.discard(&stored).await;
                    return Err(JobFailure::retryable(e.to_string()));
                }
            }
        }
        let recorded = {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| JobFailure::retryable(format!("database: {e}")))?;
            records::set_variants(&mut conn, &sha, [&keys[0], &keys[1], &keys[2]]).await
        };
        match recorded {
            Ok(true) => {
                crate::metrics::global().variants_made("upload", stored.len() as u64);
                tracing::info!(sha256 = %sha, "upload variants stored");
                Ok(())
            }
            Ok(false) => {
                self.discard(&stored).await;
                Ok(())
            }
            Err(e) => {
                self.discard(&stored).await;
                Err(db(e))
            }
        }
    }

    async fn discard(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.media.delete(key).await {
                tracing::warn!(key = %key, error = %e, "could not delete an unused variant");
            }
        }
    }
}

impl JobHandler for UploadVariantsHandler {
    fn kind(&self) -> &'static str {
        crate::uploads::VARIANTS_JOB
    }
    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.run_job(job))
    }
}

/// Decodes `bytes` once and encodes the three WebP variants (320, 720, full).
pub fn make_variants(bytes: &[u8], mime: Mime) -> Result<[Vec<u8>; 3], String> {
    let image = decode(bytes, mime)?;
    encode_webp_variants(&image).map_err(|e| e.to_string())
}

/// Decodes an upload to upright RGBA pixels, under the upload limits.
pub fn decode(bytes: &[u8], mime: Mime) -> Result<RgbaImage, String> {
    if mime == Mime::Svg {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let sanitized = svg::sanitize(text).map_err(|e| e.to_string())?;
        return svg::rasterize(&sanitized.svg);
    }
    let format = match mime {
        Mime::Png => image::ImageFormat::Png,
        Mime::Jpeg => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::WebP,
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(inspect::limits());
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions();
    inspect::check_size(w, h).map_err(|e| e.message)?;
    // A damaged EXIF block only loses its orientation; the pixels are what count.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    let rgba = image.into_rgba8();
    Ok(RgbaImage {
        width: rgba.width(),
        height: rgba.height(),
        pixels: rgba.into_raw(),
    })
}
