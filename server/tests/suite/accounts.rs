//! Account records against a real PostgreSQL: sign-up rules, case-insensitive uniqueness,
//! sign-in that never reveals whether an email exists, and tiers.

use crate::support;

use domain::accounts::{Tier, service};
use support::TestDb;

#[tokio::test]
async fn sign_up_then_sign_in_and_the_errors_reveal_nothing() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    let user = service::create(&mut conn, " Ana@Example.com ", "correct horse battery")
        .await
        .expect("created");
    assert_eq!(user.email, "ana@example.com");
    assert_eq!(user.tier, "free");
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(!user.password_hash.contains("correct horse"));

    let signed_in = service::authenticate(&mut conn, "ANA@example.com", "correct horse battery")
        .await
        .expect("signed in");
    assert_eq!(signed_in.id, user.id);

    let wrong_password = service::authenticate(&mut conn, "ana@example.com", "wrong horse battery")
        .await
        .unwrap_err();
    let unknown_email =
        service::authenticate(&mut conn, "bob@example.com", "correct horse battery")
            .await
            .unwrap_err();
    let not_an_email = service::authenticate(&mut conn, "bob", "x")
        .await
        .unwrap_err();
    assert_eq!(wrong_password, unknown_email, "the same answer either way");
    assert_eq!(wrong_password, not_an_email);
    assert_eq!(wrong_password.code.http_status(), 422);
}

#[tokio::test]
async fn an_email_signs_up_once_whatever_its_letter_case() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    service::create(&mut conn, "ana@example.com", "correct horse battery")
        .await
        .unwrap();
    let e = service::create(&mut conn, "ANA@EXAMPLE.COM", "another good password")
        .await
        .unwrap_err();
    assert_eq!(e.fields[0].field, "email");
    assert_eq!(e.fields[0].code, "taken");
    assert_eq!(db.count("users").await, 1);

    // Every bad field at once, and nothing stored.
    let e = service::create(&mut conn, "nope", "short")
        .await
        .unwrap_err();
    let fields: Vec<&str> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["email", "password"]);
    assert_eq!(db.count("users").await, 1);
}

#[tokio::test]
async fn tiers_are_set_by_email() {
    let db = TestDb::new().await;
    let mut conn = db.conn().await;
    service::create(&mut conn, "team@example.com", "correct horse battery")
        .await
        .unwrap();
    assert!(
        service::set_tier(&mut conn, "Team@Example.com", Tier::Enterprise)
            .await
            .unwrap()
    );
    assert_eq!(db.count("users WHERE tier = 'enterprise'").await, 1);
    assert!(
        !service::set_tier(&mut conn, "nobody@example.com", Tier::Pro)
            .await
            .unwrap()
    );
}
