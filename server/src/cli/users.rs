//! `socialcraft users …`: tiers, administrators, and ending every session of an account.

use clap::Subcommand;

use crate::config::Config;
use crate::wiring::{connect, with_database};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Let the account with EMAIL import trend feeds through the admin endpoint.
    GrantAdmin {
        /// The account's email.
        email: String,
    },
    /// Take administration rights away from the account with EMAIL.
    RevokeAdmin {
        /// The account's email.
        email: String,
    },
    /// Put the account with EMAIL on TIER (free, pro or enterprise).
    SetTier {
        /// The account's email.
        email: String,
        /// free, pro or enterprise.
        tier: String,
    },
    /// End every session of the account with EMAIL (a compromised account): each device
    /// must sign in again within one access-token lifetime (15 minutes).
    SignOut {
        /// The account's email.
        email: String,
    },
}

/// Runs one `users` subcommand.
pub async fn run(config: Config, command: UsersCommand) -> Result<(), String> {
    match command {
        UsersCommand::SetTier { email, tier } => set_tier(config, &email, &tier).await,
        UsersCommand::SignOut { email } => sign_out(config, &email).await,
        UsersCommand::GrantAdmin { email } => set_admin(config, &email, true).await,
        UsersCommand::RevokeAdmin { email } => set_admin(config, &email, false).await,
    }
}

/// `socialcraft users set-tier EMAIL TIER`.
pub async fn set_tier(config: Config, email: &str, tier: &str) -> Result<(), String> {
    let tier = app::accounts::Tier::from_slug(tier)
        .ok_or_else(|| format!("`{tier}` is not one of free, pro, enterprise"))?;
    let found = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        domain::accounts::service::set_tier(&mut conn, email, tier)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if !found {
        return Err(format!("no account with the email {email}"));
    }
    println!("{email} is now on the {} tier", tier.slug());
    Ok(())
}

/// `socialcraft users sign-out EMAIL`.
pub async fn sign_out(config: Config, email: &str) -> Result<(), String> {
    let auth = domain::accounts::auth::Auth::new(config.secret_key.expose(), config.auth.clone());
    let ended = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        let user = domain::accounts::service::find_by_email(&mut conn, email)
            .await
            .map_err(|e| e.message)?
            .ok_or_else(|| format!("no account with the email {email}"))?;
        domain::accounts::sessions::end_all(
            &mut conn,
            &auth,
            user.id,
            None,
            domain::accounts::sessions::EndReason::SignedOutEverywhere,
        )
        .await
        .map_err(|e| e.message)
    })
    .await?;
    println!("{email}: {ended} session(s) ended");
    Ok(())
}

/// `socialcraft users grant-admin|revoke-admin EMAIL`.
pub async fn set_admin(config: Config, email: &str, admin: bool) -> Result<(), String> {
    let found = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        domain::accounts::service::set_admin(&mut conn, email, admin)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if !found {
        return Err(format!("no account with the email {email}"));
    }
    println!(
        "{email} is {} an administrator",
        if admin { "now" } else { "no longer" }
    );
    Ok(())
}
