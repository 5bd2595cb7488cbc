//! The HTTP provider: any OpenAI-compatible image API (`POST /v1/images/generations`,
//! answers carrying `b64_json`).
//!
//! Within one job attempt it retries 429, 5xx, timeouts and dropped connections a few times
//! (honouring `Retry-After` up to a cap); after that the failure goes back to the job queue,
//! which retries later with its own backoff. Other 4xx replies are permanent and their
//! message is passed on. A reply that is not what the protocol promises is permanent too:
//! retrying a broken implementation only burns the creator's quota.

use std::time::Duration;

use crate::create::{Format, Style};
use base64::Engine as _;
use serde::Deserialize;

use super::OpenAiSettings;
use super::provider::{ImageProvider, ImageRequest, ProviderError, ProviderFuture, RgbaImage};

/// The longest `Retry-After` we wait inside one attempt; longer waits go back to the queue.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Largest side of a decoded picture we accept (a 4096x4096 RGBA is 64 MiB).
const MAX_SIDE: u32 = 4096;

/// The OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAi {
    client: reqwest::Client,
    settings: OpenAiSettings,
    /// First retry delay within an attempt (doubled each time).
    retry_delay: Duration,
}

#[derive(Deserialize)]
struct Reply {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    b64_json: Option<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    code: Option<serde_json::Value>,
}

/// The sizes these APIs offer, chosen by the format's aspect ratio; the pipeline crops and
/// scales the answer to the format's exact size.
fn api_size(format: Format) -> &'static str {
    let (w, h) = format.size();
    let ratio = w as f32 / h as f32;
    if ratio > 1.2 {
        "1536x1024"
    } else if ratio < 0.83 {
        "1024x1536"
    } else {
        "1024x1024"
    }
}

/// What the style asks of a model, in words.
fn style_words(style: Style) -> &'static str {
    match style {
        Style::Vibrant => "vibrant, saturated colours, energetic composition",
        Style::Minimal => "minimal, lots of white space, clean geometric shapes",
        Style::Bold => "bold, high contrast, strong graphic shapes",
        Style::Retro => "retro, 1970s palette, sun stripes, film grain",
        Style::Neon => "neon glow on a dark background, synthwave",
        Style::Pastel => "soft pastel colours, gentle gradients",
        Style::Editorial => "editorial, magazine layout, refined serif typography",
        Style::Playful => "playful, rounded shapes, confetti, cheerful",
    }
}

/// The prompt sent to the model: the creator's words plus the style and the platform.
pub fn api_prompt(request: &ImageRequest) -> String {
    format!(
        "{}. Style: {}. A finished social media graphic for {}.",
        request.prompt,
        style_words(request.style),
        request.format.label()
    )
}

impl OpenAi {
    /// A provider for `settings`.
    pub fn new(settings: OpenAiSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("SocialCraft/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("image API client: {e}"))?;
        Ok(Self {
            client,
            settings,
            retry_delay: Duration::from_millis(500),
        })
    }

    /// Sets the first retry delay (tests make it short).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    fn body(&self, request: &ImageRequest) -> serde_json::Value {
        let mut body = serde_json::json!({
            "model": self.settings.model,
            "prompt": api_prompt(request),
            "n": 1,
            "size": api_size(request.format),
        });
        // gpt-image models always answer in base64 and reject the parameter; the DALL-E
        // family and most compatible servers need it.
        if !self.settings.model.starts_with("gpt-image")
            && let Some(map) = body.as_object_mut()
        {
            map.insert("response_format".into(), "b64_json".into());
        }
        body
    }

