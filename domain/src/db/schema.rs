// @generated automatically by Diesel CLI.

diesel::table! {
    jobs (id) {
        id -> Int8,
        kind -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        max_attempts -> Int4,
        run_at -> Timestamptz,
        locked_by -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    generations (id) {
        id -> Uuid,
        prompt -> Text,
        style -> Text,
        format -> Text,
        variations -> Int4,
        provider -> Text,
        seed -> Int8,
        status -> Text,
        progress -> Int4,
        error -> Nullable<Text>,
        job_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        user_id -> Nullable<Uuid>,
        brand -> Nullable<Jsonb>,
    }
}

diesel::table! {
    images (id) {
        id -> Uuid,
        generation_id -> Uuid,
        variation -> Int4,
        seed -> Int8,
        width -> Int4,
        height -> Int4,
        png_key -> Text,
        webp_320_key -> Text,
        webp_720_key -> Text,
        webp_full_key -> Text,
        sha256 -> Text,
        bytes -> Int8,
        render_ms -> Int4,
        created_at -> Timestamptz,
        user_id -> Nullable<Uuid>,
        public -> Bool,
        rating_count -> Int4,
        rating_sum -> Int4,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        tier -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        storage_bytes -> Int8,
        is_admin -> Bool,
    }
}

diesel::table! {
    image_ratings (image_id, user_id) {
        image_id -> Uuid,
        user_id -> Uuid,
        stars -> Int2,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    media_blobs (key) {
        key -> Text,
        refs -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        public_refs -> Int4,
    }
}

diesel::table! {
    trend_imports (id) {
        id -> Int8,
        topic -> Text,
        hashtag -> Text,
        source -> Text,
        score -> Float8,
        observed_at -> Timestamptz,
        imported_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        user_agent -> Text,
        ip -> Text,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    upload_blobs (sha256) {
        sha256 -> Text,
        mime -> Text,
        bytes -> Int8,
        width -> Int4,
        height -> Int4,
        original_key -> Text,
        webp_320_key -> Nullable<Text>,
        webp_720_key -> Nullable<Text>,
        webp_full_key -> Nullable<Text>,
        state -> Text,
        error -> Nullable<Text>,
        refs -> Int4,
        duplicates -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    assets (id) {
        id -> Uuid,
        user_id -> Uuid,
        sha256 -> Text,
        filename -> Text,
        bytes -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    upload_tickets (id) {
        id -> Uuid,
        user_id -> Uuid,
        filename -> Text,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    brands (id) {
        id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        colors -> Text,
        logo_asset_id -> Nullable<Uuid>,
        font -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    signin_failures (id) {
        id -> Int8,
        email -> Text,
        failed_at -> Timestamptz,
        prefix -> Text,
    }
}

diesel::table! {
    usage_ledger (id) {
        id -> Int8,
        user_id -> Uuid,
        kind -> Text,
        quantity -> Int4,
        cost_micros -> Int8,
        generation_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(assets -> upload_blobs (sha256));
diesel::joinable!(assets -> users (user_id));
diesel::joinable!(upload_tickets -> users (user_id));
diesel::joinable!(brands -> users (user_id));
diesel::joinable!(brands -> assets (logo_asset_id));
diesel::joinable!(generations -> jobs (job_id));
diesel::joinable!(images -> generations (generation_id));
diesel::joinable!(generations -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(images -> users (user_id));
diesel::joinable!(image_ratings -> images (image_id));
diesel::joinable!(image_ratings -> users (user_id));
diesel::joinable!(usage_ledger -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    assets,
    brands,
    generations,
    image_ratings,
    images,
    jobs,
    media_blobs,
    refresh_tokens,
    sessions,
    signin_failures,
    trend_imports,
    upload_blobs,
    upload_tickets,
    usage_ledger,
    users,
);
