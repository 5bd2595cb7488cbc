//! The cost of one rate-limit check (target: under 1 microsecond), for a warm key and for a
//! spread of 10,000 client addresses, on one thread.
//!
//! Run: `cargo bench -p server --bench ratelimit --target-dir target/native`

use std::net::IpAddr;
use std::time::Instant;

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
}
