//! `socialcraft seed --images N`: fills a database with N realistic image records for demos
//! and benchmarks.
//!
//! A handful of real pictures (the built-in renderer, every format, a few styles) are stored
//! once; the N records share them, as de-duplicated content would. Prompts are drawn from
//! templates with topics and hashtags so trends have something to rank; times spread over the
//! last 90 days; most images are shared on Explore; about one in ten is rated by the seed
//! creators. The seed creators cannot sign in (their password hash is unusable).

use std::time::Instant;

use app::create::{Format, Style};
use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::create::records::NewImage;
use domain::db::schema::{generations, image_ratings, images, media_blobs, users};
use domain::media::{MediaKind, MediaStore};
use uuid::Uuid;

use crate::config::Config;
use crate::wiring::{connect, with_database};
use domain::create::provider::{ImageRequest, render_builtin};
use domain::create::variants;
use domain::splitmix::SplitMix64;

/// Seed creators' emails: `seed-creator-{n}@socialcraft.invalid` (a reserved domain).
pub const CREATORS: usize = 5;
const BATCH: usize = 2_000;
const SPREAD_DAYS: i64 = 90;

const SUBJECTS: [&str; 16] = [
    "golden hour over city rooftops",
    "summer sale on handmade ceramics",
    "coffee shop grand opening",
    "minimalist workspace tour",
    "vegan burger launch",
    "mountain hiking weekend",
    "spring fashion lookbook",
    "live podcast recording",
    "neon night market",
    "productivity tips for freelancers",
    "beach cleanup volunteers",
    "retro arcade tournament",
    "skincare routine essentials",
    "bookshop author signing",
    "electric bike commute",
    "street food festival",
];

const HOOKS: [&str; 8] = [
    "Join us for",
    "Behind the scenes:",
    "This week only:",
    "Meet the team behind",
    "Five reasons to love",
    "Save the date for",
    "New drop:",
    "Your guide to",
];

const TAGS: [&str; 10] = [
    "#summersale",
    "#mondaymotivation",
    "#smallbusiness",
    "#foodie",
    "#travel",
    "#design",
    "#sustainability",
    "#fitness",
    "#creator",
    "#launchday",
];

/// One stored picture the seeded records share.
struct Blob {
    format: Format,
    style: Style,
    width: i32,
    height: i32,
    png: String,
    small: String,
    medium: String,
    full: String,
    sha256: String,
    bytes: i64,
}

/// What a seed run made.
#[derive(Debug)]
pub struct Seeded {
    /// Image records inserted.
    pub images: usize,
    /// Distinct pictures stored for them.
    pub stored: usize,
    /// Ratings inserted.
    pub ratings: usize,
    /// Wall time.
    pub seconds: f64,
}

