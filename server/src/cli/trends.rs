//! `socialcraft trends import FILE`: a trend feed from a file, with its bad rows reported.

use clap::Subcommand;

use crate::config::Config;
use crate::wiring::{connect, with_database};

#[derive(Subcommand)]
pub enum TrendsCommand {
    /// Import a feed: JSON (an array of objects) or CSV (with a header row), with the fields
    /// topic, hashtag, source, score, observed_at. Bad rows are reported with their line
    /// numbers and skipped; the rest imports.
    Import {
        /// The feed file (`.json` or `.csv`; otherwise told apart by its first character).
        file: std::path::PathBuf,
    },
}

/// Runs one `trends` subcommand.
pub async fn run(config: Config, command: TrendsCommand) -> Result<(), String> {
    match command {
        TrendsCommand::Import { file } => import(config, &file).await,
    }
}

/// `socialcraft trends import FILE`: imports a JSON or CSV feed, reports skipped rows.
pub async fn import(config: Config, file: &std::path::Path) -> Result<(), String> {
    let body = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let format = domain::trends::feed::FeedFormat::detect(
        file.file_name().and_then(|n| n.to_str()),
        None,
        &body,
    );
    let report = with_database(&config, |url| async move {
        let mut conn = connect(&url).await?;
        domain::trends::import(&mut conn, &body, format)
            .await
            .map_err(|e| e.to_string())
    })
    .await?;
    for skipped in &report.skipped {
        eprintln!(
            "{}:{}: skipped: {}",
            file.display(),
            skipped.line,
            skipped.message
        );
    }
    println!(
        "{}: {} row(s) imported, {} skipped",
        file.display(),
        report.imported,
        report.skipped.len()
    );
    Ok(())
}
