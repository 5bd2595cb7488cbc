//! The database and its pool.
//!
//! Variables: `DATABASE_URL`, `DATABASE_POOL_SIZE`, `DATABASE_POOL_TIMEOUT_MS`,
//! `RUN_MIGRATIONS`, `PG_BIN_DIR`, `DATABASE_PGBOUNCER`.

use std::path::PathBuf;

use super::ConfigError;
use super::vars::{Vars, check_scheme, err};
use domain::db::pool::DatabaseConfig;
use domain::secret::Secret;

pub(super) fn parse(v: &Vars, production: bool) -> Result<DatabaseConfig, ConfigError> {
    let url = v.get("DATABASE_URL").map(Secret::new);
    if let Some(url) = &url {
        check_scheme(
            "DATABASE_URL",
            url.expose(),
            &["postgres://", "postgresql://"],
            "must start with postgres:// or postgresql://",
        )?;
    }
    if url.is_none() && production {
        return Err(err(
            "DATABASE_URL",
            "required in production (the embedded database is for development only)",
        ));
    }
    let pool_size = v.num("DATABASE_POOL_SIZE", 20)?;
    if !(1..=1000).contains(&pool_size) {
        return Err(err("DATABASE_POOL_SIZE", "must be between 1 and 1000"));
    }
    Ok(DatabaseConfig {
        url,
        pool_size,
        pool_timeout: v.millis("DATABASE_POOL_TIMEOUT_MS", 5000)?,
        run_migrations: v.flag("RUN_MIGRATIONS", true)?,
        pg_bin_dir: v.get("PG_BIN_DIR").map(PathBuf::from),
        pgbouncer: v.flag("DATABASE_PGBOUNCER", false)?,
    })
}
