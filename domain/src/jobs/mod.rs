//! The PostgreSQL job queue.
//!
//! Semantics, which the worker (`worker`) builds on:
//! - `enqueue` inserts a `queued` job; it takes a connection, so a service can enqueue in the
//!   same transaction as the rows the job will work on (nothing is lost between them), and
//!   `wake`s the workers once it has committed. `release` and `retry_dead` wake them
//!   themselves.
//! - `claim` takes ready jobs with `FOR UPDATE SKIP LOCKED`, so concurrent workers never take
//!   the same job, and marks them `running` under a lease owned by the worker. A `running` job
//!   whose lease ran out (its worker died) is ready again; if that was its last attempt it is
//!   dead-lettered instead.
//! - Every later step (`renew`, `complete`, `fail`, `release`) names the worker and only
//!   acts while that worker still holds the lease, so a worker that lost its job can never
//!   overwrite the outcome recorded by the one that took it over.
//! - `fail` schedules a retry with exponential backoff and jitter (computed in SQL), or
//!   dead-letters the job after its last attempt or on a permanent error.

pub mod worker;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The default number of attempts before a job is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

/// A job row.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = crate::db::schema::jobs, check_for_backend(diesel::pg::Pg))]
pub struct Job {
    /// Identifier.
    pub id: i64,
    /// What kind of work this is; picks the handler.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// `queued`, `running`, `succeeded` or `dead`.
    pub status: String,
    /// Attempts started so far, including the current one.
    pub attempts: i32,
    /// Attempts allowed before the job is dead-lettered.
    pub max_attempts: i32,
    /// Not run before this time (backoff).
    pub run_at: DateTime<Utc>,
    /// The worker holding the lease, while running.
    pub locked_by: Option<String>,
    /// When the lease runs out, while running.
    pub lease_until: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it succeeded or was dead-lettered.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How long to wait before each retry: `base * 2^(attempt-1)`, capped, then multiplied by a
/// random factor in [0.5, 1) so retries of many jobs that failed together spread out.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The delay after the first failure, before jitter.
    pub base: Duration,
    /// The longest delay, before jitter.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

/// What `fail` did with the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again for a later attempt.
    Retrying,
    /// Out of attempts, or the error was permanent: dead-lettered.
    Dead,
    /// The worker no longer held the job; nothing changed.
    Lost,
}

/// Counts of jobs by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Waiting to run (including those backing off).
    pub queued: i64,
    /// Under a lease.
    pub running: i64,
    /// Dead-lettered.
    pub dead: i64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The channel idle workers listen on; each payload is the kind of a job that became ready.
pub const CHANNEL: &str = "jobs";

/// Wakes idle workers for a job of `kind` that just became ready.
///
/// Call it after the commit that queued the job (see [`crate::db::notify`] for why not
/// inside it). A retry with backoff is not announced: it is not ready yet, and the worker's
/// poll finds it when it is.
pub async fn wake(conn: &mut AsyncPgConnection, kind: &str) {
    crate::db::notify(conn, &[(CHANNEL, kind)]).await;
}

/// Adds a job and returns its id. Inside a transaction, [`wake`] the workers after it commits.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    kind: &str,
    payload: &serde_json::Value,
    max_attempts: i32,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO jobs (kind, payload, max_attempts) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind::<Text, _>(kind)
    .bind::<Jsonb, _>(payload)
    .bind::<Integer, _>(max_attempts)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// Claims up to `limit` ready jobs of the given kinds for `worker`, under a lease of `lease`.
///
/// Jobs whose lease ran out on their last attempt are dead-lettered first, so a job that
/// keeps killing its worker cannot loop forever.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    kinds: &[String],
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<Job>> {
    if kinds.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    diesel::sql_query(
        "UPDATE jobs SET status = 'dead', locked_by = NULL, lease_until = NULL, \
             last_error = coalesce(last_error || '; ', '') || 'lease expired on the last attempt', \
             finished_at = now(), updated_at = now() \
         WHERE status = 'running' AND lease_until < now() AND attempts >= max_attempts \
           AND kind = ANY($1)",
    )
    .bind::<Array<Text>, _>(kinds)
    .execute(conn)
    .await?;

    claim_query(worker, kinds, lease, limit).load(conn).await
}

/// The statement [`claim`] takes jobs with: the oldest ready ones of `kinds`, skipping rows
/// other workers hold locked.
pub fn claim_query(
    worker: &str,
    kinds: &[String],
    lease: Duration,
    limit: i64,
) -> impl diesel_async::methods::LoadQuery<'static, AsyncPgConnection, Job>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryId
+ Send
+ 'static {
    diesel::sql_query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, \
             lease_until = now() + make_interval(secs => $2), updated_at = now() \
         WHERE id IN ( \
             SELECT id FROM jobs \
             WHERE kind = ANY($3) AND ( \
                 (status = 'queued' AND run_at <= now()) \
                 OR (status = 'running' AND lease_until < now())) \
             ORDER BY run_at, id \
             LIMIT $4 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<Text, _>(worker.to_owned())
    .bind::<Double, _>(secs(lease))
    .bind::<Array<Text>, _>(kinds.to_vec())
    .bind::<BigInt, _>(limit)
}

