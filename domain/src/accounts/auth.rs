//! Who is making a request: the session cookies, the signed-in user the host's middleware
//! found in them, sign-in lockout, and the settings behind both.
//!
//! The host's session middleware reads the cookies on every request, verifies the access
//! token (or silently exchanges the refresh token for new ones when it has expired) and puts
//! a [`CurrentUser`] in the request's extensions. Server functions read it back through
//! [`current_user`] / [`require_user`]; they never parse cookies themselves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Text};
// `RunQueryDsl` is imported where queries run: its blanket `load` would shadow the
// atomics' `load` in this file.
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::Tier;
use super::passwords::PasswordGate;
use super::tokens::TokenKey;
use shared::error::{AppError, ErrorCode};

/// Limits that depend on the account's tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierLimits {
    /// Server-function and API requests per minute per user.
    pub api_per_minute: u32,
    /// Generations per rolling 24 hours.
    pub generations_per_day: u32,
    /// Bytes of uploads the account may hold.
    pub storage_bytes: u64,
}

/// The limits of every tier (seed 001's figures by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plans {
    /// `free`.
    pub free: TierLimits,
    /// `pro`.
    pub pro: TierLimits,
    /// `enterprise`.
    pub enterprise: TierLimits,
}

const MB: u64 = 1_000_000;
const GB: u64 = 1_000 * MB;

impl Default for Plans {
    fn default() -> Self {
        Self {
            free: TierLimits {
                api_per_minute: 100,
                generations_per_day: 50,
                storage_bytes: 200 * MB,
            },
            pro: TierLimits {
                api_per_minute: 500,
                generations_per_day: 500,
                storage_bytes: 5 * GB,
            },
            enterprise: TierLimits {
                api_per_minute: 2000,
                generations_per_day: 5000,
                storage_bytes: 50 * GB,
            },
        }
    }
}

impl Plans {
    /// The limits of `tier`.
    pub fn of(&self, tier: Tier) -> TierLimits {
        match tier {
            Tier::Free => self.free,
            Tier::Pro => self.pro,
            Tier::Enterprise => self.enterprise,
        }
    }
}

/// The longest refresh grace window the configuration accepts: enough for a page's parallel
/// loads, short enough that a replayed token is of no use to a thief.
pub const MAX_REUSE_GRACE: Duration = Duration::from_secs(2);

/// Session and sign-in settings (the host reads them from its configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// Access token lifetime (15 minutes).
    pub access_ttl: Duration,
    /// Refresh token lifetime (7 days); each refresh starts a new one.
    pub refresh_ttl: Duration,
    /// How long a just-used refresh token still identifies its session without rotating
    /// again, for GET and HEAD requests only, so a page's parallel loads racing to refresh
    /// do not look like theft (2 s, at most [`MAX_REUSE_GRACE`]).
    pub reuse_grace: Duration,
    /// `Secure` cookies with the `__Host-` prefix (everywhere but development over http).
    pub secure_cookies: bool,
    /// Failed sign-ins per account and client prefix (an IPv4 address or an IPv6 /64)
    /// allowed within `lockout_window` (5).
    pub lockout_failures: u32,
    /// Failed sign-ins per account from every prefix together allowed within the window
    /// (50): the ceiling a distributed guesser meets, and the one lockout a stranger can
    /// still impose on an owner.
    pub lockout_account_failures: u32,
    /// argon2 hashes and verifications running at once in the process (the core count).
    pub hash_concurrency: usize,
    /// Requests that may wait for one of those beyond that; the rest get 503 (32).
    pub hash_queue: usize,
    /// The window failed sign-ins are counted over (15 minutes).
    pub lockout_window: Duration,
    /// Per-tier limits.
    pub plans: Plans,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            reuse_grace: Duration::from_secs(2),
            secure_cookies: true,
            lockout_failures: 5,
            lockout_account_failures: 50,
            hash_concurrency: default_hash_concurrency(),
            hash_queue: 32,
            lockout_window: Duration::from_secs(15 * 60),
            plans: Plans::default(),
        }
    }
}

