//! `GET /api/generations/{id}/events`: live progress as Server-Sent Events.
//!
//! Each event is named for the status (`queued`, `running`, `succeeded`, `failed`) and carries
//! the whole generation as JSON (progress, images so far with their URLs, the failure's
//! reason), so a client never has to merge partial updates. The stream ends after a final
//! event. It wakes on PostgreSQL notifications (any process may run the worker) and re-reads
//! every few seconds anyway, so a lost notification only delays an update.
//!
//! A user holds at most `EVENT_STREAMS_PER_USER` streams open in a process (the next is 429
//! `rate_limited`; the page then polls), and a stream ends within about a second of its
//! session being revoked: revocations reach every process through `NOTIFY` (see
//! `server::wiring::forward_revocations`), and each stream looks at the process's revoked set every
//! [`REVOCATION_CHECK`]. (The request timeout and the page routes' response idle timeout do
//! not apply to these long-lived responses.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::accounts::auth::CurrentUser;
use crate::create::GenerationView;
use crate::create::service;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use shared::error::AppError;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// Re-read interval when no notification arrives.
const FALLBACK: Duration = Duration::from_secs(3);

/// The longest a stream stays open; the page then polls (a generation takes seconds, so
/// this only ends streams nobody closed).
const MAX_STREAM: Duration = Duration::from_secs(15 * 60);

/// How often an open stream checks whether its session has been revoked.
pub const REVOCATION_CHECK: Duration = Duration::from_millis(500);

/// The progress streams open in this process, per user, and how many each may hold.
#[derive(Clone, Debug)]
pub struct EventStreams {
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
    max_per_user: usize,
}

impl EventStreams {
    /// At most `max_per_user` streams per user at once.
    pub fn new(max_per_user: usize) -> Self {
        Self {
            open: Arc::default(),
            max_per_user,
        }
    }

    /// A place for one more stream of `user`, or `None` when they hold the maximum.
    fn open(&self, user: Uuid) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user).or_insert(0);
        if *n >= self.max_per_user {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            streams: self.clone(),
            user,
        })
    }
}

/// One open stream; dropped when the stream ends or the client goes away.
struct StreamSlot {
    streams: EventStreams,
    user: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

/// Feeds `changes` from the `generations` notification channel until the task is dropped.
pub async fn forward_changes(url: String, changes: super::changes::Changes) {
    crate::db::listener::listen(url, crate::create::records::CHANNEL, move |payload| {
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
    /// The session the stream was opened with: revoking it ends the stream.
    session: Uuid,
    _slot: StreamSlot,
    id: Uuid,
    changes: tokio::sync::broadcast::Receiver<Uuid>,
    next: Option<GenerationView>,
    last: Option<GenerationView>,
    done: bool,
    deadline: tokio::time::Instant,
}

impl Stream {
    fn revoked(&self) -> bool {
        self.state.auth.is_revoked(self.session)
    }

    /// Waits for a change to this generation, the fallback interval, or the session's
    /// revocation, whichever comes first.
    async fn wait(&mut self) {
        let id = self.id;
        let until = tokio::time::Instant::now() + FALLBACK;
        loop {
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
            let step = until
                .saturating_duration_since(tokio::time::Instant::now())
                .min(REVOCATION_CHECK);
            if tokio::time::timeout(step, wake).await.is_ok()
                || self.revoked()
                || tokio::time::Instant::now() >= until
            {
                return;
            }
        }
    }

    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if self.done || tokio::time::Instant::now() >= self.deadline || self.revoked() {
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
/// an unknown or malformed ID and for somebody else's, before any stream starts; 429 when
/// the user already holds their maximum of open streams.
pub async fn generation_events(
    State((state, streams)): State<(AppState, EventStreams)>,
    user: Option<Extension<CurrentUser>>,
    Path(id): Path<String>,
) -> Response {
    let Some(Extension(user)) = user else {
        return error(AppError::new(
            shared::error::ErrorCode::Unauthorized,
            "Sign in to follow your generations.",
        ));
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return error(AppError::not_found("No such generation."));
    };
    let Some(slot) = streams.open(user.id) else {
        return error(AppError::new(
            shared::error::ErrorCode::RateLimited,
            "Too many live progress streams are open for this account; close some tabs.",
        ));
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
        session: user.session_id,
        _slot: slot,
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
