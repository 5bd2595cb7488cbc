//! Size and time limits per request: header size, body size per route group (with a body
//! that must keep arriving), and the response timeout.

use axum::response::IntoResponse;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use shared::error::ErrorCode;

use super::context::coded;

/// Longest pause in a page's (or server function's) response body.
pub const PAGE_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest body of a sign-in, sign-up or refresh request: an email and a password.
pub const AUTH_MAX_BODY_BYTES: usize = 8 * 1024;

/// Refuses requests whose headers add up to more than the limit (431). hyper already caps
/// a request head at about 400 KB and 100 headers; this keeps what reaches the handlers
/// (cookies included) to the configured size.
pub(crate) async fn header_limit(
    axum::extract::State(max): axum::extract::State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if size > max {
        return coded(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            "The request's headers are too large. Clearing this site's cookies may help.",
        );
    }
    next.run(req).await
}

#[derive(Clone, Copy)]
pub(crate) struct BodyLimits {
    pub(crate) max: usize,
    pub(crate) upload: usize,
    /// Longest pause in a request body.
    pub(crate) idle: Duration,
}

pub(crate) fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

pub(crate) fn payload_too_large() -> Response {
    coded(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        "The request is larger than this endpoint accepts.",
    )
}

/// Body limits per route group: sign-in and friends take a few kilobytes, uploads the upload
/// cap, everything else the configured maximum. A declared length over the limit is refused
/// before reading (413); a body that turns out longer is cut off at the limit while being
/// read. A body that stops arriving for `idle` is cut off too, and the request answered 408
/// (whatever the handler made of the broken body) with the connection closed; this holds for
/// every route, uploads included (progress streams have no body to wait for).
///
/// The admin endpoints' larger limit is checked by [`admin_only`] once the caller is known
/// to be an administrator, so nobody else gets a large body read or even refused for size.
pub(crate) async fn body_limit(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    use axum::body::HttpBody;
    let max = limits.max;
    let admin = req.uri().path().starts_with("/api/admin/");
    let limit = match crate::web::ratelimit::Group::of(req.method(), req.uri().path()) {
        Some(crate::web::ratelimit::Group::Auth) => AUTH_MAX_BODY_BYTES.min(max),
        Some(crate::web::ratelimit::Group::Upload) => limits.upload,
        // Trend feeds are files; only administrators get past `admin_only`.
        _ if admin => domain::trends::MAX_FEED_BYTES,
        _ => max,
    };
    if !admin && declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return payload_too_large();
    }
    if req.body().is_end_stream() {
        // Nothing to wait for (a GET, a progress stream).
        return next.run(req).await;
    }
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = stalled.clone();
    let req = req.map(|b| {
        Body::new(http_body_util::Limited::new(
            IdleBody {
                inner: b,
                idle: limits.idle,
                sleep: None,
                progressed: false,
                stalled: watch,
            },
            limit,
        ))
    });
    let res = next.run(req).await;
    if stalled.load(std::sync::atomic::Ordering::Relaxed) {
        domain::metrics::global().http_body_timeouts.inc();
        let mut res = coded(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BadRequest,
            "The request's body stopped arriving.",
        );
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    res
}

/// A request body that fails once it has made no progress for `idle` (and says so in
/// `stalled`). The clock runs only while the handler waits on the client: a handler busy
/// elsewhere does not count against the body.
pub(crate) struct IdleBody {
    inner: Body,
    idle: Duration,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// A frame arrived since the timer was last set.
    progressed: bool,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl axum::body::HttpBody for IdleBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            this.progressed = true;
            return Poll::Ready(frame);
        }
        let deadline = tokio::time::Instant::now() + this.idle;
        let progressed = std::mem::take(&mut this.progressed);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if progressed {
            sleep.as_mut().reset(deadline);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.stalled
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(
                    "the request body stopped arriving",
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) request: Duration,
    pub(crate) upload: Duration,
}

/// The response timeout (503 when it passes): uploads get their own, longer one, since the
/// body of a 10 MB file on a slow link takes minutes to arrive.
pub(crate) async fn timeout(
    axum::extract::State(t): axum::extract::State<Timeouts>,
    req: Request,
    next: Next,
) -> Response {
    let upload = req.method() == axum::http::Method::PUT
        && matches!(
            crate::web::ratelimit::Group::of(req.method(), req.uri().path()),
            Some(crate::web::ratelimit::Group::Upload)
        );
    let limit = if upload { t.upload } else { t.request };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
