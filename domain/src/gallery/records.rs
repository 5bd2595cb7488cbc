//! The gallery's queries.
//!
//! Every list is a keyset range on `(created_at, id)` served by a matching index:
//! `images_owner_created_idx` for "My images", the partial `images_public_created_idx` for
//! Explore. The row comparison `(created_at, id) < ($1, $2)` is what lets PostgreSQL start
//! the index scan at the cursor instead of counting rows up to it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::cursor::Position;
use super::{Card, Scope, Sources};
use crate::create::records::media_url;
use crate::db::schema::{generations, image_ratings, images, media_blobs};

/// An image with what a gallery card and the image page need.
#[derive(Clone, Debug, Queryable)]
pub struct CardRow {
    /// Image id.
    pub id: Uuid,
    /// Pixels.
    pub width: i32,
    /// Pixels.
    pub height: i32,
    /// Its generation's prompt.
    pub prompt: String,
    /// Style slug.
    pub style: String,
    /// Format slug.
    pub format: String,
    /// Owner.
    pub user_id: Option<Uuid>,
    /// PNG key.
    pub png_key: String,
    /// WebP 320 key.
    pub webp_320_key: String,
    /// WebP 720 key.
    pub webp_720_key: String,
    /// WebP full key.
    pub webp_full_key: String,
    /// PNG size.
    pub bytes: i64,
    /// Shared.
    pub public: bool,
    /// Ratings.
    pub rating_count: i32,
    /// Sum of the ratings' stars.
    pub rating_sum: i32,
    /// Made at.
    pub created_at: DateTime<Utc>,
}

type CardColumns = (
    images::id,
    images::width,
    images::height,
    generations::prompt,
    generations::style,
    generations::format,
    images::user_id,
    images::png_key,
    images::webp_320_key,
    images::webp_720_key,
    images::webp_full_key,
    images::bytes,
    images::public,
    images::rating_count,
    images::rating_sum,
    images::created_at,
);

const CARD_COLUMNS: CardColumns = (
    images::id,
    images::width,
    images::height,
    generations::prompt,
    generations::style,
    generations::format,
    images::user_id,
    images::png_key,
    images::webp_320_key,
    images::webp_720_key,
    images::webp_full_key,
    images::bytes,
    images::public,
    images::rating_count,
    images::rating_sum,
    images::created_at,
);

/// The mean of `count` ratings summing to `sum`, when there are any.
pub fn mean(count: i32, sum: i32) -> Option<f32> {
    (count > 0).then(|| sum as f32 / count as f32)
}

impl CardRow {
    /// Where the next page starts when this is the last row of a page.
    pub fn position(&self) -> Position {
        Position {
            created_at: self.created_at,
            id: self.id,
        }
    }

    /// The card a gallery shows.
    pub fn card(&self) -> Card {
        Card {
            id: self.id,
            width: u32::try_from(self.width).unwrap_or(1),
            height: u32::try_from(self.height).unwrap_or(1),
            prompt: self.prompt.clone(),
            src: Sources {
                png: media_url(&self.png_key),
                small: media_url(&self.webp_320_key),
                medium: media_url(&self.webp_720_key),
                full: media_url(&self.webp_full_key),
            },
            rating: mean(self.rating_count, self.rating_sum),
            ratings: u32::try_from(self.rating_count).unwrap_or(0),
            public: self.public,
        }
    }
}

/// A query this module runs, as a value: run with `load`, or shown with `db::explain`.
pub trait CardQuery:
    diesel_async::methods::LoadQuery<'static, AsyncPgConnection, CardRow>
    + diesel_async::RunQueryDsl<AsyncPgConnection>
    + diesel::query_builder::QueryFragment<diesel::pg::Pg>
    + diesel::query_builder::QueryId
    + Send
    + 'static
{
}

impl<T> CardQuery for T where
    T: diesel_async::methods::LoadQuery<'static, AsyncPgConnection, CardRow>
        + diesel_async::RunQueryDsl<AsyncPgConnection>
        + diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryId
        + Send
        + 'static
{
}

/// Up to `limit` images of a gallery, newest first, strictly after `after`.
///
/// `owner` is the gallery's owner for [`Scope::Mine`] (ignored for Explore).
pub async fn page(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    owner: Option<Uuid>,
    after: Option<Position>,
    limit: i64,
) -> QueryResult<Vec<CardRow>> {
    page_query(scope, owner, after, limit).load(conn).await
}

/// The statement [`page`] runs.
pub fn page_query(
    scope: Scope,
    owner: Option<Uuid>,
    after: Option<Position>,
    limit: i64,
) -> impl CardQuery {
    let mut query = images::table
        .inner_join(generations::table)
        .select(CARD_COLUMNS)
        .order((images::created_at.desc(), images::id.desc()))
        .limit(limit)
        .into_boxed();
    query = match scope {
        // No owner means nobody's images (a signed-out "My images" never gets here).
        Scope::Mine => query.filter(images::user_id.eq(owner.unwrap_or_default())),
        Scope::Explore => query.filter(images::public.eq(true)),
    };
    // The first page starts after a position later than any image, so every page runs the
    // same statement with the same plan: page 500 costs what page 1 does by construction.
    let p = after.unwrap_or(Position {
        created_at: chrono::DateTime::<Utc>::MAX_UTC,
        id: Uuid::max(),
    });
    query.filter(
        diesel::dsl::sql::<Bool>("(images.created_at, images.id) < (")
            .bind::<Timestamptz, _>(p.created_at)
            .sql(", ")
            .bind::<SqlUuid, _>(p.id)
            .sql(")"),
    )
}

