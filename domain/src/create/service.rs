//! What the create server functions call.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::records::{self, GenerationRow};
use super::{GENERATE_JOB, GenerationView, Submission};
use crate::accounts::auth::CurrentUser;
use crate::accounts::quota;
use crate::db::schema::generations;
use crate::state::AppState;
use shared::error::{AppError, FieldError};

/// Attempts a generation job gets before it is dead-lettered.
pub const GENERATE_MAX_ATTEMPTS: i32 = 4;

#[derive(Insertable)]
#[diesel(table_name = generations)]
struct NewGeneration<'a> {
    prompt: &'a str,
    style: &'a str,
    format: &'a str,
    variations: i32,
    provider: &'a str,
    seed: i64,
    user_id: Uuid,
    brand: Option<serde_json::Value>,
}

/// A random base seed: each submission looks different, and the stored seed reproduces it.
fn random_seed() -> i64 {
    let bytes = Uuid::new_v4().into_bytes();
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&bytes[..8]);
    // Keep it positive so it reads naturally in logs and URLs.
    i64::from_le_bytes(eight) & i64::MAX
}

/// Checks the prompt against the blocklist and the creator's daily allowance, then stores the
/// generation and queues its job in one transaction: either both exist or neither does.
pub async fn submit(
    state: &AppState,
    user: CurrentUser,
    valid: Submission,
) -> Result<GenerationView, AppError> {
    submit_with_brand(state, user, valid, None).await
}

/// [`submit`], painted with the user's brand kit `brand` (copied onto the generation).
pub async fn submit_with_brand(
    state: &AppState,
    user: CurrentUser,
    valid: Submission,
    brand: Option<Uuid>,
) -> Result<GenerationView, AppError> {
    if let Err(blocked) = state.create.blocklist.check(&valid.prompt) {
        tracing::info!(rule = %blocked.rule, "prompt blocked by moderation");
        return Err(AppError::validation(vec![FieldError::new(
            "prompt",
            "blocked",
            blocked.to_string(),
        )]));
    }
    let provider = state.create.provider.as_str();
    let mut conn = state.conn().await?;
    let limits = state.auth.settings.plans.of(user.tier);
    let row: GenerationRow = conn
        .transaction::<_, AppError, _>(async |conn| {
            quota::lock_user(conn, user.id).await?;
            quota::check_generations(conn, user.id, limits, chrono::Utc::now()).await?;
            let kit = match brand {
                Some(id) => Some(crate::brands::service::kit_for(conn, user.id, id).await?),
                None => None,
            };
            let failed = |e| shared::error::query_failed("submit generation", e);
            let row: GenerationRow = diesel::insert_into(generations::table)
                .values(NewGeneration {
                    prompt: &valid.prompt,
                    style: valid.style.slug(),
                    format: valid.format.slug(),
                    variations: i32::from(valid.variations),
                    provider,
                    seed: random_seed(),
                    user_id: user.id,
                    brand: kit.and_then(|k| serde_json::to_value(k).ok()),
                })
                .returning(GenerationRow::as_returning())
                .get_result(conn)
                .await
                .map_err(failed)?;
            // Counted in the ledger with the generation, in its transaction: deleting the
            // generation or its images later gives nothing back.
            quota::record_generation(conn, user.id, row.id)
                .await
                .map_err(failed)?;
            let payload = serde_json::json!({ "generation_id": row.id });
            let job = crate::jobs::enqueue(conn, GENERATE_JOB, &payload, GENERATE_MAX_ATTEMPTS)
                .await
                .map_err(failed)?;
            diesel::update(generations::table.find(row.id))
                .set(generations::job_id.eq(job))
                .returning(GenerationRow::as_returning())
                .get_result(conn)
                .await
                .map_err(failed)
        })
        .await?;
    // Announced after the commit, in one statement: see `crate::db::notify`.
    let id = row.id.to_string();
    crate::db::notify(
        &mut conn,
        &[
            (records::CHANNEL, &id),
            (crate::jobs::CHANNEL, GENERATE_JOB),
        ],
    )
    .await;
    tracing::info!(
        generation_id = %row.id,
        user_id = %user.id,
        style = %row.style,
        format = %row.format,
        variations = row.variations,
        provider = %row.provider,
        "generation queued"
    );
    // The answer comes from what the transaction returned: nothing after the commit may
    // turn a stored submission into a refusal (the creator would retry and get it twice).
    // A job just enqueued is queued, and no image exists yet; the page follows from here.
    Ok(queued_view(row, valid.style, valid.format))
}

/// The view of a generation that was just submitted, built from its inserted row.
fn queued_view(row: GenerationRow, style: super::Style, format: super::Format) -> GenerationView {
    GenerationView {
        id: row.id,
        prompt: row.prompt,
        style,
        format,
        variations: u8::try_from(row.variations).unwrap_or(1),
        status: super::GenerationStatus::Queued,
        progress: 0,
        error: None,
        images: Vec::new(),
        created_at: row.created_at,
    }
}

/// One of `owner`'s generations as the page shows it, or `None` (also when it is somebody
/// else's: ids must not reveal what exists).
pub async fn view(
    state: &AppState,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<GenerationView>, AppError> {
    let mut conn = state.conn().await?;
    let Some(row) = records::find_owned(&mut conn, owner, id)
        .await
        .map_err(|e| shared::error::query_failed("find generation", e))?
    else {
        return Ok(None);
    };
    let mut views = records::load_views(&mut conn, vec![row])
        .await
        .map_err(|e| shared::error::query_failed("load generation", e))?;
    Ok(views.pop())
}

/// `owner`'s `limit` most recent generations, newest first.
pub async fn recent(
    state: &AppState,
    owner: Uuid,
    limit: i64,
) -> Result<Vec<GenerationView>, AppError> {
    let mut conn = state.conn().await?;
    let rows: Vec<GenerationRow> = generations::table
        .filter(generations::user_id.eq(owner))
        .select(GenerationRow::as_select())
        .order((generations::created_at.desc(), generations::id.desc()))
        .limit(limit)
        .load(&mut conn)
        .await
        .map_err(|e| shared::error::query_failed("list recent generations", e))?;
    records::load_views(&mut conn, rows)
        .await
        .map_err(|e| shared::error::query_failed("load generations", e))
}
