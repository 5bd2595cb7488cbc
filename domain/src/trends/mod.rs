//! Trends, server side: the hot-rank of what creators prompt and rate, the cached ranking and
//! its refresh, and imports of external feeds (CLI and admin endpoint).

pub use shared::trends::*;

pub mod feed;
pub mod imports;
pub mod rank;
pub mod service;

pub use imports::{
    ImportError, ImportReport, MAX_FEED_BYTES, TrendsConfig, admin_import, import, refresh_loop,
};