async fn store_blobs(media: &MediaStore) -> Result<Vec<Blob>, String> {
    let styles = [Style::ALL[0], Style::ALL[2], Style::ALL[5]];
    let mut blobs = Vec::new();
    for (i, format) in Format::ALL.into_iter().enumerate() {
        for (j, style) in styles.into_iter().enumerate() {
            let request = ImageRequest {
                prompt: SUBJECTS[(i * 3 + j) % SUBJECTS.len()].to_owned(),
                style,
                format,
                seed: (i * 10 + j) as u64,
                brand: None,
            };
            let encoded = tokio::task::spawn_blocking(move || {
                let picture = render_builtin(&request).map_err(|e| e.detail)?;
                variants::encode_all(&picture).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())??;
            let put = |bytes: Vec<u8>, kind| async move {
                media.put(bytes, kind).await.map_err(|e| e.to_string())
            };
            let png = put(encoded.png, MediaKind::Png).await?;
            let small = put(encoded.webp_320, MediaKind::Webp).await?;
            let medium = put(encoded.webp_720, MediaKind::Webp).await?;
            let full = put(encoded.webp_full, MediaKind::Webp).await?;
            blobs.push(Blob {
                format,
                style,
                width: encoded.width as i32,
                height: encoded.height as i32,
                png: png.key,
                small: small.key,
                medium: medium.key,
                full: full.key,
                sha256: png.sha256,
                bytes: png.size as i64,
            });
        }
    }
    Ok(blobs)
}

async fn creators(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Uuid>> {
    let emails: Vec<String> = (0..CREATORS)
        .map(|n| format!("seed-creator-{n}@socialcraft.invalid"))
        .collect();
    let rows: Vec<_> = emails
        .iter()
        .map(|e| {
            (
                users::email.eq(e),
                // Shaped as the column requires but not a valid PHC string: no password ever
                // matches it.
                users::password_hash.eq("$argon2id$disabled"),
                users::tier.eq("enterprise"),
            )
        })
        .collect();
    diesel::insert_into(users::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    users::table
        .filter(users::email.eq_any(&emails))
        .select(users::id)
        .order(users::email)
        .load(conn)
        .await
}

/// Inserts `count` image records (with their generations) sharing a few stored pictures.
pub async fn seed(
    conn: &mut AsyncPgConnection,
    media: &MediaStore,
    count: usize,
) -> Result<Seeded, String> {
    let started = Instant::now();
    let blobs = store_blobs(media).await?;
    let creators = creators(conn).await.map_err(|e| e.to_string())?;
    let now = Utc::now();
    let step =
        TimeDelta::seconds(SPREAD_DAYS * 86_400) / i32::try_from(count.max(1)).unwrap_or(i32::MAX);
    let mut rng = SplitMix64(0x5eed_0000 ^ count as u64);
    let (blobs, stored) = (&blobs, blobs.len());
    let ratings = conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            // Triggers fire per row: the blob reference counts would update the same few rows
            // 4N times, and every generation would send a notification. Without them (when
            // the role may switch them off), the totals are set once at the end instead.
            let quiet = diesel::sql_query("SET LOCAL session_replication_role = replica")
                .execute(conn)
                .await
                .is_ok();
            if !quiet {
                tracing::info!("seeding with triggers on (not a superuser): slower");
            }
            let mut ratings = 0usize;
            // How many records use each stored picture, for the reference counts.
            let mut uses = vec![0i32; blobs.len()];
            let mut done = 0;
            while done < count {
                let n = BATCH.min(count - done);
                let mut gens = Vec::with_capacity(n);
                let mut imgs = Vec::with_capacity(n);
                let mut flags = Vec::with_capacity(n);
                for k in 0..n {
                    let i = done + k;
                    let which = rng.below(blobs.len() as u64) as usize;
                    uses[which] += 1;
                    let blob = &blobs[which];
                    let jitter = TimeDelta::milliseconds(
                        rng.below(step.num_milliseconds().max(1) as u64) as i64,
                    );
                    let at = now - step * i32::try_from(i).unwrap_or(i32::MAX) - jitter;
                    let prompt = format!(
                        "{} {} {}",
                        HOOKS[rng.below(HOOKS.len() as u64) as usize],
                        SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize],
                        TAGS[rng.below(TAGS.len() as u64) as usize]
                    );
                    let id = Uuid::new_v4();
                    let owner = creators[i % creators.len()];
                    gens.push((
                        generations::id.eq(id),
                        generations::prompt.eq(prompt),
                        generations::style.eq(blob.style.slug()),
                        generations::format.eq(blob.format.slug()),
                        generations::variations.eq(1),
                        generations::provider.eq("builtin"),
                        generations::seed.eq(i as i64),
                        generations::status.eq("succeeded"),
                        generations::progress.eq(100),
                        generations::created_at.eq(at),
                        generations::started_at.eq(Some(at)),
                        generations::finished_at.eq(Some(at + TimeDelta::milliseconds(400))),
                        generations::user_id.eq(Some(owner)),
                    ));
                    imgs.push(NewImage {
                        generation_id: id,
                        variation: 0,
                        seed: i as i64,
                        width: blob.width,
                        height: blob.height,
                        png_key: blob.png.clone(),
                        webp_320_key: blob.small.clone(),
                        webp_720_key: blob.medium.clone(),
                        webp_full_key: blob.full.clone(),
                        sha256: blob.sha256.clone(),
                        bytes: blob.bytes,
                        render_ms: 120 + rng.below(200) as i32,
                        user_id: Some(owner),
                    });
                    // Most are shared, as a busy Explore would have them.
                    flags.push((at, rng.below(100) < 85));
                }
                diesel::insert_into(generations::table)
                    .values(&gens)
                    .execute(conn)
                    .await?;
                let ids: Vec<Uuid> = diesel::insert_into(images::table)
                    .values(&imgs)
                    .returning(images::id)
                    .get_results(conn)
                    .await?;
                // Images take the generation's time and sharing after insert (NewImage is the
                // worker's shape, which has neither).
                let (shared, times): (Vec<bool>, Vec<chrono::DateTime<Utc>>) =
                    flags.iter().map(|(at, p)| (*p, *at)).unzip();
                diesel::sql_query(
                    "UPDATE images SET created_at = v.at, public = v.public \
                     FROM unnest($1::uuid[], $2::timestamptz[], $3::bool[]) AS v(id, at, public) \
                     WHERE images.id = v.id",
                )
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Timestamptz>, _>(&times)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Bool>, _>(&shared)
                .execute(conn)
                .await?;
                let mut votes = Vec::new();
                for id in &ids {
                    if rng.below(10) == 0 {
                        for creator in &creators {
                            if rng.below(2) == 0 {
                                votes.push((
                                    image_ratings::image_id.eq(*id),
                                    image_ratings::user_id.eq(*creator),
                                    image_ratings::stars.eq(1 + rng.below(5) as i16),
                                ));
                            }
                        }
                    }
                }
                if !votes.is_empty() {
                    ratings += diesel::insert_into(image_ratings::table)
                        .values(&votes)
                        .execute(conn)
                        .await?;
                }
                done += n;
            }
            if quiet {
                diesel::sql_query(
                    "UPDATE images SET rating_count = t.n, rating_sum = t.s \
                     FROM (SELECT image_id, count(*)::int AS n, sum(stars)::int AS s \
                           FROM image_ratings GROUP BY image_id) t \
                     WHERE images.id = t.image_id \
                       AND (images.rating_count, images.rating_sum) IS DISTINCT FROM (t.n, t.s)",
                )
                .execute(conn)
                .await?;
                for (blob, n) in blobs.iter().zip(&uses) {
                    for key in [&blob.png, &blob.small, &blob.medium, &blob.full] {
                        // A picture no record drew is counted at zero, so the sweeper
                        // removes its files.
                        diesel::insert_into(media_blobs::table)
                            .values((media_blobs::key.eq(key), media_blobs::refs.eq(*n)))
                            .on_conflict(media_blobs::key)
                            .do_update()
                            .set(media_blobs::refs.eq(media_blobs::refs + *n))
                            .execute(conn)
                            .await?;
                    }
                }
                // And how many shared images use each file (what `/media/` caches publicly).
                diesel::sql_query(
                    "UPDATE media_blobs b SET public_refs = p.n \
                     FROM (SELECT k, count(*)::int AS n FROM images, \
                             unnest(ARRAY[png_key, webp_320_key, webp_720_key, webp_full_key]) AS k \
                           WHERE public GROUP BY k) p \
                     WHERE b.key = p.k",
                )
                .execute(conn)
                .await?;
            }
            Ok(ratings)
        })
        .await
        .map_err(|e| e.to_string())?;
    // The load updated rows after inserting them: vacuum the dead versions away (as autovacuum
    // would, later) and refresh the planner's statistics, so the first queries after a big
    // seed read compact tables through the indexes.
    diesel::sql_query("VACUUM ANALYZE generations, images, image_ratings, media_blobs")
        .execute(conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Seeded {
        images: count,
        stored,
        ratings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `socialcraft seed --images N`.
pub async fn run(config: Config, images: usize) -> Result<(), String> {
    let media = domain::media::storage::media_store(&config.data_dir, &config.storage)?;
    let seeded = with_database(&config, |url| async move {
        domain::db::pool::run_migrations(&url).await?;
        let mut conn = connect(&url).await?;
        seed(&mut conn, &media, images).await
    })
    .await?;
    println!(
        "seeded {} images ({} stored pictures, {} ratings) in {:.1} s",
        seeded.images, seeded.stored, seeded.ratings, seeded.seconds
    );
    Ok(())
}
