//! One client address floods; another keeps working (issue 16, class 18).
//!
//! Against a running server with its default limits (`./dev bench` restarts the seeded
//! release server without its raised limits for this), two clients on their own loopback
//! addresses, so the server counts them as two clients:
//!
//! - the **creator** (`127.0.0.3`), signed in, browses as a person does: Explore, image pages,
//!   media, the gallery server function, and a submission every ten seconds, paced at
//!   `--rate` requests per second (two tasks), within every per-address and per-user limit;
//! - the **flooder** (`127.0.0.2`) sends, from `--flood-connections` connections (more than
//!   the per-address connection cap) as fast as it is answered, wrong-password sign-ins for
//!   the creator's address, submissions from its own account and media requests.
//!
//! The creator runs alone first (after a warm-up), then beside the flood, for `--seconds`
//! each. A latency is measured from when the request was due, not when it was sent, so a
//! stall also counts for the requests queued behind it. What holds: the creator's p99 beside
//! the flood stays within 2x of its p99 alone, and none of its requests fail.
//!
//! ```sh
//! cargo bench -p server --bench flood --target-dir target/native -- \
//!     --app http://127.0.0.1:3601 --seconds 30 --out flood.md
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::header;

mod support;
use support::{explore_page, form, sign_up};

const CREATOR_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const FLOODER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PASSWORD: &str = "flood bench password 12345";
/// The creator's paced tasks; each sends `rate / TASKS` requests a second.
const TASKS: usize = 2;

