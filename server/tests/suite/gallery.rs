//! Galleries, sharing, ratings and deletion against a real PostgreSQL and a real file store,
//! through the HTTP stack where a browser would go through it.

use crate::support;

use std::collections::HashSet;

use axum::Router;
use axum::http::StatusCode;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use domain::gallery::{Page, service};
use domain::media::MediaKind;
use domain::state::AppState;
use support::{Session, TestDb, form_post, json, send, signed_in, state_for, with_session};
use uuid::Uuid;

fn app(state: &AppState) -> Router {
    server::web::app(state.clone(), support::leptos_options())
}

/// Inserts `n` images for `owner` (every `public_every`-th one shared), newest first from
/// `offset_secs` ago, three to a timestamp so ties on `created_at` are common.
async fn add_images(db: &TestDb, owner: Uuid, n: usize, public_every: usize, offset_secs: i64) {
    db.exec(&format!(
        "WITH g AS ( \
           INSERT INTO generations (prompt, style, format, variations, provider, seed, status, \
                                    progress, user_id, created_at) \
           SELECT 'Image number ' || s, 'bold', 'instagram_square', 1, 'builtin', s, \
                  'succeeded', 100, '{owner}', \
                  timestamptz '2026-11-01 12:00:00+00' - make_interval(secs => {offset_secs} + s / 3) \
           FROM generate_series(0, {last}) s RETURNING id, seed, created_at) \
         INSERT INTO images (generation_id, variation, seed, width, height, png_key, webp_320_key, \
                             webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, \
                             public, created_at) \
         SELECT id, 0, seed, 1080, 1080, 'p/' || id, 's/' || id, 'm/' || id, 'f/' || id, \
                repeat('a', 64), 1000, 10, '{owner}', seed % {public_every} = 0, created_at FROM g",
        last = n - 1
    ))
    .await;
}

/// Inserts an image of `owner` on four stored files: `files`, or four new ones. Returns its
/// id and its keys (PNG, WebP 320, 720, full).
async fn image_with_files(
    state: &AppState,
    db: &TestDb,
    owner: Uuid,
    public: bool,
    files: Option<[String; 4]>,
) -> (Uuid, [String; 4]) {
    let keys = match files {
        Some(k) => k,
        None => {
            let mut keys = Vec::new();
            for kind in [
                MediaKind::Png,
                MediaKind::Webp,
                MediaKind::Webp,
                MediaKind::Webp,
            ] {
                let content = Uuid::new_v4().as_bytes().repeat(64);
                keys.push(state.media.put(content, kind).await.unwrap().key);
            }
            keys.try_into().unwrap()
        }
    };
    let id = Uuid::new_v4();
    db.exec(&format!(
        "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, seed, \
           status, progress, user_id) VALUES ('Files', 'bold', 'x_post', 1, 'builtin', 1, \
           'succeeded', 100, '{owner}') RETURNING id) \
         INSERT INTO images (id, generation_id, variation, seed, width, height, png_key, \
           webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, public) \
         SELECT '{id}', id, 0, 1, 1600, 900, '{}', '{}', '{}', '{}', repeat('c', 64), 100, 1, \
           '{owner}', {public} FROM g",
        keys[0], keys[1], keys[2], keys[3]
    ))
    .await;
    (id, keys)
}

/// The image's keys as stored now.
async fn keys_of(db: &TestDb, id: Uuid) -> [String; 4] {
    use domain::db::schema::images;
    let mut c = db.conn().await;
    let (a, b, m, f): (String, String, String, String) = images::table
        .find(id)
        .select((
            images::png_key,
            images::webp_320_key,
            images::webp_720_key,
            images::webp_full_key,
        ))
        .first(&mut c)
        .await
        .unwrap();
    [a, b, m, f]
}

/// Status, `Cache-Control` and body of `/media/{key}`.
async fn fetch_media(router: &Router, key: &str) -> (StatusCode, String, Vec<u8>) {
    let res = send(router, support::get_req(&format!("/media/{key}"))).await;
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, support::bytes(res).await)
}

