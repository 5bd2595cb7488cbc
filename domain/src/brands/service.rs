//! Brand kit storage.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{Brand, BrandKit, Font, MAX_BRANDS, ValidBrand};
use crate::db::schema::{assets, brands, upload_blobs};
use crate::state::AppState;
use shared::error::{AppError, ErrorCode, FieldError};

type Row = (Uuid, String, String, String, Option<Uuid>, Option<String>);

fn db(what: &str) -> impl FnOnce(diesel::result::Error) -> AppError + '_ {
    move |e| shared::error::query_failed(what, e)
}

fn to_brand((id, name, colors, font, logo_asset_id, logo_key): Row) -> Brand {
    Brand {
        id,
        name,
        colors: colors.split(',').map(str::to_owned).collect(),
        font: Font::from_slug(&font).unwrap_or(Font::Inter),
        logo_asset_id,
        logo_url: logo_key.map(|k| format!("/media/{k}")),
    }
}

async fn load(conn: &mut AsyncPgConnection, user: Uuid, id: Option<Uuid>) -> QueryResult<Vec<Row>> {
    let mut q = brands::table
        .left_join(assets::table.on(assets::id.nullable().eq(brands::logo_asset_id)))
        .left_join(upload_blobs::table.on(upload_blobs::sha256.eq(assets::sha256)))
        .filter(brands::user_id.eq(user))
        .select((
            brands::id,
            brands::name,
            brands::colors,
            brands::font,
            brands::logo_asset_id,
            upload_blobs::webp_320_key.nullable(),
        ))
        .order(brands::name.asc())
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(brands::id.eq(id));
    }
    q.load(conn).await
}

/// The user's kits, by name.
pub async fn list(state: &AppState, user: Uuid) -> Result<Vec<Brand>, AppError> {
    let mut conn = state.conn().await?;
    Ok(load(&mut conn, user, None)
        .await
        .map_err(db("list brands"))?
        .into_iter()
        .map(to_brand)
        .collect())
}

/// Creates or updates a kit. The logo must be one of the user's own uploads.
pub async fn save(
    state: &AppState,
    user: Uuid,
    id: Option<Uuid>,
    valid: ValidBrand,
) -> Result<Brand, AppError> {
    let mut conn = state.conn().await?;
    // The logo's picture is read before the write, so the answer needs nothing read after
    // it (see the end).
    let logo_key: Option<String> = match valid.logo {
        None => None,
        Some(logo) => {
            let owned: Option<Option<String>> = assets::table
                .left_join(upload_blobs::table.on(upload_blobs::sha256.eq(assets::sha256)))
                .filter(assets::id.eq(logo))
                .filter(assets::user_id.eq(user))
                .select(upload_blobs::webp_320_key.nullable())
                .first(&mut conn)
                .await
                .optional()
                .map_err(db("check logo"))?;
            let Some(key) = owned else {
                return Err(AppError::validation(vec![FieldError::new(
                    "logo",
                    "not_found",
                    "Choose one of your uploads as the logo.",
                )]));
            };
            key
        }
    };
    let colors = valid.colors.join(",");
    let result = match id {
        None => {
            let count: i64 = brands::table
                .filter(brands::user_id.eq(user))
                .count()
                .get_result(&mut conn)
                .await
                .map_err(db("count brands"))?;
            if count >= MAX_BRANDS {
                return Err(AppError::validation(vec![FieldError::new(
                    "name",
                    "too_many",
                    format!("You have {MAX_BRANDS} kits, the most there can be. Delete one first."),
                )]));
            }
            diesel::insert_into(brands::table)
                .values((
                    brands::user_id.eq(user),
                    brands::name.eq(&valid.name),
                    brands::colors.eq(&colors),
                    brands::font.eq(valid.font.slug()),
                    brands::logo_asset_id.eq(valid.logo),
                ))
                .returning(brands::id)
                .get_result::<Uuid>(&mut conn)
                .await
        }
        Some(id) => {
            diesel::update(
                brands::table
                    .filter(brands::id.eq(id))
                    .filter(brands::user_id.eq(user)),
            )
            .set((
                brands::name.eq(&valid.name),
                brands::colors.eq(&colors),
                brands::font.eq(valid.font.slug()),
                brands::logo_asset_id.eq(valid.logo),
                brands::updated_at.eq(diesel::dsl::now),
            ))
            .returning(brands::id)
            .get_result::<Uuid>(&mut conn)
            .await
        }
    };
    let saved = match result {
        Ok(id) => id,
        Err(diesel::result::Error::NotFound) => return Err(AppError::not_found("No such kit.")),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            return Err(AppError::validation(vec![FieldError::new(
                "name",
                "taken",
                "You already have a kit with this name.",
            )]));
        }
        Err(e) => return Err(db("save brand")(e)),
    };
    // Answered from what was written: a failure after the commit must not turn a stored kit
    // into a refusal (the creator would save it again and hit "name taken").
    Ok(to_brand((
        saved,
        valid.name,
        colors,
        valid.font.slug().to_owned(),
        valid.logo,
        logo_key,
    )))
}

/// Deletes one of the user's kits.
pub async fn delete(state: &AppState, user: Uuid, id: Uuid) -> Result<(), AppError> {
    let mut conn = state.conn().await?;
    let n = diesel::delete(
        brands::table
            .filter(brands::id.eq(id))
            .filter(brands::user_id.eq(user)),
    )
    .execute(&mut conn)
    .await
    .map_err(db("delete brand"))?;
    if n == 0 {
        return Err(AppError::not_found("No such kit."));
    }
    Ok(())
}

/// The kit `id` of `user` as a generation records it: its colours, font and the stored logo
/// picture (the 720 px variant, once ready). Another user's or a missing kit is a `brand`
/// field error.
pub async fn kit_for(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
) -> Result<BrandKit, AppError> {
    let row: Option<(String, String, String, Option<String>)> = brands::table
        .left_join(assets::table.on(assets::id.nullable().eq(brands::logo_asset_id)))
        .left_join(upload_blobs::table.on(upload_blobs::sha256.eq(assets::sha256)))
        .filter(brands::id.eq(id))
        .filter(brands::user_id.eq(user))
        .select((
            brands::name,
            brands::colors,
            brands::font,
            upload_blobs::webp_720_key.nullable(),
        ))
        .first(conn)
        .await
        .optional()
        .map_err(db("load brand kit"))?;
    let Some((name, colors, font, logo_key)) = row else {
        return Err(AppError {
            code: ErrorCode::Validation,
            message: "Choose one of your brand kits.".into(),
            fields: vec![FieldError::new(
                "brand",
                "not_found",
                "Choose one of your brand kits.",
            )],
        });
    };
    Ok(BrandKit {
        name,
        colors: colors.split(',').map(str::to_owned).collect(),
        font: Font::from_slug(&font).unwrap_or(Font::Inter),
        logo_key,
    })
}
