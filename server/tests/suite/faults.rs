//! Faults: SocialCraft as real processes on 127.0.0.1 (a private PostgreSQL, an S3 server
//! `s3s-fs`, one `socialcraft serve` with its worker in process and media on S3), and what
//! happens to a steady stream of submissions when parts of it go away. It checks, printing
//! what it measured:
//!
//! a. the database stopped mid-stream: `/api/ready` is 503 within 2 s; every submission
//!    sent meanwhile is refused within 3 s, clearly (503 `unavailable` for a fetch call, a
//!    redirect back to the page with `error=unavailable` for the no-JavaScript form, whose
//!    page then says so in its own words), never a 500 or a hang, and the process stays up; started again on the same port, the
//!    server is ready within 5 s. Then every accepted submission is stored exactly once and
//!    finishes with its images, and no refused one is stored at all;
//! b. the web process SIGKILLed right after it accepted a batch, and started again: every
//!    accepted submission finishes, exactly once;
//! c. the object store killed: readiness names `storage` (the detail only on the metrics
//!    listener), an upload is refused with 503 `unavailable` in bounded time and leaves no
//!    asset, blob, object, spool file or reserved storage; the store back, readiness
//!    recovers and an upload works;
//! d. the same for the file store (`STORAGE_PROVIDER=local`), its directory replaced by a
//!    file.
//!
//! Ignored by default: it needs `s3s-fs` installed and spawns processes. `./dev faults`
//! installs it and runs it (`./dev test` runs it after the scale-out test):
//!
//! ```sh
//! cargo test -p server --target-dir target/native --test suite -- --ignored --nocapture faults::
//! ```
//!
//! The binary is `SOCIALCRAFT_BIN` if set, else the one cargo built for this test. Every
//! process is killed and the scratch directory removed on the way out (`FAULTS_KEEP` keeps
//! it), when an assertion fails too; every request and the whole run are bounded.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use server::pg_embedded::EmbeddedPg;
use support::processes::{
    BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, cookies_of, form, kill, migrate, print_log_tail,
    shared_env, socialcraft_bin, spawn_s3s_fs, spawn_socialcraft, start_database, tear_down,
    wait_ready,
};
use support::redis_server::free_port;

const PASSWORD: &str = "correct horse battery staple";
/// The whole run, set-up included, fails rather than hangs past this.
const WHOLE_RUN: Duration = Duration::from_secs(240);
/// No request may go unanswered for longer (the client gives up a little later).
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// An upload to a store that is down is refused this soon: the store refuses connections at
/// once, so anything longer is the client retrying (object_store's defaults took 2 to 3 s).
const STORE_REFUSED_WITHIN: Duration = Duration::from_millis(1500);
/// Readiness must turn 503 this soon after the database stops.
const NOT_READY_WITHIN: Duration = Duration::from_secs(2);
/// ...and 200 this soon after it is back.
const READY_AGAIN_WITHIN: Duration = Duration::from_secs(5);
/// One submission every so often, each on its own task, so a hung one cannot slow the rest.
const CADENCE: Duration = Duration::from_millis(200);

/// Everything the test started; dropping it kills and removes all of it.
struct Stack {
    dir: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
    pg: Option<EmbeddedPg>,
    pg_port: u16,
    db_url: String,
    s3: Option<Child>,
    s3_port: u16,
    web: Option<Child>,
    /// The web process's base URL and its metrics listener's.
    base: String,
    metrics: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        kill(self.web.take());
        if std::thread::panicking() {
            print_log_tail(&self.dir, "web");
        }
        tear_down(&self.dir, self.s3.take(), self.pg.take(), "FAULTS_KEEP");
    }
}

