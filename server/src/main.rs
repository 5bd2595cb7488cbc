//! `socialcraft`: the SocialCraft server binary.

use clap::{Parser, Subcommand};
use server::config::Config;

/// SocialCraft: turn prompts into finished social-media images.
#[derive(Parser)]
#[command(name = "socialcraft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app (the default). Applies pending migrations first unless
    /// RUN_MIGRATIONS=false.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            // Logging is not set up yet (its settings are part of what failed).
            eprintln!("socialcraft: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    server::telemetry::init(&config.log);
    server::telemetry::install_panic_hook();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => server::startup::serve(config).await,
            Command::Migrate => server::startup::migrate(config).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "socialcraft stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}
