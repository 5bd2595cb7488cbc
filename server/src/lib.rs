//! The SocialCraft host: configuration, the axum router and middleware, the CLI subcommands,
//! start-up and shutdown. `main.rs` only parses arguments and calls into here, so the
//! integration tests drive the same code the binary runs.

pub mod cli;
pub mod config;
// The one module of the host that calls libc (flock, kill, geteuid, getpwnam).
#[allow(unsafe_code)]
pub mod pg_embedded;
pub mod telemetry;
pub mod web;
pub mod wiring;
