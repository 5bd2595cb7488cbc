//! Scale-out: SocialCraft as several instances, the way an operator would run it, all on
//! 127.0.0.1 at free ports: a private PostgreSQL cluster, a Redis, an S3-compatible server
//! (`s3s-fs`), two web instances of the real binary (`socialcraft serve`, with
//! `WORKER_IN_PROCESS=false`, `STORAGE_PROVIDER=s3`, `RATE_LIMIT_STORE=redis` and one
//! `SECRET_KEY`) and one separate `socialcraft worker`. It checks, printing what it
//! measured:
//!
//! a. a flood split across both instances is held to one rate limit (within 10%);
//! b. an image submitted on one instance is made by the worker and served by the other from
//!    S3, with the same cookies (no sticky sessions);
//! c. a worker killed (SIGKILL) mid-job and started again loses nothing: every generation
//!    ends with exactly its number of images.
//!
//! Ignored by default: it needs `redis-server` and `s3s-fs` installed and spawns processes.
//! `./dev scale-out` installs both and runs it (`./dev test` runs it after the Rust tests):
//!
//! ```sh
//! cargo test -p server --target-dir target/native --test suite -- --ignored --nocapture scale_out::
//! ```
//!
//! The binary is `SOCIALCRAFT_BIN` if set, else the one cargo built for this test;
//! `LEPTOS_SITE_ROOT` is passed on when set. Every process is killed and the scratch
//! directory removed on the way out, when an assertion fails too; the whole run is bounded.

use crate::support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use server::pg_embedded::EmbeddedPg;
use support::processes::{
    BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, cookies_of, form, migrate, print_log_tail, shared_env,
    socialcraft_bin, spawn_s3s_fs, spawn_socialcraft, start_database, tear_down, wait_ready,
};
use support::redis_server::{RedisServer, free_port};

const API_PER_MINUTE: u32 = 200;
const PASSWORD: &str = "correct horse battery staple";
/// The whole run, set-up included, fails rather than hangs past this.
const WHOLE_RUN: Duration = Duration::from_secs(420);

/// Everything the test started; dropping it kills and removes all of it.
struct Stack {
    dir: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
    pg: Option<EmbeddedPg>,
    redis: Option<RedisServer>,
    s3: Option<Child>,
    procs: HashMap<&'static str, Child>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (name, mut child) in self.procs.drain() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                print_log_tail(&self.dir, name);
            }
        }
        drop(self.redis.take());
        tear_down(&self.dir, self.s3.take(), self.pg.take(), "SCALE_OUT_KEEP");
    }
}

