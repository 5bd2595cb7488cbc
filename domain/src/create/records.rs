//! Generation and image records: what the submission writes, what the worker updates, and
//! how both read back as a [`GenerationView`].
//!
//! The job is the source of truth for the lifecycle (queued, running, retrying, dead); the
//! generation row holds what the creator asked for, the progress and a readable error. A view
//! combines them, so a job dead-lettered without its handler running (its lease ran out on the
//! last attempt) still shows as failed, and `socialcraft jobs retry` shows it queued again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Format, GenerationStatus, GenerationView, ImageView, Style};
use crate::db::schema::{generations, images, jobs};

/// A generation row.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = generations, check_for_backend(diesel::pg::Pg))]
pub struct GenerationRow {
    /// Identifier.
    pub id: Uuid,
    /// The prompt.
    pub prompt: String,
    /// Style slug.
    pub style: String,
    /// Format slug.
    pub format: String,
    /// Images asked for.
    pub variations: i32,
    /// The provider that makes the images.
    pub provider: String,
    /// The base seed; variation `i` uses `seed + i`.
    pub seed: i64,
    /// Status as the handler last wrote it.
    pub status: String,
    /// 0 to 100.
    pub progress: i32,
    /// Why it failed, for the creator.
    pub error: Option<String>,
    /// The job that runs it.
    pub job_id: Option<i64>,
    /// Submitted at.
    pub created_at: DateTime<Utc>,
    /// First picked up at.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished (or failed) at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Who asked for it (`None` for rows from before accounts).
    pub user_id: Option<Uuid>,
    /// The brand kit it was made with, as it was then (`brands::BrandKit` as JSON).
    pub brand: Option<serde_json::Value>,
}

impl GenerationRow {
    /// The style, or `None` if the column holds something unknown (corruption).
    pub fn style(&self) -> Option<Style> {
        Style::from_slug(&self.style)
    }
    /// The format, or `None` if the column holds something unknown.
    pub fn format(&self) -> Option<Format> {
        Format::from_slug(&self.format)
    }
    /// The seed for variation `i`.
    pub fn variation_seed(&self, i: u8) -> i64 {
        self.seed.wrapping_add(i64::from(i))
    }
}

/// An image row.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = images, check_for_backend(diesel::pg::Pg))]
pub struct ImageRow {
    /// Identifier.
    pub id: Uuid,
    /// Its generation.
    pub generation_id: Uuid,
    /// Which variation.
    pub variation: i32,
    /// Its seed.
    pub seed: i64,
    /// Pixels.
    pub width: i32,
    /// Pixels.
    pub height: i32,
    /// The PNG original.
    pub png_key: String,
    /// WebP 320 px wide.
    pub webp_320_key: String,
    /// WebP 720 px wide.
    pub webp_720_key: String,
    /// WebP full size.
    pub webp_full_key: String,
    /// SHA-256 of the PNG.
    pub sha256: String,
    /// Size of the PNG.
    pub bytes: i64,
    /// Time to make it.
    pub render_ms: i32,
    /// Stored at.
    pub created_at: DateTime<Utc>,
}

/// An image to record.
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = images)]
pub struct NewImage {
    /// Its generation.
    pub generation_id: Uuid,
    /// Which variation.
    pub variation: i32,
    /// Its seed.
    pub seed: i64,
    /// Pixels.
    pub width: i32,
    /// Pixels.
    pub height: i32,
    /// The PNG original.
    pub png_key: String,
    /// WebP 320 px wide.
    pub webp_320_key: String,
    /// WebP 720 px wide.
    pub webp_720_key: String,
    /// WebP full size.
    pub webp_full_key: String,
    /// SHA-256 of the PNG.
    pub sha256: String,
    /// Size of the PNG.
    pub bytes: i64,
    /// Time to make it.
    pub render_ms: i32,
    /// Its owner, the generation's.
    pub user_id: Option<Uuid>,
}

type NullableTz = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>;

/// A SQL timestamp expression (diesel's `now` is `timestamp`, not `timestamptz`).
fn timestamptz_sql(sql: &'static str) -> diesel::expression::SqlLiteral<NullableTz> {
    diesel::dsl::sql::<NullableTz>(sql)
}

fn now_tz() -> diesel::expression::SqlLiteral<NullableTz> {
    timestamptz_sql("now()")
}

/// The URL a media key is served at.
pub fn media_url(key: &str) -> String {
    format!("/media/{key}")
}

impl ImageRow {
    fn view(&self) -> ImageView {
        ImageView {
            id: self.id,
            variation: u8::try_from(self.variation).unwrap_or(0),
            width: u32::try_from(self.width).unwrap_or(0),
            height: u32::try_from(self.height).unwrap_or(0),
            png_url: media_url(&self.png_key),
            small_url: media_url(&self.webp_320_key),
            medium_url: media_url(&self.webp_720_key),
            full_url: media_url(&self.webp_full_key),
        }
    }
}

