//! The deployment: what kind it is, where its files live and the key that signs.
//!
//! Variables: `APP_ENV`, `DATA_DIR`, `SECRET_KEY`.

use std::path::PathBuf;

use super::vars::{Vars, check_secret, err};
use super::{AppEnv, ConfigError};
use domain::secret::{MIN_SECRET_LEN, Secret, random_hex};

/// The deployment section.
pub(super) struct Deployment {
    pub(super) env: AppEnv,
    pub(super) data_dir: PathBuf,
    pub(super) secret_key: Secret,
}

pub(super) fn parse(v: &Vars) -> Result<Deployment, ConfigError> {
    let env = match v.get("APP_ENV").unwrap_or("development") {
        "development" | "dev" => AppEnv::Development,
        "test" => AppEnv::Test,
        "production" | "prod" => AppEnv::Production,
        other => {
            return Err(err(
                "APP_ENV",
                format!("`{other}` is not one of development, test, production"),
            ));
        }
    };
    let secret_key = match v.get("SECRET_KEY") {
        Some(key) => {
            check_secret(key).map_err(|p| err("SECRET_KEY", p))?;
            Secret::new(key)
        }
        None if env == AppEnv::Production => {
            return Err(err(
                "SECRET_KEY",
                format!(
                    "required in production: {MIN_SECRET_LEN}+ random characters (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        // Outside production a per-process key is fine: nothing signed must outlive it.
        None => Secret::new(
            random_hex(32).map_err(|e| err("SECRET_KEY", format!("could not generate: {e}")))?,
        ),
    };
    Ok(Deployment {
        env,
        data_dir: PathBuf::from(v.get("DATA_DIR").unwrap_or("./data")),
        secret_key,
    })
}
