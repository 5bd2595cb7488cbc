//! `socialcraft`: the SocialCraft server binary.

use clap::{Parser, Subcommand};
use server::config::Config;

/// SocialCraft: turn prompts into finished social-media images.
#[derive(Parser)]
#[command(name = "socialcraft", version)]
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
    /// Run the job worker alone (no web server), to scale workers apart from web instances.
    Worker,
    /// Inspect and revive jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List dead-lettered jobs, most recent first.
    Dead {
        /// How many to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Re-queue a dead-lettered job with a fresh set of attempts.
    Retry {
        /// The job's id.
        id: i64,
    },
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
            Command::Worker => server::startup::worker(config).await,
            Command::Jobs {
                command: JobsCommand::Dead { limit },
            } => server::startup::jobs_dead(config, limit).await,
            Command::Jobs {
                command: JobsCommand::Retry { id },
            } => server::startup::jobs_retry(config, id).await,
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
