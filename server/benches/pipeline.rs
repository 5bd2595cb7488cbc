//! Pipeline throughput: images per minute through the whole `generate` job (claim, render,
//! PNG and WebP variants, store, record, progress) with the worker as `serve` runs it
//! (concurrency from `WORKER_CONCURRENCY`, default 2), on a private PostgreSQL and local files.
//!
//! Run: `cargo bench -p server --bench pipeline --target-dir target/native`
//! (`BENCH_GENERATIONS` sets how many four-image generations to queue, default 25).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::accounts::{self, Tier, auth::CurrentUser};
use domain::create::{Format, GenerationStatus, service};
use server::config::Config;
use server::pg_embedded::{self, EmbeddedPg};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("sc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let pg = EmbeddedPg::start(&dir, None).expect("PostgreSQL");
    let result = rt.block_on(run(&dir, &pg));
    let _ = pg.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("pipeline bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run(dir: &std::path::Path, pg: &EmbeddedPg) -> Result<(), String> {
    let generations: usize = std::env::var("BENCH_GENERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    pg_embedded::ensure_database(&pg.url("postgres"), "bench").await?;
    let url = pg.url("bench");
    domain::db::pool::run_migrations(&url).await?;
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.insert("DATA_DIR".into(), dir.display().to_string());
    let config = Config::from_map(&vars).map_err(|e| e.to_string())?;
    let pool = domain::db::pool::build_pool(&url, 8, Duration::from_secs(5))?;
    let state = server::wiring::build_state(&config, pool)?;
    let creator = creator(&state).await?;

    let prompts = [
        "Summer sale: 30% off all rooftop tours in Lisbon this weekend",
        "New menu drop: five plant-based burgers",
        "Join our live Q&A on Thursday at 6pm",
        "We are hiring designers who love typography",
        "Grand opening of our second studio",
    ];
    let mut ids = Vec::new();
    for i in 0..generations {
        let format = Format::ALL[i % Format::ALL.len()];
        let style = domain::create::Style::ALL[i % 8];
        let valid = domain::create::validate_submission(
            prompts[i % prompts.len()],
            style.slug(),
            format.slug(),
            "4",
        )
        .map_err(|e| format!("{e:?}"))?;
        ids.push(
            service::submit(&state, creator, valid)
                .await
                .map_err(|e| e.message)?
                .id,
        );
    }
    let images = generations * 4;
    println!(
        "queued {generations} generations ({images} images, all six formats), worker concurrency {}",
        config.worker.concurrency
    );

    let started = Instant::now();
    let worker = server::wiring::build_worker(&config, &state, &url)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    loop {
        let mut done = 0;
        for id in &ids {
            let v = service::view(&state, creator.id, *id)
                .await
                .map_err(|e| e.message)?
                .ok_or("generation vanished")?;
            match v.status {
                GenerationStatus::Succeeded => done += 1,
                GenerationStatus::Failed => {
                    return Err(format!("generation failed: {:?}", v.error));
                }
                _ => {}
            }
        }
        if done == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = task.await;
    println!(
        "{images} images in {:.1} s: {:.0} images per minute ({:.0} ms per image per worker slot)",
        elapsed.as_secs_f64(),
        images as f64 / elapsed.as_secs_f64() * 60.0,
        elapsed.as_secs_f64() * 1000.0 * config.worker.concurrency as f64 / images as f64
    );
    Ok(())
}

/// A signed-in creator on the enterprise plan, so any `BENCH_GENERATIONS` fits the daily
/// allowance.
async fn creator(state: &domain::state::AppState) -> Result<CurrentUser, String> {
    const EMAIL: &str = "bench@example.com";
    let mut conn = state.conn().await.map_err(|e| e.message)?;
    let user = accounts::service::create(&mut conn, EMAIL, "correct horse battery")
        .await
        .map_err(|e| e.message)?;
    accounts::service::set_tier(&mut conn, EMAIL, Tier::Enterprise)
        .await
        .map_err(|e| e.to_string())?;
    let user = accounts::service::find(&mut conn, user.id)
        .await
        .map_err(|e| e.message)?
        .ok_or("bench account vanished")?;
    let issued = accounts::sessions::start(&mut conn, &state.auth, &user, "127.0.0.1", "bench")
        .await
        .map_err(|e| e.message)?;
    Ok(issued.user)
}
