//! The cost of one rate-limit check (target: under 1 microsecond), for a warm key and for a
//! spread of 10,000 client addresses, on one thread; then a signed-in request's pair of
//! checks (per IP, then per user and tier), and the access-token verification the session
//! middleware does on every signed-in request. The in-process checks are polled once with a
//! no-op waker: they never wait, so this is what the middleware pays.
//!
//! With `redis-server` installed (or `REDIS_SERVER` naming it), the same checks against a
//! Redis on loopback too (`RATE_LIMIT_STORE=redis`): one at a time (the round trip) and 64
//! at once (what a busy instance sees). Without it that part is skipped.
//!
//! Run: `cargo bench -p server --bench ratelimit --target-dir target/native`

use std::future::Future;
use std::net::IpAddr;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use domain::accounts::Tier;
use server::web::ratelimit::{Group, Limits, RateLimits};

/// The output of a future that must be ready at once (the in-process checks are).
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-process rate-limit check waited"),
    }
}

fn main() {
    // Generous limits, so the measured path is the common one: allowed.
    let generous = Limits {
        api_per_minute: u32::MAX / 2,
        tier_api_per_minute: [u32::MAX / 2; 3],
        ..Limits::default()
    };
    let limits = RateLimits::new(&generous);
    let n: u32 = 2_000_000;
    for (label, spread) in [("one client", 1u32), ("10,000 clients", 10_000)] {
        let ips: Vec<IpAddr> = (0..spread)
            .map(|i| IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
            .collect();
        // Warm up: every key exists before timing.
        for ip in &ips {
            let _ = ready(limits.check(Group::Api, *ip));
        }
        let started = Instant::now();
        for i in 0..n {
            let ip = ips[(i % spread) as usize];
            std::hint::black_box(ready(limits.check(Group::Api, ip))).ok();
        }
        let per = started.elapsed().as_nanos() as f64 / f64::from(n);
        println!("rate-limit check, {label}: {per:.0} ns per check ({n} checks)");
    }

    let users: Vec<uuid::Uuid> = (0..10_000).map(|_| uuid::Uuid::new_v4()).collect();
    let limits = RateLimits::new(&generous);
    for u in &users {
        let _ = ready(limits.check_user(Group::Api, *u, Tier::Free));
    }
    let started = Instant::now();
    for i in 0..n {
        let u = users[(i % 10_000) as usize];
        let ip = IpAddr::from((0x0a00_0000 + (i % 10_000)).to_be_bytes());
        std::hint::black_box(ready(limits.check(Group::Api, ip))).ok();
        std::hint::black_box(ready(limits.check_user(Group::Api, u, Tier::Free))).ok();
    }
    let per = started.elapsed().as_nanos() as f64 / f64::from(n);
    println!("signed-in request, IP + user checks, 10,000 users: {per:.0} ns per request ({n})");

    let key =
        domain::accounts::tokens::TokenKey::from_secret("bench key: q8Zr2LmT5vX9cB1nH4kW7pD0");
    let token = key.issue(&domain::accounts::tokens::AccessClaims {
        sub: users[0],
        sid: users[1],
        tier: "free".into(),
        iat: 0,
        exp: i64::MAX / 2,
    });
    let m = 200_000u32;
    let started = Instant::now();
    for _ in 0..m {
        std::hint::black_box(key.verify(std::hint::black_box(&token), 1)).ok();
    }
    let per = started.elapsed().as_nanos() as f64 / f64::from(m);
    println!("access-token verification (HS256): {per:.0} ns per token ({m})");

    redis_mode(&generous);
}

/// A Redis of the bench's own on loopback, stopped on the way out.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_mode(generous: &Limits) {
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => return println!("redis mode skipped: no free port ({e})"),
    };
    let child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let _redis = match child {
        Ok(c) => Redis(c),
        Err(e) => return println!("redis mode skipped: {bin} not available ({e})"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                return println!("redis mode skipped: {bin} did not listen on {port}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let config = server::web::ratelimit::RedisConfig {
            url: domain::secret::Secret::new(format!("redis://127.0.0.1:{port}")),
            // Generous: this measures Redis, not the fallback.
            timeout: Duration::from_secs(1),
        };
        let limits = RateLimits::with_redis(generous, &config).expect("redis limits");
        let ips: Vec<IpAddr> = (0..10_000u32)
            .map(|i| IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
            .collect();
        for ip in ips.iter().take(1_000) {
            let _ = limits.check(Group::Api, *ip).await;
        }
        let n = 20_000usize;
        let started = Instant::now();
        for i in 0..n {
            std::hint::black_box(limits.check(Group::Api, ips[i % ips.len()]).await).ok();
        }
        let per = started.elapsed().as_micros() as f64 / n as f64;
        println!("rate-limit check in Redis (loopback), one at a time: {per:.0} µs per check ({n})");

        let tasks = 64usize;
        let per_task = 2_000usize;
        let started = Instant::now();
        let mut handles = Vec::with_capacity(tasks);
        for t in 0..tasks {
            let limits = limits.clone();
            let ips = ips.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let ip = ips[(t * per_task + i) % ips.len()];
                    std::hint::black_box(limits.check(Group::Api, ip).await).ok();
                }
            }));
        }
        for h in handles {
            let _ = h.await;
        }
        let secs = started.elapsed().as_secs_f64();
        let total = tasks * per_task;
        println!(
            "rate-limit checks in Redis (loopback), {tasks} at once: {:.0} checks/s ({total} in {secs:.2} s; fallbacks {})",
            total as f64 / secs,
            limits.fallbacks()
        );
    });
}
