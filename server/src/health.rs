//! Liveness and readiness endpoints for load balancers and orchestrators.

use std::time::Duration;

use app::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// How long each readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/health`: 200 while the process serves requests. Touches nothing else, so a
/// database outage never gets healthy instances restarted.
pub async fn health() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// `GET /api/ready`: 200 only when the database answers, no migration is pending and the
/// media store takes a write and a read; otherwise 503 with each failing check named.
pub async fn ready(State(state): State<AppState>) -> Response {
    let (status, storage) = tokio::join!(
        crate::db::check(&state.db, CHECK_TIMEOUT),
        storage_check(&state),
    );
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (name, problem) in [
        ("database", status.database),
        ("migrations", status.migrations),
        ("storage", storage),
    ] {
        match problem {
            None => {
                checks.insert(name.to_owned(), json!({ "ok": true }));
            }
            Some(problem) => {
                checks.insert(name.to_owned(), json!({ "ok": false, "error": problem }));
                failing.push(Value::from(name));
            }
        }
    }
    let ok = failing.is_empty();
    if !ok {
        tracing::warn!(failing = ?failing, "readiness check failed");
    }
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({ "ok": ok, "failing": failing, "checks": checks })),
    )
        .into_response()
}

async fn storage_check(state: &AppState) -> Option<String> {
    match tokio::time::timeout(CHECK_TIMEOUT, state.media.probe()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}
