//! Create, server side: from a validated submission to stored images. The submission is
//! recorded and queued (`service`, `records`, `moderation`); the `generate` job
//! (`pipeline`) asks a provider (`provider`: the built-in renderer in `render` and `logo`, or
//! an OpenAI-compatible API in `openai`) for pictures, makes their variants (`variants`) and
//! stores them; `events` streams progress to the create page. The form's rules are
//! `shared::create`.

pub use shared::create::*;

pub mod changes;
pub mod events;
pub mod logo;
pub mod moderation;
pub mod openai;
pub mod pipeline;
pub mod provider;
pub mod records;
pub mod render;
pub mod service;
pub mod settings;
pub mod variants;

pub use settings::{
    CreateConfig, DEFAULT_BLOCKLIST, OpenAiSettings, ProviderConfig, blocklist, provider_name,
    providers,
};