/// The default for [`AuthSettings::hash_concurrency`]: the cores this process may use.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl AuthSettings {
    /// The access cookie's name: `__Host-` prefixed whenever cookies are `Secure` (browsers
    /// refuse the prefix otherwise).
    pub fn access_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-sc_access"
        } else {
            "sc_access"
        }
    }

    /// The refresh cookie's name.
    pub fn refresh_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-sc_refresh"
        } else {
            "sc_refresh"
        }
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, whole site, `Secure` when configured.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Duration) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            max_age.as_secs()
        )
    }

    /// A `Set-Cookie` value that deletes the cookie.
    pub fn clear_cookie(&self, name: &str) -> String {
        self.set_cookie(name, "", Duration::ZERO)
    }

    /// Both cookies for a fresh pair of tokens.
    pub fn session_cookies(&self, access: &str, refresh: &str) -> [String; 2] {
        [
            self.set_cookie(self.access_cookie(), access, self.access_ttl),
            self.set_cookie(self.refresh_cookie(), refresh, self.refresh_ttl),
        ]
    }

    /// Cookies that sign the browser out.
    pub fn clearing_cookies(&self) -> [String; 2] {
        [
            self.clear_cookie(self.access_cookie()),
            self.clear_cookie(self.refresh_cookie()),
        ]
    }
}

/// The signed-in user of a request, put in its extensions by the session middleware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// The session the request's tokens belong to.
    pub session_id: Uuid,
    /// The tier the access token was issued for (a tier change shows within 15 minutes).
    pub tier: Tier,
}

/// The client's address as the rate limiter determined it (trusted proxies honoured).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Session state shared by every request: settings, sessions revoked in the last access-token
/// lifetime, and the sign-in lockout.
///
/// Failed sign-ins are counted in PostgreSQL (`signin_failures`), not in the process: every
/// instance shares the database already, so one count holds across all of them with no
/// extra moving part and no mode switch; it survives restarts and deploys (which would
/// otherwise hand an attacker fresh tries); its clock is the database's, the same for every
/// instance; and a sign-in needs the database anyway, so the lockout adds no new way to
/// fail. The cost is a query per sign-in beside an argon2 hash that takes far longer.
#[derive(Debug)]
pub struct Auth {
    /// Signs and checks access tokens.
    pub key: TokenKey,
    /// The settings.
    pub settings: AuthSettings,
    /// Bounds the process's argon2 work (see [`PasswordGate`]).
    pub passwords: PasswordGate,
    revoked: Mutex<HashMap<Uuid, Instant>>,
    lockouts: AtomicU64,
}

impl Auth {
    /// Session state with `settings`, signing with a key derived from `secret`.
    pub fn new(secret: &str, settings: AuthSettings) -> Self {
        Self {
            key: TokenKey::from_secret(secret),
            passwords: PasswordGate::new(settings.hash_concurrency, settings.hash_queue),
            settings,
            revoked: Mutex::new(HashMap::new()),
            lockouts: AtomicU64::new(0),
        }
    }

    /// Remembers that `session` was revoked, so its still-unexpired access tokens stop
    /// working at once (the host calls this for revocations announced by other processes
    /// too; see `sessions::REVOKED_CHANNEL`).
    pub fn mark_revoked(&self, session: Uuid) {
        let now = Instant::now();
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        if revoked.len() > 10_000 {
            revoked.retain(|_, until| *until > now);
        }
        revoked.insert(session, now + self.settings.access_ttl);
    }

