//! Image providers behind one trait: the built-in renderer (the default) and an
//! OpenAI-compatible HTTP API ([`super::openai`]). The pipeline asks a provider for one picture
//! per variation and makes the variants itself, so every provider's output ends up the same:
//! the format's exact size, PNG plus WebP variants.

use std::future::Future;
use std::pin::Pin;

use crate::create::{Format, Style};

use super::render::{RenderRequest, render_pixmap};

/// What to make: one picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    /// The creator's prompt.
    pub prompt: String,
    /// The style.
    pub style: Style,
    /// The platform format (the output is made to fit its exact size).
    pub format: Format,
    /// The variation's seed.
    pub seed: u64,
    /// The brand kit's colours and font (the built-in renderer paints with them).
    pub brand: Option<super::render::BrandLook>,
}

/// A picture as a provider returns it: straight-alpha RGBA8, any size.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, row by row.
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbaImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbaImage({}x{})", self.width, self.height)
    }
}

/// Why a provider could not make a picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ProviderError {
    /// Technical detail for the job record and the log.
    pub detail: String,
    /// A sentence for the creator.
    pub user_message: String,
    /// Whether trying again later could work (rate limits, outages, timeouts).
    pub retryable: bool,
}

impl ProviderError {
    /// A failure worth retrying later.
    pub fn retryable(detail: impl Into<String>, user_message: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            user_message: user_message.into(),
            retryable: true,
        }
    }
    /// A failure no retry fixes.
    pub fn permanent(detail: impl Into<String>, user_message: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            user_message: user_message.into(),
            retryable: false,
        }
    }
}

/// The future a provider returns.
pub type ProviderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RgbaImage, ProviderError>> + Send + 'a>>;

/// Makes pictures from prompts.
pub trait ImageProvider: Send + Sync + 'static {
    /// The name recorded on each generation (`builtin`, `openai`).
    fn name(&self) -> &'static str;
    /// Makes one picture.
    fn generate<'a>(&'a self, request: &'a ImageRequest) -> ProviderFuture<'a>;
    /// What one picture costs (millionths of the operator's currency), for a provider whose
    /// calls are recorded in the usage ledger; `None` for one that costs nothing to run.
    fn cost_per_call_micros(&self) -> Option<u64> {
        None
    }
}

/// The built-in renderer as a provider: no network, no key, deterministic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

/// Renders `request` with the built-in renderer, on the calling thread.
pub fn render_builtin(request: &ImageRequest) -> Result<RgbaImage, ProviderError> {
    let pixmap = render_pixmap(&RenderRequest {
        prompt: &request.prompt,
        style: request.style,
        format: request.format,
        seed: request.seed,
        brand: request.brand.as_ref(),
    })
    .map_err(|e| ProviderError::permanent(e.to_string(), "The built-in renderer failed."))?;
    let (width, height) = (pixmap.width(), pixmap.height());
    let mut pixels = pixmap.take();
    unpremultiply(&mut pixels);
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}

/// tiny-skia keeps premultiplied alpha; encoders want straight alpha. The renderer paints an
/// opaque background, so this is normally a scan that changes nothing.
fn unpremultiply(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(4) {
        let a = px[3];
        if a != 255 && a != 0 {
            for c in &mut px[..3] {
                *c = ((u16::from(*c) * 255 + u16::from(a) / 2) / u16::from(a)).min(255) as u8;
            }
        }
    }
}

impl ImageProvider for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn generate<'a>(&'a self, request: &'a ImageRequest) -> ProviderFuture<'a> {
        let request = request.clone();
        Box::pin(async move {
            // Rasterising is CPU work: keep it off the async threads serving requests.
            tokio::task::spawn_blocking(move || render_builtin(&request))
                .await
                .map_err(|e| {
                    ProviderError::permanent(
                        format!("renderer task failed: {e}"),
                        "The built-in renderer failed.",
                    )
                })?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpremultiply_restores_straight_alpha() {
        let mut px = [64, 32, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn builtin_output_is_the_format_size_and_opaque() {
        let img = render_builtin(&ImageRequest {
            prompt: "Grand opening this Saturday".into(),
            style: Style::Minimal,
            format: Format::Linkedin,
            seed: 3,
            brand: None,
        })
        .unwrap();
        assert_eq!((img.width, img.height), (1200, 627));
        assert_eq!(img.pixels.len(), 1200 * 627 * 4);
        assert!(img.pixels.chunks_exact(4).all(|p| p[3] == 255));
    }
}
