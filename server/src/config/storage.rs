//! Where media lives.
//!
//! Variables: `STORAGE_PROVIDER`, `S3_BUCKET`, `S3_REGION`, `S3_ENDPOINT`,
//! `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`, `S3_ALLOW_HTTP`.

use super::ConfigError;
use super::vars::{Vars, check_scheme, err};
use domain::media::storage::{S3Config, StorageConfig};
use domain::secret::Secret;

pub(super) fn parse(v: &Vars) -> Result<StorageConfig, ConfigError> {
    match v.get("STORAGE_PROVIDER").unwrap_or("local") {
        "local" | "fs" => Ok(StorageConfig::Local),
        "s3" => {
            let endpoint = v.get("S3_ENDPOINT").map(str::to_owned);
            if let Some(e) = &endpoint {
                check_scheme(
                    "S3_ENDPOINT",
                    e,
                    &["http://", "https://"],
                    "must start with http:// or https://",
                )?;
            }
            let why = "when STORAGE_PROVIDER=s3";
            Ok(StorageConfig::S3(S3Config {
                bucket: v.required("S3_BUCKET", why)?,
                region: v.get("S3_REGION").unwrap_or("us-east-1").to_owned(),
                endpoint,
                access_key_id: v.required("S3_ACCESS_KEY_ID", why)?,
                secret_access_key: Secret::new(v.required("S3_SECRET_ACCESS_KEY", why)?),
                allow_http: v.flag("S3_ALLOW_HTTP", false)?,
            }))
        }
        other => Err(err(
            "STORAGE_PROVIDER",
            format!("`{other}` is not one of local, s3"),
        )),
    }
}
