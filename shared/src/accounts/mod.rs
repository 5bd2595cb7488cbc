//! Accounts: the types and rules the browser and the server share.
//!
//! The server functions that carry them are in `app::accounts`; the records and services behind them are server-only.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod validation;

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

    /// The plan's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Tier::Free => "Free",
            Tier::Pro => "Pro",
            Tier::Enterprise => "Enterprise",
        }
    }
}

/// The signed-in account as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Email address.
    pub email: String,
    /// Plan.
    pub tier: Tier,
    /// Requests per minute the plan allows.
    pub api_per_minute: u32,
    /// Generations per 24 hours the plan allows.
    pub generations_per_day: u32,
    /// Generations in the last 24 hours.
    pub generations_today: u64,
    /// Bytes of uploads the plan allows.
    pub storage_bytes: u64,
    /// Bytes of uploads held.
    pub storage_used: u64,
}

/// One signed-in device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Identifier (for revoking it).
    pub id: Uuid,
    /// Whether this is the browser asking.
    pub current: bool,
    /// The browser it was started from.
    pub user_agent: String,
    /// The address it was started from.
    pub ip: String,
    /// When it signed in, formatted on the server (`2026-11-22 10:15 UTC`), so the browser
    /// bundle needs no date formatting.
    pub since: String,
}
