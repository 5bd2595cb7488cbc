//! What is counted: the route groups, and the client key of a request (its address, an
//! IPv6 network prefix, or the address behind a trusted proxy).

use std::net::IpAddr;
use std::time::Duration;

use axum::http::Method;

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Sign-in, sign-up, token refresh.
    Auth,
    /// Generation submissions.
    Generate,
    /// Other API calls and server functions.
    Api,
    /// Uploads (`/api/uploads/...`): per IP as `api`, per user also on their own.
    Upload,
    /// A user's tier allowance (every `api`, `generate` and `upload` request of a user).
    User,
    /// Files under `/media/`, per IP only (they are served without a session).
    Media,
}

impl Group {
    /// The name used in logs, metrics and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Auth => "auth",
            Group::Generate => "generate",
            Group::Api => "api",
            Group::Upload => "upload",
            Group::User => "user",
            Group::Media => "media",
        }
    }

    /// The group of a request, or `None` for what is never limited (pages, static files,
    /// health and readiness checks).
    pub fn of(method: &Method, path: &str) -> Option<Group> {
        if *method == Method::OPTIONS {
            return None;
        }
        if path.starts_with("/media/") {
            return Some(Group::Media);
        }
        if !path.starts_with("/api/") || matches!(path, "/api/health" | "/api/ready") {
            return None;
        }
        if path.starts_with("/api/auth/") {
            Some(Group::Auth)
        } else if path == "/api/generations/submit" {
            Some(Group::Generate)
        } else if path.starts_with("/api/uploads/") {
            Some(Group::Upload)
        } else {
            Some(Group::Api)
        }
    }
}

/// A refusal: how long until the next request would pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The group that refused.
    pub group: Group,
    /// Time until a request would be allowed.
    pub retry_after: Duration,
}

/// What a limiter is keyed by (client addresses, user ids).
pub(super) trait Key: std::hash::Hash + Eq + Clone + std::fmt::Display {}

impl<K: std::hash::Hash + Eq + Clone + std::fmt::Display> Key for K {}

/// An address or a CIDR range (`10.0.0.0/8`, `fd00::/8`; a bare address is a range of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    pub(super) addr: IpAddr,
    pub(super) prefix: u8,
}

impl IpRange {
    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or a CIDR range"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The key a client address is counted under: an IPv4 address as it is (also when it came
/// IPv4-mapped), an IPv6 address cut to its first `ipv6_prefix` bits.
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}
