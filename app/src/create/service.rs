//! Server-side prompt storage. Only compiled with the `ssr` feature.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{PromptSummary, Style, ValidPrompt};
use crate::db::schema::prompts;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Queryable, Selectable)]
#[diesel(table_name = prompts, check_for_backend(diesel::pg::Pg))]
struct PromptRow {
    id: Uuid,
    prompt: String,
    style: String,
    created_at: DateTime<Utc>,
}

impl PromptRow {
    fn into_summary(self) -> Result<PromptSummary, AppError> {
        // The column only ever receives slugs from `Style`; anything else is corruption.
        let style = Style::from_slug(&self.style).ok_or_else(|| {
            tracing::error!(id = %self.id, style = %self.style, "stored prompt has an unknown style");
            AppError::internal()
        })?;
        Ok(PromptSummary {
            id: self.id,
            prompt: self.prompt,
            style,
            created_at: self.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = prompts)]
struct NewPrompt<'a> {
    prompt: &'a str,
    style: &'a str,
}

/// Stores a validated prompt and returns it as listed.
pub async fn submit(state: &AppState, valid: ValidPrompt) -> Result<PromptSummary, AppError> {
    let mut conn = state.conn().await?;
    let row: PromptRow = diesel::insert_into(prompts::table)
        .values(NewPrompt {
            prompt: &valid.prompt,
            style: valid.style.slug(),
        })
        .returning(PromptRow::as_returning())
        .get_result(&mut conn)
        .await
        .map_err(|e| crate::db::query_failed("insert prompt", e))?;
    tracing::info!(prompt_id = %row.id, style = %row.style, "prompt stored");
    row.into_summary()
}

/// The `limit` most recent prompts, newest first.
pub async fn recent(state: &AppState, limit: i64) -> Result<Vec<PromptSummary>, AppError> {
    let mut conn = state.conn().await?;
    let rows: Vec<PromptRow> = prompts::table
        .select(PromptRow::as_select())
        .order((prompts::created_at.desc(), prompts::id.desc()))
        .limit(limit)
        .load(&mut conn)
        .await
        .map_err(|e| crate::db::query_failed("list recent prompts", e))?;
    rows.into_iter().map(PromptRow::into_summary).collect()
}
