//! The cost of one rate-limit check (target: under 1 microsecond), for a warm key and for a
//! spread of 10,000 client addresses, on one thread; then a signed-in request's pair of
//! checks (per IP, then per user and tier), and the access-token verification the session
//! middleware does on every signed-in request.
//!
//! Run: `cargo bench -p server --bench ratelimit --target-dir target/native`

use std::net::IpAddr;
use std::time::Instant;

use app::accounts::Tier;
use server::ratelimit::{Group, Limits, RateLimits};

fn main() {
    // Generous limits, so the measured path is the common one: allowed.
    let limits = RateLimits::new(&Limits {
        api_per_minute: u32::MAX / 2,
        ..Limits::default()
    });
    let n: u32 = 2_000_000;
    for (label, spread) in [("one client", 1u32), ("10,000 clients", 10_000)] {
        let ips: Vec<IpAddr> = (0..spread)
            .map(|i| IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
            .collect();
        // Warm up: every key exists before timing.
        for ip in &ips {
            let _ = limits.check(Group::Api, *ip);
        }
        let started = Instant::now();
        for i in 0..n {
            let ip = ips[(i % spread) as usize];
            std::hint::black_box(limits.check(Group::Api, ip)).ok();
        }
        let per = started.elapsed().as_nanos() as f64 / f64::from(n);
        println!("rate-limit check, {label}: {per:.0} ns per check ({n} checks)");
    }

    let users: Vec<uuid::Uuid> = (0..10_000).map(|_| uuid::Uuid::new_v4()).collect();
    let limits = RateLimits::new(&Limits {
        api_per_minute: u32::MAX / 2,
        tier_api_per_minute: [u32::MAX / 2; 3],
        ..Limits::default()
    });
    for u in &users {
        let _ = limits.check_user(Group::Api, *u, Tier::Free);
    }
    let started = Instant::now();
    for i in 0..n {
        let u = users[(i % 10_000) as usize];
        let ip = IpAddr::from((0x0a00_0000 + (i % 10_000)).to_be_bytes());
        std::hint::black_box(limits.check(Group::Api, ip)).ok();
        std::hint::black_box(limits.check_user(Group::Api, u, Tier::Free)).ok();
    }
    let per = started.elapsed().as_nanos() as f64 / f64::from(n);
    println!("signed-in request, IP + user checks, 10,000 users: {per:.0} ns per request ({n})");

    let key = app::accounts::tokens::TokenKey::from_secret("bench key: q8Zr2LmT5vX9cB1nH4kW7pD0");
    let token = key.issue(&app::accounts::tokens::AccessClaims {
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
}