    /// Whether `session` was revoked recently enough for its access tokens to be alive.
    pub fn is_revoked(&self, session: Uuid) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked
            .get(&session)
            .is_some_and(|until| *until > Instant::now())
    }

    /// Admits one password attempt on `email` from client `prefix` (see [`client_prefix`])
    /// or refuses it: `Some(wait)` when the account is locked for that prefix
    /// (`lockout_failures` within the window) or everywhere (`lockout_account_failures`),
    /// with the time until the lock lifts; nothing is recorded then. `None` admits it and
    /// has already recorded it as a failure, which [`Auth::clear_failures`] takes back when
    /// the password turns out right.
    ///
    /// The check and the record are one transaction under a lock on the email, so any
    /// number of parallel wrong passwords, on any instances, get at most the ceiling's worth
    /// of verifications. Rows past the window go with the email's next attempt.
    pub async fn admit_attempt(
        &self,
        conn: &mut AsyncPgConnection,
        email: &str,
        prefix: &str,
    ) -> Result<Option<Duration>, AppError> {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        #[derive(QueryableByName)]
        struct Recent {
            #[diesel(sql_type = BigInt)]
            mine: i64,
            #[diesel(sql_type = Double)]
            mine_wait: f64,
            #[diesel(sql_type = BigInt)]
            every: i64,
            #[diesel(sql_type = Double)]
            every_wait: f64,
        }
        let window = self.settings.lockout_window.as_secs_f64();
        let per_prefix = i64::from(self.settings.lockout_failures);
        let per_account = i64::from(self.settings.lockout_account_failures);
        let locked = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // Serialises the attempts on one email, across instances, until the commit.
                diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind::<diesel::sql_types::Integer, _>(LOCKOUT_LOCK_CLASS)
                    .bind::<Text, _>(email)
                    .execute(conn)
                    .await?;
                // Only the most recent `ceiling` failures of each scope matter: the oldest
                // of them says how long the lockout lasts.
                let recent: Recent = diesel::sql_query(
                    "WITH mine AS (SELECT failed_at FROM signin_failures \
                       WHERE email = $1 AND prefix = $2 \
                         AND failed_at > now() - make_interval(secs => $3) \
                       ORDER BY failed_at DESC LIMIT $4), \
                     every AS (SELECT failed_at FROM signin_failures \
                       WHERE email = $1 AND failed_at > now() - make_interval(secs => $3) \
                       ORDER BY failed_at DESC LIMIT $5) \
                     SELECT (SELECT count(*) FROM mine) AS mine, \
                       coalesce(extract(epoch FROM (SELECT min(failed_at) FROM mine) \
                         + make_interval(secs => $3) - now()), 0)::float8 AS mine_wait, \
                       (SELECT count(*) FROM every) AS every, \
                       coalesce(extract(epoch FROM (SELECT min(failed_at) FROM every) \
                         + make_interval(secs => $3) - now()), 0)::float8 AS every_wait",
                )
                .bind::<Text, _>(email)
                .bind::<Text, _>(prefix)
                .bind::<Double, _>(window)
                .bind::<BigInt, _>(per_prefix)
                .bind::<BigInt, _>(per_account)
                .get_result(conn)
                .await?;
                let mut wait: Option<f64> = None;
                if recent.mine >= per_prefix {
                    wait = Some(recent.mine_wait);
                }
                if recent.every >= per_account {
                    wait = Some(wait.unwrap_or(0.0).max(recent.every_wait));
                }
                if wait.is_some() {
                    return Ok(wait);
                }
                diesel::sql_query(
                    "WITH aged AS (DELETE FROM signin_failures \
                                   WHERE email = $1 AND failed_at <= now() - make_interval(secs => $3)) \
                     INSERT INTO signin_failures (email, prefix) VALUES ($1, $2)",
                )
                .bind::<Text, _>(email)
                .bind::<Text, _>(prefix)
                .bind::<Double, _>(window)
                .execute(conn)
                .await?;
                Ok(None)
            })
            .await
            .map_err(|e| shared::error::query_failed("admit sign-in attempt", e))?;
        let Some(wait) = locked else {
            return Ok(None);
        };
        let n = self.lockouts.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(100) {
            // Never the email: logs are not a list of targeted accounts.
            tracing::warn!(
                denied_total = n + 1,
                "sign-in refused: account locked out (1 in 100 logged)"
            );
        }
        Ok(Some(Duration::from_secs_f64(wait.clamp(0.0, window))))
    }

    /// Sign-ins refused by a lockout so far in this process (for metrics).
    pub fn lockouts(&self) -> u64 {
        self.lockouts.load(Ordering::Relaxed)
    }

    /// Forgets the failed sign-ins for `email` from `prefix` (this attempt's among them)
    /// after a right password. Failures from other prefixes stay: the owner signing in does
    /// not hand a stranger elsewhere fresh tries.
    pub async fn clear_failures(
        &self,
        conn: &mut AsyncPgConnection,
        email: &str,
        prefix: &str,
    ) -> Result<(), AppError> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("DELETE FROM signin_failures WHERE email = $1 AND prefix = $2")
            .bind::<Text, _>(email)
            .bind::<Text, _>(prefix)
            .execute(conn)
            .await
            .map_err(|e| shared::error::query_failed("clear failed sign-ins", e))?;
        Ok(())
    }

    /// Deletes failed sign-ins older than the window, for every email (the host runs it
    /// hourly, so emails that never fail again do not stay forever). Returns how many.
    pub async fn sweep_failures(&self, conn: &mut AsyncPgConnection) -> Result<usize, AppError> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "DELETE FROM signin_failures WHERE failed_at <= now() - make_interval(secs => $1)",
        )
        .bind::<Double, _>(self.settings.lockout_window.as_secs_f64())
        .execute(conn)
        .await
        .map_err(|e| shared::error::query_failed("sweep failed sign-ins", e))
    }
}

