//! The SocialCraft host: configuration, the axum router and middleware, the CLI subcommands,
//! start-up and shutdown. `main.rs` only parses arguments and calls into here, so the
//! integration tests drive the same code the binary runs.

pub mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod create;
pub mod db;
pub mod forms;
pub mod health;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod pagecache;
// The one module of the host that calls libc (flock, kill, geteuid, getpwnam).
#[allow(unsafe_code)]
pub mod pg_embedded;
pub mod ratelimit;
pub mod secret;
pub mod security;
pub mod serving;
pub mod storage;
pub mod telemetry;
pub mod trends;
pub mod uploads;
pub mod wiring;
pub mod worker;
