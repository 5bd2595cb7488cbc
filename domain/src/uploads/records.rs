//! Upload rows: tickets, blobs (one per content) and assets (one per user and content).
//!

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{assets, upload_blobs, upload_tickets};

/// A stored content.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = upload_blobs, check_for_backend(diesel::pg::Pg))]
pub struct BlobRow {
    /// Content hash, lowercase hex.
    pub sha256: String,
    /// The type its bytes are.
    pub mime: String,
    /// Size in bytes.
    pub bytes: i64,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// The original's key.
    pub original_key: String,
    /// The 320 px WebP.
    pub webp_320_key: Option<String>,
    /// The 720 px WebP.
    pub webp_720_key: Option<String>,
    /// The full-size WebP.
    pub webp_full_key: Option<String>,
    /// `processing`, `ready` or `failed`.
    pub state: String,
    /// Why the variants failed.
    pub error: Option<String>,
}

/// A user's asset.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = assets, check_for_backend(diesel::pg::Pg))]
pub struct AssetRow {
    /// Identifier.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Its content.
    pub sha256: String,
    /// The name it was uploaded with.
    pub filename: String,
    /// Size in bytes.
    pub bytes: i64,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// A new content to record.
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = upload_blobs)]
pub struct NewBlob<'a> {
    /// Content hash.
    pub sha256: &'a str,
    /// Its type.
    pub mime: &'a str,
    /// Size.
    pub bytes: i64,
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// Where the original is stored.
    pub original_key: &'a str,
}

/// Records a ticket for an upload URL.
pub async fn insert_ticket(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user: Uuid,
    filename: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(upload_tickets::table)
        .values((
            upload_tickets::id.eq(id),
            upload_tickets::user_id.eq(user),
            upload_tickets::filename.eq(filename),
            upload_tickets::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// What happened to a ticket someone tried to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consumed {
    /// It was valid and is now used; the file name it was issued for.
    Ok(String),
    /// No such ticket for this user.
    Unknown,
    /// Used before.
    Used,
    /// Expired.
    Expired,
}

/// Marks the ticket used, once: of two requests racing with one URL exactly one gets `Ok`.
pub async fn consume_ticket(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user: Uuid,
) -> QueryResult<Consumed> {
    let taken: Option<String> = diesel::update(
        upload_tickets::table
            .filter(upload_tickets::id.eq(id))
            .filter(upload_tickets::user_id.eq(user))
            .filter(upload_tickets::used_at.is_null())
            .filter(upload_tickets::expires_at.gt(diesel::dsl::now)),
    )
    .set(upload_tickets::used_at.eq(diesel::dsl::now))
    .returning(upload_tickets::filename)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(name) = taken {
        return Ok(Consumed::Ok(name));
    }
    let row: Option<(Option<DateTime<Utc>>, DateTime<Utc>)> = upload_tickets::table
        .filter(upload_tickets::id.eq(id))
        .filter(upload_tickets::user_id.eq(user))
        .select((upload_tickets::used_at, upload_tickets::expires_at))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        None => Consumed::Unknown,
        Some((Some(_), _)) => Consumed::Used,
        Some((None, _)) => Consumed::Expired,
    })
}

/// Deletes tickets that expired more than a day ago; returns how many.
pub async fn prune_tickets(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(
        upload_tickets::table
            .filter(upload_tickets::expires_at.lt(Utc::now() - chrono::Duration::days(1))),
    )
    .execute(conn)
    .await
}

/// The user's asset with this content, if they have one.
pub async fn asset_by_content(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    sha256: &str,
) -> QueryResult<Option<(AssetRow, BlobRow)>> {
    assets::table
        .inner_join(upload_blobs::table)
        .filter(assets::user_id.eq(user))
        .filter(assets::sha256.eq(sha256))
        .select((AssetRow::as_select(), BlobRow::as_select()))
        .first(conn)
        .await
        .optional()
}

