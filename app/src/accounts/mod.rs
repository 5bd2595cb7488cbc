//! Accounts: who a creator is, how they prove it, and which tier they are on.
//!
//! What lives where:
//! - Here: the server functions and [`ui`]: the sign-up, sign-in and account pages, and the
//!   header's account menu.
//! - `shared::accounts`: the account types and the email and password rules.
//! - `domain::accounts` (server only): `passwords` (argon2id), `tokens` (the JWT access token
//!   and the refresh token), `sessions` (rotation and reuse detection), `auth` (cookies, the
//!   request's signed-in user, sign-in lockout, tier limits), `quota` (daily generations,
//!   storage), `service` (what the server functions below call).
//! - The host's session middleware (silent refresh) is `server::web::session`.

use leptos::prelude::*;
pub use shared::accounts::*;

#[cfg(feature = "ssr")]
use domain::accounts::service;
use shared::error::AppError;
use uuid::Uuid;

pub mod ui;

/// Creates an account and signs it in. Bad input is a 422 naming each field.
#[server(endpoint = "auth/sign_up")]
pub async fn sign_up(email: String, password: String) -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::sign_up(&state, &email, &password).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs in. Every failure is the same 422; the sixth failure in 15 minutes for one email
/// is a 429.
#[server(endpoint = "auth/sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::sign_in(&state, &email, &password).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Exchanges the refresh cookie for new tokens (browsers never need to call it).
#[server(endpoint = "auth/refresh")]
pub async fn refresh_session() -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::refresh(&state).await
}

/// The signed-in account, or `None`.
#[server(endpoint = "account/me")]
pub async fn me() -> Result<Option<Account>, AppError> {
    let state = domain::state::AppState::from_context()?;
    service::me(&state).await
}

/// Signs this browser out.
#[server(endpoint = "account/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::sign_out(&state).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs out every device, this one included.
#[server(endpoint = "account/sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::sign_out_everywhere(&state).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Changes the password and signs out every other device; returns how many were signed out.
#[server(endpoint = "account/change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<usize, AppError> {
    let state = domain::state::AppState::from_context()?;
    let ended = service::change_password(&state, &current_password, &new_password).await?;
    // A plain form post lands back on the account page with the outcome to show.
    leptos_axum::redirect(&format!("/account?password_changed={ended}"));
    Ok(ended)
}

/// The signed-in user's devices.
#[server(endpoint = "account/sessions")]
pub async fn list_sessions() -> Result<Vec<SessionView>, AppError> {
    let state = domain::state::AppState::from_context()?;
    service::list_sessions(&state).await
}

/// Signs one device out.
#[server(endpoint = "account/revoke_session")]
pub async fn revoke_session(id: Uuid) -> Result<(), AppError> {
    let state = domain::state::AppState::from_context()?;
    service::revoke_session(&state, id).await?;
    leptos_axum::redirect("/account");
    Ok(())
}
