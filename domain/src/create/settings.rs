//! Create settings and what they build: the image providers and the moderation blocklist.

use crate::secret::Secret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::create::moderation::Blocklist;

use super::openai;
use super::provider::{Builtin, ImageProvider};

/// Which image provider makes new generations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderConfig {
    /// `IMAGE_PROVIDER=builtin` (the default): the built-in renderer; no network, no key.
    Builtin,
    /// `IMAGE_PROVIDER=openai`: an OpenAI-compatible `/v1/images/generations` API.
    OpenAi(OpenAiSettings),
}

/// An OpenAI-compatible image API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiSettings {
    /// `IMAGE_API_URL`: the base URL, default `https://api.openai.com`.
    pub url: String,
    /// `IMAGE_API_KEY` (required for `openai`).
    pub key: Secret,
    /// `IMAGE_API_MODEL`, default `gpt-image-1`.
    pub model: String,
    /// `IMAGE_API_TIMEOUT_SECS`: one request's limit, default 120.
    pub timeout: Duration,
    /// `IMAGE_API_RETRIES`: extra tries on 429, 5xx and timeouts within one job attempt,
    /// default 2 (the job queue retries later again).
    pub retries: u32,
    /// `IMAGE_API_COST_PER_IMAGE`: what one image costs, recorded in the usage ledger with
    /// each call, in millionths of the operator's currency (given as a decimal, default 0).
    pub cost_per_image_micros: u64,
}

/// Create settings.
#[derive(Clone, Debug)]
pub struct CreateConfig {
    /// The provider.
    pub provider: ProviderConfig,
    /// `MODERATION_BLOCKLIST_FILE`: replaces the shipped blocklist.
    pub blocklist_file: Option<PathBuf>,
    /// `MODERATION_BLOCKLIST`: more rules, separated by `;` (`spam: buy likes; crypto pump`).
    pub blocklist_extra: Option<String>,
}

/// The shipped blocklist, used unless `MODERATION_BLOCKLIST_FILE` replaces it.
pub const DEFAULT_BLOCKLIST: &str = include_str!("../../assets/moderation/blocklist.txt");

/// The blocklist from configuration: the file (or the shipped list) plus the extra rules.
pub fn blocklist(config: &CreateConfig) -> Result<Blocklist, String> {
    let mut list = match &config.blocklist_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "configuration error: MODERATION_BLOCKLIST_FILE: {}: {e}",
                    path.display()
                )
            })?;
            Blocklist::parse(&text, &path.display().to_string())
                .map_err(|e| format!("configuration error: MODERATION_BLOCKLIST_FILE: {e}"))?
        }
        None => Blocklist::parse(DEFAULT_BLOCKLIST, "shipped blocklist")?,
    };
    if let Some(extra) = &config.blocklist_extra {
        let lines = extra.replace(';', "\n");
        list.extend(
            Blocklist::parse(&lines, "MODERATION_BLOCKLIST")
                .map_err(|e| format!("configuration error: {e}"))?,
        );
    }
    Ok(list)
}

/// The provider new generations use, by name.
pub fn provider_name(config: &CreateConfig) -> &'static str {
    match config.provider {
        ProviderConfig::Builtin => "builtin",
        ProviderConfig::OpenAi(_) => "openai",
    }
}

/// Every provider this process can run: the built-in renderer always (so generations made
/// before a switch still finish), and the HTTP provider when configured.
pub fn providers(config: &CreateConfig) -> Result<Vec<Arc<dyn ImageProvider>>, String> {
    let mut list: Vec<Arc<dyn ImageProvider>> = vec![Arc::new(Builtin)];
    if let ProviderConfig::OpenAi(settings) = &config.provider {
        list.push(Arc::new(openai::OpenAi::new(settings.clone())?));
    }
    Ok(list)
}
