//! Pool construction, embedded migrations and the database checks used by readiness.

use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::DbPool;
use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Database settings.
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`; `None` means the embedded cluster (development only).
    pub url: Option<Secret>,
    /// `DATABASE_POOL_SIZE`, default 20.
    pub pool_size: usize,
    /// `DATABASE_POOL_TIMEOUT_MS`: how long a request waits for a connection, default 5000.
    pub pool_timeout: Duration,
    /// `RUN_MIGRATIONS`: apply pending migrations when `serve` starts, default true.
    pub run_migrations: bool,
    /// `PG_BIN_DIR`: where the embedded cluster's PostgreSQL binaries are.
    pub pg_bin_dir: Option<PathBuf>,
    /// `DATABASE_PGBOUNCER`: connect through PgBouncer; turns the prepared-statement cache
    /// off so no statement outlives the server connection it was prepared on. Default false.
    pub pgbouncer: bool,
}

/// The SQL migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Builds the connection pool. Connections are opened lazily, so this never blocks.
pub fn build_pool(url: &str, size: usize, wait: Duration) -> Result<DbPool, String> {
    build_pool_with(url, size, wait, true)
}

/// Builds the pool the configuration asks for: its size, its wait timeout, and with
/// `DATABASE_PGBOUNCER` no prepared-statement cache.
pub fn build_pool_for(url: &str, config: &DatabaseConfig) -> Result<DbPool, String> {
    build_pool_with(
        url,
        config.pool_size,
        config.pool_timeout,
        !config.pgbouncer,
    )
}

/// Builds a pool; `statement_cache: false` makes every connection prepare its statements
/// unnamed, per execution, so none outlives the server connection it was made on (what a
/// pooler that hands server connections between clients needs).
pub fn build_pool_with(
    url: &str,
    size: usize,
    wait: Duration,
    statement_cache: bool,
) -> Result<DbPool, String> {
    let manager = if statement_cache {
        AsyncDieselConnectionManager::<AsyncPgConnection>::new(url)
    } else {
        let mut setup = ManagerConfig::<AsyncPgConnection>::default();
        setup.custom_setup = Box::new(|url| {
            Box::pin(async move {
                use diesel_async::AsyncConnection;
                let mut conn = AsyncPgConnection::establish(url).await?;
                conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
                Ok(conn)
            })
        });
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, setup)
    };
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| format!("could not build the database pool: {e}"))
}

/// Applies every pending migration and returns the versions it applied.
///
/// Diesel's migration harness is synchronous, so it runs on a blocking thread through the
/// async connection wrapper.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, String> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|e| format!("connect to run migrations: {e}"))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| format!("migration failed: {e}"))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| format!("migration task failed: {e}"))?
}

/// Versions of the embedded migrations, oldest first.
pub fn embedded_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut versions: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
}

/// The result of the readiness checks on the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStatus {
    /// `None` when the database answered, else why not.
    pub database: Option<String>,
    /// `None` when no migration is pending, else which are.
    pub migrations: Option<String>,
}

/// Checks that the database answers and that every embedded migration is applied.
pub async fn check(pool: &DbPool, timeout: Duration) -> DbStatus {
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let probe = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query(
            "SELECT version FROM __diesel_schema_migrations \
             UNION ALL SELECT '' WHERE to_regclass('__diesel_schema_migrations') IS NULL",
        )
        .load::<Version>(&mut conn)
        .await
        .map_err(|e| e.to_string())
    };
    let applied = match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return DbStatus {
                database: Some(format!("unreachable: {}", first_line(&e))),
                migrations: Some("unknown: the database is unreachable".to_owned()),
            };
        }
        Err(_) => {
            return DbStatus {
                database: Some(format!("no answer within {} ms", timeout.as_millis())),
                migrations: Some("unknown: the database is unreachable".to_owned()),
            };
        }
    };
    let applied: Vec<String> = applied.into_iter().map(|v| v.version).collect();
    let pending: Vec<String> = embedded_versions()
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect();
    DbStatus {
        database: None,
        migrations: (!pending.is_empty()).then(|| format!("pending: {}", pending.join(", "))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
