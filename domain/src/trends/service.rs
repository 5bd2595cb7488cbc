//! Reads what the ranking needs, caches the ranking, stores imported feeds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Trend;
use super::rank::{self, ImportedTrend, PromptEvent, RankSettings};
use crate::db::DbPool;
use crate::db::schema::trend_imports;
use shared::error::AppError;

/// The most recent prompts the ranking reads: a bound on its cost however busy the window.
pub const MAX_EVENTS: i64 = 50_000;

/// The ranking, cached for `ttl` and refreshed in the background by the host, so a page that
/// shows trends never waits for the ranking query (except the very first time).
pub struct Trends {
    cache: moka::future::Cache<(), Arc<Vec<Trend>>>,
    settings: RankSettings,
}

impl std::fmt::Debug for Trends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trends").finish_non_exhaustive()
    }
}

impl Trends {
    /// A cache whose ranking expires after `ttl`.
    pub fn new(ttl: Duration, settings: RankSettings) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(ttl)
                .build(),
            settings,
        }
    }

    /// The current ranking: from the cache, or computed now when it expired.
    pub async fn top(&self, db: &DbPool) -> Result<Arc<Vec<Trend>>, AppError> {
        self.cache
            .try_get_with((), async { self.compute(db).await.map(Arc::new) })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Computes the ranking now and caches it: the background refresh, and after an import.
    pub async fn refresh(&self, db: &DbPool) -> Result<Arc<Vec<Trend>>, AppError> {
        let ranked = Arc::new(self.compute(db).await?);
        self.cache.insert((), ranked.clone()).await;
        Ok(ranked)
    }

    async fn compute(&self, db: &DbPool) -> Result<Vec<Trend>, AppError> {
        let mut conn = db.get().await?;
        let now = Utc::now();
        let since = now - self.settings.window;
        let events = events_since(&mut conn, since).await.map_err(failed)?;
        let imported = imported_since(&mut conn, since).await.map_err(failed)?;
        Ok(rank::rank(&events, &imported, now, &self.settings))
    }
}

fn failed(e: diesel::result::Error) -> AppError {
    tracing::error!(error = %e, "trends query failed");
    AppError::unavailable()
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = Text)]
    prompt: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    creator: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    rating_sum: i64,
    #[diesel(sql_type = BigInt)]
    rating_count: i64,
}

/// Prompts of shared images made since `since` (newest first, at most [`MAX_EVENTS`]), with
/// their creator and their shared images' rating totals. A prompt whose images are all
/// private is not public, so it never reaches the trends; a generation without an owner
/// (made before accounts) stands for itself.
pub async fn events_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> QueryResult<Vec<PromptEvent>> {
    let rows: Vec<EventRow> = diesel::sql_query(
        "SELECT g.prompt, g.created_at, coalesce(g.user_id, g.id) AS creator, \
                coalesce(r.rating_sum, 0)::int8 AS rating_sum, \
                coalesce(r.rating_count, 0)::int8 AS rating_count \
         FROM (SELECT id, prompt, created_at, user_id FROM generations \
               WHERE created_at >= $1 AND status = 'succeeded' \
                 AND EXISTS (SELECT 1 FROM images i \
                             WHERE i.generation_id = generations.id AND i.public) \
               ORDER BY created_at DESC LIMIT $2) g \
         LEFT JOIN LATERAL (SELECT sum(rating_sum) AS rating_sum, sum(rating_count) AS rating_count \
                            FROM images WHERE generation_id = g.id AND public) r ON true",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<BigInt, _>(MAX_EVENTS)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PromptEvent {
            prompt: r.prompt,
            creator: r.creator,
            at: r.created_at,
            rating_sum: r.rating_sum,
            rating_count: r.rating_count,
        })
        .collect())
}

/// Imported trends observed since `since`.
pub async fn imported_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> QueryResult<Vec<ImportedTrend>> {
    let rows: Vec<(String, String, String, f64, DateTime<Utc>)> = trend_imports::table
        .filter(trend_imports::observed_at.ge(since))
        .select((
            trend_imports::topic,
            trend_imports::hashtag,
            trend_imports::source,
            trend_imports::score,
            trend_imports::observed_at,
        ))
        .order(trend_imports::observed_at.desc())
        .limit(MAX_EVENTS)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(topic, hashtag, source, score, observed_at)| ImportedTrend {
                topic,
                hashtag,
                source,
                score,
                observed_at,
            },
        )
        .collect())
}

/// Stores imported rows; a row already imported (same source, topic and time) is updated.
/// All or nothing. Returns how many rows were written.
pub async fn import(conn: &mut AsyncPgConnection, rows: &[ImportedTrend]) -> QueryResult<usize> {
    use diesel::upsert::excluded;
    use diesel_async::AsyncConnection;
    // A feed listing the same row twice keeps its last line: one statement may not update a
    // row twice.
    let mut latest = std::collections::HashMap::new();
    for r in rows {
        latest.insert((&r.source, &r.topic, r.observed_at), r);
    }
    let mut unique: Vec<&ImportedTrend> = latest.into_values().collect();
    unique.sort_by(|a, b| {
        (&a.source, &a.topic, a.observed_at).cmp(&(&b.source, &b.topic, b.observed_at))
    });
    let values: Vec<_> = unique
        .into_iter()
        .map(|r| {
            (
                trend_imports::topic.eq(&r.topic),
                trend_imports::hashtag.eq(&r.hashtag),
                trend_imports::source.eq(&r.source),
                trend_imports::score.eq(r.score),
                trend_imports::observed_at.eq(r.observed_at),
            )
        })
        .collect();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let mut written = 0;
        // PostgreSQL takes at most 65,535 bind parameters per statement; five per row.
        for chunk in values.chunks(5_000) {
            written += diesel::insert_into(trend_imports::table)
                .values(chunk)
                .on_conflict((
                    trend_imports::source,
                    trend_imports::topic,
                    trend_imports::observed_at,
                ))
                .do_update()
                .set((
                    trend_imports::hashtag.eq(excluded(trend_imports::hashtag)),
                    trend_imports::score.eq(excluded(trend_imports::score)),
                    trend_imports::imported_at.eq(diesel::dsl::sql::<Timestamptz>("now()")),
                ))
                .execute(conn)
                .await?;
        }
        Ok(written)
    })
    .await
}
