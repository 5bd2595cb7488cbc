//! Every hot query stays on its index. Each plan is read with `EXPLAIN` of the statement as
//! the application builds it (`domain::db::explain` over the same query-building functions the
//! code runs), not a copy of its SQL, so a change to a query or to the schema that loses an
//! index fails here.
//!
//! The tables hold a few thousand rows and are analysed; sequential scans are switched off
//! for the session, so a plan that could use the index does, and one that cannot shows a
//! sequential scan whatever the table size.

use crate::support;

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use support::TestDb;
use uuid::Uuid;

async fn filled(db: &TestDb) -> (AsyncPgConnection, Uuid) {
    let owner = Uuid::new_v4();
    db.batch(&format!(
        "INSERT INTO users (id, email, password_hash) \
           SELECT CASE WHEN n = 0 THEN '{owner}'::uuid ELSE gen_random_uuid() END, \
                  'user' || n || '@example.com', '$argon2id$x' FROM generate_series(0, 49) n; \
         WITH g AS ( \
           INSERT INTO generations (prompt, style, format, variations, provider, seed, status, \
                                    user_id, created_at) \
           SELECT 'Prompt ' || s, 'bold', 'instagram_square', 1, 'builtin', s, 'succeeded', \
                  (SELECT id FROM users ORDER BY email OFFSET s % 50 LIMIT 1), \
                  now() - (s || ' minutes')::interval \
           FROM generate_series(0, 3999) s RETURNING id, seed, user_id, created_at) \
         INSERT INTO images (generation_id, variation, seed, width, height, png_key, webp_320_key, \
                             webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, \
                             public, created_at) \
         SELECT id, 0, seed, 1080, 1080, 'p/' || id, 's/' || id, 'm/' || id, 'f/' || id, \
                repeat('a', 64), 1000, 10, user_id, seed % 3 = 0, created_at FROM g; \
         INSERT INTO usage_ledger (user_id, kind, generation_id, created_at) \
           SELECT user_id, 'generation', id, created_at FROM generations; \
         INSERT INTO jobs (kind, status, finished_at) \
           SELECT 'generate', 'succeeded', now() FROM generate_series(1, 3000); \
         INSERT INTO jobs (kind) SELECT 'generate' FROM generate_series(1, 20); \
         ANALYZE;"
    ))
    .await;
    let mut conn = db.conn().await;
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    (conn, owner)
}

fn uses(plan: &str, index: &str) {
    assert!(plan.contains(index), "{index} not used:\n{plan}");
    assert!(!plan.contains("Seq Scan"), "a sequential scan:\n{plan}");
}

#[tokio::test]
async fn hot_queries_use_their_indexes() {
    let db = TestDb::new().await;
    let (mut c, owner) = filled(&db).await;
    use domain::gallery::Scope;
    use domain::gallery::records::{page_query, visible_query};

    // Gallery pages, first and deep: the index gives the order, so no sort either.
    let deep = Some(domain::gallery::cursor::Position {
        created_at: chrono::Utc::now() - chrono::Duration::days(1),
        id: Uuid::nil(),
    });
    for after in [None, deep] {
        let plan = domain::db::explain(&mut c, page_query(Scope::Explore, None, after, 25))
            .await
            .unwrap();
        uses(&plan, "images_public_created_idx");
        assert!(!plan.contains("Sort"), "{plan}");
        let plan = domain::db::explain(&mut c, page_query(Scope::Mine, Some(owner), after, 25))
            .await
            .unwrap();
        uses(&plan, "images_owner_created_idx");
        assert!(!plan.contains("Sort"), "{plan}");
    }

    // The image page, signed out and in.
    for viewer in [None, Some(owner)] {
        let plan = domain::db::explain(&mut c, visible_query(viewer, Uuid::new_v4()))
            .await
            .unwrap();
        uses(&plan, "images_pkey");
    }

    // A worker's claim: the partial indexes of ready and lease-expired jobs, never the
    // thousands of finished ones.
    let plan = domain::db::explain(
        &mut c,
        domain::jobs::claim_query(
            "w",
            &["generate".to_owned()],
            std::time::Duration::from_secs(30),
            2,
        ),
    )
    .await
    .unwrap();
    uses(&plan, "jobs_ready_idx");
    uses(&plan, "jobs_lease_idx");

    // Every submission sums the user's day in the usage ledger: one index-only range.
    let plan = domain::db::explain(
        &mut c,
        domain::accounts::quota::generations_used_query(
            owner,
            chrono::Utc::now() - chrono::Duration::hours(24),
        ),
    )
    .await
    .unwrap();
    uses(&plan, "usage_ledger_user_kind_created_idx");

    // Every sign-in looks the account up by email.
    let plan = domain::db::explain(
        &mut c,
        domain::accounts::service::by_email_query("User7@Example.com"),
    )
    .await
    .unwrap();
    uses(&plan, "users_email_idx");
}
