// @generated automatically by Diesel CLI.

diesel::table! {
    prompts (id) {
        id -> Uuid,
        prompt -> Text,
        style -> Text,
        created_at -> Timestamptz,
    }
}