/// The stored content with this hash, if any.
pub async fn blob(conn: &mut AsyncPgConnection, sha256: &str) -> QueryResult<Option<BlobRow>> {
    upload_blobs::table
        .find(sha256)
        .select(BlobRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// How an asset was recorded.
#[derive(Clone, Debug)]
pub enum Recorded {
    /// A new asset on content stored by this upload (`blob_created`) or stored before.
    Created {
        /// The asset.
        asset: AssetRow,
        /// The content.
        blob: BlobRow,
        /// Whether this upload's stored file became the blob (false: the content was there
        /// already, and the file this upload stored is surplus).
        blob_created: bool,
    },
    /// The user already had this content (a concurrent upload of the same file).
    Existing {
        /// Their asset.
        asset: AssetRow,
        /// The content.
        blob: BlobRow,
    },
}

/// Records `user`'s asset on the content `blob`, creating the blob row if no one has stored
/// this content yet, and enqueues the variants job for a new blob: all in one transaction, so
/// a failure leaves no rows. A blob that existed gets its `duplicates` count raised. The
/// caller wakes the workers ([`crate::jobs::wake`]) once this has committed a new blob.
pub async fn record(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    filename: &str,
    blob: NewBlob<'_>,
) -> QueryResult<Recorded> {
    let blob = blob.clone();
    let filename = filename.to_owned();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let mut created = false;
        let row = loop {
            created |= diesel::insert_into(upload_blobs::table)
                .values(&blob)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?
                == 1;
            // Lock the content's row: a delete that would bring it to zero references waits
            // for us, and then sees our reference. If a delete took it between the insert and
            // the lock, insert it again.
            let locked: Option<BlobRow> = upload_blobs::table
                .find(blob.sha256)
                .select(BlobRow::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?;
            if let Some(row) = locked {
                break row;
            }
        };
        let inserted: Option<AssetRow> = diesel::insert_into(assets::table)
            .values((
                assets::user_id.eq(user),
                assets::sha256.eq(blob.sha256),
                assets::filename.eq(&filename),
                assets::bytes.eq(blob.bytes),
            ))
            .on_conflict((assets::user_id, assets::sha256))
            .do_nothing()
            .returning(AssetRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if !created {
            count_duplicate(conn, blob.sha256).await?;
        }
        match inserted {
            Some(asset) => {
                if created {
                    let payload = serde_json::json!({ "sha256": blob.sha256 });
                    crate::jobs::enqueue(
                        conn,
                        super::VARIANTS_JOB,
                        &payload,
                        crate::jobs::DEFAULT_MAX_ATTEMPTS,
                    )
                    .await?;
                }
                Ok(Recorded::Created {
                    asset,
                    blob: row,
                    blob_created: created,
                })
            }
            None => {
                let asset = assets::table
                    .filter(assets::user_id.eq(user))
                    .filter(assets::sha256.eq(blob.sha256))
                    .select(AssetRow::as_select())
                    .first(conn)
                    .await?;
                Ok(Recorded::Existing { asset, blob: row })
            }
        }
    })
    .await
}

/// Counts one upload that found its content already stored.
pub async fn count_duplicate(conn: &mut AsyncPgConnection, sha256: &str) -> QueryResult<()> {
    diesel::update(upload_blobs::table.find(sha256))
        .set(upload_blobs::duplicates.eq(upload_blobs::duplicates + 1))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Uploads that found their content already stored, over all contents.
pub async fn duplicates_avoided(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    upload_blobs::table
        .select(diesel::dsl::sum(upload_blobs::duplicates))
        .first::<Option<i64>>(conn)
        .await
        .map(|n| n.unwrap_or(0))
}

/// The user's assets, newest first (at most `limit`).
pub async fn list(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    limit: i64,
) -> QueryResult<Vec<(AssetRow, BlobRow)>> {
    assets::table
        .inner_join(upload_blobs::table)
        .filter(assets::user_id.eq(user))
        .order((assets::created_at.desc(), assets::id.desc()))
        .limit(limit)
        .select((AssetRow::as_select(), BlobRow::as_select()))
        .load(conn)
        .await
}

/// One of the user's assets.
pub async fn find(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
) -> QueryResult<Option<(AssetRow, BlobRow)>> {
    assets::table
        .inner_join(upload_blobs::table)
        .filter(assets::user_id.eq(user))
        .filter(assets::id.eq(id))
        .select((AssetRow::as_select(), BlobRow::as_select()))
        .first(conn)
        .await
        .optional()
}

/// Deletes the user's asset and, when no asset uses its content any more, the content's row
/// (whose trigger then drops its files' references). Returns the asset's size and the file
/// keys that may now be unreferenced, or `None` when there is no such asset.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
) -> QueryResult<Option<(i64, Vec<String>)>> {
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let Some((sha, bytes)) = diesel::delete(
            assets::table
                .filter(assets::id.eq(id))
                .filter(assets::user_id.eq(user)),
        )
        .returning((assets::sha256, assets::bytes))
        .get_result::<(String, i64)>(conn)
        .await
        .optional()?
        else {
            return Ok(None);
        };
        let keys = delete_unreferenced_blob(conn, &sha).await?;
        Ok(Some((bytes, keys)))
    })
    .await
}