/// One image, if `viewer` may see it: their own, or shared.
pub async fn visible(
    conn: &mut AsyncPgConnection,
    viewer: Option<Uuid>,
    id: Uuid,
) -> QueryResult<Option<CardRow>> {
    let mut rows = visible_query(viewer, id).load(conn).await?;
    Ok(rows.pop())
}

/// The statement [`visible`] runs.
pub fn visible_query(viewer: Option<Uuid>, id: Uuid) -> impl CardQuery {
    let query = images::table
        .inner_join(generations::table)
        .select(CARD_COLUMNS)
        .filter(images::id.eq(id))
        .limit(1)
        .into_boxed();
    match viewer {
        Some(v) => query.filter(images::public.eq(true).or(images::user_id.eq(v))),
        None => query.filter(images::public.eq(true)),
    }
}

/// `user`'s rating of `image`.
pub async fn rating_of(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    image: Uuid,
) -> QueryResult<Option<u8>> {
    let stars: Option<i16> = image_ratings::table
        .find((image, user))
        .select(image_ratings::stars)
        .first(conn)
        .await
        .optional()?;
    Ok(stars.and_then(|s| u8::try_from(s).ok()))
}

/// Rates `image` as `user` (`Some(stars)`; a second rating replaces the first) or clears
/// their rating (`None`), if they may see it. Returns the image's new `(count, sum)`, or
/// `None` when there is no such image for them (nothing written).
///
/// One transaction, and the answer is computed from what it read and wrote before the
/// commit, never read after it: a failure after the commit must not turn a stored rating
/// into a refusal. The image row is locked first (as the totals trigger would lock it), so
/// its totals and the user's previous rating cannot change before the commit: every rating
/// of the image takes the same lock. The visibility check and the write are in the same
/// transaction, so a concurrent unshare or delete waits for it or goes first.
pub async fn set_rating(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    image: Uuid,
    stars: Option<u8>,
) -> QueryResult<Option<(i32, i32)>> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let totals: Option<(i32, i32)> = images::table
            .find(image)
            .filter(images::public.eq(true).or(images::user_id.eq(user)))
            .select((images::rating_count, images::rating_sum))
            .for_no_key_update()
            .first(conn)
            .await
            .optional()?;
        let Some((count, sum)) = totals else {
            return Ok(None);
        };
        let before: Option<i16> = image_ratings::table
            .find((image, user))
            .select(image_ratings::stars)
            .first(conn)
            .await
            .optional()?;
        match stars {
            Some(s) if before != Some(i16::from(s)) => {
                diesel::insert_into(image_ratings::table)
                    .values((
                        image_ratings::image_id.eq(image),
                        image_ratings::user_id.eq(user),
                        image_ratings::stars.eq(i16::from(s)),
                    ))
                    .on_conflict((image_ratings::image_id, image_ratings::user_id))
                    .do_update()
                    .set((
                        image_ratings::stars.eq(i16::from(s)),
                        image_ratings::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
                    .await?;
            }
            Some(_) => {}
            None if before.is_some() => {
                diesel::delete(image_ratings::table.find((image, user)))
                    .execute(conn)
                    .await?;
            }
            None => {}
        }
        // The trigger applies the same change to the locked row.
        let after = stars.map(i16::from);
        let count = count - i32::from(before.is_some()) + i32::from(after.is_some());
        let sum = sum - i32::from(before.unwrap_or(0)) + i32::from(after.unwrap_or(0));
        Ok(Some((count, sum)))
    })
    .await
}

/// `(count, sum)` of an image's ratings.
pub async fn totals(conn: &mut AsyncPgConnection, image: Uuid) -> QueryResult<Option<(i32, i32)>> {
    images::table
        .find(image)
        .select((images::rating_count, images::rating_sum))
        .first(conn)
        .await
        .optional()
}

