//! The server's integration tests, one binary with a module per domain or concern: every
//! module shares one test PostgreSQL cluster (`support`), and the crate graph is compiled
//! and linked once instead of once per file. `sentry.rs` stays a binary of its own: it
//! installs a process-wide tracing subscriber.
//!
//! Run one module with a filter: `cargo test -p server --test suite gallery::`. The
//! process-spawning tests are ignored by default: `./dev scale-out` and `./dev faults`.

mod support;

mod accounts;
mod backup;
mod committed_writes;
mod embedded_pg;
mod faults;
mod fuzz_corpus;
mod gallery;
mod generate;
mod integration;
mod jobs;
mod layout;
mod leptos_config;
mod limits;
mod query_plans;
mod ratelimit_redis;
mod scale_out;
mod schema;
mod security;
mod sessions;
mod slow_clients;
mod storage;
mod trends;
mod uploads;
