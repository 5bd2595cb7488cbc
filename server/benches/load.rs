//! The whole product under load, against its limits, in one run (issue 8).
//!
//! `./dev bench` builds the release, seeds 100,000 images, starts `socialcraft serve` and runs
//! this; see docs/PERFORMANCE.md. On its own:
//!
//! ```sh
//! cargo bench -p server --bench load --target-dir target/native -- \
//!     --app http://127.0.0.1:3600 --seconds 10 --connections 100,500,1000 --out report.md
//! ```
//!
//! Each scenario is driven by `oha` (a Rust load generator, installed by `./dev bench`) for a
//! fixed time at each connection count, after a short warm-up, on the same two cores as the
//! server. The mixed scenario (nine reads to one generation submission, interleaved) needs
//! two methods in one run, which oha cannot do, so it is driven by a small generator here:
//! one keep-alive connection per task, every latency kept and sorted. Its Explore-only run
//! beside oha's shows how the two generators compare.
//!
//! The ceiling is a bare axum handler, in this process, returning the bytes the Explore page
//! answered with, from memory; a second copy of it runs inside the application's whole
//! middleware stack (`server::web::with_middleware`), so their ratio is what the stack costs.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;

mod support;
use support::{explore_page, sign_up};

/// Command-line settings.
struct Args {
    app: String,
    seconds: u64,
    connections: Vec<usize>,
    out: Option<PathBuf>,
    oha: String,
    /// Run only the scenarios whose name contains this (case-insensitive), beside the two
    /// ceilings; `mixed` selects the mixed scenario. For checking one change quickly.
    only: Option<String>,
}

