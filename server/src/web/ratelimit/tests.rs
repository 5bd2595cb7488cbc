//! The limiter's tests: groups, keys behind proxies, eviction, and the shared limiter's
//! fallback.

use super::*;
use axum::http::Method;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_sixth_auth_request_in_a_minute_is_refused_and_other_ips_are_not() {
    let rl = RateLimits::new(&Limits::default());
    for _ in 0..5 {
        rl.check(Group::Auth, ip("10.0.0.1")).await.unwrap();
    }
    let denied = rl.check(Group::Auth, ip("10.0.0.1")).await.unwrap_err();
    assert!(denied.retry_after > Duration::from_secs(5), "{denied:?}");
    assert!(denied.retry_after <= Duration::from_secs(12), "{denied:?}");
    assert_eq!(rl.denied(Group::Auth), 1);
    rl.check(Group::Auth, ip("10.0.0.2")).await.unwrap();
    // Groups are separate.
    rl.check(Group::Api, ip("10.0.0.1")).await.unwrap();
}

#[tokio::test]
async fn users_are_held_to_their_tier_and_uploads_to_five_a_minute() {
    let rl = RateLimits::new(&Limits {
        tier_api_per_minute: [3, 6, 9],
        ..Limits::default()
    });
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for _ in 0..3 {
        rl.check_user(Group::Api, a, Tier::Free).await.unwrap();
    }
    let denied = rl
        .check_user(Group::Generate, a, Tier::Free)
        .await
        .unwrap_err();
    assert_eq!(denied.group, Group::User);
    // Another user, and the same user on a bigger tier's table, are unaffected.
    rl.check_user(Group::Api, b, Tier::Free).await.unwrap();
    for _ in 0..6 {
        rl.check_user(Group::Api, a, Tier::Pro).await.unwrap();
    }
    assert!(rl.check_user(Group::Api, a, Tier::Pro).await.is_err());
    // Sign-in requests never count against a user.
    rl.check_user(Group::Auth, a, Tier::Free).await.unwrap();
    let c = Uuid::new_v4();
    for _ in 0..5 {
        rl.check_user(Group::Upload, c, Tier::Enterprise)
            .await
            .unwrap();
    }
    assert_eq!(
        rl.check_user(Group::Upload, c, Tier::Enterprise)
            .await
            .unwrap_err()
            .group,
        Group::Upload
    );
    assert_eq!(rl.denied(Group::Upload), 1);
    assert_eq!(rl.denied(Group::User), 2);
}

#[tokio::test]
async fn a_spent_allowance_refills_over_the_minute() {
    // 60 a minute refills one a second.
    let rl = RateLimits::new(&Limits {
        tier_api_per_minute: [60, 60, 60],
        ..Limits::default()
    });
    let u = Uuid::new_v4();
    for _ in 0..60 {
        rl.check_user(Group::Api, u, Tier::Free).await.unwrap();
    }
    let denied = rl.check_user(Group::Api, u, Tier::Free).await.unwrap_err();
    assert!(denied.retry_after <= Duration::from_secs(1), "{denied:?}");
    tokio::time::sleep(denied.retry_after + Duration::from_millis(50)).await;
    rl.check_user(Group::Api, u, Tier::Free).await.unwrap();
    assert!(rl.check_user(Group::Api, u, Tier::Free).await.is_err());
}

