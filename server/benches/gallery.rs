//! Gallery page latency at depth: page 1 against page 500 (and deeper), keyset against the
//! OFFSET a naive gallery would use, on a private PostgreSQL seeded with `BENCH_IMAGES`
//! records (default 100,000) exactly as `socialcraft seed` makes them.
//!
//! Run: `cargo bench -p server --bench gallery --target-dir target/native`
//!
//! Times are the whole service call (cursor check, query, rows to cards) on one pooled
//! connection, sequentially; Explore's in-memory cache is bypassed so each call reaches
//! PostgreSQL ("My images" is never cached, and is measured as served).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain::gallery::cursor::{CursorKey, Position};
use domain::gallery::{Scope, records, service};
use server::config::Config;
use server::pg_embedded::{self, EmbeddedPg};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("sc-bench-gallery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let pg = EmbeddedPg::start(&dir, None).expect("PostgreSQL");
    let result = rt.block_on(run(&dir, &pg));
    let _ = pg.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        eprintln!("gallery bench failed: {e}");
        std::process::exit(1);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<44} mean {:>8.3} ms   p50 {:>8.3} ms   p99 {:>8.3} ms",
        mean.as_secs_f64() * 1e3,
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
    );
    percentile(&samples, 0.5)
}

async fn run(dir: &std::path::Path, pg: &EmbeddedPg) -> Result<(), String> {
    let images: usize = std::env::var("BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    pg_embedded::ensure_database(&pg.url("postgres"), "bench").await?;
    let url = pg.url("bench");
    domain::db::pool::run_migrations(&url).await?;
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    vars.insert("DATA_DIR".into(), dir.display().to_string());
    let config = Config::from_map(&vars).map_err(|e| e.to_string())?;
    let pool = domain::db::pool::build_pool(&url, 4, Duration::from_secs(5))?;
    let state = server::wiring::build_state(&config, pool)?;

    let mut conn = state.conn().await.map_err(|e| e.message)?;
    let seeded = server::cli::seed::seed(&mut conn, &state.media, images).await?;
    println!(
        "seeded {} images ({} stored pictures, {} ratings) in {:.1} s; {rounds} calls per row",
        seeded.images, seeded.stored, seeded.ratings, seeded.seconds
    );
    let owner: uuid::Uuid = domain::db::schema::users::table
        .select(domain::db::schema::users::id)
        .order(domain::db::schema::users::email)
        .first(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let key = CursorKey::from_secret(config.secret_key.expose());

    // The position where page N starts, found once with OFFSET (outside the timing).
    async fn start_of(
        conn: &mut diesel_async::AsyncPgConnection,
        scope: Scope,
        owner: uuid::Uuid,
        page: usize,
    ) -> Result<Option<Position>, String> {
        if page <= 1 {
            return Ok(None);
        }
        let filter = match scope {
            Scope::Explore => "public".to_owned(),
            Scope::Mine => format!("user_id = '{owner}'"),
        };
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Timestamptz)]
            created_at: chrono::DateTime<chrono::Utc>,
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: uuid::Uuid,
        }
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT created_at, id FROM images WHERE {filter} ORDER BY created_at DESC, id DESC \
             OFFSET {} LIMIT 1",
            (page - 1) * domain::gallery::PAGE_SIZE - 1
        ))
        .load(conn)
        .await
        .map_err(|e| e.to_string())?;
        Ok(rows.into_iter().next().map(|r| Position {
            created_at: r.created_at,
            id: r.id,
        }))
    }

    // Every page's cursor first, then rounds that call each page once in turn, so drift in
    // the machine's speed during the run falls on all pages alike.
    let mut cases = Vec::new();
    for scope in [Scope::Explore, Scope::Mine] {
        for page in [1usize, 100, 500, 800] {
            let after = start_of(&mut conn, scope, owner, page).await?;
            if page > 1 && after.is_none() {
                println!("{scope:?} has fewer than {page} pages");
                continue;
            }
            let viewer = (scope == Scope::Mine).then_some(owner);
            let cursor = after.map(|p| key.encode(scope, viewer, p));
            cases.push((scope, page, viewer, cursor, Vec::with_capacity(rounds)));
        }
    }
    for _ in 0..rounds {
        for (scope, _, viewer, cursor, samples) in cases.iter_mut() {
            state.gallery.explore_changed();
            let t = Instant::now();
            let page = service::page(&state, *scope, *viewer, cursor.as_deref())
                .await
                .map_err(|e| e.message)?;
            samples.push(t.elapsed());
            assert_eq!(page.items.len(), domain::gallery::PAGE_SIZE);
        }
    }
    let mut first = None;
    for (scope, page, _, _, samples) in cases {
        let p50 = report(
            &format!("{scope:?} page {page} (keyset, service call)"),
            samples,
        );
        match (page, first) {
            (1, _) | (_, None) => first = Some(p50),
            (_, Some(f)) => println!(
                "{:<44} {:+.1}% against page 1",
                "",
                (p50.as_secs_f64() / f.as_secs_f64() - 1.0) * 100.0
            ),
        }
    }

    // What OFFSET would cost at the same depths (the query alone), for comparison.
    for page in [1usize, 500] {
        let mut samples = Vec::with_capacity(rounds / 10);
        for _ in 0..rounds / 10 {
            let t = Instant::now();
            let rows: Vec<uuid::Uuid> = diesel::sql_query(format!(
                "SELECT id FROM images WHERE public ORDER BY created_at DESC, id DESC \
                 OFFSET {} LIMIT 25",
                (page - 1) * domain::gallery::PAGE_SIZE
            ))
            .load::<IdRow>(&mut conn)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| r.id)
            .collect();
            samples.push(t.elapsed());
            assert_eq!(rows.len(), 25);
        }
        report(
            &format!("Explore page {page} (OFFSET, query only)"),
            samples,
        );
    }
    // The keyset query alone at page 500, to separate PostgreSQL from the service's work.
    if let Some(p) = start_of(&mut conn, Scope::Explore, owner, 500).await? {
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let rows = records::page(&mut conn, Scope::Explore, None, Some(p), 25)
                .await
                .map_err(|e| e.to_string())?;
            samples.push(t.elapsed());
            assert_eq!(rows.len(), 25);
        }
        report("Explore page 500 (keyset, query only)", samples);
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
}
