//! `socialcraft jobs …`: dead-lettered jobs, listed and revived.

use clap::Subcommand;

use crate::config::Config;
use crate::wiring::{connect, with_database};

#[derive(Subcommand)]
pub enum JobsCommand {
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

/// Runs one `jobs` subcommand.
pub async fn run(config: Config, command: JobsCommand) -> Result<(), String> {
    match command {
        JobsCommand::Dead { limit } => dead(config, limit).await,
        JobsCommand::Retry { id } => retry(config, id).await,
    }
}

/// `socialcraft jobs dead`: prints dead-lettered jobs, one a line.
pub async fn dead(config: Config, limit: i64) -> Result<(), String> {
    let dead = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        domain::jobs::list_dead(&mut conn, limit)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if dead.is_empty() {
        println!("no dead jobs");
    }
    for job in dead {
        println!(
            "{}\t{}\tattempts={}/{}\t{}\t{}",
            job.id,
            job.kind,
            job.attempts,
            job.max_attempts,
            job.updated_at.to_rfc3339(),
            job.last_error.unwrap_or_default().replace('\n', " ")
        );
    }
    Ok(())
}

/// `socialcraft jobs retry ID`: re-queues a dead job.
pub async fn retry(config: Config, id: i64) -> Result<(), String> {
    let revived = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        domain::jobs::retry_dead(&mut conn, id)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    if !revived {
        return Err(format!("job {id} is not a dead job"));
    }
    println!("job {id} re-queued");
    Ok(())
}
