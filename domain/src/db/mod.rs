//! Database types shared by the server functions and the host.

pub mod listener;
pub mod pool;
pub mod schema;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};

/// The application's PostgreSQL pool.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`].
pub type DbConn = Object<AsyncPgConnection>;

/// Sends each `(channel, payload)` notification, in one statement.
///
/// Writers call this after the commit they announce, not from inside their transaction:
/// PostgreSQL serialises the commits of all transactions that notify (a database-wide lock
/// held until the commit record is flushed), which caps one-row inserts that notify at about
/// 3,000 a second with fsync on (docs/PERFORMANCE.md). A statement that only notifies writes
/// no WAL, so it holds that lock only briefly.
///
/// A failure is logged and dropped: every listener also polls, so a lost notification only
/// delays what it announces.
pub async fn notify(conn: &mut AsyncPgConnection, notes: &[(&str, &str)]) {
    if let Err(e) = send_notifications(conn, notes).await {
        tracing::warn!(error = %e, "could not send notifications; listeners will poll");
    }
}

/// Sends each `(channel, payload)` notification in one statement, or fails. Inside a
/// transaction they go out at its commit, and not at all if it rolls back.
pub async fn send_notifications(
    conn: &mut AsyncPgConnection,
    notes: &[(&str, &str)],
) -> diesel::QueryResult<()> {
    use diesel::sql_types::{Array, Text};
    use diesel_async::RunQueryDsl;
    if notes.is_empty() {
        return Ok(());
    }
    let (channels, payloads): (Vec<&str>, Vec<&str>) = notes.iter().copied().unzip();
    diesel::sql_query("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)")
        .bind::<Array<Text>, _>(channels)
        .bind::<Array<Text>, _>(payloads)
        .execute(conn)
        .await
        .map(|_| ())
}

/// `EXPLAIN` of a query, as built by the code that runs it: its plan, one line a row. The
/// tests hold each hot query to its index through this, so a change to the query (or the
/// schema) that loses the index fails a test rather than a page under load.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub struct Explain<Q>(pub Q);

impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for Explain<Q>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = diesel::sql_types::Text;
}

/// The plan `PostgreSQL` would use for `query`, as text.
pub async fn explain<Q>(conn: &mut AsyncPgConnection, query: Q) -> diesel::QueryResult<String>
where
    Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryId
        + Send
        + 'static,
{
    use diesel_async::RunQueryDsl;
    let lines: Vec<String> = Explain(query).load(conn).await?;
    Ok(lines.join("\n"))
}