impl Stack {
    async fn start() -> Stack {
        let dir = std::env::temp_dir().join(format!("sc-scale-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("s3").join(BUCKET)).expect("scratch directory");
        let bin = socialcraft_bin();
        let mut stack = Stack {
            dir,
            bin,
            env: Vec::new(),
            pg: None,
            redis: None,
            s3: None,
            procs: HashMap::new(),
        };

        let (pg, db_url) = start_database(&stack.dir).await;
        stack.pg = Some(pg);

        stack.redis = Some(
            RedisServer::start().expect("redis-server is needed (./dev scale-out installs it)"),
        );
        let redis_url = stack
            .redis
            .as_ref()
            .map(RedisServer::url)
            .unwrap_or_default();

        let s3_port = free_port();
        stack.s3 =
            Some(spawn_s3s_fs(&stack.dir.join("s3"), s3_port, S3_ACCESS_KEY, S3_SECRET_KEY).await);

        stack.env = shared_env(&stack.dir, &db_url, s3_port);
        for (k, v) in [
            ("RATE_LIMIT_STORE", "redis".into()),
            ("REDIS_URL", redis_url),
            ("RATE_LIMIT_API_PER_MINUTE", API_PER_MINUTE.to_string()),
            // Step a counts what two instances let through, not how refusals are paced:
            // held for a second each, its ~800 refusals would add most of a minute.
            ("RATE_LIMIT_REFUSAL_DELAY_MS", "0".into()),
            // The test is the load balancer: it names the client in X-Forwarded-For, so the
            // flood and the rest of the test are different clients.
            ("TRUSTED_PROXIES", "127.0.0.1".into()),
            ("TIER_FREE_API_PER_MINUTE", "100000".into()),
            ("WORKER_IN_PROCESS", "false".into()),
            ("JOB_LEASE_SECS", "3".into()),
            ("JOB_POLL_INTERVAL_MS", "500".into()),
        ] {
            stack.env.push((k.to_owned(), v));
        }

        // Migrations once, before any instance starts (they run with RUN_MIGRATIONS=false).
        migrate(&stack.bin, &stack.env, &stack.dir).await;
        stack
    }

    /// Starts `socialcraft ARGS` as `name`, its output in `name.log`.
    fn spawn(&mut self, name: &'static str, args: &[&str], extra: &[(&str, String)]) {
        let child = spawn_socialcraft(&self.bin, &self.env, &self.dir, name, args, extra);
        self.procs.insert(name, child);
    }

    /// A web instance on a free port, once it says it is ready; returns its base URL.
    async fn web(&mut self, name: &'static str, client: &reqwest::Client) -> String {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        self.spawn(name, &["serve"], &[("LEPTOS_SITE_ADDR", addr.clone())]);
        let base = format!("http://{addr}");
        let child = self.procs.get_mut(name).expect("just started");
        wait_ready(client, &base, child, name).await;
        base
    }

    fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.procs.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A form POST to a server function as `client_ip` (through the "proxy"), with `cookie`.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    client_ip: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("x-forwarded-for", client_ip)
        .body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let text = res.text().await.expect("body");
    assert!(status.is_success(), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server and s3s-fs, and spawns processes: ./dev scale-out"]
async fn several_instances_share_limits_media_and_one_worker() {
    let started = Instant::now();
    // Bounded: a hang anywhere fails here; the stack is dropped with the future (or while
    // unwinding from a failed assertion), which kills everything it started.
    let outcome = tokio::time::timeout(WHOLE_RUN, async {
        let mut stack = Stack::start().await;
        run(&mut stack).await;
    })
    .await;
    outcome.unwrap_or_else(|_| panic!("the scale-out test ran over {WHOLE_RUN:?}"));
    println!(
        "scale-out: whole run {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn run(stack: &mut Stack) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(64)
        .build()
        .expect("HTTP client");
    let a = stack.web("web-a", &client).await;
    let b = stack.web("web-b", &client).await;
    stack.spawn("worker", &["worker"], &[]);
    println!("scale-out: web instances at {a} and {b}, one worker");

    flood_is_held_to_one_limit(stack, &client, &a, &b).await;
    let cookie = sign_up(&client, &a).await;
    made_on_one_served_by_the_other(stack, &client, &a, &b, &cookie).await;
    worker_killed_mid_job_loses_nothing(stack, &client, &a, &b, &cookie).await;
}

/// a. ~1000 signed-out API calls, alternating instances, 16 at a time.
async fn flood_is_held_to_one_limit(stack: &Stack, client: &reqwest::Client, a: &str, b: &str) {
    const FLOOD: usize = 1000;
    let flooder = "203.0.113.50";
    let urls = [
        format!("{a}/api/generations/recent"),
        format!("{b}/api/generations/recent"),
    ];
    let started = Instant::now();
    let statuses: Vec<(usize, u16)> = futures_util::stream::iter(0..FLOOD)
        .map(|i| {
            let url = &urls[i % 2];
            async move {
                (
                    i % 2,
                    post(client, url, "", flooder, None).await.status().as_u16(),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let took = started.elapsed().as_secs_f64();
    let passed: Vec<usize> = (0..2)
        .map(|n| {
            statuses
                .iter()
                .filter(|(i, s)| *i == n && *s != 429)
                .count()
        })
        .collect();
    let total = passed[0] + passed[1];
    let others: Vec<u16> = statuses
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != 200 && *s != 429)
        .collect();
    assert!(others.is_empty(), "unexpected statuses: {others:?}");
    let expected = f64::from(API_PER_MINUTE) + took * f64::from(API_PER_MINUTE) / 60.0;
    println!(
        "scale-out a: {FLOOD} requests in {took:.2} s ({:.0}/s), {total} not refused \
         (instance A {}, B {}); limit {API_PER_MINUTE}/min + refill = {expected:.0} expected",
        FLOOD as f64 / took,
        passed[0],
        passed[1]
    );
    assert!(
        (total as f64 - expected).abs() <= expected * 0.10,
        "{total} passed; expected {expected:.0} within 10%"
    );
    assert!(passed[0] > 0 && passed[1] > 0, "both instances served some");

    // The count lives in Redis, under the namespaced key, and expires by itself.
    let redis = stack.redis.as_ref().expect("redis");
    let mut conn = redis::Client::open(redis.url())
        .expect("redis client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("sc:rl:api:{flooder}"))
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    println!("scale-out a: sc:rl:api:{flooder} expires in {ttl} ms");
    assert!(ttl > 0 && ttl <= 61_000, "{ttl}");
}

/// Signs up on `a`; returns the `Cookie` header its browser would send.
async fn sign_up(client: &reqwest::Client, a: &str) -> String {
    let res = post(
        client,
        &format!("{a}/api/auth/sign_up"),
        &form(&[("email", "scale@example.com"), ("password", PASSWORD)]),
        "203.0.113.60",
        None,
    )
    .await;
    assert_eq!(res.status(), 200, "sign-up");
    let cookies = cookies_of(&res);
    assert!(cookies.contains("sc_access="), "{cookies}");
    cookies
}

async fn submit(client: &reqwest::Client, base: &str, cookie: &str, prompt: &str, n: u8) -> String {
    let view = json_of(
        post(
            client,
            &format!("{base}/api/generations/submit"),
            &form(&[
                ("prompt", prompt),
                ("style", "bold"),
                ("format", "instagram_square"),
                ("variations", &n.to_string()),
            ]),
            "203.0.113.61",
            Some(cookie),
        )
        .await,
    )
    .await;
    view["id"].as_str().expect("generation id").to_owned()
}

/// The generations `ids` as `base` shows them: one by its status call, several from the
/// creator's recent list (one request a poll, well inside the per-IP limit).
async fn views_of(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    ids: &[String],
    client_ip: &str,
) -> Vec<Value> {
    if let [id] = ids {
        let url = format!("{base}/api/generations/status");
        let body = form(&[("id", id)]);
        return vec![json_of(post(client, &url, &body, client_ip, Some(cookie)).await).await];
    }
    let url = format!("{base}/api/generations/recent");
    let recent = json_of(post(client, &url, "", client_ip, Some(cookie)).await).await;
    let recent = recent.as_array().cloned().unwrap_or_default();
    ids.iter()
        .map(|id| {
            recent
                .iter()
                .find(|v| v["id"] == id.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("generation {id} is not in the recent list"))
        })
        .collect()
}

/// Polls `ids` on `base` until every one has succeeded (a failure fails the test).
async fn until_all_succeed(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    ids: &[String],
    client_ip: &str,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let views = views_of(client, base, cookie, ids, client_ip).await;
        for v in &views {
            assert_ne!(v["status"], "failed", "a generation failed: {v}");
        }
        if views.iter().all(|v| v["status"] == "succeeded") {
            return views;
        }
        assert!(
            Instant::now() < deadline,
            "not every generation succeeded within {within:?}: {:?}",
            views.iter().map(|v| &v["status"]).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// b. Submitted on A, made by the worker, followed and fetched on B, stored in the bucket.
async fn made_on_one_served_by_the_other(
    stack: &Stack,
    client: &reqwest::Client,
    a: &str,
    b: &str,
    cookie: &str,
) {
    let started = Instant::now();
    let id = submit(
        client,
        a,
        cookie,
        "Scale out launch party on the rooftop",
        2,
    )
    .await;
    let views = until_all_succeed(
        client,
        b,
        cookie,
        &[id],
        "203.0.113.62",
        Duration::from_secs(120),
    )
    .await;
    let images = views[0]["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{}", views[0]);
    let made = started.elapsed().as_secs_f64();
    for image in images {
        for (field, magic) in [("full_url", &b"RIFF"[..]), ("png_url", &b"\x89PNG"[..])] {
            let path = image[field].as_str().expect("media URL");
            let res = client
                .get(format!("{b}{path}"))
                .send()
                .await
                .expect("GET media");
            assert_eq!(res.status(), 200, "{path} from B");
            let bytes = res.bytes().await.expect("media body");
            assert!(bytes.starts_with(magic), "{path} is not what it says");
            // The very object the worker put in the bucket.
            let key = path.strip_prefix("/media/").expect("a /media/ URL");
            let stored = std::fs::read(stack.dir.join("s3").join(BUCKET).join(key))
                .unwrap_or_else(|e| panic!("{key} is not in the s3s-fs bucket: {e}"));
            assert_eq!(stored, bytes.as_ref(), "{key}");
        }
    }
    println!(
        "scale-out b: submitted on A, succeeded after {made:.1} s (followed on B), 2 images \
         served by B from S3 and found in the bucket"
    );
}

/// c. Several generations; the worker is SIGKILLed while one is part-way; a new worker
/// finishes everything, each with exactly its images.
async fn worker_killed_mid_job_loses_nothing(
    stack: &mut Stack,
    client: &reqwest::Client,
    a: &str,
    b: &str,
    cookie: &str,
) {
    let db_url = stack
        .env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL")
        .map(|(_, v)| v.clone())
        .expect("DATABASE_URL");
    let (db, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);

    let asked: [u8; 4] = [4, 3, 4, 2];
    let mut ids = Vec::new();
    for (i, n) in asked.iter().enumerate() {
        let base = if i % 2 == 0 { a } else { b };
        ids.push(submit(client, base, cookie, &format!("Crash test number {i}"), *n).await);
    }

    // Wait until a generation is part-way: running with some but not all of its images.
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_in = loop {
        let row = db
            .query_opt(
                "SELECT g.id::text, g.variations, \
                        (SELECT count(*) FROM images i WHERE i.generation_id = g.id) AS made \
                 FROM generations g \
                 WHERE g.status = 'running' \
                   AND (SELECT count(*) FROM images i WHERE i.generation_id = g.id) \
                       BETWEEN 1 AND g.variations - 1 \
                 LIMIT 1",
                &[],
            )
            .await
            .expect("query generations");
        if let Some(row) = row {
            let (id, variations, made): (String, i32, i64) = (row.get(0), row.get(1), row.get(2));
            break (id, variations, made);
        }
        assert!(
            Instant::now() < deadline,
            "no generation was seen part-way within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stack.kill("worker");
    let killed_at = Instant::now();
    println!(
        "scale-out c: worker SIGKILLed with generation {} at {}/{} images",
        killed_in.0, killed_in.2, killed_in.1
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The replacement worker exposes its metrics, as a worker in production would.
    let metrics_port = free_port();
    stack.spawn(
        "worker-2",
        &["worker"],
        &[("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))],
    );

    let views = until_all_succeed(
        client,
        a,
        cookie,
        &ids,
        "203.0.113.63",
        Duration::from_secs(180),
    )
    .await;
    let recovered = killed_at.elapsed().as_secs_f64();
    for ((view, n), id) in views.iter().zip(asked).zip(&ids) {
        let variations: BTreeSet<u64> = view["images"]
            .as_array()
            .expect("images")
            .iter()
            .filter_map(|i| i["variation"].as_u64())
            .collect();
        assert_eq!(
            variations,
            (0..u64::from(n)).collect::<BTreeSet<_>>(),
            "generation {id}: {view}"
        );
        let rows: i64 = db
            .query_one(
                "SELECT count(*) FROM images WHERE generation_id = $1::text::uuid",
                &[id],
            )
            .await
            .expect("count images")
            .get(0);
        assert_eq!(rows, i64::from(n), "generation {id}: image rows");
    }
    let attempts: i32 = db
        .query_one(
            "SELECT j.attempts FROM jobs j JOIN generations g ON g.job_id = j.id \
             WHERE g.id = $1::text::uuid",
            &[&killed_in.0],
        )
        .await
        .expect("attempts")
        .get(0);
    println!(
        "scale-out c: all {} generations succeeded {recovered:.1} s after the kill with exactly \
         {:?} images; the interrupted one took {attempts} attempts",
        asked.len(),
        asked
    );
    assert!(attempts >= 2, "the interrupted job was run again");

    // What the worker did shows in its own metrics (it has no web listener).
    let metrics = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .expect("worker metrics")
        .text()
        .await
        .expect("metrics body");
    let value = |needle: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{needle}` in the worker's metrics:\n{metrics}"))
    };
    let jobs =
        value(r#"socialcraft_job_duration_seconds_count{kind="generate",outcome="succeeded"}"#);
    let variants = value(r#"socialcraft_variants_generated_total{source="generation"}"#);
    assert!(jobs >= 1.0, "{metrics}");
    assert!(variants >= 3.0, "{metrics}");
    println!("scale-out c: the new worker's metrics: {jobs} jobs succeeded, {variants} variants");

    // Readiness does not name the shared store as degraded (the detail is on the metrics
    // listener's `/ready`; the public answer names checks only).
    let ready: Value = client
        .get(format!("{a}/api/ready"))
        .send()
        .await
        .expect("ready")
        .json()
        .await
        .expect("ready body");
    assert_eq!(ready["degraded"], serde_json::json!([]), "{ready}");
}
