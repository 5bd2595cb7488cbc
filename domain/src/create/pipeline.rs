//! The `generate` job: makes each variation of a generation with its provider, encodes the
//! PNG and WebP variants, stores them, records the image, and reports progress.
//!
//! A job may run more than once (a retry, a worker that died mid-run), so it is idempotent:
//! variations already recorded are skipped, a variation is recorded only after all its files
//! are stored, and files stored for a variation someone else recorded first are deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::create::records::{self, GenerationRow, NewImage};
use crate::db::DbPool;
use crate::jobs::Job;
use crate::media::{MediaKind, MediaStore, Stored};
use uuid::Uuid;

use super::provider::{ImageProvider, ImageRequest, ProviderError};
use super::variants::{self, Encoded};
use crate::jobs::worker::{JobFailure, JobFuture, JobHandler};

/// Runs `generate` jobs.
#[derive(Clone)]
pub struct GenerateHandler {
    pool: DbPool,
    media: MediaStore,
    providers: HashMap<&'static str, Arc<dyn ImageProvider>>,
}

/// A failure with its two audiences.
struct Failure {
    /// For the job record and the log.
    detail: String,
    /// For the creator.
    user: String,
    retryable: bool,
}

impl Failure {
    fn internal(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            user: "Something went wrong on our side while making the images.".into(),
            retryable: true,
        }
    }
    fn permanent(detail: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            user: user.into(),
            retryable: false,
        }
    }
}

impl From<ProviderError> for Failure {
    fn from(e: ProviderError) -> Self {
        Self {
            detail: e.detail,
            user: e.user_message,
            retryable: e.retryable,
        }
    }
}

fn db(e: impl std::fmt::Display) -> Failure {
    Failure::internal(format!("database: {e}"))
}

impl GenerateHandler {
    /// A handler storing into `media`, with the given providers (by name).
    pub fn new(
        pool: DbPool,
        media: MediaStore,
        providers: impl IntoIterator<Item = Arc<dyn ImageProvider>>,
    ) -> Self {
        Self {
            pool,
            media,
            providers: providers.into_iter().map(|p| (p.name(), p)).collect(),
        }
    }

    async fn conn(&self) -> Result<crate::db::DbConn, Failure> {
        self.pool.get().await.map_err(db)
    }

    async fn run_job(&self, job: &Job) -> Result<(), JobFailure> {
        let id = job
            .payload
            .get("generation_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| JobFailure::permanent("payload has no generation_id"))?;
        let result = self.generate(id).await;
        let Err(failure) = result else {
            return Ok(());
        };
        // The job is final when the failure is permanent or this was its last attempt; the
        // queue decides the same way.
        let last = !failure.retryable || job.attempts >= job.max_attempts;
        let recorded = match self.conn().await {
            Ok(mut c) if last => records::mark_failed(&mut c, id, &failure.user)
                .await
                .map_err(db),
            Ok(mut c) => records::mark_retrying(&mut c, id, &failure.user)
                .await
                .map_err(db),
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e.detail, "could not record the generation's failure");
        }
        Err(JobFailure {
            message: failure.detail,
            retryable: failure.retryable,
        })
    }