const PUBLIC: &str = "public, max-age=31536000, immutable";
const PRIVATE: &str = "private, max-age=0, must-revalidate";

async fn share_as(router: &Router, who: &Session, id: Uuid, public: bool) -> StatusCode {
    send(
        router,
        with_session(
            form_post("/api/gallery/share", &format!("id={id}&public={public}")),
            who,
        ),
    )
    .await
    .status()
}

#[tokio::test]
async fn unsharing_ends_the_old_urls_and_keeps_the_image_for_its_owner() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let owner = signed_in(&state, "owner@example.com").await;
    let other = signed_in(&state, "other@example.com").await;

    // Private until shared: its files are served, but only as private.
    let (id, old) = image_with_files(&state, &db, owner.user.id, false, None).await;
    let (s, cache, before) = fetch_media(&router, &old[0]).await;
    assert_eq!((s, cache.as_str()), (StatusCode::OK, PRIVATE));
    assert_eq!(share_as(&router, &owner, id, true).await, StatusCode::OK);
    assert_eq!(keys_of(&db, id).await, old, "sharing keeps the URLs");
    for key in &old {
        let (s, cache, _) = fetch_media(&router, key).await;
        assert_eq!((s, cache.as_str()), (StatusCode::OK, PUBLIC), "{key}");
    }

    // Made private again: every old URL is gone, also to a revalidating cache.
    assert_eq!(share_as(&router, &owner, id, false).await, StatusCode::OK);
    let new = keys_of(&db, id).await;
    let mut c = db.conn().await;
    for (o, n) in old.iter().zip(&new) {
        assert_ne!(o, n);
        let (s, _, _) = fetch_media(&router, o).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{o} after unsharing");
        let etag = format!("\"{}\"", domain::media::parse_key(o).unwrap().sha256);
        let req = axum::http::Request::get(format!("/media/{o}"))
            .header("if-none-match", etag)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(send(&router, req).await.status(), StatusCode::NOT_FOUND);
        assert!(state.media.get(o).await.unwrap().is_none(), "{o} deleted");
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, o).await.unwrap(),
            None
        );
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, n).await.unwrap(),
            Some(1)
        );
    }
    // The owner still sees it, at its new URLs, with the same bytes, as private.
    let detail = service::detail(&state, Some(owner.user.id), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.card.src.png, format!("/media/{}", new[0]));
    assert!(!detail.card.public);
    let (s, cache, after) = fetch_media(&router, &new[0]).await;
    assert_eq!(
        (s, cache.as_str(), &after),
        (StatusCode::OK, PRIVATE, &before)
    );
    assert!(
        service::detail(&state, Some(other.user.id), id)
            .await
            .unwrap()
            .is_none()
    );
    // Unsharing what is private already changes nothing.
    assert_eq!(share_as(&router, &owner, id, false).await, StatusCode::OK);
    assert_eq!(keys_of(&db, id).await, new);

    // Two shared images on the same files (seeded or de-duplicated content): unsharing one
    // moves it and leaves the other, and the files it still uses, as they were.
    let (mine, shared) = image_with_files(&state, &db, owner.user.id, true, None).await;
    let (theirs, _) =
        image_with_files(&state, &db, other.user.id, true, Some(shared.clone())).await;
    assert_eq!(share_as(&router, &owner, mine, false).await, StatusCode::OK);
    assert_ne!(keys_of(&db, mine).await, shared);
    assert_eq!(keys_of(&db, theirs).await, shared);
    for key in &shared {
        let (s, cache, _) = fetch_media(&router, key).await;
        assert_eq!((s, cache.as_str()), (StatusCode::OK, PUBLIC), "{key}");
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, key)
                .await
                .unwrap(),
            Some(1)
        );
    }
    for key in &keys_of(&db, mine).await {
        let (s, cache, _) = fetch_media(&router, key).await;
        assert_eq!((s, cache.as_str()), (StatusCode::OK, PRIVATE), "{key}");
    }
    // Once the other creator unshares too, the shared files are nobody's public files.
    assert_eq!(
        share_as(&router, &other, theirs, false).await,
        StatusCode::OK
    );
    for key in &shared {
        let (s, _, _) = fetch_media(&router, key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{key}");
    }
}

