//! The accept loop: HTTP/1.1 connections served by hyper with a header-read timeout, caps on
//! open connections per process and per client IP, and graceful shutdown.
//!
//! `axum::serve` offers none of the three limits, so the listener is served here instead:
//!
//! - **Header-read timeout** (`HEADER_READ_TIMEOUT_SECS`, 10 s): a connection that has not
//!   sent a whole request head within it is closed. hyper's timer starts when it waits for a
//!   head, so this covers a client that sends nothing at all, one that trickles its headers
//!   (slowloris), and an idle keep-alive connection between requests.
//! - **Connection caps** (`MAX_CONNECTIONS`, 4096; `MAX_CONNECTIONS_PER_IP`, 128): a
//!   connection over either is closed unread, never served, and counted in
//!   `socialcraft_http_connections_refused_total{reason}`. The per-IP count is keyed as the
//!   rate limits are (an IPv6 client by its /64).
//!   Past the per-IP cap the socket is held for `RATE_LIMIT_REFUSAL_DELAY_MS` (1 s) before
//!   it is closed, as the rate limiter holds its 429s: a flood tool reconnects as soon as it
//!   is closed, and closing at once let one address make the server accept and close about
//!   2,000 connections a second (issue 16's flood bench); held, each of its sockets costs one
//!   accept a second. At most `MAX_CONNECTIONS / 4` are held at once (each is a file
//!   descriptor); past that, and past the process cap, the socket is closed at once.
//!   The per-IP cap applies to the socket's address, the only one known at accept time.
//!   Connections from a trusted proxy (`TRUSTED_PROXIES`) are exempt from it: every client
//!   behind the proxy shares its address, so a per-IP cap there would cap the whole site,
//!   and the client's own address (in `X-Forwarded-For`) arrives only with a request, after
//!   the connection is already held. Behind a proxy, the proxy bounds connections per
//!   client; here the process cap still holds.
//! - **HTTP/1.1 only.** hyper's HTTP/2 has no header-read timeout, and its version sniffing
//!   (`auto`) waits for the first 24 bytes with no timeout at all; browsers speak HTTP/2 only
//!   over TLS, which ends at the proxy in front of this server, so nothing was speaking
//!   cleartext HTTP/2 to it.
//!
//! Request bodies that stall are cut off in the middleware (`web::limits::body_limit`), since only
//! the route knows which body is whose; this loop bounds what happens before a request.

use domain::metrics::Refused;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::web::ratelimit::RateLimits;

/// Limits on slow and many clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HEADER_READ_TIMEOUT_SECS`: longest wait for a whole request head (also between
    /// requests on a kept-alive connection), default 10.
    pub header_read_timeout: Duration,
    /// `BODY_IDLE_TIMEOUT_SECS`: a request body that makes no progress for this long is cut
    /// off with 408, on every route (uploads included), default 20.
    pub body_idle_timeout: Duration,
    /// `MAX_CONNECTIONS`: most open connections in this process, default 4096.
    pub max_connections: usize,
    /// `MAX_CONNECTIONS_PER_IP`: most open connections from one client address (IPv6: one
    /// prefix), default 128. Trusted proxies are exempt.
    pub max_per_ip: usize,
    /// `EVENT_STREAMS_PER_USER`: most progress streams one user may hold open in this
    /// process, default 16.
    pub event_streams_per_user: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(20),
            max_connections: 4096,
            max_per_ip: 128,
            event_streams_per_user: 16,
        }
    }
}

/// Open connections, in total and per client key.
struct Gate {
    limits: ConnectionLimits,
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Refused connections held open before they are closed.
    held: AtomicUsize,
}

/// One admitted connection; dropping it gives its places back.
struct Admitted {
    gate: Arc<Gate>,
    key: Option<IpAddr>,
}

impl Gate {
    fn admit(self: &Arc<Self>, key: Option<IpAddr>) -> Result<Admitted, Refused> {
        if !take_place(&self.open, self.limits.max_connections) {
            return Err(Refused::ProcessLimit);
        }
        if let Some(key) = key {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = per_ip.entry(key).or_insert(0);
            if *n >= self.limits.max_per_ip {
                drop(per_ip);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::IpLimit);
            }
            *n += 1;
        }
        domain::metrics::global().http_connections_open.inc();
        Ok(Admitted {
            gate: Arc::clone(self),
            key,
        })
    }

    /// Closes a refused connection: past the per-IP cap after `delay` (while fewer than a
    /// quarter of `MAX_CONNECTIONS` are held), otherwise at once.
    fn close_refused(
        self: &Arc<Self>,
        stream: tokio::net::TcpStream,
        reason: Refused,
        delay: Duration,
    ) {
        if reason != Refused::IpLimit
            || delay.is_zero()
            || !take_place(&self.held, self.limits.max_connections / 4)
        {
            drop(stream);
            return;
        }
        let held = Held {
            gate: Arc::clone(self),
            _stream: stream,
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            drop(held);
        });
    }
}

/// Counts one more in `counter` if it is below `max`; whether it did.
fn take_place(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// A refused connection being held; dropping it closes the socket and frees its place.
struct Held {
    gate: Arc<Gate>,
    _stream: tokio::net::TcpStream,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gate.held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut per_ip = self.gate.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per_ip.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    per_ip.remove(&key);
                }
            }
        }
        self.gate.open.fetch_sub(1, Ordering::AcqRel);
        domain::metrics::global().http_connections_open.dec();
    }
}

/// Whether an `accept` error concerns one connection only (then the next is taken at once).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets every
/// open connection finish its request in flight (for at most 25 s), and returns. Requests carry
/// `ConnectInfo<SocketAddr>` as with `axum::serve`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    rate_limits: RateLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let gate = Arc::new(Gate {
        limits,
        open: AtomicUsize::new(0),
        per_ip: Mutex::new(HashMap::new()),
        held: AtomicUsize::new(0),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let ip = peer.ip().to_canonical();
        let key = (!rate_limits.is_trusted_proxy(ip))
            .then(|| crate::web::ratelimit::client_key(ip, rate_limits.ipv6_prefix()));
        let admitted = match gate.admit(key) {
            Ok(a) => a,
            Err(reason) => {
                domain::metrics::global().connection_refused(reason);
                gate.close_refused(stream, reason, rate_limits.refusal_delay());
                continue;
            }
        };
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut router = router.clone();
                async move { tower::Service::call(&mut router, req).await }
            });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _admitted = admitted;
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    domain::metrics::global().http_header_timeouts.inc();
                }
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        // Progress streams last up to 15 minutes; they are not worth holding a deploy for
        // (the page reconnects or polls).
        tracing::warn!(
            open_at_shutdown = open,
            "connections still open after {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

/// Longest wait for open connections to finish after the shutdown signal (what
/// orchestrators commonly allow before they kill the process).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
