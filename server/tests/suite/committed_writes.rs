//! A refusal must be true: once a write has committed, nothing after it may turn the answer
//! into a refusal (the creator would try again and store it twice). Each write path runs
//! through the real router as a login role without superuser rights, and a trigger installed
//! by the test revokes that role's right to read the tables the answer could be read back
//! from, in the writing transaction itself: from the commit on, any read-back fails for real
//! in PostgreSQL. The answer must still be success, and exactly one row must exist.

use crate::support;

use axum::http::StatusCode;
use support::{TestDb, form_post, json, send, signed_in, with_session};
use uuid::Uuid;

/// `db` as a login role with every table right but no superuser powers (revokes bind it),
/// and the role's name.
async fn as_app_role(db: &TestDb) -> (TestDb, String) {
    let role = format!("{}_app", db.name);
    db.batch(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'app'; \
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; \
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
    ))
    .await;
    let rest = db.url.split_once('@').expect("url with credentials").1;
    (db.through(format!("postgres://{role}:app@{rest}")), role)
}

/// After each `event` (`INSERT`, `UPDATE OF col`) on `table`, `role` loses SELECT on every
/// table in `unreadable`, within the writing transaction: once it commits, nothing can be
/// read back from them.
async fn revoke_reads_after(
    db: &TestDb,
    role: &str,
    table: &str,
    event: &str,
    unreadable: &[&str],
) {
    let revokes: String = unreadable
        .iter()
        .map(|t| format!("REVOKE SELECT ON {t} FROM {role}; "))
        .collect();
    db.batch(&format!(
        "CREATE FUNCTION fault_{table}() RETURNS trigger SECURITY DEFINER AS $$ \
         BEGIN {revokes} RETURN NULL; END; $$ LANGUAGE plpgsql; \
         CREATE TRIGGER zz_fault_{table} AFTER {event} ON {table} \
           FOR EACH ROW EXECUTE FUNCTION fault_{table}();"
    ))
    .await;
}

#[tokio::test]
async fn a_committed_submission_is_answered_as_accepted() {
    let db = TestDb::new().await;
    let (limited, role) = as_app_role(&db).await;
    let state = support::state_for(&limited);
    let app = server::web::app(state.clone(), support::leptos_options());
    let ana = signed_in(&state, "ana@example.com").await;
    // The submission's last statement sets the job; from then on the generation, its
    // images and jobs cannot be read back.
    revoke_reads_after(
        &db,
        &role,
        "generations",
        "UPDATE OF job_id",
        &["generations", "images", "jobs"],
    )
    .await;
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/generations/submit",
                "prompt=Autumn+sale+on+boots&style=bold&format=instagram_square&variations=2",
            ),
            &ana,
        ),
    )
    .await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["variations"], 2);
    assert_eq!(db.count("generations").await, 1);
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(db.count(&format!("generations WHERE id = '{id}'")).await, 1);
    assert_eq!(db.count("jobs").await, 1);
}

#[tokio::test]
async fn a_committed_rating_is_answered_with_its_totals() {
    let db = TestDb::new().await;
    let (limited, role) = as_app_role(&db).await;
    let state = support::state_for(&limited);
    let app = server::web::app(state.clone(), support::leptos_options());
    let ana = signed_in(&state, "ana@example.com").await;
    let bo = signed_in(&state, "bo@example.com").await;
    let image = Uuid::new_v4();
    db.exec(&format!(
        "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, seed, \
                                             status, progress, user_id) \
                    VALUES ('Shared picture', 'bold', 'instagram_square', 1, 'builtin', 1, \
                            'succeeded', 100, '{bo}') RETURNING id) \
         INSERT INTO images (id, generation_id, variation, seed, width, height, png_key, \
                             webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, \
                             user_id, public, rating_count, rating_sum) \
         SELECT '{image}', id, 0, 1, 1080, 1080, 'p/x', 's/x', 'm/x', 'f/x', repeat('a', 64), \
                1000, 10, '{bo}', true, 2, 9 FROM g",
        bo = bo.user.id
    ))
    .await;
    revoke_reads_after(
        &db,
        &role,
        "image_ratings",
        "INSERT OR UPDATE",
        &["images", "image_ratings"],
    )
    .await;
    let res = send(
        &app,
        with_session(
            form_post("/api/gallery/rate", &format!("id={image}&stars=4")),
            &ana,
        ),
    )
    .await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Two earlier ratings summing 9, and this one.
    assert_eq!(body["ratings"], 3);
    assert_eq!(body["mine"], 4);
    assert_eq!(db.count("image_ratings").await, 1);
    assert_eq!(
        db.count(&format!(
            "images WHERE id = '{image}' AND rating_count = 3 AND rating_sum = 13"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn a_committed_brand_kit_is_answered_as_saved() {
    let db = TestDb::new().await;
    let (limited, role) = as_app_role(&db).await;
    let state = support::state_for(&limited);
    let app = server::web::app(state.clone(), support::leptos_options());
    let ana = signed_in(&state, "ana@example.com").await;
    revoke_reads_after(
        &db,
        &role,
        "brands",
        "INSERT OR UPDATE",
        &["brands", "assets", "upload_blobs"],
    )
    .await;
    let res = send(
        &app,
        with_session(
            form_post(
                "/api/brands/save",
                "name=Acme&colors=%231d3557%2C%23e63946&font=inter",
            ),
            &ana,
        ),
    )
    .await;
    let status = res.status();
    let body = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Acme");
    assert_eq!(body["colors"][1], "#e63946");
    assert_eq!(db.count("brands").await, 1);
    let id = body["id"].as_str().unwrap();
    assert_eq!(db.count(&format!("brands WHERE id = '{id}'")).await, 1);
}