    /// One HTTP exchange. `Err((error, retry_after))`.
    async fn attempt(
        &self,
        body: &serde_json::Value,
    ) -> Result<RgbaImage, (ProviderError, Option<Duration>)> {
        let url = format!("{}/v1/images/generations", self.settings.url);
        let response = self
            .client
            .post(&url)
            .bearer_auth(self.settings.key.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "could not be reached"
                };
                (
                    ProviderError::retryable(
                        format!("image API {what}: {e}"),
                        format!("The image service {what}. We will try again."),
                    ),
                    None,
                )
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|e| {
            (
                ProviderError::retryable(
                    format!("image API reply cut off: {e}"),
                    "The image service's reply was cut off. We will try again.",
                ),
                None,
            )
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorReply>(&bytes)
                .ok()
                .map(|r| {
                    let code = r.error.code.map(|c| format!(" ({c})")).unwrap_or_default();
                    format!("{}{code}", r.error.message.unwrap_or_default())
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into());
            let detail = format!("image API answered {status}: {message}");
            let error = if status.as_u16() == 429 {
                ProviderError::retryable(
                    detail,
                    "The image service is busy (rate limited). We will try again.",
                )
            } else if status.is_server_error() {
                ProviderError::retryable(
                    detail,
                    "The image service is having trouble. We will try again.",
                )
            } else if status.as_u16() == 401 || status.as_u16() == 403 {
                ProviderError::permanent(
                    detail,
                    "The image service refused our credentials. An operator needs to check the API key.",
                )
            } else {
                ProviderError::permanent(
                    detail,
                    format!("The image service refused this request: {message}"),
                )
            };
            return Err((error, retry_after));
        }
        decode_reply(&bytes).map_err(|e| (e, None))
    }
}

/// Reads a success reply: JSON with `data[0].b64_json`, a PNG, JPEG or WebP inside.
pub fn decode_reply(bytes: &[u8]) -> Result<RgbaImage, ProviderError> {
    let malformed = |detail: String| {
        ProviderError::permanent(
            format!("malformed image API reply: {detail}"),
            "The image service sent a reply we could not read.",
        )
    };
    let reply: Reply = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let b64 = reply
        .data
        .into_iter()
        .next()
        .and_then(|d| d.b64_json)
        .ok_or_else(|| malformed("no data[0].b64_json".into()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| malformed(format!("base64: {e}")))?;
    // One decode, under limits: a hostile or broken server cannot make us allocate without
    // bound.
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&raw))
        .with_guessed_format()
        .map_err(|e| malformed(format!("image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| malformed(format!("image: {e}")))?;
    let rgba = decoded.to_rgba8();
    Ok(RgbaImage {
        width: rgba.width(),
        height: rgba.height(),
        pixels: rgba.into_raw(),
    })
}

impl ImageProvider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn cost_per_call_micros(&self) -> Option<u64> {
        Some(self.settings.cost_per_image_micros)
    }

    fn generate<'a>(&'a self, request: &'a ImageRequest) -> ProviderFuture<'a> {
        Box::pin(async move {
            let body = self.body(request);
            let mut delay = self.retry_delay;
            let mut tries = 0;
            loop {
                match self.attempt(&body).await {
                    Ok(image) => return Ok(image),
                    Err((error, retry_after)) => {
                        tries += 1;
                        if !error.retryable || tries > self.settings.retries {
                            return Err(error);
                        }
                        let wait = retry_after.unwrap_or(delay);
                        if wait > MAX_RETRY_AFTER {
                            return Err(error);
                        }
                        tracing::warn!(error = %error.detail, wait_ms = wait.as_millis() as u64, "image API failed; retrying");
                        tokio::time::sleep(wait).await;
                        delay *= 2;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_aspect_ratio() {
        assert_eq!(api_size(Format::InstagramSquare), "1024x1024");
        assert_eq!(api_size(Format::InstagramPortrait), "1024x1536");
        assert_eq!(api_size(Format::Story), "1024x1536");
        assert_eq!(api_size(Format::XPost), "1536x1024");
        assert_eq!(api_size(Format::Linkedin), "1536x1024");
        assert_eq!(api_size(Format::YoutubeThumbnail), "1536x1024");
    }

    #[test]
    fn malformed_replies_are_clear_permanent_errors() {
        for bad in [
            &b"<html>oops</html>"[..],
            br#"{"data": []}"#,
            br#"{"data": [{"url": "https://example.com/x.png"}]}"#,
            br#"{"data": [{"b64_json": "!!!not base64"}]}"#,
            br#"{"data": [{"b64_json": "aGVsbG8="}]}"#,
        ] {
            let e = decode_reply(bad).unwrap_err();
            assert!(!e.retryable, "{}", e.detail);
            assert!(
                e.detail.starts_with("malformed image API reply"),
                "{}",
                e.detail
            );
        }
    }
}