/// Deletes the content row if nothing references it; returns its file keys (empty when it
/// is still used).
pub async fn delete_unreferenced_blob(
    conn: &mut AsyncPgConnection,
    sha256: &str,
) -> QueryResult<Vec<String>> {
    let gone: Option<BlobRow> = diesel::delete(
        upload_blobs::table
            .filter(upload_blobs::sha256.eq(sha256))
            .filter(upload_blobs::refs.eq(0)),
    )
    .returning(BlobRow::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    Ok(gone.map(|b| file_keys(&b)).unwrap_or_default())
}

/// Every stored file of a content.
pub fn file_keys(b: &BlobRow) -> Vec<String> {
    std::iter::once(b.original_key.clone())
        .chain(b.webp_320_key.clone())
        .chain(b.webp_720_key.clone())
        .chain(b.webp_full_key.clone())
        .collect()
}

/// Content rows no asset has referenced for at least `older_than` (their owners' accounts
/// were deleted); deletes them and returns their file keys.
pub async fn delete_stale_blobs(
    conn: &mut AsyncPgConnection,
    older_than: std::time::Duration,
) -> QueryResult<Vec<String>> {
    let cutoff = Utc::now() - chrono::TimeDelta::from_std(older_than).unwrap_or_default();
    let gone: Vec<BlobRow> = diesel::delete(
        upload_blobs::table
            .filter(upload_blobs::refs.eq(0))
            .filter(upload_blobs::updated_at.lt(cutoff)),
    )
    .returning(BlobRow::as_returning())
    .get_results(conn)
    .await?;
    Ok(gone.iter().flat_map(file_keys).collect())
}

/// Records the variants of a content still `processing`. Returns false when there was none
/// (another attempt finished first, or the content was deleted): the caller's files are then
/// surplus.
pub async fn set_variants(
    conn: &mut AsyncPgConnection,
    sha256: &str,
    keys: [&str; 3],
) -> QueryResult<bool> {
    diesel::update(
        upload_blobs::table
            .filter(upload_blobs::sha256.eq(sha256))
            .filter(upload_blobs::state.eq("processing")),
    )
    .set((
        upload_blobs::webp_320_key.eq(keys[0]),
        upload_blobs::webp_720_key.eq(keys[1]),
        upload_blobs::webp_full_key.eq(keys[2]),
        upload_blobs::state.eq("ready"),
        upload_blobs::error.eq(None::<String>),
        upload_blobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Marks a content's variants failed, with the reason its owners see.
pub async fn set_failed(
    conn: &mut AsyncPgConnection,
    sha256: &str,
    reason: &str,
) -> QueryResult<()> {
    diesel::update(
        upload_blobs::table
            .filter(upload_blobs::sha256.eq(sha256))
            .filter(upload_blobs::state.eq("processing")),
    )
    .set((
        upload_blobs::state.eq("failed"),
        upload_blobs::error.eq(reason),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}