impl Stack {
    async fn start() -> Stack {
        let dir = std::env::temp_dir().join(format!("sc-faults-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("s3").join(BUCKET)).expect("scratch directory");
        let mut stack = Stack {
            dir,
            bin: socialcraft_bin(),
            env: Vec::new(),
            pg: None,
            pg_port: 0,
            db_url: String::new(),
            s3: None,
            s3_port: free_port(),
            web: None,
            base: String::new(),
            metrics: String::new(),
        };

        let (pg, db_url) = start_database(&stack.dir).await;
        stack.db_url = db_url;
        stack.pg_port = pg.port();
        stack.pg = Some(pg);

        stack.s3 = Some(
            spawn_s3s_fs(
                &stack.dir.join("s3"),
                stack.s3_port,
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
            )
            .await,
        );

        let many = "100000".to_owned();
        stack.env = shared_env(&stack.dir, &stack.db_url, stack.s3_port);
        for (k, v) in [
            // Limits are not what is tested here: nothing may be refused for them.
            ("RATE_LIMIT_AUTH_PER_MINUTE", many.clone()),
            ("RATE_LIMIT_GENERATE_PER_MINUTE", many.clone()),
            ("RATE_LIMIT_API_PER_MINUTE", many.clone()),
            ("RATE_LIMIT_UPLOAD_PER_MINUTE", many.clone()),
            ("TIER_FREE_API_PER_MINUTE", many.clone()),
            ("TIER_FREE_GENERATIONS_PER_DAY", many.clone()),
            ("WORKER_IN_PROCESS", "true".into()),
            // A job held by a killed process is taken again soon.
            ("JOB_LEASE_SECS", "3".into()),
            ("JOB_POLL_INTERVAL_MS", "500".into()),
        ] {
            stack.env.push((k.to_owned(), v));
        }
        migrate(&stack.bin, &stack.env, &stack.dir).await;
        stack
    }

    /// Starts the web process (again) on fresh ports and waits until it is ready.
    async fn start_web(&mut self, client: &reqwest::Client) {
        self.start_web_with(client, &[]).await;
    }

    /// As [`Stack::start_web`], with `extra` settings over the stack's.
    async fn start_web_with(&mut self, client: &reqwest::Client, extra: &[(&str, String)]) {
        let addr = format!("127.0.0.1:{}", free_port());
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut child = spawn_socialcraft(
            &self.bin,
            &self.env,
            &self.dir,
            "web",
            &["serve"],
            &[
                &[
                    ("LEPTOS_SITE_ADDR", addr.clone()),
                    ("METRICS_ADDR", metrics.clone()),
                ],
                extra,
            ]
            .concat(),
        );
        self.base = format!("http://{addr}");
        self.metrics = format!("http://{metrics}");
        wait_ready(client, &self.base, &mut child, "web").await;
        self.web = Some(child);
    }

    /// SIGKILL, as the kernel's OOM killer or a lost machine would.
    fn kill_web(&mut self) {
        kill(self.web.take());
    }

    fn web_alive(&mut self) -> bool {
        self.web
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    async fn stop_pg(&mut self) {
        let pg = self.pg.take().expect("PostgreSQL is running");
        tokio::task::spawn_blocking(move || pg.stop())
            .await
            .expect("stop thread")
            .expect("stop PostgreSQL");
    }

    async fn start_pg(&mut self) {
        let (pg_dir, port) = (self.dir.join("pg"), self.pg_port);
        let pg =
            tokio::task::spawn_blocking(move || EmbeddedPg::start_on_port(&pg_dir, None, port))
                .await
                .expect("start thread")
                .expect("start PostgreSQL again");
        assert_eq!(pg.port(), self.pg_port, "the same port as before");
        self.pg = Some(pg);
    }

    async fn db(&self) -> tokio_postgres::Client {
        let (db, connection) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        db
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs s3s-fs and spawns processes: ./dev faults"]
async fn outages_refuse_quickly_and_lose_nothing() {
    let started = Instant::now();
    // Bounded: a hang anywhere fails here; the stack is dropped with the future (or while
    // unwinding from a failed assertion), which kills everything it started.
    let outcome = tokio::time::timeout(WHOLE_RUN, async {
        let mut stack = Stack::start().await;
        run(&mut stack).await;
    })
    .await;
    outcome.unwrap_or_else(|_| panic!("the faults test ran over {WHOLE_RUN:?}"));
    println!("faults: whole run {:.1} s", started.elapsed().as_secs_f64());
}

async fn run(stack: &mut Stack) {
    let client = reqwest::Client::builder()
        // Past the bound, so a slow answer is measured as slow rather than cut off.
        .timeout(ANSWER_WITHIN + Duration::from_secs(7))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .expect("HTTP client");
    stack.start_web(&client).await;
    println!("faults: web process at {}", stack.base);
    let cookie = sign_up(&client, &stack.base).await;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    database_outage(stack, &client, &cookie, &run_id).await;
    web_killed_after_accepting(stack, &client, &cookie, &run_id).await;
    object_store_outage(stack, &client, &cookie).await;
    file_store_outage(stack, &client, &cookie).await;
}

/// Signs up; returns the `Cookie` header its browser would send.
async fn sign_up(client: &reqwest::Client, base: &str) -> String {
    let res = client
        .post(format!("{base}/api/auth/sign_up"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form(&[
            ("email", "faults@example.com"),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .expect("sign up");
    assert_eq!(res.status(), 200, "sign-up");
    let cookies = cookies_of(&res);
    assert!(cookies.contains("sc_access="), "{cookies}");
    cookies
}

/// How a submission was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// The page's `fetch` call to the server function (JSON answer).
    Fetch,
    /// The plain form post a browser without JavaScript sends (a redirect answer).
    Form,
}

/// What a submission was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// 200 with the generation, or the form's redirect back without an error.
    Accepted,
    /// 503 `unavailable`, or the form's redirect back with `error=unavailable`.
    Refused,
    /// Anything else (a 500, another code, no answer at all): always a failure.
    Other(String),
}

#[derive(Clone, Debug)]
struct Sent {
    marker: String,
    via: Via,
    at: Instant,
    took: Duration,
    answer: Answer,
    /// Where a form post was sent back to.
    location: Option<String>,
}

/// One submission with a prompt no other carries (`marker`), timed.
async fn submit(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    marker: String,
    via: Via,
) -> Sent {
    let prompt = format!("Fault drill poster {marker}");
    let body = form(&[
        ("prompt", &prompt),
        ("style", "bold"),
        // The smallest format, one image: the worker's rendering is not what is tested.
        ("format", "linkedin"),
        ("variations", "1"),
    ]);
    let req = client
        .post(format!("{base}/api/generations/submit"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(body);
    let req = match via {
        Via::Fetch => req.header("accept", "application/json"),
        Via::Form => req
            .header("accept", "text/html,application/xhtml+xml")
            .header("referer", format!("{base}/")),
    };
    let at = Instant::now();
    let res = req.send().await;
    let mut back_to = None;
    let answer = match res {
        Err(e) => Answer::Other(format!("no answer: {e}")),
        Ok(res) => {
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = res.text().await.unwrap_or_default();
            match (via, status) {
                (Via::Fetch, 200) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["id"].is_string() {
                        Answer::Accepted
                    } else {
                        Answer::Other(format!("200 without a generation: {text}"))
                    }
                }
                (Via::Fetch, 503) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["code"] == "unavailable" {
                        Answer::Refused
                    } else {
                        Answer::Other(format!("503 without the code: {text}"))
                    }
                }
                (Via::Form, 302 | 303) => {
                    let to = location.unwrap_or_default();
                    back_to = Some(to.clone());
                    let query = to.split_once('?').map_or("", |(_, q)| q);
                    let error = query
                        .split('&')
                        .find_map(|p| p.strip_prefix("error="))
                        .map(str::to_owned);
                    match error.as_deref() {
                        None if to.starts_with(&format!("{base}/")) => Answer::Accepted,
                        Some("unavailable") => Answer::Refused,
                        _ => Answer::Other(format!("{status} to {to}")),
                    }
                }
                _ => Answer::Other(format!(
                    "{status}: {}",
                    text.chars().take(300).collect::<String>()
                )),
            }
        }
    };
    Sent {
        marker,
        via,
        at,
        took: at.elapsed(),
        answer,
        location: back_to,
    }
}

/// Submissions at a steady cadence, alternating fetch and form, until `stop` is set.
fn stream(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Sent>> {
    let (client, base, cookie) = (client.clone(), base.to_owned(), cookie.to_owned());
    tokio::spawn(async move {
        let mut tasks = Vec::new();
        let mut tick = tokio::time::interval(CADENCE);
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let via = if n.is_multiple_of(2) {
                Via::Fetch
            } else {
                Via::Form
            };
            let marker = format!("[{prefix}-{n:04}]");
            let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
            tasks.push(tokio::spawn(async move {
                submit(&client, &base, &cookie, marker, via).await
            }));
            n += 1;
        }
        let mut sent = Vec::new();
        for t in tasks {
            sent.push(t.await.expect("submission task"));
        }
        sent
    })
}

/// Polls `/api/ready` until its status is `want`; how long that took, or `None` past `within`.
async fn until_ready_is(
    client: &reqwest::Client,
    base: &str,
    want: u16,
    within: Duration,
) -> Option<(Duration, Value)> {
    let started = Instant::now();
    while started.elapsed() <= within {
        if let Ok(res) = client.get(format!("{base}/api/ready")).send().await
            && res.status().as_u16() == want
        {
            let body = res.json().await.unwrap_or_default();
            return Some((started.elapsed(), body));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// How many generations carry `marker` in their prompt.
async fn stored(db: &tokio_postgres::Client, marker: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM generations WHERE strpos(prompt, $1) > 0",
        &[&marker],
    )
    .await
    .expect("count generations")
    .get(0)
}

/// Waits until every generation whose prompt carries `prefix` has succeeded with all its
/// images (a failed one fails the test); returns how many there are.
async fn until_all_finish(db: &tokio_postgres::Client, prefix: &str, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let row = db
            .query_one(
                "SELECT count(*), \
                        count(*) FILTER (WHERE g.status = 'succeeded' AND \
                            (SELECT count(*) FROM images i WHERE i.generation_id = g.id) \
                                = g.variations), \
                        count(*) FILTER (WHERE g.status = 'failed'), \
                        coalesce(string_agg(DISTINCT g.status, ','), '') \
                 FROM generations g WHERE strpos(g.prompt, $1) > 0",
                &[&prefix],
            )
            .await
            .expect("count finished generations");
        let (all, done, failed, statuses): (i64, i64, i64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(failed, 0, "{failed} of the {prefix} generations failed");
        if done == all {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {all} {prefix} generations finished within {within:?} ({statuses})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// a. The database stopped and started again under a steady stream of submissions.
async fn database_outage(stack: &mut Stack, client: &reqwest::Client, cookie: &str, run_id: &str) {
    let prefix = format!("db-{run_id}");
    let stop = Arc::new(AtomicBool::new(false));
    let submissions = stream(client, &stack.base, cookie, prefix.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;

    stack.stop_pg().await;
    let stopped = Instant::now();
    let (not_ready, body) = until_ready_is(client, &stack.base, 503, NOT_READY_WITHIN)
        .await
        .unwrap_or_else(|| {
            panic!("/api/ready was not 503 within {NOT_READY_WITHIN:?} of the database stopping")
        });
    assert!(
        body["failing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "database")),
        "{body}"
    );
    // A browser without JavaScript follows the refusal's redirect: the page it lands on
    // says why in its own words, with the database still down.
    let refused = submit(
        client,
        &stack.base,
        cookie,
        format!("[{prefix}-form-followed]"),
        Via::Form,
    )
    .await;
    assert_eq!(refused.answer, Answer::Refused, "{refused:?}");
    let page = client
        .get(refused.location.clone().unwrap_or_default())
        .header("accept", "text/html")
        .header("cookie", cookie)
        .send()
        .await
        .expect("the page a refused form returns to");
    let page_status = page.status().as_u16();
    let html = page.text().await.unwrap_or_default();
    assert!(
        html.contains("SocialCraft is briefly unavailable. Please try again in a moment."),
        "{page_status}: the page does not say why: {}",
        html.chars().take(800).collect::<String>()
    );
    println!(
        "faults a: a refused form post, its redirect followed with the database down: a \
         {page_status} page saying why"
    );
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(stack.web_alive(), "the web process died with the database");
    let health = client
        .get(format!("{}/api/health", stack.base))
        .send()
        .await
        .expect("health during the outage");
    assert_eq!(health.status(), 200, "liveness during the outage");

    let restarting = Instant::now();
    stack.start_pg().await;
    let restarted = Instant::now();
    let (ready_again, _) = until_ready_is(client, &stack.base, 200, READY_AGAIN_WITHIN)
        .await
        .unwrap_or_else(|| panic!("/api/ready was not 200 within {READY_AGAIN_WITHIN:?} of the database starting again"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut sent = submissions.await.expect("the stream");
    sent.push(refused);

    let slowest = sent.iter().map(|s| s.took).max().unwrap_or_default();
    let count = |pred: &dyn Fn(&Sent) -> bool| sent.iter().filter(|s| pred(s)).count();
    let during = |s: &Sent| s.at >= stopped && s.at + s.took <= restarting;
    println!(
        "faults a: {} submissions; database stopped after {:.1} s, /api/ready 503 {} ms later; \
         started again after {:.1} s of outage (pg_ctl took {} ms), ready {} ms later",
        sent.len(),
        (stopped - sent.first().map_or(stopped, |s| s.at)).as_secs_f64(),
        not_ready.as_millis(),
        (restarting - stopped).as_secs_f64(),
        (restarted - restarting).as_millis(),
        ready_again.as_millis(),
    );
    for via in [Via::Fetch, Via::Form] {
        let times: Vec<u128> = sent
            .iter()
            .filter(|s| s.via == via && during(s))
            .map(|s| s.took.as_millis())
            .collect();
        println!(
            "faults a: {via:?}: {} accepted, {} refused (during the outage {} sent, slowest answer {} ms)",
            count(&|s| s.via == via && s.answer == Answer::Accepted),
            count(&|s| s.via == via && s.answer == Answer::Refused),
            times.len(),
            times.iter().max().copied().unwrap_or(0),
        );
    }
    let odd: Vec<String> = sent
        .iter()
        .filter_map(|s| match &s.answer {
            Answer::Other(what) => Some(format!("{} {:?}: {what}", s.marker, s.via)),
            _ => None,
        })
        .collect();
    assert!(
        odd.is_empty(),
        "answers neither accepted nor refused clearly: {odd:#?}"
    );
    assert!(
        slowest <= ANSWER_WITHIN,
        "the slowest submission took {slowest:?} (bound {ANSWER_WITHIN:?})"
    );
    for via in [Via::Fetch, Via::Form] {
        assert!(
            count(&|s| s.via == via && during(s) && s.answer == Answer::Refused) > 0,
            "no {via:?} submission was refused during the outage"
        );
        assert!(
            count(&|s| s.via == via
                && s.at > restarted + ready_again
                && s.answer == Answer::Accepted)
                > 0,
            "no {via:?} submission was accepted after the database came back"
        );
    }
    let accepted_during: Vec<&str> = sent
        .iter()
        .filter(|s| {
            during(s)
                && s.at >= stopped + Duration::from_millis(100)
                && s.answer == Answer::Accepted
        })
        .map(|s| s.marker.as_str())
        .collect();
    assert!(
        accepted_during.is_empty(),
        "accepted with the database down: {accepted_during:?}"
    );

    let db = stack.db().await;
    let mut wrong = Vec::new();
    for s in &sent {
        let n = stored(&db, &s.marker).await;
        let want = i64::from(s.answer == Answer::Accepted);
        if n != want {
            wrong.push(format!(
                "{} {:?} {:?}: stored {n} times",
                s.marker, s.via, s.answer
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "accepted once each, refused never: {wrong:#?}"
    );
    let finishing = Instant::now();
    let finished = until_all_finish(&db, &prefix, Duration::from_secs(60)).await;
    println!(
        "faults a: every accepted submission stored once and none refused stored; all {finished} \
         finished with their images {:.1} s later",
        finishing.elapsed().as_secs_f64()
    );
}

/// b. A batch accepted, the web process SIGKILLed at once, started again.
async fn web_killed_after_accepting(
    stack: &mut Stack,
    client: &reqwest::Client,
    cookie: &str,
    run_id: &str,
) {
    const BATCH: usize = 6;
    let prefix = format!("kill-{run_id}");
    let batch = (0..BATCH).map(|n| {
        let via = if n.is_multiple_of(2) {
            Via::Fetch
        } else {
            Via::Form
        };
        submit(
            client,
            &stack.base,
            cookie,
            format!("[{prefix}-{n:04}]"),
            via,
        )
    });
    let sent = futures_util::future::join_all(batch).await;
    stack.kill_web();
    let killed = Instant::now();
    for s in &sent {
        assert_eq!(s.answer, Answer::Accepted, "{} {:?}", s.marker, s.via);
    }
    stack.start_web(client).await;
    println!(
        "faults b: {BATCH} submissions accepted, web process SIGKILLed at once, ready again \
         {:.1} s later at {}",
        killed.elapsed().as_secs_f64(),
        stack.base
    );
    let db = stack.db().await;
    let finished = until_all_finish(&db, &prefix, Duration::from_secs(60)).await;
    for s in &sent {
        assert_eq!(stored(&db, &s.marker).await, 1, "{} stored once", s.marker);
    }
    assert_eq!(finished, BATCH as i64);
    println!(
        "faults b: all {BATCH} finished exactly once, {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
}

/// A PNG no other upload has (random pixels).
fn unique_png() -> Vec<u8> {
    let seed = uuid::Uuid::new_v4();
    let bytes = seed.as_bytes();
    let img = image::RgbaImage::from_fn(32, 32, |x, y| {
        let i = ((x + y * 32) % 16) as usize;
        image::Rgba([bytes[i], (x * 7) as u8, (y * 5) as u8, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}

/// Asks for an upload URL and sends `bytes` to it: the status, the answer, how long the
/// upload itself took.
async fn upload(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    bytes: Vec<u8>,
) -> (u16, Value, Duration) {
    let ticket = client
        .post(format!("{base}/api/assets/ticket"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("cookie", cookie)
        .body(format!(
            "filename=drill.png&size={}&mime=image%2Fpng",
            bytes.len()
        ))
        .send()
        .await
        .expect("ask for an upload URL");
    assert_eq!(ticket.status(), 200, "upload ticket");
    let ticket: Value = ticket.json().await.expect("ticket");
    let url = ticket["url"].as_str().expect("upload URL").to_owned();
    let at = Instant::now();
    let res = client
        .put(format!("{base}{url}"))
        .header("content-type", "application/octet-stream")
        .header("cookie", cookie)
        .body(bytes)
        .send()
        .await;
    let took = at.elapsed();
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
                took,
            )
        }
        Err(e) => (0, Value::String(format!("no answer: {e}")), took),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file under `dir` whose name contains `needle`.
fn files_named(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().contains(needle) {
                found.push(path);
            }
        }
    }
    found
}

/// The user's reserved storage, in bytes.
async fn reserved(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT storage_bytes FROM users WHERE email = 'faults@example.com'",
        &[],
    )
    .await
    .expect("storage use")
    .get(0)
}

/// With the store gone: readiness names `storage` (publicly by name only, with the detail
/// on the metrics listener), and an upload is a quick 503 `unavailable` that leaves no
/// asset, blob, object under `store_root`, spool file or reserved storage. How long
/// readiness took to say so, and the upload.
async fn store_gone(
    stack: &Stack,
    client: &reqwest::Client,
    cookie: &str,
    store_root: &Path,
) -> (Duration, Duration) {
    let db = stack.db().await;
    let before = reserved(&db).await;
    let (not_ready, body) = until_ready_is(client, &stack.base, 503, Duration::from_secs(5))
        .await
        .expect("/api/ready was not 503 within 5 s of the store going away");
    assert_eq!(body["failing"], serde_json::json!(["storage"]), "{body}");
    assert!(
        body.get("checks").is_none(),
        "the public answer names checks only: {body}"
    );
    let detail: Value = client
        .get(format!("{}/ready", stack.metrics))
        .send()
        .await
        .expect("readiness detail")
        .json()
        .await
        .expect("readiness detail body");
    assert_eq!(detail["checks"]["storage"]["ok"], false, "{detail}");
    assert!(detail["checks"]["storage"]["error"].is_string(), "{detail}");

    let png = unique_png();
    let sha = sha256_hex(&png);
    let (status, answer, took) = upload(client, &stack.base, cookie, png).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "unavailable", "{answer}");
    assert!(
        took <= STORE_REFUSED_WITHIN,
        "the refused upload took {took:?} (bound {STORE_REFUSED_WITHIN:?})"
    );
    let assets: i64 = db
        .query_one("SELECT count(*) FROM assets WHERE sha256 = $1", &[&sha])
        .await
        .expect("assets")
        .get(0);
    let blobs: i64 = db
        .query_one(
            "SELECT count(*) FROM upload_blobs WHERE sha256 = $1",
            &[&sha],
        )
        .await
        .expect("blobs")
        .get(0);
    assert_eq!(
        (assets, blobs),
        (0, 0),
        "no asset or blob for the refused upload"
    );
    assert_eq!(
        reserved(&db).await,
        before,
        "the reserved storage was given back"
    );
    let objects = files_named(store_root, &sha);
    assert!(objects.is_empty(), "objects left: {objects:?}");
    let tmp = stack.dir.join("web").join("tmp");
    let spooled = [files_named(&tmp, ".part"), files_named(&tmp, ".clean")].concat();
    assert!(spooled.is_empty(), "spool files left: {spooled:?}");
    (not_ready, took)
}

/// With the store back: ready within the bound and an upload is stored under `store_root`.
/// How long readiness took, and the upload.
async fn store_back(
    stack: &Stack,
    client: &reqwest::Client,
    cookie: &str,
    store_root: &Path,
) -> (Duration, Duration) {
    let (ready_again, _) = until_ready_is(client, &stack.base, 200, READY_AGAIN_WITHIN)
        .await
        .unwrap_or_else(|| {
            panic!("/api/ready was not 200 within {READY_AGAIN_WITHIN:?} of the store coming back")
        });
    let png = unique_png();
    let sha = sha256_hex(&png);
    let (status, answer, took) = upload(client, &stack.base, cookie, png).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        files_named(store_root, &sha).len(),
        1,
        "the upload's object"
    );
    (ready_again, took)
}

/// c. The object store killed and started again.
async fn object_store_outage(stack: &mut Stack, client: &reqwest::Client, cookie: &str) {
    let bucket = stack.dir.join("s3");
    kill(stack.s3.take());
    let (not_ready, refused) = store_gone(stack, client, cookie, &bucket).await;
    println!(
        "faults c: S3 server killed; /api/ready 503 naming storage {} ms later; an upload \
         refused (503) in {} ms, nothing of it kept",
        not_ready.as_millis(),
        refused.as_millis()
    );
    stack.s3 = Some(spawn_s3s_fs(&bucket, stack.s3_port, S3_ACCESS_KEY, S3_SECRET_KEY).await);
    let (ready_again, stored) = store_back(stack, client, cookie, &bucket).await;
    println!(
        "faults c: S3 server back; ready {} ms later; an upload stored (201) in {} ms",
        ready_again.as_millis(),
        stored.as_millis()
    );
}

/// d. The file store: its directory replaced by a file (the tests run as root, so taking
/// permissions away would not stop a write), then put back.
async fn file_store_outage(stack: &mut Stack, client: &reqwest::Client, cookie: &str) {
    stack.kill_web();
    stack
        .start_web_with(client, &[("STORAGE_PROVIDER", "local".to_owned())])
        .await;
    let media = stack.dir.join("web").join("media");
    let aside = stack.dir.join("web").join("media.aside");
    std::fs::rename(&media, &aside).expect("move the media directory aside");
    std::fs::write(&media, b"not a directory").expect("a file in its place");
    let (not_ready, refused) = store_gone(stack, client, cookie, &aside).await;
    println!(
        "faults d: file store's directory replaced by a file; /api/ready 503 naming storage \
         {} ms later; an upload refused (503) in {} ms, nothing of it kept",
        not_ready.as_millis(),
        refused.as_millis()
    );
    std::fs::remove_file(&media).expect("remove the file");
    std::fs::rename(&aside, &media).expect("put the media directory back");
    let (ready_again, stored) = store_back(stack, client, cookie, &media).await;
    println!(
        "faults d: directory back; ready {} ms later; an upload stored (201) in {} ms",
        ready_again.as_millis(),
        stored.as_millis()
    );
}