/// A store whose deletes all fail (a bucket policy without delete, a network cut at the
/// wrong moment); everything else is the file store's.
#[derive(Debug)]
struct NoDeletes(std::sync::Arc<dyn object_store::ObjectStore>);

impl std::fmt::Display for NoDeletes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoDeletes({})", self.0)
    }
}

#[async_trait::async_trait]
impl object_store::ObjectStore for NoDeletes {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &object_store::path::Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.0.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: futures_util::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::path::Path>>
    {
        use futures_util::StreamExt;
        locations
            .map(|_| {
                Err(object_store::Error::Generic {
                    store: "NoDeletes",
                    source: "deletes are refused".into(),
                })
            })
            .boxed()
    }
    fn list(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> futures_util::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
    {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn a_stored_unshare_or_delete_is_answered_as_done_whatever_fails_after_it() {
    let db = TestDb::new().await;
    let mut state = state_for(&db);
    let dir = std::env::temp_dir().join(format!("sc-nodeletes-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let local = object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap();
    state.media = domain::media::MediaStore::from_store(std::sync::Arc::new(NoDeletes(
        std::sync::Arc::new(local),
    )));
    let router = app(&state);
    let owner = signed_in(&state, "owner@example.com").await;

    // The unshare commits, then its old files cannot be deleted: still a success, the image
    // is private at its new keys, and the old URLs are already gone (counted at zero, left
    // for the sweeper).
    let (id, old) = image_with_files(&state, &db, owner.user.id, true, None).await;
    assert_eq!(share_as(&router, &owner, id, false).await, StatusCode::OK);
    let new = keys_of(&db, id).await;
    assert_ne!(new, old);
    let mut c = db.conn().await;
    for key in &old {
        assert!(
            state.media.get(key).await.unwrap().is_some(),
            "not deletable"
        );
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, key)
                .await
                .unwrap(),
            Some(0)
        );
        let (s, _, _) = fetch_media(&router, key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{key}");
    }
    let detail = service::detail(&state, Some(owner.user.id), id)
        .await
        .unwrap()
        .unwrap();
    assert!(!detail.card.public);

    // The database fails to free them too (every statement deleting blob rows fails): a real
    // error after the commit, which must not become the answer either.
    db.batch(
        "CREATE FUNCTION keep_blobs() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'blob rows cannot be deleted (test fault)'; END $$; \
         CREATE TRIGGER keep_blobs BEFORE DELETE ON media_blobs \
           FOR EACH STATEMENT EXECUTE FUNCTION keep_blobs();",
    )
    .await;
    assert_eq!(share_as(&router, &owner, id, true).await, StatusCode::OK);
    let shared = keys_of(&db, id).await;
    assert_eq!(share_as(&router, &owner, id, false).await, StatusCode::OK);
    assert_ne!(keys_of(&db, id).await, shared);
    for key in &shared {
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, key)
                .await
                .unwrap(),
            Some(0)
        );
        let (s, _, _) = fetch_media(&router, key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{key}");
    }

    // Sharing again, and deleting with undeletable files and blob rows: both succeed.
    assert_eq!(share_as(&router, &owner, id, true).await, StatusCode::OK);
    service::delete(&state, owner.user.id, id).await.unwrap();
    assert_eq!(db.count("images").await, 0);
    let _ = std::fs::remove_dir_all(dir);
}

async fn ids_where(db: &TestDb, filter: &str) -> HashSet<Uuid> {
    let mut c = db.conn().await;
    domain::db::schema::images::table
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(filter))
        .select(domain::db::schema::images::id)
        .load::<Uuid>(&mut c)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn page(
    router: &Router,
    session: Option<&Session>,
    scope: &str,
    after: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let body = match after {
        Some(a) => format!("scope={scope}&after={a}"),
        None => format!("scope={scope}"),
    };
    let mut req = form_post("/api/gallery/page", &body);
    if let Some(s) = session {
        req = with_session(req, s);
    }
    let res = send(router, req).await;
    let status = res.status();
    (status, json(res).await)
}

/// Walks a gallery to its end, calling `between` after each page; returns the ids in order.
async fn walk<F, Fut>(
    router: &Router,
    session: Option<&Session>,
    scope: &str,
    mut between: F,
) -> Vec<Uuid>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for n in 0.. {
        let (status, body) = page(router, session, scope, after.as_deref()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Page = serde_json::from_value(body).unwrap();
        assert!(page.items.len() <= domain::gallery::PAGE_SIZE);
        seen.extend(page.items.iter().map(|c| c.id));
        between(n).await;
        match page.next {
            Some(next) => {
                assert_eq!(
                    page.items.len(),
                    domain::gallery::PAGE_SIZE,
                    "only the last page is short"
                );
                after = Some(next);
            }
            None => break,
        }
        assert!(n < 1000, "the walk does not end");
    }
    seen
}

fn assert_once(seen: &[Uuid], expected: &HashSet<Uuid>) {
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an image came twice");
    assert_eq!(&unique, expected, "the walk missed or invented images");
}

#[tokio::test]
async fn walking_every_page_yields_each_image_once_even_while_new_ones_arrive() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let alice = signed_in(&state, "alice@example.com").await;
    let bob = signed_in(&state, "bob@example.com").await;
    add_images(&db, alice.user.id, 600, 2, 0).await;
    add_images(&db, bob.user.id, 400, 3, 1).await;

    // Explore: everyone's shared images, and nothing private.
    let public = ids_where(&db, "public").await;
    assert_eq!(public.len(), 300 + 134);
    let seen = walk(&router, None, "explore", |_| async {}).await;
    assert_once(&seen, &public);

    // My images: all of Alice's, shared or not, and none of Bob's.
    let mine = ids_where(&db, &format!("user_id = '{}'", alice.user.id)).await;
    let seen = walk(&router, Some(&alice), "mine", |_| async {}).await;
    assert_once(&seen, &mine);

    // New images arriving (newer than everything) while someone scrolls change nothing in
    // the walk that started before them: no repeats, no gaps.
    let before = ids_where(&db, &format!("user_id = '{}'", bob.user.id)).await;
    let db_ref = &db;
    let bob_id = bob.user.id;
    let seen = walk(&router, Some(&bob), "mine", |n| async move {
        db_ref
            .exec(&format!(
                "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, \
                   seed, status, progress, user_id) VALUES ('Fresh one {n}', 'bold', 'x_post', 1, \
                   'builtin', 1, 'succeeded', 100, '{bob_id}') RETURNING id, created_at) \
                 INSERT INTO images (generation_id, variation, seed, width, height, png_key, \
                   webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id, \
                   public, created_at) SELECT id, 0, 1, 1600, 900, 'p/' || id, 's/' || id, \
                   'm/' || id, 'f/' || id, repeat('b', 64), 1, 1, '{bob_id}', true, now() FROM g"
            ))
            .await;
    })
    .await;
    assert_once(&seen, &before);
    // And a new walk sees them, first.
    let (_, body) = page(&router, Some(&bob), "mine", None).await;
    let first: Page = serde_json::from_value(body).unwrap();
    assert!(
        first.items[0].prompt.starts_with("Fresh one"),
        "{:?}",
        first.items[0]
    );
}

#[tokio::test]
async fn cursors_from_another_gallery_or_account_and_tampered_ones_are_400() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let alice = signed_in(&state, "alice@example.com").await;
    let bob = signed_in(&state, "bob@example.com").await;
    add_images(&db, alice.user.id, 60, 1, 0).await;
    add_images(&db, bob.user.id, 60, 1, 0).await;

    let next = |body: serde_json::Value| body["next"].as_str().unwrap().to_owned();
    let (_, body) = page(&router, Some(&alice), "mine", None).await;
    let alices = next(body);
    let (_, body) = page(&router, None, "explore", None).await;
    let explore = next(body);

    let mut tampered = alices.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (who, scope, cursor) in [
        (Some(&bob), "mine", alices.as_str()),
        (Some(&alice), "explore", alices.as_str()),
        (Some(&alice), "mine", explore.as_str()),
        (Some(&alice), "mine", tampered.as_str()),
        (None, "explore", "not-a-cursor"),
        (None, "explore", &explore[..explore.len() - 3]),
    ] {
        let (status, body) = page(&router, who, scope, Some(cursor)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scope} {cursor}: {body}");
        assert_eq!(body["code"], "bad_request");
    }
    // The genuine ones still work, and "My images" needs an account.
    assert_eq!(
        page(&router, Some(&alice), "mine", Some(&alices)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        page(&router, None, "explore", Some(&explore)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        page(&router, None, "mine", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn rate(
    router: &Router,
    who: &Session,
    id: Uuid,
    stars: &str,
) -> (StatusCode, serde_json::Value) {
    let res = send(
        router,
        with_session(
            form_post("/api/gallery/rate", &format!("id={id}&stars={stars}")),
            who,
        ),
    )
    .await;
    let status = res.status();
    (status, json(res).await)
}

async fn totals(db: &TestDb, id: Uuid) -> (i32, i32) {
    let mut c = db.conn().await;
    domain::gallery::records::totals(&mut c, id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn ratings_are_one_to_five_one_per_user_and_right_under_concurrency() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let owner = signed_in(&state, "owner@example.com").await;
    add_images(&db, owner.user.id, 2, 2, 0).await;
    let shared = *ids_where(&db, "public").await.iter().next().unwrap();
    let private = *ids_where(&db, "NOT public").await.iter().next().unwrap();
    let fan = signed_in(&state, "fan@example.com").await;

    // Bounds: the form only sends 0 to 5; anything else is a 422 beside the stars.
    for bad in ["6", "-1", "", "2.5", "lots"] {
        let (status, body) = rate(&router, &fan, shared, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["fields"][0]["field"], "stars");
    }
    assert_eq!(totals(&db, shared).await, (0, 0));

    // One per user: rating again replaces it; 0 clears it.
    let (status, body) = rate(&router, &fan, shared, "4").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ratings"], 1);
    assert_eq!(body["mine"], 4);
    let (_, body) = rate(&router, &fan, shared, "2").await;
    assert_eq!(
        (body["ratings"].as_u64(), body["rating"].as_f64()),
        (Some(1), Some(2.0))
    );
    let (_, body) = rate(&router, &owner, shared, "5").await;
    assert_eq!(
        (body["ratings"].as_u64(), body["rating"].as_f64()),
        (Some(2), Some(3.5))
    );
    let (_, body) = rate(&router, &fan, shared, "0").await;
    assert_eq!(body["ratings"], 1);
    assert_eq!(body["mine"], serde_json::Value::Null);
    assert_eq!(totals(&db, shared).await, (1, 5));

    // A private image is not there for anyone but its owner.
    let (status, _) = rate(&router, &fan, private, "5").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(totals(&db, private).await, (0, 0));
    let (status, _) = rate(&router, &fan, Uuid::new_v4(), "5").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Twenty creators rating at once, each twice (the second replacing the first), plus the
    // same creator racing with themselves: the totals are exactly the final ratings.
    let mut voters = Vec::new();
    for i in 0..20 {
        voters.push(signed_in(&state, &format!("voter{i}@example.com")).await);
    }
    let mut tasks = Vec::new();
    for (i, v) in voters.iter().enumerate() {
        for stars in [1 + (i % 5), 1 + ((i + 2) % 5)] {
            let (router, v) = (router.clone(), v.clone());
            tasks.push(tokio::spawn(async move {
                // Both of a voter's ratings race each other and everyone else's.
                (
                    i,
                    stars,
                    rate(&router, &v, shared, &stars.to_string()).await.0,
                )
            }));
        }
    }
    for t in tasks {
        let (_, _, status) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    let (count, sum) = totals(&db, shared).await;
    let mut c = db.conn().await;
    let (rows, stars): (i64, Option<i64>) = domain::db::schema::image_ratings::table
        .filter(domain::db::schema::image_ratings::image_id.eq(shared))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::sum(domain::db::schema::image_ratings::stars),
        ))
        .first(&mut c)
        .await
        .unwrap();
    assert_eq!(
        rows, 21,
        "one rating per user: the owner's and twenty voters'"
    );
    assert_eq!((i64::from(count), i64::from(sum)), (rows, stars.unwrap()));

    // The image page shows the viewer's own rating and the mean, after a reload.
    let detail = service::detail(&state, Some(owner.user.id), shared)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.my_rating, Some(5));
    assert_eq!(detail.card.ratings, 21);
    let mean = detail.card.rating.unwrap();
    assert!((mean - sum as f32 / count as f32).abs() < 1e-4, "{mean}");
}

#[tokio::test]
async fn sharing_puts_an_image_on_explore_and_only_then_shows_it_to_others() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let router = app(&state);
    let owner = signed_in(&state, "owner@example.com").await;
    let other = signed_in(&state, "other@example.com").await;
    // A shared image (with real files, which unsharing moves); unshare it first.
    let (id, _) = image_with_files(&state, &db, owner.user.id, true, None).await;
    let share = |who: &Session, public: &str| {
        send(
            &router,
            with_session(
                form_post("/api/gallery/share", &format!("id={id}&public={public}")),
                who,
            ),
        )
    };
    assert_eq!(share(&owner, "false").await.status(), StatusCode::OK);
    let explore = |router: Router| async move {
        page(&router, None, "explore", None).await.1["items"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(explore(router.clone()).await, 0);
    assert!(
        service::detail(&state, Some(other.user.id), id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(service::detail(&state, None, id).await.unwrap().is_none());

    // Somebody else cannot share it, and a bad value is a 422.
    assert_eq!(share(&other, "true").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        share(&owner, "yes").await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    assert_eq!(share(&owner, "true").await.status(), StatusCode::OK);
    // The Explore cache is cleared by the change: the image is there at once.
    assert_eq!(explore(router.clone()).await, 1);
    let seen = service::detail(&state, Some(other.user.id), id)
        .await
        .unwrap()
        .unwrap();
    assert!(!seen.mine);
    assert!(seen.creator.starts_with("creator-"), "{}", seen.creator);
    assert!(!seen.creator.contains("owner"), "no email shown");
}

#[tokio::test]
async fn deleting_one_record_keeps_files_another_still_uses() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let owner = signed_in(&state, "owner@example.com").await;
    let other = signed_in(&state, "other@example.com").await;

    // Four real files, used by two image records of two creators (as seeded or
    // de-duplicated content is).
    let mut keys = Vec::new();
    for (i, kind) in [
        MediaKind::Png,
        MediaKind::Webp,
        MediaKind::Webp,
        MediaKind::Webp,
    ]
    .into_iter()
    .enumerate()
    {
        keys.push(state.media.put(vec![i as u8; 100], kind).await.unwrap().key);
    }
    let unique = state
        .media
        .put(vec![9; 100], MediaKind::Png)
        .await
        .unwrap()
        .key;
    let unique_webp = [
        state
            .media
            .put(vec![10; 100], MediaKind::Webp)
            .await
            .unwrap()
            .key,
        state
            .media
            .put(vec![11; 100], MediaKind::Webp)
            .await
            .unwrap()
            .key,
        state
            .media
            .put(vec![12; 100], MediaKind::Webp)
            .await
            .unwrap()
            .key,
    ];
    let insert = |owner: Uuid, files: [&str; 4]| {
        format!(
            "WITH g AS (INSERT INTO generations (prompt, style, format, variations, provider, seed, \
               status, progress, user_id) VALUES ('Shared content', 'bold', 'x_post', 1, 'builtin', \
               1, 'succeeded', 100, '{owner}') RETURNING id) \
             INSERT INTO images (generation_id, variation, seed, width, height, png_key, \
               webp_320_key, webp_720_key, webp_full_key, sha256, bytes, render_ms, user_id) \
             SELECT id, 0, 1, 1600, 900, '{}', '{}', '{}', '{}', repeat('c', 64), 100, 1, \
               '{owner}' FROM g",
            files[0], files[1], files[2], files[3]
        )
    };
    let shared = [keys[0].as_str(), &keys[1], &keys[2], &keys[3]];
    db.exec(&insert(owner.user.id, shared)).await;
    db.exec(&insert(other.user.id, shared)).await;
    db.exec(&insert(
        owner.user.id,
        [&unique, &unique_webp[0], &unique_webp[1], &unique_webp[2]],
    ))
    .await;
    let mut c = db.conn().await;
    for k in &keys {
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, k).await.unwrap(),
            Some(2),
            "{k}"
        );
    }
    let owners_first = *ids_where(
        &db,
        &format!("user_id = '{}' AND png_key = '{}'", owner.user.id, keys[0]),
    )
    .await
    .iter()
    .next()
    .unwrap();
    let owners_unique = *ids_where(&db, &format!("png_key = '{unique}'"))
        .await
        .iter()
        .next()
        .unwrap();
    let others = *ids_where(&db, &format!("user_id = '{}'", other.user.id))
        .await
        .iter()
        .next()
        .unwrap();

    // Somebody else's image cannot be deleted: 404, nothing changes.
    let err = service::delete(&state, other.user.id, owners_first)
        .await
        .unwrap_err();
    assert_eq!(err.code, shared::error::ErrorCode::NotFound);
    assert_eq!(db.count("images").await, 3);

    // Deleting one of two records that share files keeps the files.
    service::delete(&state, owner.user.id, owners_first)
        .await
        .unwrap();
    for k in &keys {
        assert!(
            state.media.get(k).await.unwrap().is_some(),
            "{k} still serves the other record"
        );
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, k).await.unwrap(),
            Some(1)
        );
    }
    // The other creator's image still serves through /media.
    let router = app(&state);
    let res = send(&router, support::get_req(&format!("/media/{}", keys[0]))).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A file only one record used goes with it, and so does its generation.
    service::delete(&state, owner.user.id, owners_unique)
        .await
        .unwrap();
    assert!(state.media.get(&unique).await.unwrap().is_none());
    for k in &unique_webp {
        assert!(state.media.get(k).await.unwrap().is_none(), "{k}");
    }
    assert_eq!(
        domain::gallery::records::refs_of(&mut c, &unique)
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.count("generations").await, 1);

    // The last user of the shared files deletes theirs: now they go.
    service::delete(&state, other.user.id, others)
        .await
        .unwrap();
    for k in &keys {
        assert!(state.media.get(k).await.unwrap().is_none(), "{k}");
        assert_eq!(
            domain::gallery::records::refs_of(&mut c, k).await.unwrap(),
            None
        );
    }
    assert_eq!(db.count("images").await, 0);
    assert_eq!(db.count("media_blobs").await, 0);
}

#[tokio::test]
async fn a_file_that_could_not_be_deleted_is_swept_later() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let key = state
        .media
        .put(vec![7; 10], MediaKind::Webp)
        .await
        .unwrap()
        .key;
    // A blob left at zero by a delete whose file removal failed, ten minutes ago.
    db.exec(&format!(
        "INSERT INTO media_blobs (key, refs, updated_at) VALUES ('{key}', 0, now() - interval '11 minutes')"
    ))
    .await;
    let fresh = state
        .media
        .put(vec![8; 10], MediaKind::Webp)
        .await
        .unwrap()
        .key;
    db.exec(&format!(
        "INSERT INTO media_blobs (key, refs) VALUES ('{fresh}', 0)"
    ))
    .await;
    let n = service::sweep(&state, std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(state.media.get(&key).await.unwrap().is_none());
    // One that just reached zero is left to the request deleting it.
    assert!(state.media.get(&fresh).await.unwrap().is_some());
}

#[tokio::test]
async fn seeding_makes_realistic_records_that_share_a_few_files() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let mut c = db.conn().await;
    let seeded = server::cli::seed::seed(&mut c, &state.media, 500)
        .await
        .unwrap();
    assert_eq!(seeded.images, 500);
    assert_eq!(db.count("images").await, 500);
    assert_eq!(db.count("generations").await, 500);
    assert_eq!(db.count("media_blobs").await as usize, seeded.stored * 4);
    // Every stored file is counted once per record that uses it.
    let total: Option<i64> = domain::db::schema::media_blobs::table
        .select(diesel::dsl::sum(domain::db::schema::media_blobs::refs))
        .first(&mut c)
        .await
        .unwrap();
    assert_eq!(total, Some(2000));
    // Rating totals agree with the rating rows.
    let mismatched: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM images i WHERE (i.rating_count, i.rating_sum) <> \
         (SELECT count(*)::int, coalesce(sum(stars), 0)::int FROM image_ratings r WHERE r.image_id = i.id)",
    )
    .get_result::<Count>(&mut c)
    .await
    .unwrap()
    .n;
    assert_eq!(mismatched, 0);
    assert!(seeded.ratings > 0);
    // Explore has most of them, and walks cleanly.
    let router = app(&state);
    let public = ids_where(&db, "public").await;
    assert!(public.len() > 350 && public.len() < 480, "{}", public.len());
    let seen = walk(&router, None, "explore", |_| async {}).await;
    assert_once(&seen, &public);
    // Their files are real pictures.
    let first: Page = serde_json::from_value(page(&router, None, "explore", None).await.1).unwrap();
    let res = send(&router, support::get_req(&first.items[0].src.small)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/webp");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn gallery_queries_use_their_keyset_indexes() {
    let db = TestDb::new().await;
    let state = state_for(&db);
    let mut c = db.conn().await;
    server::cli::seed::seed(&mut c, &state.media, 3000)
        .await
        .unwrap();
    let owner: Uuid = domain::db::schema::users::table
        .select(domain::db::schema::users::id)
        .first(&mut c)
        .await
        .unwrap();
    // The statements as the gallery builds them, on realistic seeded data with the planner
    // free to choose (tests/suite/query_plans.rs holds them to their index on any data).
    let deep = Some(domain::gallery::cursor::Position {
        created_at: chrono::Utc::now() - chrono::Duration::days(30),
        id: Uuid::nil(),
    });
    for (scope, owner, index) in [
        (
            domain::gallery::Scope::Explore,
            None,
            "images_public_created_idx",
        ),
        (
            domain::gallery::Scope::Mine,
            Some(owner),
            "images_owner_created_idx",
        ),
    ] {
        let query = domain::gallery::records::page_query(scope, owner, deep, 25);
        let text = domain::db::explain(&mut c, query).await.unwrap();
        assert!(text.contains(index), "{index} not used:\n{text}");
        assert!(
            !text.contains("Sort"),
            "the index gives the order; no sort:\n{text}"
        );
    }
}
