//! Slow and many clients, against the real accept loop (`server::web::serving`) on a loopback
//! listener with raw sockets: the header-read timeout, the request-body idle timeout, the
//! connection caps per IP and per process; and the progress streams' cap per user and their
//! end on revocation; and the admin endpoint refusing strangers before reading a body.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::metrics::Refused;
use http_body_util::BodyExt;
use server::web::HttpSettings;
use server::web::serving::ConnectionLimits;
use support::{TestDb, signed_in, state_for, with_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::ServiceExt;

/// A server on 127.0.0.1 with `limits`; it stops when the returned sender is dropped.
async fn start(
    db: &TestDb,
    limits: ConnectionLimits,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let settings = HttpSettings {
        connections: limits,
        ..HttpSettings::default()
    };
    let app = server::web::app_with(state_for(db), support::leptos_options(), &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::web::serving::serve(
        listener,
        app,
        limits,
        settings.rate_limits.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// A connection to `addr` from the loopback address `from` (127.0.0.x all work on Linux).
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset), failing after `limit`.
/// Returns what arrived and when the connection ended.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Instant) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .expect("the server closes the connection in time");
    (String::from_utf8_lossy(&got).into_owned(), Instant::now())
}

/// One `GET /api/health` on a kept-alive connection, read to the end of its body; the
/// status code (0 when the connection closed instead).
async fn health(stream: &mut TcpStream) -> u16 {
    if stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .is_err()
    {
        return 0;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return;
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer or a close");
    let text = String::from_utf8_lossy(&got);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn quick(header: u64, body: u64) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(header),
        body_idle_timeout: Duration::from_secs(body),
        ..ConnectionLimits::default()
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let db = TestDb::new().await;
    let (addr, _stop) = start(&db, quick(1, 30)).await;
    let timeouts = domain::metrics::global().http_header_timeouts.get();

    // Half a request head, then nothing (slowloris).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let began = Instant::now();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, ended) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let took = ended - began;
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    // Nothing at all.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let began = Instant::now();
    let (got, ended) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(ended - began >= Duration::from_millis(900));
    assert!(!got.contains("200 OK"), "{got}");
    assert!(domain::metrics::global().http_header_timeouts.get() >= timeouts + 2);

    // A whole request within the timeout is served, and the connection kept alive (the
    // timer restarts for the next head).
    let mut ok = TcpStream::connect(addr).await.unwrap();
    assert_eq!(health(&mut ok).await, 200);
    assert_eq!(health(&mut ok).await, 200);
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_off_with_408() {
    let db = TestDb::new().await;
    let (addr, _stop) = start(&db, quick(30, 1)).await;
    let timeouts = domain::metrics::global().http_body_timeouts.get();
    // A server function (it reads its body): 100 bytes declared, 10 sent, then a stall.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let began = Instant::now();
    stream
        .write_all(
            b"POST /api/generations/recent HTTP/1.1\r\nHost: test\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
              Content-Length: 100\r\n\r\npad=xxxxxx",
        )
        .await
        .unwrap();
    let (got, ended) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        got.starts_with("HTTP/1.1 408"),
        "{got} after {:?}",
        ended - began
    );
    assert!(got.contains("bad_request"), "{got}");
    assert!(ended - began >= Duration::from_millis(900));
    assert!(domain::metrics::global().http_body_timeouts.get() > timeouts);

    // A body that keeps arriving, however slowly, is not cut off: 100 bytes, one every
    // 300 ms for the first few (each pause within the idle timeout).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /api/generations/recent HTTP/1.1\r\nHost: test\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
          Connection: close\r\nContent-Length: 10\r\n\r\n",
    )
    .await
    .unwrap();
    for b in b"pad=xxxxxx" {
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.write_all(&[*b]).await.unwrap();
    }
    let (got, _) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(!got.starts_with("HTTP/1.1 408"), "{got}");
}

#[tokio::test]
async fn connections_past_the_per_ip_cap_are_refused_while_other_ips_get_in() {
    let db = TestDb::new().await;
    let limits = ConnectionLimits {
        max_per_ip: 2,
        ..ConnectionLimits::default()
    };
    let (addr, _stop) = start(&db, limits).await;
    let refused = domain::metrics::global().connections_refused(Refused::IpLimit);

    let mut first = connect_from([127, 0, 0, 1], addr).await;
    let mut second = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(health(&mut first).await, 200);
    assert_eq!(health(&mut second).await, 200);
    // The third from the same address is closed unanswered (after the refusal delay).
    let mut third = connect_from([127, 0, 0, 1], addr).await;
    let _ = third
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;
    let (got, _) = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert_eq!(got, "");
    assert!(domain::metrics::global().connections_refused(Refused::IpLimit) > refused);
    // Another address is let in.
    let mut other = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(health(&mut other).await, 200);
    // Closing one gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect_from([127, 0, 0, 1], addr).await;
        if health(&mut again).await == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection's place came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
}

#[tokio::test]
async fn refused_connections_are_held_for_the_refusal_delay_up_to_a_budget() {
    let db = TestDb::new().await;
    // One per address, 8 in all: a quarter of 8, two refused sockets, may be held at once.
    let limits = ConnectionLimits {
        max_per_ip: 1,
        max_connections: 8,
        ..ConnectionLimits::default()
    };
    let (addr, _stop) = start(&db, limits).await;
    // The default refusal delay: the same one the rate limiter holds its 429s for.
    let delay = server::web::ratelimit::Limits::default().refusal_delay;
    assert_eq!(delay, Duration::from_secs(1));
    let from = [127, 0, 0, 6];
    let mut admitted = connect_from(from, addr).await;
    assert_eq!(health(&mut admitted).await, 200);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(from, addr).await;
        let _ = s
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n")
            .await;
        held.push((s, Instant::now()));
    }
    // The budget is spent: the next is closed at once, before the held ones.
    let mut past_budget = connect_from(from, addr).await;
    let (got, past_budget_closed) =
        read_until_closed(&mut past_budget, Duration::from_secs(5)).await;
    assert_eq!(got, "");
    for (mut s, connected) in held {
        let (got, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert_eq!(got, "", "a held connection is never served");
        assert!(
            closed.duration_since(connected) >= delay,
            "closed {:?} after connecting, within the {delay:?} hold",
            closed.duration_since(connected)
        );
        assert!(
            past_budget_closed < closed,
            "the one past the budget was held too"
        );
    }
    // The held places come back: the next refusal is held again.
    let mut again = connect_from(from, addr).await;
    let connected = Instant::now();
    let (_, closed) = read_until_closed(&mut again, Duration::from_secs(5)).await;
    assert!(closed.duration_since(connected) >= delay);
    // The admitted connection was served all along.
    assert_eq!(health(&mut admitted).await, 200);
}

#[tokio::test]
async fn connections_past_the_process_cap_are_refused() {
    let db = TestDb::new().await;
    let limits = ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    };
    let (addr, _stop) = start(&db, limits).await;
    let refused = domain::metrics::global().connections_refused(Refused::ProcessLimit);
    let mut a = connect_from([127, 0, 0, 3], addr).await;
    let mut b = connect_from([127, 0, 0, 4], addr).await;
    assert_eq!(health(&mut a).await, 200);
    assert_eq!(health(&mut b).await, 200);
    let mut c = connect_from([127, 0, 0, 5], addr).await;
    let (got, _) = read_until_closed(&mut c, Duration::from_secs(2)).await;
    assert_eq!(got, "");
    assert!(domain::metrics::global().connections_refused(Refused::ProcessLimit) > refused);
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight_and_stops_accepting() {
    let db = TestDb::new().await;
    let (addr, stop) = start(&db, ConnectionLimits::default()).await;
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert_eq!(health(&mut kept).await, 200);
    drop(stop);
    // The idle kept-alive connection is closed, and nobody new gets in.
    read_until_closed(&mut kept, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn submission() -> domain::create::Submission {
    domain::create::validate_submission("Launch day", "vibrant", "story", "1").expect("valid")
}

#[tokio::test]
async fn progress_streams_are_capped_per_user_and_end_when_the_session_is_revoked() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let settings = HttpSettings {
        connections: ConnectionLimits {
            event_streams_per_user: 2,
            ..ConnectionLimits::default()
        },
        ..HttpSettings::default()
    };
    let app = server::web::app_with(state.clone(), support::leptos_options(), &settings);
    let session = signed_in(&state, "maker@example.com").await;
    let other = signed_in(&state, "other@example.com").await;
    // Queued, with no worker: the streams stay open.
    let view = domain::create::service::submit(&state, session.user, submission())
        .await
        .unwrap();
    let theirs = domain::create::service::submit(&state, other.user, submission())
        .await
        .unwrap();
    let open = |s: &support::Session, id: uuid::Uuid| {
        let app = app.clone();
        let req = with_session(
            Request::get(format!("/api/generations/{id}/events"))
                .body(Body::empty())
                .unwrap(),
            s,
        );
        async move { app.oneshot(req).await.unwrap() }
    };
    let one = open(&session, view.id).await;
    let two = open(&session, view.id).await;
    assert_eq!(one.status(), StatusCode::OK);
    assert_eq!(two.status(), StatusCode::OK);
    let three = open(&session, view.id).await;
    assert_eq!(three.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(support::json(three).await["code"], "rate_limited");
    // Somebody else is not affected.
    let theirs_stream = open(&other, theirs.id).await;
    assert_eq!(theirs_stream.status(), StatusCode::OK);
    // A closed stream gives its place back.
    drop(two);
    let mut stream = open(&session, view.id).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.body_mut().frame())
        .await
        .expect("the first event")
        .expect("a frame")
        .expect("not an error");
    assert!(
        String::from_utf8_lossy(first.data_ref().unwrap()).contains("event: queued"),
        "{first:?}"
    );

    // Revoked through NOTIFY, as from another process: both of the user's streams end
    // within about a second; the other user's stays open.
    let forward = tokio::spawn(server::wiring::forward_revocations(
        db.url.clone(),
        state.auth.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elsewhere =
        domain::accounts::auth::Auth::new(support::TEST_SECRET, support::test_auth_settings());
    let mut conn = db.conn().await;
    let revoked_at = Instant::now();
    domain::accounts::sessions::end(
        &mut conn,
        &elsewhere,
        session.user.id,
        session.user.session_id,
        domain::accounts::sessions::EndReason::Revoked,
    )
    .await
    .unwrap();
    for res in [stream, one] {
        let drained = async {
            let mut body = res.into_body();
            while let Some(Ok(_)) = body.frame().await {}
        };
        tokio::time::timeout(Duration::from_secs(3), drained)
            .await
            .expect("the revoked session's stream ends");
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(3));
    let mut theirs_body = theirs_stream.into_body();
    let still = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(Ok(_)) = theirs_body.frame().await {}
    })
    .await;
    assert!(still.is_err(), "another user's stream stays open");
    forward.abort();
}

#[tokio::test]
async fn the_admin_endpoint_refuses_strangers_before_reading_the_body() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let creator = signed_in(&state, "creator@example.com").await;
    let admin = signed_in(&state, "admin@example.com").await;
    db.exec("UPDATE users SET is_admin = true WHERE email = 'admin@example.com'")
        .await;
    let app = server::web::app(state.clone(), support::leptos_options());
    // A body that never arrives, declared larger than any limit: anonymous 401 and a
    // creator 403, at once, neither 413 nor a wait for the body.
    let pending = || {
        Body::from_stream(futures_util::stream::pending::<
            Result<Vec<u8>, std::io::Error>,
        >())
    };
    let import = |body: Body, len: usize| {
        Request::post("/api/admin/trends/import")
            .header("content-type", "text/csv")
            .header("content-length", len.to_string())
            .body(body)
            .unwrap()
    };
    let huge = 100 * 1024 * 1024;
    for (req, status, code) in [
        (
            import(pending(), huge),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            with_session(import(pending(), huge), &creator),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let res = tokio::time::timeout(Duration::from_secs(5), app.clone().oneshot(req))
            .await
            .expect("answered without the body")
            .unwrap();
        assert_eq!(res.status(), status);
        assert_eq!(support::json(res).await["code"], code);
    }
    // The admin's limit is the admin one: over it 413 (declared), and a feed larger than
    // the general limit (64 KiB) goes through.
    let res = app
        .clone()
        .oneshot(with_session(import(pending(), huge), &admin))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let yesterday = chrono::Utc::now().date_naive() - chrono::TimeDelta::days(1);
    let mut feed = String::from("topic,hashtag,source,score,observed_at\n");
    for i in 1..=3000 {
        feed.push_str(&format!(
            "topic number {i},,trendwire,{i},{yesterday}T10:00:00Z\n"
        ));
    }
    assert!(feed.len() > 64 * 1024);
    let len = feed.len();
    let res = app
        .clone()
        .oneshot(with_session(import(Body::from(feed), len), &admin))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(support::json(res).await["imported"], 3000);

    // Over a real connection: headers only, the body never sent; the 403 comes at once.
    let (addr, _stop) = start(&db, ConnectionLimits::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/admin/trends/import HTTP/1.1\r\nHost: test\r\nCookie: {}\r\n\
         Content-Type: text/csv\r\nContent-Length: {huge}\r\n\r\n",
        creator.cookie
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(got.starts_with("HTTP/1.1 403"), "{got}");
}
