//! Accounts: who a creator is, how they prove it, and which tier they are on.
//!
//! Built so far: the account rules shared with the browser ([`validation`]), argon2id
//! password hashing (`passwords`), and the account records (`service`) with the operator's
//! `socialcraft users set-tier`. Sign-in sessions (tokens, cookies) and the pages come next.

pub mod validation;

#[cfg(feature = "ssr")]
pub mod passwords;
#[cfg(feature = "ssr")]
pub mod service;

use serde::{Deserialize, Serialize};

/// What an account may use (its limits come from configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The default.
    Free,
    /// Paying creators.
    Pro,
    /// Teams and agencies.
    Enterprise,
}

impl Tier {
    /// Every tier, smallest first.
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Pro, Tier::Enterprise];

    /// The identifier stored and typed by operators.
    pub fn slug(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }

    /// The tier with this slug.
    pub fn from_slug(slug: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.slug() == slug)
    }
}
