//! Tier allowances that live in the database: generations per rolling 24 hours (counted in
//! the append-only `usage_ledger`) and bytes of uploads held.
//! (Requests per minute are the host's rate limiter.)

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::auth::TierLimits;
use crate::db::schema::{usage_ledger, users};
use shared::error::{AppError, ErrorCode};

/// Why an allowance refused, with what the user needs to know.
fn exceeded(message: String) -> AppError {
    AppError::new(ErrorCode::QuotaExceeded, message)
}

/// The ledger kind of a submitted generation (one per submission, whatever its variations).
pub const GENERATION: &str = "generation";
/// The ledger kind of one paid provider call (one image asked of an HTTP provider).
pub const PROVIDER_CALL: &str = "provider_call";

/// Checks that `user_id` may start another generation under `limits`. Call it inside the
/// transaction that inserts the generation, after [`lock_user`], so two submissions at once
/// cannot both take the last one. Counts from `usage_ledger`, so deleting generations or
/// images gives nothing back.
pub async fn check_generations(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    limits: TierLimits,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let (used, oldest) = generations_used(conn, user_id, now).await?;
    if used < u64::from(limits.generations_per_day) {
        return Ok(());
    }
    // Each submission is one row of quantity one, so the oldest of the day's leaves the
    // window first and frees one.
    let next = oldest.map_or(now, |t| t + chrono::Duration::hours(24));
    let minutes = (next - now).num_minutes().max(1);
    let wait = if minutes >= 120 {
        format!("{} hours", minutes / 60)
    } else {
        format!("{minutes} minutes")
    };
    Err(exceeded(format!(
        "You have made {} generations in the last 24 hours, your plan's limit. The next one is available in {wait}.",
        limits.generations_per_day
    )))
}

/// Records one submitted generation in the ledger (inside the submission's transaction).
pub async fn record_generation(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    generation_id: Uuid,
) -> QueryResult<()> {
    diesel::insert_into(usage_ledger::table)
        .values((
            usage_ledger::user_id.eq(user_id),
            usage_ledger::kind.eq(GENERATION),
            usage_ledger::quantity.eq(1),
            usage_ledger::generation_id.eq(generation_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records one call to a paid image provider for `generation_id` and what it cost
/// (micro-units of the operator's currency). Returns whether a row was written: a generation
/// without an owner (rows from before accounts) has nobody to bill.
pub async fn record_provider_call(
    conn: &mut AsyncPgConnection,
    generation_id: Uuid,
    cost_micros: u64,
) -> QueryResult<bool> {
    let cost = i64::try_from(cost_micros).unwrap_or(i64::MAX);
    let n = diesel::sql_query(
        "INSERT INTO usage_ledger (user_id, kind, quantity, cost_micros, generation_id) \
         SELECT user_id, $2, 1, $3, id FROM generations WHERE id = $1 AND user_id IS NOT NULL",
    )
    .bind::<diesel::sql_types::Uuid, _>(generation_id)
    .bind::<diesel::sql_types::Text, _>(PROVIDER_CALL)
    .bind::<diesel::sql_types::BigInt, _>(cost)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Generations `user_id` started in the 24 hours before `now`, and when the oldest of them
/// did: one index-only range sum, however long the day.
async fn generations_used(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>), AppError> {
    let (used, oldest): (Option<i64>, Option<DateTime<Utc>>) =
        generations_used_query(user_id, now - chrono::Duration::hours(24))
            .get_result(conn)
            .await
            .map_err(|e| shared::error::query_failed("count generations", e))?;
    Ok((used.unwrap_or(0).max(0) as u64, oldest))
}

/// Locks the user's row until the transaction ends: per-user allowances are checked and
/// used one request at a time.
pub async fn lock_user(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<(), AppError> {
    users::table
        .find(user_id)
        .select(users::id)
        .for_update()
        .first::<Uuid>(conn)
        .await
        .optional()
        .map_err(|e| shared::error::query_failed("lock user", e))?
        .map(|_| ())
        .ok_or_else(|| AppError::new(ErrorCode::Unauthorized, "Sign in to continue."))
}

/// Reserves `bytes` of `user_id`'s storage allowance, or refuses when it would go over, in
/// one statement (so concurrent uploads cannot overshoot together).
pub async fn reserve_storage(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    bytes: u64,
    limits: TierLimits,
) -> Result<(), AppError> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    let cap = i64::try_from(limits.storage_bytes).unwrap_or(i64::MAX);
    let reserved = diesel::update(
        users::table
            .find(user_id)
            .filter(users::storage_bytes.le(cap.saturating_sub(bytes))),
    )
    .set(users::storage_bytes.eq(users::storage_bytes + bytes))
    .execute(conn)
    .await
    .map_err(|e| shared::error::query_failed("reserve storage", e))?;
    if reserved == 1 {
        return Ok(());
    }
    let used = storage_used(conn, user_id).await?;
    Err(exceeded(format!(
        "This would take you to {} of your plan's {} of storage. Delete some uploads or upgrade your plan.",
        human_bytes(used.saturating_add(bytes.max(0) as u64)),
        human_bytes(limits.storage_bytes)
    )))
}

/// Gives back `bytes` of `user_id`'s storage allowance (an upload was deleted or failed).
pub async fn release_storage(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    bytes: u64,
) -> Result<(), AppError> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    diesel::update(users::table.find(user_id))
        .set(
            users::storage_bytes.eq(diesel::dsl::sql::<diesel::sql_types::Int8>(
                "GREATEST(storage_bytes - ",
            )
            .bind::<diesel::sql_types::Int8, _>(bytes)
            .sql(", 0)")),
        )
        .execute(conn)
        .await
        .map_err(|e| shared::error::query_failed("release storage", e))?;
    Ok(())
}

/// Bytes of uploads `user_id` holds.
pub async fn storage_used(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<u64, AppError> {
    let used: i64 = users::table
        .find(user_id)
        .select(users::storage_bytes)
        .first(conn)
        .await
        .optional()
        .map_err(|e| shared::error::query_failed("storage used", e))?
        .unwrap_or(0);
    Ok(used.max(0) as u64)
}

/// The statement [`check_generations`] counts a user's day with: the sum of their
/// generation rows in the ledger since `since`, and the oldest one's time.
pub fn generations_used_query(
    user_id: Uuid,
    since: DateTime<Utc>,
) -> impl diesel_async::methods::LoadQuery<
    'static,
    AsyncPgConnection,
    (Option<i64>, Option<DateTime<Utc>>),
> + diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryId
+ Send
+ 'static {
    usage_ledger::table
        .filter(usage_ledger::user_id.eq(user_id))
        .filter(usage_ledger::kind.eq(GENERATION))
        .filter(usage_ledger::created_at.gt(since))
        .select((
            diesel::dsl::sum(usage_ledger::quantity),
            diesel::dsl::min(usage_ledger::created_at),
        ))
}

/// Generations `user_id` started in the 24 hours before `now` (from the ledger, as the
/// allowance counts them).
pub async fn generations_today(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    Ok(generations_used(conn, user_id, now).await?.0)
}

/// `1.5 GB`, `200 MB`, `12 KB` (decimal units, as storage is sold).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if v >= 10.0 || v.fract() < 0.05 {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_a_plan() {
        assert_eq!(human_bytes(200_000_000), "200 MB");
        assert_eq!(human_bytes(5_000_000_000), "5 GB");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(human_bytes(999), "999 bytes");
    }
}
