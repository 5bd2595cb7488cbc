//! Create, server side: the providers that turn a prompt into pictures, the variants made from
//! them, the `generate` job that stores them, and the live progress stream.

pub mod events;
pub mod logo;
pub mod openai;
pub mod pipeline;
pub mod provider;
pub mod render;
pub mod variants;

use std::sync::Arc;

use app::create::moderation::Blocklist;

use crate::config::{Config, ProviderConfig};
use provider::{Builtin, ImageProvider};

/// The shipped blocklist, used unless `MODERATION_BLOCKLIST_FILE` replaces it.
pub const DEFAULT_BLOCKLIST: &str = include_str!("../../assets/moderation/blocklist.txt");

/// The blocklist from configuration: the file (or the shipped list) plus the extra rules.
pub fn blocklist(config: &Config) -> Result<Blocklist, String> {
    let mut list = match &config.create.blocklist_file {
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
    if let Some(extra) = &config.create.blocklist_extra {
        let lines = extra.replace(';', "\n");
        list.extend(
            Blocklist::parse(&lines, "MODERATION_BLOCKLIST")
                .map_err(|e| format!("configuration error: {e}"))?,
        );
    }
    Ok(list)
}

/// The provider new generations use, by name.
pub fn provider_name(config: &Config) -> &'static str {
    match config.create.provider {
        ProviderConfig::Builtin => "builtin",
        ProviderConfig::OpenAi(_) => "openai",
    }
}

/// Every provider this process can run: the built-in renderer always (so generations made
/// before a switch still finish), and the HTTP provider when configured.
pub fn providers(config: &Config) -> Result<Vec<Arc<dyn ImageProvider>>, String> {
    let mut list: Vec<Arc<dyn ImageProvider>> = vec![Arc::new(Builtin)];
    if let ProviderConfig::OpenAi(settings) = &config.create.provider {
        list.push(Arc::new(openai::OpenAi::new(settings.clone())?));
    }
    Ok(list)
}
