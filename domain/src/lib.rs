//! SocialCraft's server-only domain: each feature from "submitted" to "stored" (its records,
//! services, jobs and their handlers), and the machinery the features share.
//!
//! Never built for WASM: `app` depends on it only with `ssr`, so the browser bundle cannot
//! link a query, a secret or an image codec because the crate graph says so. Each feature
//! folder re-exports its shared types (`shared::<feature>`), so `domain::gallery::Card` is the
//! type the browser decodes.
//!
//! Dependencies run one way: `shared` <- `domain` <- `app` (ssr) <- `server`. Inside, the
//! features use the machinery (`db`, `jobs`, `media`, `metrics`, `signing`), never the
//! reverse; `state` only composes.

pub mod accounts;
pub mod brands;
pub mod create;
pub mod db;
pub mod gallery;
pub mod jobs;
pub mod media;
pub mod metrics;
pub mod secret;
pub mod signing;
pub mod splitmix;
pub mod state;
pub mod trends;
pub mod uploads;