impl Args {
    fn selects(&self, scenario: &str) -> bool {
        scenario.starts_with("Ceiling")
            || self
                .only
                .as_ref()
                .is_none_or(|o| scenario.to_lowercase().contains(&o.to_lowercase()))
    }
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        app: "http://127.0.0.1:3600".into(),
        seconds: 10,
        connections: vec![100, 500, 1000],
        out: None,
        oha: "oha".into(),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench`; ignore what is not ours.
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--app" => a.app = value()?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--connections" => {
                a.connections = value()?
                    .split(',')
                    .map(|c| {
                        c.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--connections: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--out" => a.out = Some(PathBuf::from(value()?)),
            "--oha" => a.oha = value()?,
            "--only" => a.only = Some(value()?),
            _ => {}
        }
    }
    Ok(a)
}

/// One measured run.
#[derive(Clone, Debug)]
struct Run {
    scenario: String,
    connections: usize,
    rps: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    /// Answers that were not 2xx, and transport errors.
    failed: u64,
    /// Which ceiling run this compares with (`None`: no ratio).
    ceiling: Option<&'static str>,
}

/// A request oha sends.
#[derive(Clone)]
struct Target {
    url: String,
    method: &'static str,
    body: Option<String>,
    headers: Vec<(String, String)>,
    compressed: bool,
}

impl Target {
    fn get(url: String) -> Self {
        Self {
            url,
            method: "GET",
            body: None,
            headers: Vec::new(),
            compressed: false,
        }
    }
}

fn oha(args: &Args, target: &Target, connections: usize, seconds: u64) -> Result<Run, String> {
    let mut cmd = std::process::Command::new(&args.oha);
    cmd.args(["-z", &format!("{seconds}s"), "-c", &connections.to_string()])
        .args(["--no-tui", "--output-format", "json", "-t", "10s"])
        .args(["-m", target.method]);
    if !target.compressed {
        cmd.arg("--disable-compression");
    }
    for (k, v) in &target.headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(body) = &target.body {
        cmd.args(["-d", body]);
    }
    cmd.arg(&target.url);
    let out = cmd
        .output()
        .map_err(|e| format!("could not run {}: {e} (./dev bench installs it)", args.oha))?;
    if !out.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("oha's JSON: {e}"))?;
    let pct = |p: &str| v["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let mut ok = 0u64;
    let mut failed = 0u64;
    if let Some(codes) = v["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                failed += n;
            }
        }
    }
    // Requests still in flight when the time is up are cut off by oha ("aborted due to
    // deadline", at most one per connection): not failures of the app.
    if let Some(errors) = v["errorDistribution"].as_object() {
        failed += errors
            .iter()
            .filter(|(name, _)| !name.contains("deadline"))
            .filter_map(|(_, n)| n.as_u64())
            .sum::<u64>();
    }
    let total = v["summary"]["total"].as_f64().unwrap_or(seconds as f64);
    Ok(Run {
        scenario: String::new(),
        connections,
        // Answered requests per second (oha's own figure counts failures too).
        rps: ok as f64 / total.max(0.001),
        p50_ms: pct("p50"),
        p95_ms: pct("p95"),
        p99_ms: pct("p99"),
        failed,
        ceiling: None,
    })
}

/// What the scenarios need from the running app.
struct Setup {
    explore: Bytes,
    image: String,
    media: String,
    page_500: String,
    /// One `Cookie` header per creator.
    cookies: Vec<String>,
}

async fn setup(app: &str) -> Result<Setup, String> {
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .map_err(|e| e.to_string())?;
    let explore = client
        .get(format!("{app}/explore"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET /explore: {e}"))?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;

    // Walk the Explore pages through the server function: the first page's image and media
    // for those scenarios, and page 500's cursor.
    let mut after: Option<String> = None;
    let mut first: Option<serde_json::Value> = None;
    for page in 1..500 {
        let body = explore_page(&client, app, after.as_deref()).await?;
        if first.is_none() {
            first = Some(body["items"][0].clone());
        }
        after = body["next"].as_str().map(str::to_owned);
        if after.is_none() {
            return Err(format!(
                "Explore ends at page {page}: seed 100,000 images first"
            ));
        }
    }
    let first = first.ok_or("no image on Explore")?;
    let image = format!("/images/{}", first["id"].as_str().ok_or("an image id")?);
    let media = first["src"]["small"]
        .as_str()
        .ok_or("a 320 px variant")?
        .to_owned();

    // Submissions come from many creators: one creator's submissions queue on their own
    // allowance row by design (each counts against the day's allowance under a row lock),
    // which would measure one person pressing the button hundreds of times a second.
    let mut cookies = Vec::with_capacity(CREATORS);
    for _ in 0..CREATORS {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        cookies.push(sign_up(&client, app, &email, "bench password 12345").await?);
    }
    Ok(Setup {
        explore,
        image,
        media,
        page_500: after.unwrap_or_default(),
        cookies,
    })
}

/// How many creators the mixed scenario's submissions are spread over.
const CREATORS: usize = 100;

/// Serves `page` on 127.0.0.1 (any path), bare or inside the whole middleware stack;
/// returns the address.
async fn ceiling(page: Bytes, stack: bool) -> Result<String, String> {
    let handler = move || {
        let page = page.clone();
        async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }
    };
    let router = axum::Router::new().route("/page", axum::routing::get(handler));
    let router = if stack {
        // The application's state, on a database it never needs for this route (pools
        // connect lazily) and a scratch media directory.
        let dir = std::env::temp_dir().join(format!("sc-ceiling-{}", std::process::id()));
        let vars = [("DATA_DIR".to_owned(), dir.display().to_string())].into();
        let config = server::config::Config::from_map(&vars).map_err(|e| e.to_string())?;
        let pool = domain::db::pool::build_pool(
            "postgres://none:none@127.0.0.1:9/none",
            1,
            Duration::from_secs(1),
        )?;
        let state = server::wiring::build_state(&config, pool)?;
        server::web::with_middleware(router, &state, &server::web::HttpSettings::default())
    } else {
        router
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok(format!("http://{addr}/page"))
}

/// The mixed scenario: `connections` tasks, each on its own keep-alive connection, sending
/// nine reads then one submission, over and over, for `seconds`. Returns the reads' and
/// submissions' runs and the whole.
async fn mixed(
    app: &str,
    setup: &Setup,
    connections: usize,
    seconds: u64,
    submissions: bool,
) -> Result<Vec<Run>, String> {
    let reads: Vec<(reqwest::Method, String, Option<&'static str>)> = vec![
        (reqwest::Method::GET, format!("{app}/explore"), None),
        (reqwest::Method::GET, format!("{app}{}", setup.image), None),
        (
            reqwest::Method::POST,
            format!("{app}/api/gallery/page"),
            Some("scope=explore"),
        ),
        (reqwest::Method::GET, format!("{app}{}", setup.media), None),
    ];
    let submit = format!("{app}/api/generations/submit");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for task in 0..connections {
        let reads = reads.clone();
        let submit = submit.clone();
        let cookie = setup.cookies[task % setup.cookies.len()].clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .http1_only()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?;
            let mut read_ms = Vec::new();
            let mut submit_ms = Vec::new();
            let mut failed = 0u64;
            let mut i = task;
            while Instant::now() < deadline {
                let submitting = submissions && i % 10 == 9;
                let req = if submitting {
                    client
                        .post(&submit)
                        .header(header::COOKIE, &cookie)
                        .header(header::ACCEPT, "application/json")
                        .header("sec-fetch-site", "same-origin")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(format!(
                            "prompt=Load+test+number+{i}&style=bold&format=instagram_square&variations=1"
                        ))
                } else {
                    let (method, url, body) = if submissions {
                        &reads[i % reads.len()]
                    } else {
                        &reads[0]
                    };
                    let r = client.request(method.clone(), url);
                    match body {
                        Some(b) => r
                            .header(header::ACCEPT, "application/json")
                            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(*b),
                        None => r,
                    }
                };
                let started = Instant::now();
                let ok = match req.send().await {
                    Ok(res) => {
                        let good = res.status().is_success();
                        good && res.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                if !ok {
                    failed += 1;
                } else if submitting {
                    submit_ms.push(ms);
                } else {
                    read_ms.push(ms);
                }
                i += 1;
            }
            Ok::<_, String>((read_ms, submit_ms, failed))
        }));
    }
    let started = Instant::now();
    let mut reads_all = Vec::new();
    let mut submits_all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (r, s, f) = t.await.map_err(|e| e.to_string())??;
        reads_all.extend(r);
        submits_all.extend(s);
        failed += f;
    }
    let secs = started.elapsed().as_secs_f64().max(seconds as f64);
    let run = |name: &str, mut v: Vec<f64>, failed: u64| {
        v.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
            }
        };
        Run {
            scenario: name.to_owned(),
            connections,
            rps: v.len() as f64 / secs,
            p50_ms: p(0.50),
            p95_ms: p(0.95),
            p99_ms: p(0.99),
            failed,
            ceiling: None,
        }
    };
    if !submissions {
        return Ok(vec![run(
            "Explore page (in-bench generator)",
            reads_all,
            failed,
        )]);
    }
    let mut all = reads_all.clone();
    all.extend(submits_all.iter().copied());
    Ok(vec![
        run("Mixed: all requests", all, failed),
        run("Mixed: the reads (90%)", reads_all, 0),
        run("Mixed: the submissions (10%)", submits_all, 0),
    ])
}

fn table(runs: &[Run]) -> String {
    let ceilings: BTreeMap<(&str, usize), f64> = runs
        .iter()
        .filter_map(|r| {
            let name = match r.scenario.as_str() {
                "Ceiling: bare axum, Explore's bytes from memory" => "bare",
                "Ceiling inside our middleware stack" => "stack",
                _ => return None,
            };
            Some(((name, r.connections), r.rps))
        })
        .collect();
    let mut out = String::from(
        "| Scenario | Connections | req/s | p50 ms | p95 ms | p99 ms | Ratio to ceiling | Failed |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in runs {
        let ratio = r
            .ceiling
            .and_then(|c| ceilings.get(&(c, r.connections)))
            .map_or("".to_owned(), |c| format!("{:.0}%", 100.0 * r.rps / c));
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            r.scenario, r.connections, r.rps, r.p50_ms, r.p95_ms, r.p99_ms, ratio, r.failed
        ));
    }
    out
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    support::run_bench(
        "load",
        args.out.clone(),
        async move { run_all(&args).await },
    )
}

async fn run_all(args: &Args) -> Result<String, String> {
    let app = args.app.trim_end_matches('/');
    let setup = setup(app).await?;
    println!(
        "load: Explore is {} bytes; image {}, media {}",
        setup.explore.len(),
        setup.image,
        setup.media
    );
    let bare = ceiling(setup.explore.clone(), false).await?;
    let stack = ceiling(setup.explore.clone(), true).await?;

    let json_post = |url: String, body: String| Target {
        url,
        method: "POST",
        body: Some(body),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ],
        compressed: false,
    };
    let scenarios: Vec<(&str, Target, Option<&'static str>)> = vec![
        (
            "Ceiling: bare axum, Explore's bytes from memory",
            Target::get(bare),
            None,
        ),
        (
            "Ceiling inside our middleware stack",
            Target::get(stack),
            Some("bare"),
        ),
        (
            "Explore page (SSR, visitor)",
            Target::get(format!("{app}/explore")),
            Some("bare"),
        ),
        (
            "Explore page, brotli (as browsers ask)",
            Target {
                compressed: true,
                ..Target::get(format!("{app}/explore"))
            },
            None,
        ),
        (
            "Gallery server function (Explore, page 1)",
            json_post(format!("{app}/api/gallery/page"), "scope=explore".into()),
            None,
        ),
        (
            // Dynamic JSON, compressed as it leaves (gzip at the fastest level): the cost of
            // compressing what cannot be stored compressed.
            "Gallery server function (page 1), gzip on the fly",
            Target {
                compressed: true,
                headers: vec![
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("accept".into(), "application/json".into()),
                    ("accept-encoding".into(), "gzip".into()),
                ],
                ..json_post(format!("{app}/api/gallery/page"), "scope=explore".into())
            },
            None,
        ),
        (
            "Gallery server function (Explore, page 500)",
            json_post(
                format!("{app}/api/gallery/page"),
                format!("scope=explore&after={}", setup.page_500),
            ),
            None,
        ),
        (
            "Image page (visitor)",
            Target::get(format!("{app}{}", setup.image)),
            None,
        ),
        (
            "Media variant (WebP 320)",
            Target::get(format!("{app}{}", setup.media)),
            None,
        ),
        ("Health", Target::get(format!("{app}/api/health")), None),
    ];

    let mut runs = Vec::new();
    for (name, target, ceiling) in scenarios.iter().filter(|s| args.selects(s.0)) {
        // Warm up: connections, caches, the allocator.
        oha(args, target, 50, 2)?;
        for &c in &args.connections {
            let mut run = oha(args, target, c, args.seconds)?;
            run.scenario = (*name).to_owned();
            run.ceiling = *ceiling;
            println!(
                "load: {name} @{c}: {:.0} req/s, p99 {:.1} ms",
                run.rps, run.p99_ms
            );
            runs.push(run);
        }
    }
    let connections = if args.selects("Mixed") {
        args.connections.as_slice()
    } else {
        &[]
    };
    for &c in connections {
        for mut run in mixed(app, &setup, c, args.seconds, false).await? {
            run.ceiling = Some("bare");
            println!(
                "load: {} @{c}: {:.0} req/s, p99 {:.1} ms",
                run.scenario, run.rps, run.p99_ms
            );
            runs.push(run);
        }
        for run in mixed(app, &setup, c, args.seconds, true).await? {
            println!(
                "load: {} @{c}: {:.0} req/s, p99 {:.1} ms",
                run.scenario, run.rps, run.p99_ms
            );
            runs.push(run);
        }
    }
    Ok(table(&runs))
}
