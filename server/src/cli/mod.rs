//! The `socialcraft` command line: one file per subcommand group, each parsing its own
//! arguments and calling into the features (`backup/` is a folder: it is a small program of
//! its own). `main.rs` only calls [`main`], so the integration tests drive the same code the
//! binary runs. Commands that need the database get it from `crate::wiring`.

use clap::{Parser, Subcommand};

use crate::config::Config;

pub mod backup;
pub mod jobs;
pub mod render;
pub mod seed;
pub mod serve;
pub mod trends;
pub mod users;

/// SocialCraft: turn prompts into finished social-media images.
#[derive(Parser)]
#[command(name = "socialcraft", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the web app (the default). Applies pending migrations first unless
    /// RUN_MIGRATIONS=false.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the job worker alone (no web server), to scale workers apart from web instances.
    Worker,
    /// Render one image with the built-in renderer to a file (no database needed): PNG, or
    /// WebP when the name ends in `.webp` (with `--width`, the 320 or 720 variant).
    Render {
        /// The headline.
        #[arg(long)]
        prompt: String,
        /// Style slug (bold, minimal, vibrant, pastel, neon, retro, editorial, playful).
        #[arg(long, default_value = "vibrant")]
        style: String,
        /// Format slug (instagram_square, instagram_portrait, story, x_post, linkedin,
        /// youtube_thumbnail).
        #[arg(long, default_value = "instagram_portrait")]
        format: String,
        /// Variation seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the image (`.png` or `.webp`).
        #[arg(long)]
        out: std::path::PathBuf,
        /// For WebP: scale to this width (320 or 720, as the stored variants).
        #[arg(long)]
        width: Option<u32>,
    },
    /// Inspect and revive jobs.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Trend feeds.
    Trends {
        #[command(subcommand)]
        command: trends::TrendsCommand,
    },
    /// Back up the database with pg_dump, list, verify and restore backups (in BACKUP_DIR).
    Backup {
        #[command(subcommand)]
        command: backup::BackupCommand,
    },
    /// Fill the database with N image records for demos and benchmarks (applies pending
    /// migrations first).
    Seed {
        /// How many image records.
        #[arg(long)]
        images: usize,
    },
}

/// Parses the arguments and runs the command: the whole of `socialcraft`'s `main`.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Render {
        prompt,
        style,
        format,
        seed,
        out,
        width,
    }) = &cli.command
    {
        return render::render(prompt, style, format, *seed, out, *width);
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            // Logging is not set up yet (its settings are part of what failed).
            eprintln!("socialcraft: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Before anything can fail worth reporting; dropped (and so flushed) when main returns.
    let _sentry = crate::telemetry::init_sentry(config.observability.sentry.as_ref());
    crate::telemetry::init(&config.log, _sentry.is_some());
    crate::telemetry::install_panic_hook();
    // Operators read these commands' errors (often in cron mail): one plain sentence.
    let plain_errors = matches!(cli.command, Some(Command::Backup { .. }));

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
            Command::Serve => serve::serve(config).await,
            Command::Migrate => serve::migrate(config).await,
            Command::Worker => serve::worker(config).await,
            // Handled above, before any configuration is read.
            Command::Render { .. } => Ok(()),
            Command::Jobs { command } => jobs::run(config, command).await,
            Command::Users { command } => users::run(config, command).await,
            Command::Trends { command } => trends::run(config, command).await,
            Command::Backup { command } => backup::run(config, command).await,
            Command::Seed { images } => seed::run(config, images).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if plain_errors => {
            eprintln!("socialcraft: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!(error = %e, "socialcraft stopped with an error");
            std::process::ExitCode::FAILURE
        }
    }
}
