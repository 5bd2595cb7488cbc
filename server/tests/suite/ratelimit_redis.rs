//! Rate limits shared through a real Redis (`RATE_LIMIT_STORE=redis`): two `RateLimits`, as
//! two instances would have, counting in one `redis-server` started by the test on
//! loopback, and what happens when that Redis dies or stalls. Each test skips with a message
//! only when `redis-server` is not installed (`./dev test` installs it).

use crate::support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use domain::accounts::Tier;
use domain::secret::Secret;
use server::web::ratelimit::RedisConfig;
use server::web::ratelimit::{Group, Limits, RateLimits};
use support::redis_server::RedisServer;
use uuid::Uuid;

fn config(redis: &RedisServer) -> RedisConfig {
    RedisConfig {
        url: Secret::new(redis.url()),
        timeout: Duration::from_millis(50),
    }
}

/// Two instances' limiters on one Redis, once both can reach it.
async fn two_instances(redis: &RedisServer, limits: &Limits) -> (RateLimits, RateLimits) {
    let a = RateLimits::with_redis(limits, &config(redis)).expect("instance a");
    let b = RateLimits::with_redis(limits, &config(redis)).expect("instance b");
    assert_eq!(a.store(), "redis");
    (a, b)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// How many of `n` checks from `client`, alternating between `a` and `b`, were allowed, and
/// how long they took.
async fn alternate(a: &RateLimits, b: &RateLimits, client: IpAddr, n: usize) -> (usize, Duration) {
    let started = Instant::now();
    let mut allowed = 0;
    for i in 0..n {
        let rl = if i % 2 == 0 { a } else { b };
        if rl.check(Group::Api, client).await.is_ok() {
            allowed += 1;
        }
    }
    (allowed, started.elapsed())
}

#[tokio::test]
async fn two_instances_are_held_to_one_limit_together() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limits = Limits {
        api_per_minute: 50,
        ..Limits::default()
    };
    let (a, b) = two_instances(&redis, &limits).await;
    let (allowed, took) = alternate(&a, &b, ip("203.0.113.7"), 200).await;
    // The burst is the minute's allowance; it refills at 50 a minute meanwhile.
    let refill = (took.as_secs_f64() * 50.0 / 60.0).ceil() as usize;
    println!(
        "shared: {allowed} of 200 allowed in {:.0} ms (limit 50, refill {refill})",
        took.as_secs_f64() * 1000.0
    );
    assert!(
        (50..=50 + refill).contains(&allowed),
        "{allowed} allowed; expected 50 (+{refill} refill)"
    );
    // Both counted their own refusals, and Redis answered every check.
    assert_eq!(
        a.denied(Group::Api) + b.denied(Group::Api),
        (200 - allowed) as u64
    );
    assert!(a.denied(Group::Api) > 0 && b.denied(Group::Api) > 0);
    assert_eq!(a.fallbacks() + b.fallbacks(), 0);
    // Other clients have their own allowance.
    assert!(a.check(Group::Api, ip("203.0.113.8")).await.is_ok());

    // The control: two in-process limiters let twice as many through.
    let (a, b) = (RateLimits::new(&limits), RateLimits::new(&limits));
    let (alone, _) = alternate(&a, &b, ip("203.0.113.7"), 200).await;
    println!("in process: {alone} of 200 allowed");
    assert!(alone >= 100, "{alone}");
}

