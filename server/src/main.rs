//! `socialcraft`: the SocialCraft server binary.

use clap::{Parser, Subcommand};
use server::config::Config;

/// The allocator: rendering pages allocates many short-lived strings, where mimalloc is much
/// faster than glibc's malloc under concurrency (measured in docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        command: JobsCommand,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Trend feeds.
    Trends {
        #[command(subcommand)]
        command: TrendsCommand,
    },
    /// Back up the database with pg_dump, list, verify and restore backups (in BACKUP_DIR).
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Fill the database with N image records for demos and benchmarks (applies pending
    /// migrations first).
    Seed {
        /// How many image records.
        #[arg(long)]
        images: usize,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Write a daily backup, then delete daily backups older than BACKUP_KEEP_DAILY_DAYS.
    Daily,
    /// Write a weekly backup, then delete weekly backups older than BACKUP_KEEP_WEEKLY_DAYS.
    Weekly,
    /// Write a manual backup (kept until deleted by hand).
    Manual,
    /// List the backups in BACKUP_DIR, newest first.
    List,
    /// Check a backup: its checksum, then a real restore into a scratch database whose row
    /// counts must match the manifest (the scratch database is dropped again).
    Verify {
        /// The `.dump` file.
        file: std::path::PathBuf,
    },
    /// Replace the configured database with a backup. Refuses without --yes.
    Restore {
        /// The `.dump` file.
        file: std::path::PathBuf,
        /// Really overwrite the database.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TrendsCommand {
    /// Import a feed: JSON (an array of objects) or CSV (with a header row), with the fields
    /// topic, hashtag, source, score, observed_at. Bad rows are reported with their line
    /// numbers and skipped; the rest imports.
    Import {
        /// The feed file (`.json` or `.csv`; otherwise told apart by its first character).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
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
    if let Some(Command::Render {
        prompt,
        style,
        format,
        seed,
        out,
        width,
    }) = &cli.command
    {
        return render(prompt, style, format, *seed, out, *width);
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
    let _sentry = server::telemetry::init_sentry(config.observability.sentry.as_ref());
    server::telemetry::init(&config.log, _sentry.is_some());
    server::telemetry::install_panic_hook();
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
            Command::Serve => server::startup::serve(config).await,
            Command::Migrate => server::startup::migrate(config).await,
            Command::Render { .. } => Ok(()),
            Command::Worker => server::startup::worker(config).await,
            Command::Jobs {
                command: JobsCommand::Dead { limit },
            } => server::startup::jobs_dead(config, limit).await,
            Command::Jobs {
                command: JobsCommand::Retry { id },
            } => server::startup::jobs_retry(config, id).await,
            Command::Users {
                command: UsersCommand::SetTier { email, tier },
            } => server::startup::users_set_tier(config, &email, &tier).await,
            Command::Users {
                command: UsersCommand::SignOut { email },
            } => server::startup::users_sign_out(config, &email).await,
            Command::Users {
                command: UsersCommand::GrantAdmin { email },
            } => server::startup::users_set_admin(config, &email, true).await,
            Command::Users {
                command: UsersCommand::RevokeAdmin { email },
            } => server::startup::users_set_admin(config, &email, false).await,
            Command::Trends {
                command: TrendsCommand::Import { file },
            } => server::startup::trends_import(config, &file).await,
            Command::Seed { images } => server::startup::seed(config, images).await,
            Command::Backup { command } => {
                use server::backup::Kind;
                match command {
                    BackupCommand::Daily => server::startup::backup_run(config, Kind::Daily).await,
                    BackupCommand::Weekly => {
                        server::startup::backup_run(config, Kind::Weekly).await
                    }
                    BackupCommand::Manual => {
                        server::startup::backup_run(config, Kind::Manual).await
                    }
                    BackupCommand::List => server::startup::backup_list(&config),
                    BackupCommand::Verify { file } => {
                        server::startup::backup_verify(config, &file).await
                    }
                    BackupCommand::Restore { file, yes } => {
                        server::startup::backup_restore(config, &file, yes).await
                    }
                }
            }
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

fn render(
    prompt: &str,
    style: &str,
    format: &str,
    seed: u64,
    out: &std::path::Path,
    width: Option<u32>,
) -> std::process::ExitCode {
    use app::create::validate_submission;
    use server::create::provider::{ImageRequest, render_builtin};
    use server::create::variants;
    let fail = |msg: String| {
        eprintln!("socialcraft render: {msg}");
        std::process::ExitCode::from(2)
    };
    let valid = match validate_submission(prompt, style, format, "1") {
        Ok(v) => v,
        Err(errors) => {
            let msgs: Vec<String> = errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            return fail(msgs.join("; "));
        }
    };
    let request = ImageRequest {
        prompt: valid.prompt,
        style: valid.style,
        format: valid.format,
        seed,
        brand: None,
    };
    let webp = out.extension().is_some_and(|e| e == "webp");
    let encoded = render_builtin(&request)
        .map_err(|e| e.detail)
        .and_then(|picture| {
            let picture = match width {
                Some(w) if webp && w < picture.width => {
                    variants::downscale(&mut Default::default(), &picture, w)
                        .map_err(|e| e.to_string())?
                }
                _ => picture,
            };
            if webp {
                variants::encode_webp(&picture)
            } else {
                variants::encode_png(&picture)
            }
            .map_err(|e| e.to_string())
        });
    match encoded
        .and_then(|bytes| std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display())))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
