//! Create: the image provider and moderation.
//!
//! Variables: `IMAGE_PROVIDER`, `IMAGE_API_URL`, `IMAGE_API_KEY`, `IMAGE_API_MODEL`,
//! `IMAGE_API_TIMEOUT_SECS`, `IMAGE_API_RETRIES`, `IMAGE_API_COST_PER_IMAGE`,
//! `MODERATION_BLOCKLIST_FILE`, `MODERATION_BLOCKLIST`.

use std::path::PathBuf;

use super::ConfigError;
use super::vars::{Vars, check_scheme, err};
use domain::create::{CreateConfig, OpenAiSettings, ProviderConfig};
use domain::secret::Secret;

pub(super) fn parse(v: &Vars) -> Result<CreateConfig, ConfigError> {
    let provider = match v.get("IMAGE_PROVIDER").unwrap_or("builtin") {
        "builtin" => ProviderConfig::Builtin,
        "openai" => {
            let url = v
                .get("IMAGE_API_URL")
                .unwrap_or("https://api.openai.com")
                .trim_end_matches('/')
                .to_owned();
            check_scheme(
                "IMAGE_API_URL",
                &url,
                &["http://", "https://"],
                "must start with http:// or https://",
            )?;
            ProviderConfig::OpenAi(OpenAiSettings {
                url,
                key: Secret::new(v.required("IMAGE_API_KEY", "when IMAGE_PROVIDER=openai")?),
                model: v.get("IMAGE_API_MODEL").unwrap_or("gpt-image-1").to_owned(),
                timeout: v.secs("IMAGE_API_TIMEOUT_SECS", 120)?,
                retries: v.num("IMAGE_API_RETRIES", 2)? as u32,
                cost_per_image_micros: v.micros("IMAGE_API_COST_PER_IMAGE")?,
            })
        }
        other => {
            return Err(err(
                "IMAGE_PROVIDER",
                format!("`{other}` is not one of builtin, openai"),
            ));
        }
    };
    Ok(CreateConfig {
        provider,
        blocklist_file: v.get("MODERATION_BLOCKLIST_FILE").map(PathBuf::from),
        blocklist_extra: v.get("MODERATION_BLOCKLIST").map(str::to_owned),
    })
}