#[tokio::test]
async fn retry_after_is_the_time_until_the_next_request_passes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limits = Limits {
        auth_per_minute: 5,
        // 120 a minute: one every 500 ms.
        api_per_minute: 120,
        ..Limits::default()
    };
    let (a, b) = two_instances(&redis, &limits).await;
    for i in 0..5 {
        let rl = if i % 2 == 0 { &a } else { &b };
        rl.check(Group::Auth, ip("10.0.0.1")).await.unwrap();
    }
    let denied = b.check(Group::Auth, ip("10.0.0.1")).await.unwrap_err();
    assert_eq!(denied.group, Group::Auth);
    // As in process: one request's allowance comes back after 12 s.
    assert!(
        denied.retry_after > Duration::from_secs(11)
            && denied.retry_after <= Duration::from_secs(12),
        "{denied:?}"
    );
    let res = server::web::ratelimit::too_many(denied);
    assert_eq!(res.headers()["retry-after"], "12");

    for _ in 0..120 {
        a.check(Group::Api, ip("10.0.0.2")).await.unwrap();
    }
    let denied = b.check(Group::Api, ip("10.0.0.2")).await.unwrap_err();
    assert!(
        denied.retry_after <= Duration::from_millis(500),
        "{denied:?}"
    );
    tokio::time::sleep(denied.retry_after + Duration::from_millis(30)).await;
    // Waiting as told is enough, on the other instance too; then it is spent again.
    b.check(Group::Api, ip("10.0.0.2")).await.unwrap();
    assert!(a.check(Group::Api, ip("10.0.0.2")).await.is_err());
}

#[tokio::test]
async fn per_user_tier_and_upload_limits_are_shared() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limits = Limits {
        tier_api_per_minute: [3, 6, 9],
        upload_per_minute: 5,
        ..Limits::default()
    };
    let (a, b) = two_instances(&redis, &limits).await;
    let u = Uuid::new_v4();
    a.check_user(Group::Api, u, Tier::Free).await.unwrap();
    b.check_user(Group::Generate, u, Tier::Free).await.unwrap();
    a.check_user(Group::Api, u, Tier::Free).await.unwrap();
    let denied = b.check_user(Group::Api, u, Tier::Free).await.unwrap_err();
    assert_eq!(denied.group, Group::User);
    // The same user on a bigger tier counts in that tier's table; sign-ins never count.
    for i in 0..6 {
        let rl = if i % 2 == 0 { &a } else { &b };
        rl.check_user(Group::Api, u, Tier::Pro).await.unwrap();
    }
    assert!(a.check_user(Group::Api, u, Tier::Pro).await.is_err());
    b.check_user(Group::Auth, u, Tier::Free).await.unwrap();

    let v = Uuid::new_v4();
    for i in 0..5 {
        let rl = if i % 2 == 0 { &a } else { &b };
        rl.check_user(Group::Upload, v, Tier::Enterprise)
            .await
            .unwrap();
    }
    let denied = b
        .check_user(Group::Upload, v, Tier::Enterprise)
        .await
        .unwrap_err();
    assert_eq!(denied.group, Group::Upload);
    assert_eq!(a.denied(Group::Upload) + b.denied(Group::Upload), 1);
    assert_eq!(a.denied(Group::User) + b.denied(Group::User), 2);
    assert_eq!(a.fallbacks() + b.fallbacks(), 0);
}

/// Runs `n` checks from one client on `rl`, asserting each answers within `within`; returns
/// how many were allowed.
async fn answered_within(rl: &RateLimits, client: IpAddr, n: usize, within: Duration) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        let started = Instant::now();
        let outcome = rl.check(Group::Api, client).await;
        assert!(
            started.elapsed() < within,
            "a check took {:?} with Redis away",
            started.elapsed()
        );
        allowed += usize::from(outcome.is_ok());
    }
    allowed
}

