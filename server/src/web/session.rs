//! The session middleware: finds the signed-in user of each request and refreshes their
//! tokens without them noticing.
//!
//! 1. A valid access token (signature, algorithm, expiry, session not revoked here) puts a
//!    `CurrentUser` in the request's extensions. No database work.
//! 2. Otherwise a refresh cookie is exchanged (rotation; see `domain::accounts::sessions`) and
//!    the new cookies ride on the response. The exchange counts against the per-IP `auth`
//!    limit, so random refresh cookies cannot be used to hammer the database.
//! 3. A refresh token that is spent (reuse), unknown or ended clears both cookies: the
//!    browser is signed out. One spent by a parallel request within the grace window
//!    identifies the session for a GET or HEAD only; any other method is a 401.
//!
//! Static files, media, health checks and the `/api/auth/` endpoints (which manage their own
//! cookies) are skipped. A database failure during a refresh leaves the cookies alone (the
//! next request tries again) and serves the request signed out.

use super::context::coded;
use super::limits::{declared_length, payload_too_large};
use app::accounts::Tier;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use domain::accounts::auth::{ClientIp, CurrentUser, read_cookie, sets_cookie};
use domain::accounts::sessions::{self, Refreshed};
use domain::state::AppState;
use shared::error::ErrorCode;

use crate::web::ratelimit::{Group, RateLimits};

/// What the middleware needs.
#[derive(Clone)]
pub struct SessionLayer {
    /// Database and session settings.
    pub state: AppState,
    /// For the per-IP `auth` limit on silent refreshes.
    pub limits: RateLimits,
}

fn skipped(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/media/")
        || path.starts_with("/api/auth/")
        || matches!(
            path,
            "/api/health" | "/api/ready" | "/favicon.svg" | "/favicon.ico" | "/robots.txt"
        )
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The middleware.
pub async fn session(State(layer): State<SessionLayer>, mut req: Request, next: Next) -> Response {
    if skipped(req.uri().path()) {
        return next.run(req).await;
    }
    let auth = &layer.state.auth;
    let settings = &auth.settings;
    if let Some(access) = read_cookie(req.headers(), settings.access_cookie())
        && let Ok(claims) = auth.key.verify(access, now_secs())
        && !auth.is_revoked(claims.sid)
    {
        req.extensions_mut().insert(CurrentUser {
            id: claims.sub,
            session_id: claims.sid,
            tier: Tier::from_slug(&claims.tier).unwrap_or(Tier::Free),
        });
        return next.run(req).await;
    }
    let Some(refresh) = read_cookie(req.headers(), settings.refresh_cookie()).map(str::to_owned)
    else {
        return next.run(req).await;
    };
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>().copied()
        && let Err(denied) = layer.limits.check(Group::Auth, ip).await
    {
        drop(req);
        return layer.limits.refuse(denied).await;
    }
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    let outcome = match layer.state.conn().await {
        Ok(mut conn) => sessions::refresh(&mut conn, auth, &refresh, read_only).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(Refreshed::Rotated(issued)) => {
            req.extensions_mut().insert(issued.user);
            let mut res = next.run(req).await;
            let cookies = settings.session_cookies(&issued.access, &issued.refresh);
            append_cookies(res.headers_mut(), &cookies, settings);
            res
        }
        Ok(Refreshed::Grace(user)) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        // A state-changing request on a token a parallel request has just spent: refused
        // outright rather than served signed out, and the cookies left for that request's
        // answer to replace.
        Ok(Refreshed::Spent) => spent_token(),
        Ok(Refreshed::Reused { .. } | Refreshed::Invalid) => {
            let mut res = next.run(req).await;
            append_cookies(res.headers_mut(), &settings.clearing_cookies(), settings);
            res
        }
        // Logged where it failed; the request goes on signed out, cookies untouched.
        Err(_) => next.run(req).await,
    }
}

/// 401 `unauthorized` for a state-changing request on a just-spent refresh token.
fn spent_token() -> Response {
    let error = shared::error::AppError::new(
        shared::error::ErrorCode::Unauthorized,
        "This sign-in token was just used by another request. Please try again.",
    );
    let mut res = (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    res
}

/// Adds the session cookies unless the handler already set them (it signed in or out, and
/// has the last word).
fn append_cookies(
    headers: &mut HeaderMap,
    cookies: &[String],
    settings: &domain::accounts::auth::AuthSettings,
) {
    if sets_cookie(headers, settings.access_cookie())
        || sets_cookie(headers, settings.refresh_cookie())
    {
        return;
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    // A response that sets cookies must not be stored by shared caches.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

/// In front of the admin endpoints: 401 signed out, 403 for anyone but an administrator
/// (`users.is_admin`, read now, so a revoked grant takes effect at once), before a byte of
/// the body is read; then the admin body limit (413 for a declared length over it).
pub async fn admin_only(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use domain::db::schema::users;
    let Some(user) = req
        .extensions()
        .get::<domain::accounts::auth::CurrentUser>()
        .copied()
    else {
        return coded(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "Sign in as an administrator.",
        );
    };
    let admin = match state.conn().await {
        Ok(mut conn) => users::table
            .find(user.id)
            .select(users::is_admin)
            .first::<bool>(&mut *conn)
            .await
            .optional()
            .map_err(|e| tracing::error!(error = %e, "admin check failed")),
        Err(_) => Err(()),
    };
    match admin {
        Ok(Some(true)) => {}
        Ok(_) => {
            return coded(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "Only administrators may do this.",
            );
        }
        Err(()) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(shared::error::AppError::unavailable()),
            )
                .into_response();
        }
    }
    if declared_length(req.headers()).is_some_and(|n| n > domain::trends::MAX_FEED_BYTES as u64) {
        return payload_too_large();
    }
    next.run(req).await
}
