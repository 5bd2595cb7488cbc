//! `GET /api/generations/{id}/events`: live progress as Server-Sent Events.
//!
//! Each event is named for the status (`queued`, `running`, `succeeded`, `failed`) and carries
//! the whole generation as JSON (progress, images so far with their URLs, the failure's
//! reason), so a client never has to merge partial updates. The stream ends after a final
//! event. It wakes on PostgreSQL notifications (any process may run the worker) and re-reads
//! every few seconds anyway, so a lost notification only delays an update.

use std::convert::Infallible;
use std::time::Duration;

use app::accounts::auth::CurrentUser;
use app::create::GenerationView;
use app::create::service;
use app::error::AppError;
use app::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// Re-read interval when no notification arrives.
const FALLBACK: Duration = Duration::from_secs(3);

/// The longest a stream stays open; the page then polls (a generation takes seconds, so
/// this only ends streams nobody closed).
const MAX_STREAM: Duration = Duration::from_secs(15 * 60);

/// Feeds `changes` from the `generations` notification channel until the task is dropped.
pub async fn forward_changes(url: String, changes: service::Changes) {
    crate::notify::listen(url, app::create::records::CHANNEL, move |payload| {
        if let Some(id) = payload.and_then(|p| Uuid::parse_str(p).ok()) {
            changes.notify(id);
        }
    })
    .await;
}

fn error(e: AppError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e)).into_response()
}

fn event(view: &GenerationView) -> Event {
    // Serialising our own view cannot fail; an empty event would be harmless anyway.
    Event::default()
        .event(view.status.as_str())
        .data(serde_json::to_string(view).unwrap_or_default())
}

struct Stream {
    state: AppState,
    owner: Uuid,
    id: Uuid,
    changes: tokio::sync::broadcast::Receiver<Uuid>,
    next: Option<GenerationView>,
    last: Option<GenerationView>,
    done: bool,
    deadline: tokio::time::Instant,
}

impl Stream {
    /// Waits for a change to this generation or the fallback interval.
    async fn wait(&mut self) {
        let id = self.id;
        let changes = &mut self.changes;
        let wake = async {
            loop {
                match changes.recv().await {
                    Ok(changed) if changed == id => return,
                    Ok(_) => {}
                    // Missed some: re-read to be safe.
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(FALLBACK, wake).await;
    }

    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if self.done || tokio::time::Instant::now() >= self.deadline {
                return None;
            }
            if let Some(view) = self.next.take()
                && self.last.as_ref() != Some(&view)
            {
                self.done = view.status.is_final();
                let ev = event(&view);
                self.last = Some(view);
                return Some((Ok(ev), self));
            }
            self.wait().await;
            match service::view(&self.state, self.owner, self.id).await {
                Ok(Some(view)) => self.next = Some(view),
                // Deleted while watched: nothing more to say.
                Ok(None) => return None,
                // The database is away; the fallback interval paces the retries.
                Err(_) => {}
            }
        }
    }
}

/// The SSE endpoint: the signed-in creator's generations only. 401 when signed out; 404 for
/// an unknown or malformed ID and for somebody else's, before any stream starts.
pub async fn generation_events(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Path(id): Path<String>,
) -> Response {
    let Some(Extension(user)) = user else {
        return error(AppError::new(
            app::error::ErrorCode::Unauthorized,
            "Sign in to follow your generations.",
        ));
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return error(AppError::not_found("No such generation."));
    };
    // Subscribe before the first read, so no change can slip between the two.
    let changes = state.changes.subscribe();
    let first = match service::view(&state, user.id, id).await {
        Ok(Some(view)) => view,
        Ok(None) => return error(AppError::not_found("No such generation.")),
        Err(e) => return error(e),
    };
    let stream = Stream {
        state,
        owner: user.id,
        id,
        changes,
        next: Some(first),
        last: None,
        done: false,
        deadline: tokio::time::Instant::now() + MAX_STREAM,
    };
    let body = futures_util::stream::unfold(stream, Stream::next_event);
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            // nginx and similar proxies buffer responses unless told not to.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
        .into_response()
}
