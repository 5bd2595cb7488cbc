//! Trend feeds imported by command and by the admin endpoint, merged with the trends computed
//! from creators' prompts, against a real PostgreSQL.

use crate::support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::trends::feed::FeedFormat;
use support::{TestDb, json, send, signed_in, state_for, with_session};

const FEED: &str = "topic,hashtag,source,score,observed_at\n\
                    golden hour,#goldenhour,trendwire,900,2026-11-21T10:00:00Z\n\
                    bad score,,trendwire,lots,2026-11-21\n\
                    coffee,,trendwire,3000,2026-11-21T09:00:00Z\n\
                    future thing,,trendwire,5,2099-01-01\n";

fn recent(feed: &str) -> String {
    // The feed's dates are made recent so they sit inside the ranking window today.
    let today = chrono::Utc::now().date_naive();
    feed.replace(
        "2026-11-21",
        &(today - chrono::TimeDelta::days(1)).to_string(),
    )
}

#[tokio::test]
async fn the_import_command_keeps_good_rows_reports_bad_ones_and_is_repeatable() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("sc-feed-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("feed.csv");
    std::fs::write(&file, recent(FEED)).unwrap();
    let mut conn = db.conn().await;
    let body = std::fs::read_to_string(&file).unwrap();
    let report = domain::trends::import(&mut conn, &body, FeedFormat::Csv)
        .await
        .unwrap();
    assert_eq!(report.imported, 2);
    let lines: Vec<usize> = report.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![3, 5]);
    assert_eq!(db.count("trend_imports").await, 2);
    // Importing the same feed again updates rather than duplicates.
    let again = domain::trends::import(&mut conn, &body, FeedFormat::Csv)
        .await
        .unwrap();
    assert_eq!(again.imported, 2);
    assert_eq!(db.count("trend_imports").await, 2);
    // The same through the binary's subcommand, as an operator runs it.
    let vars = std::collections::HashMap::from([
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("DATA_DIR".to_owned(), dir.display().to_string()),
    ]);
    let config = server::config::Config::from_map(&vars).unwrap();
    std::fs::write(&file, recent(FEED).replace("coffee", "tea time")).unwrap();
    server::cli::trends::import(config, &file).await.unwrap();
    assert_eq!(db.count("trend_imports").await, 3);
    // A file that is unreadable as a whole imports nothing.
    let bad = domain::trends::import(&mut conn, "topic,score\nx,1\n", FeedFormat::Csv).await;
    assert!(
        matches!(bad, Err(domain::trends::ImportError::Feed(_))),
        "{bad:?}"
    );
    assert_eq!(db.count("trend_imports").await, 3);
    let _ = std::fs::remove_dir_all(dir);
}

