//! `domain/src/db/schema.rs` must describe exactly what the migrations create: every table,
//! every column, its type and nullability. A migration without a schema update (or the
//! reverse) fails here instead of at run time.

use crate::support;

use std::collections::BTreeMap;

use diesel_async::RunQueryDsl;
use support::TestDb;

/// (table, column) -> (PostgreSQL type name, nullable)
type Columns = BTreeMap<(String, String), (String, bool)>;

fn pg_type(diesel: &str) -> String {
    match diesel {
        "Uuid" => "uuid",
        "Text" => "text",
        "Timestamptz" => "timestamptz",
        "Int8" => "int8",
        "Int4" => "int4",
        "Int2" => "int2",
        "Bool" => "bool",
        "Jsonb" => "jsonb",
        "Bytea" => "bytea",
        "Float8" => "float8",
        other => panic!("add {other} to the type map in tests/suite/schema.rs"),
    }
    .to_owned()
}

fn declared() -> Columns {
    let text = include_str!("../../../domain/src/db/schema.rs");
    let mut columns = Columns::new();
    let mut table: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(" (")
            && line.ends_with('{')
            && !name.contains(' ')
        {
            table = Some(name.to_owned());
        } else if let (Some(t), Some((col, ty))) = (&table, line.split_once(" -> ")) {
            let ty = ty.trim_end_matches(',');
            let (ty, nullable) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (inner.trim_end_matches('>'), true),
                None => (ty, false),
            };
            columns.insert((t.clone(), col.to_owned()), (pg_type(ty), nullable));
        } else if line == "}" {
            table = None;
        }
    }
    columns
}

#[tokio::test]
async fn schema_rs_matches_the_migrated_database() {
    #[derive(diesel::QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        udt_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        is_nullable: String,
    }
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let rows: Vec<Col> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(&mut conn)
    .await
    .expect("columns");
    let actual: Columns = rows
        .into_iter()
        .map(|c| {
            (
                (c.table_name, c.column_name),
                (c.udt_name, c.is_nullable == "YES"),
            )
        })
        .collect();
    let declared = declared();
    assert!(!declared.is_empty(), "schema.rs parsed to nothing");
    assert_eq!(declared, actual, "schema.rs and the migrations disagree");
}
