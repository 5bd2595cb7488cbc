//! Accounts, server side: sign-up and sign-in, sessions and refresh tokens, password hashing,
//! tier limits and the storage quota. The types the browser shares are `shared::accounts`.

pub use shared::accounts::*;

pub mod auth;
pub mod passwords;
pub mod quota;
pub mod records;
pub mod service;
pub mod sessions;
pub mod tokens;