/// Combines a generation, its job's status, and its images.
///
/// Returns `None` when the row holds a style or format this build does not know.
pub fn view(
    g: GenerationRow,
    job_status: Option<String>,
    images: &[ImageRow],
) -> Option<GenerationView> {
    let (style, format) = (g.style()?, g.format()?);
    let stored = match g.status.as_str() {
        "running" => GenerationStatus::Running,
        "succeeded" => GenerationStatus::Succeeded,
        "failed" => GenerationStatus::Failed,
        _ => GenerationStatus::Queued,
    };
    let (status, error) = match (stored, job_status) {
        (GenerationStatus::Succeeded, _) => (GenerationStatus::Succeeded, None),
        (_, Some(job_status)) => match job_status.as_str() {
            "dead" => (
                GenerationStatus::Failed,
                // The job's own error is technical; the creator gets the handler's sentence,
                // or a general one when the handler never got to write it.
                g.error
                    .clone()
                    .or_else(|| Some("The images could not be made. Please try again.".into())),
            ),
            "queued" => (GenerationStatus::Queued, None),
            "running" => (GenerationStatus::Running, None),
            // The job finished but the row did not say so: only a crash between the two
            // writes does that, and the images decide.
            _ if stored == GenerationStatus::Failed => (GenerationStatus::Failed, g.error.clone()),
            _ => (stored, None),
        },
        (s, None) => (s, g.error.clone().filter(|_| s == GenerationStatus::Failed)),
    };
    let mut imgs: Vec<ImageView> = images
        .iter()
        .filter(|i| i.generation_id == g.id)
        .map(ImageRow::view)
        .collect();
    imgs.sort_by_key(|i| i.variation);
    let progress = if status == GenerationStatus::Succeeded {
        100
    } else {
        g.progress.clamp(0, 100) as u8
    };
    Some(GenerationView {
        id: g.id,
        prompt: g.prompt,
        style,
        format,
        variations: u8::try_from(g.variations).unwrap_or(1),
        status,
        progress,
        error,
        images: imgs,
        created_at: g.created_at,
    })
}

/// Loads the views of `rows` (two more queries, whatever their number).
pub async fn load_views(
    conn: &mut AsyncPgConnection,
    rows: Vec<GenerationRow>,
) -> QueryResult<Vec<GenerationView>> {
    let ids: Vec<Uuid> = rows.iter().map(|g| g.id).collect();
    let job_ids: Vec<i64> = rows.iter().filter_map(|g| g.job_id).collect();
    let imgs: Vec<ImageRow> = images::table
        .filter(images::generation_id.eq_any(&ids))
        .select(ImageRow::as_select())
        .load(conn)
        .await?;
    let job_states: Vec<(i64, String)> = jobs::table
        .filter(jobs::id.eq_any(&job_ids))
        .select((jobs::id, jobs::status))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|g| {
            let job = g.job_id.and_then(|j| {
                job_states
                    .iter()
                    .find(|(id, _)| *id == j)
                    .map(|(_, s)| s.clone())
            });
            let id = g.id;
            let v = view(g, job, &imgs);
            if v.is_none() {
                tracing::error!(generation_id = %id, "generation has an unknown style or format");
            }
            v
        })
        .collect())
}

/// One generation row.
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<GenerationRow>> {
    generations::table
        .find(id)
        .select(GenerationRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// One generation row if it belongs to `owner`.
pub async fn find_owned(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    id: Uuid,
) -> QueryResult<Option<GenerationRow>> {
    generations::table
        .find(id)
        .filter(generations::user_id.eq(owner))
        .select(GenerationRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The images already stored for a generation.
pub async fn images_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<ImageRow>> {
    images::table
        .filter(images::generation_id.eq(id))
        .order(images::variation)
        .select(ImageRow::as_select())
        .load(conn)
        .await
}

/// The channel live progress streams listen on; each payload is a generation id that changed.
pub const CHANNEL: &str = "generations";

/// Tells every web process that generation `id` changed, so its live streams send the new
/// state. Called after each change is committed (see [`crate::db::notify`]).
pub async fn announce(conn: &mut AsyncPgConnection, id: Uuid) {
    crate::db::notify(conn, &[(CHANNEL, &id.to_string())]).await;
}

/// The worker picked it up: running, started now (unless an earlier attempt started it).
pub async fn mark_running(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(generations::table.find(id))
        .set((
            generations::status.eq("running"),
            generations::error.eq(None::<String>),
            generations::started_at.eq(timestamptz_sql("coalesce(started_at, now())")),
        ))
        .execute(conn)
        .await?;
    announce(conn, id).await;
    Ok(())
}

/// Records progress (0 to 100).
pub async fn set_progress(conn: &mut AsyncPgConnection, id: Uuid, progress: u8) -> QueryResult<()> {
    diesel::update(generations::table.find(id))
        .set(generations::progress.eq(i32::from(progress.min(100))))
        .execute(conn)
        .await?;
    announce(conn, id).await;
    Ok(())
}

/// Records a finished image. Storing the same variation twice (a retried job that got further
/// than its record says) keeps the first; returns whether this call stored it.
pub async fn insert_image(conn: &mut AsyncPgConnection, image: &NewImage) -> QueryResult<bool> {
    let n = diesel::insert_into(images::table)
        .values(image)
        .on_conflict((images::generation_id, images::variation))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Every image is stored.
pub async fn mark_succeeded(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(generations::table.find(id))
        .set((
            generations::status.eq("succeeded"),
            generations::progress.eq(100),
            generations::error.eq(None::<String>),
            generations::finished_at.eq(now_tz()),
        ))
        .execute(conn)
        .await?;
    announce(conn, id).await;
    Ok(())
}

/// It will not be retried: failed, with a sentence for the creator.
pub async fn mark_failed(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> QueryResult<()> {
    diesel::update(generations::table.find(id))
        .set((
            generations::status.eq("failed"),
            generations::error.eq(Some(reason)),
            generations::finished_at.eq(now_tz()),
        ))
        .execute(conn)
        .await?;
    announce(conn, id).await;
    Ok(())
}

/// It failed but will be retried: back to queued, with the reason kept for the record.
pub async fn mark_retrying(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
) -> QueryResult<()> {
    diesel::update(generations::table.find(id))
        .set((
            generations::status.eq("queued"),
            generations::error.eq(Some(reason)),
        ))
        .execute(conn)
        .await?;
    announce(conn, id).await;
    Ok(())
}