#[test]
fn the_in_process_check_never_waits() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let rl = RateLimits::new(&Limits::default());
    assert_eq!(rl.store(), "memory");
    let mut cx = Context::from_waker(Waker::noop());
    let check = std::pin::pin!(rl.check(Group::Api, ip("10.0.0.1")));
    assert!(matches!(check.poll(&mut cx), Poll::Ready(Ok(()))));
    let check = std::pin::pin!(rl.check_user(Group::Upload, Uuid::new_v4(), Tier::Free));
    assert!(matches!(check.poll(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(rl.fallbacks(), 0);
}

#[test]
fn the_redis_parameters_are_governors() {
    // 5 a minute: one every 12 s, and 4 more beyond the first in a burst.
    let l = Limiter::<IpAddr>::new(Group::Auth, "sc:rl:auth:", 5, 10);
    assert_eq!(l.interval_us, 12_000_000);
    assert_eq!(l.tolerance_us, 48_000_000);
    // A zero limit is treated as one, as in process.
    let l = Limiter::<IpAddr>::new(Group::Auth, "sc:rl:auth:", 0, 10);
    assert_eq!((l.interval_us, l.tolerance_us), (60_000_000, 0));
}

#[test]
fn groups_follow_the_path() {
    assert_eq!(Group::of(&Method::GET, "/"), None);
    assert_eq!(Group::of(&Method::GET, "/media/x"), Some(Group::Media));
    assert_eq!(Group::of(&Method::GET, "/api/health"), None);
    assert_eq!(
        Group::of(&Method::POST, "/api/generations/submit"),
        Some(Group::Generate)
    );
    assert_eq!(
        Group::of(&Method::POST, "/api/auth/sign_in"),
        Some(Group::Auth)
    );
    assert_eq!(
        Group::of(&Method::POST, "/api/generations/recent"),
        Some(Group::Api)
    );
    assert_eq!(
        Group::of(&Method::PUT, "/api/uploads/abc"),
        Some(Group::Upload)
    );
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let rl = RateLimits::new(&Limits {
        trusted_proxies: vec!["10.0.0.9".parse().unwrap(), "10.0.0.8".parse().unwrap()],
        ..Limits::default()
    });
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_static("1.2.3.4, 203.0.113.7, 10.0.0.8"),
    );
    assert_eq!(rl.client_ip(ip("10.0.0.9"), &h), ip("203.0.113.7"));
    // An untrusted peer's header is ignored: it could say anything.
    assert_eq!(rl.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    assert_eq!(
        rl.client_ip(ip("10.0.0.9"), &HeaderMap::new()),
        ip("10.0.0.9")
    );
}

#[tokio::test]
async fn a_flood_of_distinct_sources_stays_bounded() {
    let rl = RateLimits::new(&Limits {
        max_keys: 1_000,
        ..Limits::default()
    });
    for i in 0..5_000u32 {
        let _ = rl.check(Group::Api, IpAddr::from(i.to_be_bytes())).await;
        if i % 1_000 == 999 {
            rl.prune();
        }
    }
    rl.prune();
    assert!(rl.keys(Group::Api) <= 1_000, "{}", rl.keys(Group::Api));
}

#[tokio::test]
async fn ipv6_clients_share_a_limit_per_64_and_ipv4_per_address() {
    let rl = RateLimits::new(&Limits::default());
    for i in 0..5 {
        // Five addresses of one /64: one client.
        rl.check(Group::Auth, ip(&format!("2001:db8:1:2::{i:x}")))
            .await
            .unwrap();
    }
    assert!(
        rl.check(Group::Auth, ip("2001:db8:1:2:ffff:1:2:3"))
            .await
            .is_err()
    );
    // The neighbouring /64 is someone else.
    rl.check(Group::Auth, ip("2001:db8:1:3::1")).await.unwrap();
    // IPv4 by address, also when it arrives IPv4-mapped.
    for _ in 0..5 {
        rl.check(Group::Auth, ip("192.0.2.1")).await.unwrap();
    }
    assert!(rl.check(Group::Auth, ip("::ffff:192.0.2.1")).await.is_err());
    rl.check(Group::Auth, ip("192.0.2.2")).await.unwrap();
    // The prefix is configurable.
    let rl = RateLimits::new(&Limits {
        ipv6_prefix: 128,
        ..Limits::default()
    });
    for _ in 0..5 {
        rl.check(Group::Auth, ip("2001:db8::1")).await.unwrap();
    }
    rl.check(Group::Auth, ip("2001:db8::2")).await.unwrap();
    assert_eq!(
        client_key(ip("2001:db8:1:2:3:4:5:6"), 48),
        ip("2001:db8:1::")
    );
    assert_eq!(client_key(ip("2001:db8::1"), 0), ip("::"));
}

#[tokio::test]
async fn a_flood_of_new_keys_does_not_reset_a_limited_client() {
    let rl = RateLimits::new(&Limits {
        max_keys: 1_000,
        ..Limits::default()
    });
    let attacker = ip("198.51.100.7");
    let active = ip("198.51.100.8");
    for _ in 0..100 {
        rl.check(Group::Api, attacker).await.unwrap();
    }
    assert!(rl.check(Group::Api, attacker).await.is_err());
    // Someone active but within their allowance keeps their count too.
    for _ in 0..60 {
        rl.check(Group::Api, active).await.unwrap();
    }
    // Fifty times the table's size in fresh sources, each seen once, with pruning.
    for i in 0..50_000u32 {
        let _ = rl
            .check(Group::Api, IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
            .await;
        if i % 10_000 == 9_999 {
            rl.prune();
        }
    }
    assert!(rl.keys(Group::Api) <= 1_000, "{}", rl.keys(Group::Api));
    let denied = rl.check(Group::Api, attacker).await.unwrap_err();
    assert!(denied.retry_after > Duration::ZERO);
    // 40 left of its 100 (plus whatever refilled meanwhile), not a fresh 100.
    let mut left = 0;
    while rl.check(Group::Api, active).await.is_ok() {
        left += 1;
        assert!(left < 60, "the active client's count was reset");
    }
    assert!(left >= 40, "{left}");
}

#[test]
fn trusted_proxies_may_be_cidr_ranges() {
    let rl = RateLimits::new(&Limits {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
        ..Limits::default()
    });
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_static("203.0.113.7, 10.20.30.40"),
    );
    // Inside the ranges: believed, and the hop inside a range skipped too.
    assert_eq!(rl.client_ip(ip("10.255.0.1"), &h), ip("203.0.113.7"));
    assert_eq!(rl.client_ip(ip("fd12:3456::1"), &h), ip("203.0.113.7"));
    assert_eq!(rl.client_ip(ip("::ffff:10.1.2.3"), &h), ip("203.0.113.7"));
    // Outside: not believed.
    assert_eq!(rl.client_ip(ip("11.0.0.1"), &h), ip("11.0.0.1"));
    assert_eq!(rl.client_ip(ip("fe00::1"), &h), ip("fe00::1"));
    for bad in [
        "10.0.0.0/33",
        "fd00::/129",
        "10.0.0/8",
        "proxy.local",
        "10.0.0.0/x",
    ] {
        assert!(bad.parse::<IpRange>().is_err(), "{bad}");
    }
    assert!(
        "0.0.0.0/0"
            .parse::<IpRange>()
            .unwrap()
            .contains(ip("8.8.8.8"))
    );
    assert!(!"::/0".parse::<IpRange>().unwrap().contains(ip("8.8.8.8")));
}