/// Extends `worker`'s lease on job `id`. `false` means the worker no longer holds it.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    id: i64,
    worker: &str,
    lease: Duration,
) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET lease_until = now() + make_interval(secs => $3), updated_at = now() \
         WHERE id = $1 AND locked_by = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(worker)
    .bind::<Double, _>(secs(lease))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Marks job `id` done. `false` means the worker no longer held it (someone else will, or
/// did, finish it), and nothing changed.
pub async fn complete(conn: &mut AsyncPgConnection, id: i64, worker: &str) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET status = 'succeeded', locked_by = NULL, lease_until = NULL, \
             finished_at = now(), updated_at = now() \
         WHERE id = $1 AND locked_by = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(worker)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Records a failed attempt: retry later with backoff, or dead-letter the job when it has no
/// attempts left or `retryable` is false.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    id: i64,
    worker: &str,
    error: &str,
    retryable: bool,
    backoff: Backoff,
) -> QueryResult<FailOutcome> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let rows: Vec<Status> = diesel::sql_query(
        "UPDATE jobs SET \
             status = CASE WHEN $4 AND attempts < max_attempts THEN 'queued' ELSE 'dead' END, \
             run_at = CASE WHEN $4 AND attempts < max_attempts \
                 THEN now() + make_interval(secs => \
                     least($6, $5 * power(2, attempts - 1)) * (0.5 + random() * 0.5)) \
                 ELSE run_at END, \
             finished_at = CASE WHEN $4 AND attempts < max_attempts THEN NULL ELSE now() END, \
             last_error = $3, locked_by = NULL, lease_until = NULL, updated_at = now() \
         WHERE id = $1 AND locked_by = $2 AND status = 'running' \
         RETURNING status",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(worker)
    .bind::<Text, _>(error)
    .bind::<Bool, _>(retryable)
    .bind::<Double, _>(secs(backoff.base))
    .bind::<Double, _>(secs(backoff.cap))
    .load(conn)
    .await?;
    Ok(match rows.into_iter().next().map(|r| r.status).as_deref() {
        Some("queued") => FailOutcome::Retrying,
        Some(_) => FailOutcome::Dead,
        None => FailOutcome::Lost,
    })
}

/// Gives job `id` back without counting the attempt (a worker shutting down), and wakes
/// another worker for it.
pub async fn release(conn: &mut AsyncPgConnection, id: i64, worker: &str) -> QueryResult<bool> {
    let kind: Option<Kind> = diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), \
             locked_by = NULL, lease_until = NULL, run_at = now(), updated_at = now() \
         WHERE id = $1 AND locked_by = $2 AND status = 'running' \
         RETURNING kind",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(worker)
    .get_result(conn)
    .await
    .optional()?;
    woken(conn, kind).await
}

/// The kind of a job an update made ready.
#[derive(QueryableByName)]
struct Kind {
    #[diesel(sql_type = Text)]
    kind: String,
}

/// Wakes workers for the job an update returned, if it returned one; whether it did.
async fn woken(conn: &mut AsyncPgConnection, kind: Option<Kind>) -> QueryResult<bool> {
    match kind {
        Some(k) => {
            wake(conn, &k.kind).await;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Dead-lettered jobs, most recent first.
pub async fn list_dead(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Job>> {
    diesel::sql_query(
        "SELECT * FROM jobs WHERE status = 'dead' ORDER BY updated_at DESC, id DESC LIMIT $1",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Re-queues dead job `id` with a fresh set of attempts, and wakes a worker for it. `false`
/// if it is not dead.
pub async fn retry_dead(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    let kind: Option<Kind> = diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), finished_at = NULL, \
             updated_at = now() \
         WHERE id = $1 AND status = 'dead' \
         RETURNING kind",
    )
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .await
    .optional()?;
    woken(conn, kind).await
}

/// One job by id.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Job>> {
    let mut rows: Vec<Job> = diesel::sql_query("SELECT * FROM jobs WHERE id = $1")
        .bind::<BigInt, _>(id)
        .load(conn)
        .await?;
    Ok(rows.pop())
}

/// How many jobs wait, run and are dead.
pub async fn depth(conn: &mut AsyncPgConnection) -> QueryResult<Depth> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT status, count(*) AS n FROM jobs \
         WHERE status IN ('queued', 'running', 'dead') GROUP BY status",
    )
    .load(conn)
    .await?;
    let mut depth = Depth::default();
    for r in rows {
        match r.status.as_str() {
            "queued" => depth.queued = r.n,
            "running" => depth.running = r.n,
            _ => depth.dead = r.n,
        }
    }
    Ok(depth)
}

/// How long the job that has been ready the longest has waited for a worker: a queued job
/// since its `run_at`, a running job whose lease ran out since then. `None` when nothing is
/// waiting. Both predicates match the queue's partial indexes.
pub async fn oldest_ready_age(conn: &mut AsyncPgConnection) -> QueryResult<Option<Duration>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
        secs: Option<f64>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT extract(epoch FROM now() - least( \
             (SELECT min(run_at) FROM jobs WHERE status = 'queued' AND run_at <= now()), \
             (SELECT min(lease_until) FROM jobs WHERE status = 'running' AND lease_until < now()) \
         ))::float8 AS secs",
    )
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.secs)
        .map(|s| Duration::from_secs_f64(s.max(0.0))))
}