fn import_request(body: &str, content_type: &str) -> Request<Body> {
    Request::post("/api/admin/trends/import")
        .header("content-type", content_type)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn only_admins_import_through_the_endpoint_and_trends_merge_by_source() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = server::web::app(state.clone(), support::leptos_options());
    let creator = signed_in(&state, "creator@example.com").await;
    let admin = signed_in(&state, "admin@example.com").await;
    db.exec("UPDATE users SET is_admin = true WHERE email = 'admin@example.com'")
        .await;
    let feed = recent(FEED);

    let res = send(&router, import_request(&feed, "text/csv")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = send(
        &router,
        with_session(import_request(&feed, "text/csv"), &creator),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(res).await["code"], "forbidden");
    assert_eq!(db.count("trend_imports").await, 0);

    let res = send(
        &router,
        with_session(import_request("[1, 2", "application/json"), &admin),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(res).await["fields"][0]["field"], "feed");

    // Creators have been prompting about coffee (and rating it well).
    let creator_id = creator.user.id;
    for (i, prompt) in [
        "Morning coffee ritual #coffee",
        "Coffee beans roasting",
        "Latte art coffee",
    ]
    .iter()
    .enumerate()
    {
        db.exec(&format!(
            "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, seed, \
               status, progress, user_id, created_at) VALUES ('{prompt}', 'bold', 'x_post', 1, \
               'builtin', {i}, 'succeeded', 100, '{creator_id}', now() - interval '{i} hours') \
               RETURNING id) \
             INSERT INTO images (generation_id, variation, seed, width, height, png_key, \
               webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, \
               rating_count, rating_sum, public) SELECT id, 0, 1, 1600, 900, 'p/' || id, \
               's/' || id, 'm/' || id, 'f/' || id, repeat('d', 64), 1, 1, '{creator_id}', 2, 10, \
               true FROM g"
        ))
        .await;
    }

    let res = send(
        &router,
        with_session(import_request(&feed, "text/csv"), &admin),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let report = json(res).await;
    assert_eq!(report["imported"], 2);
    assert_eq!(report["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(report["skipped"][0]["line"], 3);

    // The endpoint refreshed the cached ranking: the create page's list has both kinds,
    // labelled by source, and coffee (ours and the feed's) on top.
    let res = send(&router, support::form_post("/api/trends/top", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let top = json(res).await;
    let top = top.as_array().unwrap();
    assert!(top.len() <= domain::trends::TOP_LIMIT);
    assert_eq!(top[0]["topic"], "coffee", "{top:?}");
    assert_eq!(
        top[0]["sources"],
        serde_json::json!(["socialcraft", "trendwire"])
    );
    assert_eq!(top[0]["hashtag"], "#coffee");
    let golden = top
        .iter()
        .find(|t| t["topic"] == "golden hour")
        .expect("imported trend listed");
    assert_eq!(golden["sources"], serde_json::json!(["trendwire"]));
    let ours = top
        .iter()
        .find(|t| t["topic"] == "latte")
        .expect("computed trend listed");
    assert_eq!(ours["sources"], serde_json::json!(["socialcraft"]));
}

/// A finished generation of `prompt` by `user` with one image, shared or not, rated
/// `rating_count` times for `rating_sum` stars.
async fn prompted(
    db: &TestDb,
    user: uuid::Uuid,
    prompt: &str,
    public: bool,
    rating_count: i32,
    rating_sum: i32,
) {
    db.exec(&format!(
        "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, seed, \
           status, progress, user_id) VALUES ('{prompt}', 'bold', 'x_post', 1, 'builtin', 1, \
           'succeeded', 100, '{user}') RETURNING id) \
         INSERT INTO images (generation_id, variation, seed, width, height, png_key, \
           webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, \
           rating_count, rating_sum, public) SELECT id, 0, 1, 1600, 900, 'p/' || id, \
           's/' || id, 'm/' || id, 'f/' || id, repeat('d', 64), 1, 1, '{user}', \
           {rating_count}, {rating_sum}, {public} FROM g"
    ))
    .await;
}

#[tokio::test]
async fn trends_hear_only_shared_prompts_and_each_creator_once_per_topic() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = server::web::app(state.clone(), support::leptos_options());
    let mut creators = Vec::new();
    for i in 0..4 {
        creators.push(
            signed_in(&state, &format!("maker{i}@example.com"))
                .await
                .user
                .id,
        );
    }
    let spammer = signed_in(&state, "spammer@example.com").await.user.id;

    // Private prompts, however many, never reach the public list.
    for _ in 0..30 {
        prompted(&db, creators[0], "Surprise party for Veronica", false, 0, 0).await;
    }
    // One account prompting a word a hundred times counts once.
    for _ in 0..100 {
        prompted(&db, spammer, "Crypto giveaway crypto", true, 0, 0).await;
    }
    // Three creators each shared an image about otters, once; two about kites, rated 5 stars
    // (weight 2 each), and one about lanterns, rated 1 star (the floor, 0.25).
    for c in &creators[1..4] {
        prompted(&db, *c, "Otters", true, 0, 0).await;
    }
    prompted(&db, creators[1], "Kites", true, 2, 10).await;
    prompted(&db, creators[2], "Kites", true, 2, 10).await;
    prompted(&db, creators[3], "Lanterns", true, 2, 2).await;

    state.trends.refresh(&state.db).await.unwrap();
    let res = send(&router, support::form_post("/api/trends/top", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let top = json(res).await;
    let top = top.as_array().unwrap().clone();
    let score = |topic: &str| {
        top.iter()
            .find(|t| t["topic"] == topic)
            .map(|t| t["score"].as_f64().unwrap())
    };
    let listed: Vec<&str> = top.iter().map(|t| t["topic"].as_str().unwrap()).collect();
    for private in ["surprise", "party", "veronica"] {
        assert!(!listed.contains(&private), "{private} in {listed:?}");
    }
    // kites 4, otters 3, crypto 1 (one account), giveaway 1, lanterns 0.25, over the best (4).
    assert_eq!(listed[..2], ["kites", "otters"], "{top:?}");
    // Seconds apart, the rows decay by a few parts in a million: close, not equal.
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    assert!(close(score("otters").unwrap(), 0.75), "{top:?}");
    assert!(close(score("crypto").unwrap(), 0.25), "{top:?}");
    assert!(close(score("lanterns").unwrap(), 0.0625), "{top:?}");
}