/// Shares or unshares `owner`'s image; returns whether there was one.
pub async fn set_public(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    image: Uuid,
    public: bool,
) -> QueryResult<bool> {
    let n = diesel::update(
        images::table
            .filter(images::id.eq(image))
            .filter(images::user_id.eq(owner)),
    )
    .set(images::public.eq(public))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Whether `owner`'s image is shared, and its four keys (PNG, WebP 320, 720, full); `None`
/// when they have no such image.
pub async fn owned_media(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    image: Uuid,
) -> QueryResult<Option<(bool, [String; 4])>> {
    let row: Option<(bool, String, String, String, String)> = images::table
        .filter(images::id.eq(image))
        .filter(images::user_id.eq(owner))
        .select((
            images::public,
            images::png_key,
            images::webp_320_key,
            images::webp_720_key,
            images::webp_full_key,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(public, png, small, medium, full)| (public, [png, small, medium, full])))
}

/// Counts `keys` as stored files nobody uses yet (refs at zero), before they are written, so
/// that if this process stops before a record takes them the sweeper still finds them.
pub async fn reserve_blobs(conn: &mut AsyncPgConnection, keys: &[String]) -> QueryResult<()> {
    let rows: Vec<_> = keys
        .iter()
        .map(|k| (media_blobs::key.eq(k.as_str()), media_blobs::refs.eq(0)))
        .collect();
    diesel::insert_into(media_blobs::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes `owner`'s shared image private and moves it from the keys `old` to `new` in one
/// statement (the `images` trigger moves the references), provided it is still shared and
/// still at `old`. Returns whether it was.
pub async fn unshare_to(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    image: Uuid,
    old: &[String; 4],
    new: &[String; 4],
) -> QueryResult<bool> {
    let n = diesel::update(
        images::table
            .filter(images::id.eq(image))
            .filter(images::user_id.eq(owner))
            .filter(images::public.eq(true))
            .filter(images::png_key.eq(old[0].as_str()))
            .filter(images::webp_320_key.eq(old[1].as_str()))
            .filter(images::webp_720_key.eq(old[2].as_str()))
            .filter(images::webp_full_key.eq(old[3].as_str())),
    )
    .set((
        images::public.eq(false),
        images::png_key.eq(new[0].as_str()),
        images::webp_320_key.eq(new[1].as_str()),
        images::webp_720_key.eq(new[2].as_str()),
        images::webp_full_key.eq(new[3].as_str()),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Deletes `owner`'s image (and its generation when it was the last image), in one
/// transaction. Returns the keys it referenced, or `None` when there was no such image.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    image: Uuid,
) -> QueryResult<Option<Vec<String>>> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let row: Option<(Uuid, String, String, String, String)> = diesel::delete(
            images::table
                .filter(images::id.eq(image))
                .filter(images::user_id.eq(owner)),
        )
        .returning((
            images::generation_id,
            images::png_key,
            images::webp_320_key,
            images::webp_720_key,
            images::webp_full_key,
        ))
        .get_result(conn)
        .await
        .optional()?;
        let Some((generation, png, small, medium, full)) = row else {
            return Ok(None);
        };
        // A generation with no images left is gone from every list; drop its record too,
        // unless it is still being made.
        diesel::delete(
            generations::table
                .filter(generations::id.eq(generation))
                .filter(generations::status.eq_any(["succeeded", "failed"]))
                .filter(diesel::dsl::not(diesel::dsl::exists(
                    images::table.filter(images::generation_id.eq(generation)),
                ))),
        )
        .execute(conn)
        .await?;
        Ok(Some(vec![png, small, medium, full]))
    })
    .await
}

/// Locks the unreferenced blobs among `keys` (skipping any another process is already
/// deleting), runs `remove` on each, and forgets those it removed, all in one transaction:
/// a file is never deleted while its row says someone uses it.
pub async fn free_unreferenced<F, Fut>(
    conn: &mut AsyncPgConnection,
    keys: &[String],
    remove: F,
) -> QueryResult<Vec<String>>
where
    F: Fn(String) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = bool> + Send,
{
    use diesel_async::AsyncConnection;
    let keys = keys.to_vec();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let locked: Vec<String> = media_blobs::table
            .filter(media_blobs::key.eq_any(&keys))
            .filter(media_blobs::refs.eq(0))
            .select(media_blobs::key)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        let mut removed = Vec::with_capacity(locked.len());
        for key in locked {
            if remove(key.clone()).await {
                removed.push(key);
            }
        }
        diesel::delete(media_blobs::table.filter(media_blobs::key.eq_any(&removed)))
            .execute(conn)
            .await?;
        Ok(removed)
    })
    .await
}

/// Keys of blobs nobody has referenced for at least `older_than`: what the sweeper frees.
pub async fn stale_unreferenced(
    conn: &mut AsyncPgConnection,
    older_than: std::time::Duration,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let cutoff = Utc::now() - chrono::TimeDelta::from_std(older_than).unwrap_or_default();
    media_blobs::table
        .filter(media_blobs::refs.eq(0))
        .filter(media_blobs::updated_at.lt(cutoff))
        .select(media_blobs::key)
        .limit(limit)
        .load(conn)
        .await
}

/// How many records use `key` (`None`: no blob row).
pub async fn refs_of(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<Option<i32>> {
    media_blobs::table
        .find(key)
        .select(media_blobs::refs)
        .first(conn)
        .await
        .optional()
}

/// `(refs, public_refs)` of the stored file at `key`: how many records use it, and how many
/// of those are shared images (`None`: no blob row). What `/media/` decides caching on.
pub async fn blob_uses(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<Option<(i32, i32)>> {
    media_blobs::table
        .find(key)
        .select((media_blobs::refs, media_blobs::public_refs))
        .first(conn)
        .await
        .optional()
}