    async fn generate(&self, id: Uuid) -> Result<(), Failure> {
        let (row, done) = {
            let mut c = self.conn().await?;
            let Some(row) = records::find(&mut c, id).await.map_err(db)? else {
                // Deleted before it ran: nothing to do.
                tracing::info!(generation_id = %id, "generation no longer exists; skipping");
                return Ok(());
            };
            if row.status == "succeeded" {
                return Ok(());
            }
            records::mark_running(&mut c, id).await.map_err(db)?;
            let done: Vec<i32> = records::images_of(&mut c, id)
                .await
                .map_err(db)?
                .into_iter()
                .map(|i| i.variation)
                .collect();
            (row, done)
        };
        let (Some(style), Some(format)) = (row.style(), row.format()) else {
            return Err(Failure::permanent(
                format!("unknown style {:?} or format {:?}", row.style, row.format),
                "This generation's style or format is no longer available.",
            ));
        };
        let provider = self.providers.get(row.provider.as_str()).ok_or_else(|| {
            Failure::permanent(
                format!(
                    "provider {:?} is not configured on this worker",
                    row.provider
                ),
                "The image provider for this generation is not available.",
            )
        })?;
        let kit: Option<crate::brands::BrandKit> = row
            .brand
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let look = kit.as_ref().map(|k| super::render::BrandLook {
            colors: k.colors.clone(),
            font: k.font,
        });
        let logo = match kit.as_ref().and_then(|k| k.logo_key.as_deref()) {
            Some(key) => self.logo(key).await,
            None => None,
        };
        let total = u8::try_from(row.variations.clamp(1, 4)).unwrap_or(1);
        for i in 0..total {
            if done.contains(&i32::from(i)) {
                continue;
            }
            let started = Instant::now();
            let request = ImageRequest {
                prompt: row.prompt.clone(),
                style,
                format,
                seed: row.variation_seed(i) as u64,
                brand: look.clone(),
            };
            let asked = Instant::now();
            let picture = provider.generate(&request).await;
            crate::metrics::global().observe_provider(
                row.provider.as_str(),
                picture.is_ok(),
                asked.elapsed(),
            );
            let picture = picture?;
            if let Some(cost) = provider.cost_per_call_micros() {
                // A paid call answered: in the ledger whatever happens to the picture next
                // (a failure to store it does not make the call free). A ledger that cannot
                // be written is logged, not a reason to pay for the picture again.
                let recorded = match self.conn().await {
                    Ok(mut c) => crate::accounts::quota::record_provider_call(&mut c, id, cost)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(_) => Err("no database connection".to_owned()),
                };
                if let Err(e) = recorded {
                    tracing::error!(generation_id = %id, error = %e, "provider call not recorded in the usage ledger");
                }
            }
            let (w, h) = format.size();
            let logo = logo.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                variants::fit(picture, w, h).and_then(|mut p| {
                    if let Some(logo) = &logo {
                        super::logo::place(&mut p, logo, format)?;
                    }
                    variants::encode_all(&p)
                })
            })
            .await
            .map_err(|e| Failure::internal(format!("encoder task: {e}")))?
            .map_err(|e| Failure::internal(e.to_string()))?;
            let elapsed = started.elapsed();
            self.store(&row, i, encoded, elapsed.as_millis()).await?;
            crate::metrics::global().variants_made("generation", 3);
            let progress = (u32::from(i) + 1) * 100 / u32::from(total);
            let mut c = self.conn().await?;
            records::set_progress(&mut c, id, progress as u8)
                .await
                .map_err(db)?;
            tracing::info!(generation_id = %id, variation = i, ms = elapsed.as_millis() as u64, "variation stored");
        }
        let mut c = self.conn().await?;
        records::mark_succeeded(&mut c, id).await.map_err(db)?;
        Ok(())
    }

    /// The kit's logo picture, decoded; `None` (logged) when it is gone or unreadable, so a
    /// deleted logo never fails a generation.
    async fn logo(&self, key: &str) -> Option<Arc<super::provider::RgbaImage>> {
        let bytes = match self.media.get(key).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::warn!(key, "brand logo missing from storage; rendering without it");
                return None;
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "could not read the brand logo; rendering without it");
                return None;
            }
        };
        let decoded = tokio::task::spawn_blocking(move || {
            crate::uploads::variants::decode(&bytes, crate::uploads::Mime::Webp)
        })
        .await;
        match decoded {
            Ok(Ok(img)) => Some(Arc::new(img)),
            other => {
                tracing::warn!(key, outcome = ?other.map(|r| r.map(|_| ())), "brand logo did not decode");
                None
            }
        }
    }

    /// Stores the four files, then records the image. Files of a variation that turns out to
    /// be recorded already, or that cannot be recorded, are deleted again.
    async fn store(
        &self,
        row: &GenerationRow,
        variation: u8,
        encoded: Encoded,
        render_ms: u128,
    ) -> Result<(), Failure> {
        let Encoded {
            width,
            height,
            png,
            webp_320,
            webp_720,
            webp_full,
        } = encoded;
        let mut stored: Vec<Stored> = Vec::with_capacity(4);
        let files = [
            (png, MediaKind::Png),
            (webp_320, MediaKind::Webp),
            (webp_720, MediaKind::Webp),
            (webp_full, MediaKind::Webp),
        ];
        for (bytes, kind) in files {
            match self.media.put(bytes, kind).await {
                Ok(s) => stored.push(s),
                Err(e) => {
                    self.discard(&stored).await;
                    return Err(Failure::internal(e.to_string()));
                }
            }
        }
        let [png, small, medium, full] = <[Stored; 4]>::try_from(stored.clone())
            .map_err(|_| Failure::internal("stored file count"))?;
        let image = NewImage {
            generation_id: row.id,
            variation: i32::from(variation),
            seed: row.variation_seed(variation),
            width: width as i32,
            height: height as i32,
            png_key: png.key,
            webp_320_key: small.key,
            webp_720_key: medium.key,
            webp_full_key: full.key,
            sha256: png.sha256,
            bytes: png.size as i64,
            render_ms: render_ms.min(i32::MAX as u128) as i32,
            user_id: row.user_id,
        };
        let recorded = match self.conn().await {
            Ok(mut c) => records::insert_image(&mut c, &image).await.map_err(db),
            Err(e) => Err(e),
        };
        match recorded {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.discard(&stored).await;
                Ok(())
            }
            Err(e) => {
                self.discard(&stored).await;
                Err(e)
            }
        }
    }

    async fn discard(&self, stored: &[Stored]) {
        for s in stored {
            if let Err(e) = self.media.delete(&s.key).await {
                tracing::warn!(key = %s.key, error = %e, "could not delete an unrecorded file");
            }
        }
    }
}

impl JobHandler for GenerateHandler {
    fn kind(&self) -> &'static str {
        crate::create::GENERATE_JOB
    }

    fn run<'a>(&'a self, job: &'a Job) -> JobFuture<'a> {
        Box::pin(self.run_job(job))
    }
}