/// The advisory-lock class of the sign-in lockout (`pg_advisory_xact_lock(class, key)`), so
/// its keys never collide with other advisory locks.
const LOCKOUT_LOCK_CLASS: i32 = 0x5349_474e; // "SIGN"

/// The client prefix failed sign-ins are counted under: an IPv4 address (also when mapped
/// into IPv6), or the /64 of an IPv6 one (what one subscriber is usually given, so a stranger
/// cannot step through addresses of their own network); `""` when the address is unknown.
pub fn client_prefix(ip: Option<IpAddr>) -> String {
    match ip {
        None => String::new(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a response already sets cookie `name` (a server function that signed in or out
/// has the last word over the middleware's silent refresh).
pub fn sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split_once('=').is_some_and(|(k, _)| k == name))
}

/// Appends `Set-Cookie` headers to a server function's response.
pub fn set_response_cookies(cookies: &[String]) {
    let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.append_header(header::SET_COOKIE, v);
        }
    }
}

fn request_parts() -> Option<axum::http::request::Parts> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
}

/// The signed-in user of the current server function or page render, if any.
pub fn current_user() -> Option<CurrentUser> {
    request_parts().and_then(|p| p.extensions.get::<CurrentUser>().copied())
}

/// The signed-in user, or 401 `unauthorized`.
pub fn require_user() -> Result<CurrentUser, AppError> {
    current_user().ok_or_else(|| {
        AppError::new(
            ErrorCode::Unauthorized,
            "Sign in to continue. Your session may have ended.",
        )
    })
}

/// The request's client address as the rate limiter determined it.
pub fn client_ip() -> Option<IpAddr> {
    request_parts().and_then(|p| p.extensions.get::<ClientIp>().map(|c| c.0))
}

/// The request's client address and user agent, for the sessions list.
pub fn client_details() -> (String, String) {
    let Some(parts) = request_parts() else {
        return (String::new(), String::new());
    };
    let ip = parts
        .extensions
        .get::<ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let ua: String = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    (ip, ua)
}

/// The refresh token cookie of the current server-function request.
pub fn refresh_cookie_value(settings: &AuthSettings) -> Option<String> {
    request_parts()
        .and_then(|p| read_cookie(&p.headers, settings.refresh_cookie()).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new("a secret that is long enough!!", AuthSettings::default())
    }

    #[test]
    fn cookies_are_host_prefixed_and_secure_unless_in_development() {
        let mut s = AuthSettings::default();
        assert_eq!(s.access_cookie(), "__Host-sc_access");
        let c = s.set_cookie(s.access_cookie(), "v", Duration::from_secs(900));
        assert_eq!(
            c,
            "__Host-sc_access=v; Path=/; Max-Age=900; HttpOnly; SameSite=Lax; Secure"
        );
        s.secure_cookies = false;
        assert_eq!(s.refresh_cookie(), "sc_refresh");
        assert!(!s.clear_cookie("sc_refresh").contains("Secure"));
        assert!(s.clear_cookie("sc_refresh").contains("Max-Age=0"));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x_sc_access=no; sc_access=yes; other=1"),
        );
        assert_eq!(read_cookie(&h, "sc_access"), Some("yes"));
        assert_eq!(read_cookie(&h, "sc_refresh"), None);
    }

    #[test]
    fn failures_are_counted_per_ipv4_address_and_ipv6_64() {
        let p = |s: &str| client_prefix(Some(s.parse().unwrap()));
        assert_eq!(p("203.0.113.7"), "203.0.113.7");
        assert_eq!(p("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(p("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(p("2001:db8:1:2:ffff:1:2:3"), p("2001:db8:1:2::9"));
        assert_ne!(p("2001:db8:1:3::1"), p("2001:db8:1:2::1"));
        assert_eq!(client_prefix(None), "");
    }

    #[test]
    fn revocations_are_remembered_for_an_access_token_lifetime() {
        let a = auth();
        let s = Uuid::new_v4();
        assert!(!a.is_revoked(s));
        a.mark_revoked(s);
        assert!(a.is_revoked(s));
    }
}