/// Checks until one is answered by Redis again (the fallback count stops rising), or panics
/// after `limit`.
async fn until_redis_answers(rl: &RateLimits, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let before = rl.fallbacks();
        let _ = rl.check(Group::Api, ip("198.51.100.200")).await;
        if rl.fallbacks() == before {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "Redis was not used again within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
#[allow(unsafe_code)] // SIGSTOP and SIGCONT to stall Redis
async fn when_redis_dies_or_stalls_checks_fall_back_in_process_and_keep_answering() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let limits = Limits {
        api_per_minute: 50,
        ..Limits::default()
    };
    let rl = RateLimits::with_redis(&limits, &config(&redis)).expect("limits");
    // Redis counts the first ten; the in-process table behind it has seen none.
    for _ in 0..10 {
        rl.check(Group::Api, ip("198.51.100.1")).await.unwrap();
    }
    assert_eq!(rl.fallbacks(), 0);

    redis.kill();
    // Well within the 50 ms timeout plus scheduling slack on a busy 2-core machine.
    let allowed = answered_within(&rl, ip("198.51.100.1"), 100, Duration::from_millis(500)).await;
    println!(
        "Redis killed: {allowed} of 100 allowed in process, {} fallbacks",
        rl.fallbacks()
    );
    // Still limited, by the in-process limiter alone: its own 50.
    assert!((50..=51).contains(&allowed), "{allowed}");
    assert_eq!(rl.fallbacks(), 100);

    // Back: the manager reconnects by itself and checks go to Redis again.
    redis.restart();
    let took = until_redis_answers(&rl, Duration::from_secs(20)).await;
    println!(
        "Redis restarted: used again after {:.1} s",
        took.as_secs_f64()
    );

    // Stalled (SIGSTOP): checks time out after 50 ms and are answered in process.
    // SAFETY: signalling the redis-server child this test started.
    unsafe { libc::kill(redis.pid() as i32, libc::SIGSTOP) };
    let before = rl.fallbacks();
    let started = Instant::now();
    let allowed = answered_within(&rl, ip("198.51.100.2"), 20, Duration::from_millis(500)).await;
    println!(
        "Redis stalled: 20 checks in {:.0} ms, {allowed} allowed, {} fallbacks",
        started.elapsed().as_secs_f64() * 1000.0,
        rl.fallbacks() - before
    );
    assert_eq!(allowed, 20);
    assert_eq!(rl.fallbacks() - before, 20);
    // Only the first check waited for the timeout; the rest skipped Redis for a while.
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    // SAFETY: as above.
    unsafe { libc::kill(redis.pid() as i32, libc::SIGCONT) };
    let took = until_redis_answers(&rl, Duration::from_secs(20)).await;
    println!(
        "Redis continued: used again after {:.1} s",
        took.as_secs_f64()
    );
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_is_not_an_error() {
    let port = support::redis_server::free_port();
    let rl = RateLimits::with_redis(
        &Limits::default(),
        &RedisConfig {
            url: Secret::new(format!("redis://127.0.0.1:{port}")),
            timeout: Duration::from_millis(50),
        },
    )
    .expect("a valid URL is accepted whether or not Redis answers");
    rl.check(Group::Api, ip("10.9.9.9")).await.unwrap();
    assert_eq!(rl.fallbacks(), 1);
    assert!(
        RateLimits::with_redis(
            &Limits::default(),
            &RedisConfig {
                url: Secret::new("redis://exa mple:notaport"),
                timeout: Duration::from_millis(50),
            },
        )
        .is_err()
    );
}

#[tokio::test]
async fn ipv6_clients_are_keyed_by_their_prefix_in_redis_too() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limits = Limits {
        auth_per_minute: 3,
        ..Limits::default()
    };
    let (a, b) = two_instances(&redis, &limits).await;
    // Three addresses of one /64, across both instances: one client, one key.
    a.check(Group::Auth, ip("2001:db8:5:6::1")).await.unwrap();
    b.check(Group::Auth, ip("2001:db8:5:6::2")).await.unwrap();
    a.check(Group::Auth, ip("2001:db8:5:6:aaaa::3"))
        .await
        .unwrap();
    assert!(b.check(Group::Auth, ip("2001:db8:5:6::4")).await.is_err());
    // The next /64 is another client.
    b.check(Group::Auth, ip("2001:db8:5:7::1")).await.unwrap();
    assert_eq!(
        a.fallbacks() + b.fallbacks(),
        0,
        "Redis answered every check"
    );
    // What Redis holds: the prefixes, never the addresses.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("sc:rl:auth:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        ["sc:rl:auth:2001:db8:5:6::", "sc:rl:auth:2001:db8:5:7::"]
    );
}