/// Command-line settings.
struct Args {
    app: String,
    seconds: u64,
    /// The creator's requests per second, over all its tasks.
    rate: u32,
    flood_connections: usize,
    out: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        app: "http://127.0.0.1:3601".into(),
        seconds: 30,
        rate: 20,
        flood_connections: 160,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench`; ignore what is not ours.
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--app" => a.app = value()?,
            "--seconds" => a.seconds = number(value()?)?,
            "--rate" => a.rate = number(value()?)?.clamp(1, 1000) as u32,
            "--flood-connections" => a.flood_connections = number(value()?)? as usize,
            "--out" => a.out = Some(PathBuf::from(value()?)),
            _ => {}
        }
    }
    Ok(a)
}

fn client(from: IpAddr) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .local_address(from)
        .no_gzip()
        .no_brotli()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

/// A request the creator sends.
#[derive(Clone)]
enum Visit {
    Get(String),
    Gallery,
    Submit,
}

/// What the creator's pass through the product looks like, ten requests at a time: pages are
/// not limited; media (4 in 10) and the gallery function (1 in 20) stay under the default
/// per-address limits at 20 requests a second.
fn visits(app: &str, images: &[String], media: &[String], round: usize) -> Vec<Visit> {
    let image = |k: usize| Visit::Get(format!("{app}{}", images[(round + k) % images.len()]));
    let medium = |k: usize| Visit::Get(format!("{app}{}", media[(round * 4 + k) % media.len()]));
    let explore = Visit::Get(format!("{app}/explore"));
    let sixth = if round % 2 == 1 {
        Visit::Gallery
    } else {
        explore.clone()
    };
    vec![
        explore.clone(),
        medium(0),
        image(0),
        medium(1),
        explore.clone(),
        medium(2),
        sixth,
        medium(3),
        image(1),
        explore,
    ]
}

/// The creator's latencies (ms, from when each request was due) and failures.
#[derive(Default)]
struct Measured {
    ms: Vec<f64>,
    /// By kind of request, the time from sending to the answer (not from when it was due).
    served: BTreeMap<&'static str, Vec<f64>>,
    failed: BTreeMap<String, u64>,
}

impl Measured {
    fn percentile(&self, q: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::NAN;
        }
        self.ms[((self.ms.len() as f64 * q) as usize).min(self.ms.len() - 1)]
    }
}

struct Creator {
    app: String,
    cookie: String,
    images: Vec<String>,
    media: Vec<String>,
}

/// The creator at `rate` requests a second for `seconds`.
async fn creator(c: Arc<Creator>, rate: u32, seconds: u64) -> Result<Measured, String> {
    let interval = Duration::from_secs_f64(TASKS as f64 / f64::from(rate));
    let started = Instant::now() + Duration::from_millis(50);
    let end = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let http = client(CREATOR_IP)?;
            let mut out = Measured::default();
            // The tasks start half an interval apart so they do not send in step.
            let mut due = started + interval * task as u32 / TASKS as u32;
            let mut n = 0usize;
            while due < end {
                tokio::time::sleep_until(due.into()).await;
                // One submission every ten seconds, from the first task: the default
                // allows ten a minute per address.
                let visit = if task == 0 && n % (10 * (rate as usize) / TASKS) == 5 {
                    Visit::Submit
                } else {
                    visits(&c.app, &c.images, &c.media, n / 10 + task)[n % 10].clone()
                };
                let req = match &visit {
                    Visit::Get(url) => http.get(url),
                    Visit::Gallery => http
                        .post(format!("{}/api/gallery/page", c.app))
                        .header(header::ACCEPT, "application/json")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body("scope=explore"),
                    Visit::Submit => http
                        .post(format!("{}/api/generations/submit", c.app))
                        .header(header::ACCEPT, "application/json")
                        .header("sec-fetch-site", "same-origin")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form(&[
                            ("prompt", &format!("A lighthouse at dusk, take {n}")),
                            ("style", "bold"),
                            ("format", "instagram_square"),
                            ("variations", "1"),
                        ])),
                };
                let kind = match &visit {
                    Visit::Get(url) if url.contains("/media/") => "media",
                    Visit::Get(_) => "page",
                    Visit::Gallery => "gallery function",
                    Visit::Submit => "submission",
                };
                let sent = Instant::now();
                let answer = req.header(header::COOKIE, &c.cookie).send().await;
                let status = match answer {
                    Ok(res) => {
                        let status = res.status();
                        match res.bytes().await {
                            Ok(_) if status.is_success() => None,
                            Ok(_) => Some(status.as_u16().to_string()),
                            Err(e) => Some(format!("body: {e}")),
                        }
                    }
                    Err(e) => Some(if e.is_timeout() {
                        "timeout".to_owned()
                    } else {
                        "connection".to_owned()
                    }),
                };
                match status {
                    None => {
                        out.ms.push(due.elapsed().as_secs_f64() * 1000.0);
                        out.served
                            .entry(kind)
                            .or_default()
                            .push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    Some(why) => *out.failed.entry(why).or_default() += 1,
                }
                n += 1;
                due += interval;
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Measured::default();
    for t in tasks {
        let m = t.await.map_err(|e| e.to_string())??;
        all.ms.extend(m.ms);
        for (k, v) in m.served {
            all.served.entry(k).or_default().extend(v);
        }
        for (k, v) in m.failed {
            *all.failed.entry(k).or_default() += v;
        }
    }
    all.ms.sort_by(|a, b| a.total_cmp(b));
    for v in all.served.values_mut() {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    Ok(all)
}

/// The flood until `stop`: what it was answered, by status.
async fn flood(
    app: String,
    cookie: String,
    victim: String,
    media: Vec<String>,
    connections: usize,
    stop: Arc<AtomicBool>,
) -> Result<BTreeMap<String, u64>, String> {
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (app, cookie, victim, media, stop) = (
            app.clone(),
            cookie.clone(),
            victim.clone(),
            media.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let http = client(FLOODER_IP)?;
            let mut answers: BTreeMap<String, u64> = BTreeMap::new();
            let mut i = task;
            while !stop.load(Ordering::Relaxed) {
                let req = match i % 3 {
                    0 => http
                        .post(format!("{app}/api/auth/sign_in"))
                        .header(header::ACCEPT, "application/json")
                        .header("sec-fetch-site", "same-origin")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(form(&[
                            ("email", &victim),
                            ("password", "not the password"),
                        ])),
                    1 => http
                        .post(format!("{app}/api/generations/submit"))
                        .header(header::COOKIE, &cookie)
                        .header(header::ACCEPT, "application/json")
                        .header("sec-fetch-site", "same-origin")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body("prompt=Flood&style=bold&format=instagram_square&variations=4"),
                    _ => http.get(format!("{app}{}", media[i % media.len()])),
                };
                let key = match req.send().await {
                    Ok(res) => {
                        let status = res.status().as_u16().to_string();
                        let _ = res.bytes().await;
                        status
                    }
                    // Past the per-address connection cap the server closes at once.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        "connection closed".to_owned()
                    }
                };
                *answers.entry(key).or_default() += 1;
                i += 1;
            }
            Ok::<_, String>(answers)
        }));
    }
    let mut all = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await.map_err(|e| e.to_string())?? {
            *all.entry(k).or_default() += v;
        }
    }
    Ok(all)
}

async fn run(args: &Args) -> Result<String, String> {
    let app = args.app.trim_end_matches('/').to_owned();
    let creator_http = client(CREATOR_IP)?;
    let email = format!("creator-{}@example.com", uuid::Uuid::new_v4().simple());
    let cookie = sign_up(&creator_http, &app, &email, PASSWORD).await?;
    let flooder_email = format!("flooder-{}@example.com", uuid::Uuid::new_v4().simple());
    let flooder_cookie = sign_up(&client(FLOODER_IP)?, &app, &flooder_email, PASSWORD).await?;

    let page = explore_page(&creator_http, &app, None).await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let images: Vec<String> = items
        .iter()
        .filter_map(|i| i["id"].as_str().map(|id| format!("/images/{id}")))
        .collect();
    let media: Vec<String> = items
        .iter()
        .filter_map(|i| i["src"]["small"].as_str().map(str::to_owned))
        .collect();
    if images.is_empty() || media.is_empty() {
        return Err("Explore is empty: seed images first".into());
    }
    let c = Arc::new(Creator {
        app: app.clone(),
        cookie,
        images,
        media: media.clone(),
    });

    println!("flood: warm-up, the creator alone for 5 s");
    creator(c.clone(), args.rate, 5).await?;
    println!("flood: the creator alone for {} s", args.seconds);
    let alone = creator(c.clone(), args.rate, args.seconds).await?;

    println!(
        "flood: the creator beside {} flooding connections for {} s",
        args.flood_connections, args.seconds
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = tokio::spawn(flood(
        app.clone(),
        flooder_cookie,
        email,
        media,
        args.flood_connections,
        stop.clone(),
    ));
    // Let the flood reach its limits before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flood_started = Instant::now();
    let beside = creator(c.clone(), args.rate, args.seconds).await;
    let flood_secs = flood_started.elapsed().as_secs_f64() + 2.0;
    stop.store(true, Ordering::Relaxed);
    let answers = flooding.await.map_err(|e| e.to_string())??;
    let beside = beside?;

    let ratio = beside.percentile(0.99) / alone.percentile(0.99);
    let failures = |m: &Measured| {
        if m.failed.is_empty() {
            "0".to_owned()
        } else {
            m.failed
                .iter()
                .map(|(k, v)| format!("{v} × {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = format!(
        "Creator at {} req/s (signed in: pages, media, gallery function, a submission every \
         10 s); flooder from another address on {} connections, default limits.\n\n\
         | Creator | Requests | p50 ms | p95 ms | p99 ms | Failed |\n\
         | --- | --- | --- | --- | --- | --- |\n",
        args.rate, args.flood_connections
    );
    for (name, m) in [("alone", &alone), ("beside the flood", &beside)] {
        out.push_str(&format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
            m.ms.len(),
            m.percentile(0.50),
            m.percentile(0.95),
            m.percentile(0.99),
            failures(m)
        ));
    }
    out.push_str(
        "\nBy kind, time from sending to the answer (p50 / p99 / max ms), alone → beside the \
         flood:\n\n| Kind | Requests | Alone | Beside the flood |\n| --- | --- | --- | --- |\n",
    );
    let summary = |v: Option<&Vec<f64>>| match v {
        Some(v) if !v.is_empty() => {
            let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
            format!("{:.1} / {:.1} / {:.1}", p(0.5), p(0.99), v[v.len() - 1])
        }
        _ => "none".to_owned(),
    };
    for kind in alone.served.keys() {
        out.push_str(&format!(
            "| {kind} | {} | {} | {} |\n",
            alone.served[kind].len(),
            summary(alone.served.get(kind)),
            summary(beside.served.get(kind)),
        ));
    }
    let total: u64 = answers.values().sum();
    out.push_str(&format!(
        "\nThe flood: {total} requests in {flood_secs:.0} s ({:.0}/s), answered: {}.\n\n\
         p99 beside the flood / p99 alone: **{ratio:.2}** (holds when ≤ 2.00 and nothing \
         failed): {}.\n",
        total as f64 / flood_secs,
        answers
            .iter()
            .map(|(k, v)| format!("{k} × {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        if ratio <= 2.0 && beside.failed.is_empty() {
            "holds"
        } else {
            "DOES NOT HOLD"
        }
    ));
    Ok(out)
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flood: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    support::run_bench("flood", args.out.clone(), async move { run(&args).await })
}
