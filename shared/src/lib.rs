//! What the SocialCraft browser bundle and server share: the error every server function
//! returns and its stable codes, and each domain's types, formats and validation rules.
//!
//! Built for WASM (through `app` with `hydrate`) and natively (for `domain`, `app` with `ssr`
//! and `server`). It depends on nothing server-only, so whatever the browser checks is the
//! same code the server checks again.

pub mod accounts;
pub mod brands;
pub mod create;
pub mod error;
pub mod gallery;
pub mod timestamp;
pub mod trends;
pub mod uploads;
