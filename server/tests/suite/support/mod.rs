//! Test support: one real PostgreSQL cluster per test process, a migrated template database,
//! and a fresh database cloned from it for each test, so tests run in parallel and never see
//! each other's rows.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use domain::state::AppState;
use http_body_util::BodyExt;
use leptos::prelude::LeptosOptions;
use server::pg_embedded::{EmbeddedPg, quote_ident};
use tower::ServiceExt;

pub mod processes;
pub mod redis_server;

const TEMPLATE: &str = "socialcraft_template";

struct Cluster {
    pg: EmbeddedPg,
    dir: std::path::PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

extern "C" fn stop_cluster() {
    if let Some(c) = CLUSTER.get() {
        let _ = c.pg.stop();
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

#[allow(unsafe_code)] // atexit, to stop the cluster when the process ends
fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        // Set up on a thread of its own: the caller is usually inside a test's runtime,
        // where a second runtime cannot be started.
        std::thread::spawn(|| {
            let dir = std::env::temp_dir().join(format!("socialcraft-test-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let pg = EmbeddedPg::start(&dir, None).expect("start the test PostgreSQL cluster");
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_cluster) };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                server::pg_embedded::ensure_database(&pg.url("postgres"), TEMPLATE)
                    .await
                    .expect("create the template database");
                domain::db::pool::run_migrations(&pg.url(TEMPLATE))
                    .await
                    .expect("migrate the template database");
            });
            Cluster { pg, dir }
        })
        .join()
        .expect("cluster setup thread")
    })
}

/// A database of this test's own, migrated, empty.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// A URL to it.
    pub url: String,
    /// Whether this handle drops the database when it goes (a second handle on the same
    /// database, as another role, does not).
    owns: bool,
}

impl TestDb {
    /// Clones the migrated template into a new database.
    pub async fn new() -> TestDb {
        let cluster = cluster();
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin().await;
        diesel::sql_query(format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(TEMPLATE)
        ))
        .execute(&mut admin)
        .await
        .expect("create the test database");
        TestDb {
            url: cluster.pg.url(&name),
            name,
            owns: true,
        }
    }

    /// Another handle on this database, reached through `url` (another role, say); dropping
    /// it leaves the database in place.
    pub fn through(&self, url: String) -> TestDb {
        TestDb {
            name: self.name.clone(),
            url,
            owns: false,
        }
    }

    /// A pool on this database, as the server builds it.
    pub fn pool(&self) -> domain::db::DbPool {
        domain::db::pool::build_pool(&self.url, 4, std::time::Duration::from_secs(2)).expect("pool")
    }

    /// A direct connection, for setting up and checking rows.
    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// Runs SQL that returns nothing.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.conn().await;
        diesel::sql_query(sql).execute(&mut c).await.expect(sql);
    }

    /// Runs several SQL statements at once.
    pub async fn batch(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        let mut c = self.conn().await;
        c.batch_execute(sql).await.expect(sql);
    }

    /// Counts rows of `table`.
    pub async fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = self.conn().await;
        let rows: Vec<N> = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .load(&mut c)
            .await
            .expect("count");
        rows[0].n
    }

    /// Takes the database away: closes every connection and refuses new ones, as an outage
    /// would look to the app.
    pub async fn cut(&self) {
        let mut admin = admin().await;
        diesel::sql_query(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            quote_ident(&self.name)
        ))
        .execute(&mut admin)
        .await
        .expect("refuse connections");
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            self.name
        ))
        .execute(&mut admin)
        .await
        .expect("close connections");
    }
}

/// A test's database goes when the test ends, passed or failed, so a run leaves no databases
/// behind in the cluster (the cluster itself is removed when the process exits).
impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owns {
            return;
        }
        let name = self.name.clone();
        // A thread of its own with its own runtime: drop may run inside the test's runtime,
        // which cannot be blocked on from within.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut admin = admin().await;
                // FORCE: pools and tasks of the test may still hold connections.
                diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ))
                .execute(&mut admin)
                .await
            })
        })
        .join();
        match dropped {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&cluster().pg.url("postgres"))
        .await
        .expect("connect to the test cluster")
}

/// The `down.sql` of the migration with `version` (its directory name without dashes, up to
/// the underscore).
pub fn down_sql(version: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    for entry in std::fs::read_dir(dir)
        .expect("migrations directory")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let v: String = name.split('_').next().unwrap_or("").replace('-', "");
        if v == version {
            return std::fs::read_to_string(entry.path().join("down.sql")).expect("down.sql");
        }
    }
    panic!("no migration {version} in {dir}");
}

/// The Leptos options from the repository's `Leptos.toml`.
pub fn leptos_options() -> LeptosOptions {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Leptos.toml");
    leptos_config::get_configuration(Some(path))
        .expect("Leptos.toml")
        .leptos_options
}

/// Server state on `db`, with media under a fresh directory of its own.
pub fn state_for(db: &TestDb) -> AppState {
    let dir = std::env::temp_dir().join(format!("socialcraft-test-{}", std::process::id()));
    let media =
        domain::media::MediaStore::local(&dir.join("media").join(&db.name)).expect("media store");
    AppState::new(domain::state::AppStateParts {
        db: db.pool(),
        media,
        create: std::sync::Arc::new(domain::state::CreateSettings {
            provider: "builtin".to_owned(),
            blocklist: domain::create::moderation::Blocklist::parse(
                domain::create::DEFAULT_BLOCKLIST,
                "shipped",
            )
            .expect("shipped blocklist parses"),
        }),
        changes: Default::default(),
        auth: std::sync::Arc::new(domain::accounts::auth::Auth::new(
            TEST_SECRET,
            test_auth_settings(),
        )),
        gallery: std::sync::Arc::new(domain::gallery::cache::Gallery::new(TEST_SECRET)),
        trends: std::sync::Arc::new(server::wiring::trends_cache(
            &domain::trends::TrendsConfig {
                refresh: std::time::Duration::from_secs(60),
                window: std::time::Duration::from_secs(7 * 86_400),
                half_life: std::time::Duration::from_secs(86_400),
            },
        )),
        uploads: std::sync::Arc::new(domain::uploads::settings::Uploads::new(
            TEST_SECRET,
            domain::uploads::DEFAULT_MAX_UPLOAD_BYTES,
            dir.join("spool").join(&db.name),
        )),
    })
}

/// The application secret of test states.
pub const TEST_SECRET: &str = "test key: q8Zr2LmT5vX9cB1nH4kW7pD0sF3gJ6aE";

/// Session settings for tests: cookies without `Secure`, as in development.
pub fn test_auth_settings() -> domain::accounts::auth::AuthSettings {
    domain::accounts::auth::AuthSettings {
        secure_cookies: false,
        ..Default::default()
    }
}

/// The whole app (routes and middleware) on `db`.
pub fn app_for(db: &TestDb) -> Router {
    server::web::app(state_for(db), leptos_options())
}

/// Sends one request through `router`.
pub async fn send(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.expect("infallible")
}

/// Reads a response body as bytes.
pub async fn bytes(res: Response<Body>) -> Vec<u8> {
    res.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

/// Reads a response body as text.
pub async fn text(res: Response<Body>) -> String {
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

/// Reads a response body as JSON.
pub async fn json(res: Response<Body>) -> serde_json::Value {
    let body = text(res).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A form post to a server function, as the browser's fetch sends it.
pub fn form_post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

/// A GET request for `path`.
pub fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

/// A signed-in test user: who they are and the `Cookie` header their browser would send.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user as the middleware would find them.
    pub user: domain::accounts::auth::CurrentUser,
    /// `sc_access=...; sc_refresh=...`.
    pub cookie: String,
    /// The refresh token alone.
    pub refresh: String,
}

/// Creates an account for `email` (password `correct horse battery`) and signs it in.
pub async fn signed_in(state: &AppState, email: &str) -> Session {
    let mut conn = state.conn().await.expect("connection");
    let user = domain::accounts::service::create(&mut conn, email, "correct horse battery")
        .await
        .expect("account created");
    let issued =
        domain::accounts::sessions::start(&mut conn, &state.auth, &user, "127.0.0.1", "test")
            .await
            .expect("session started");
    let s = &state.auth.settings;
    Session {
        user: issued.user,
        cookie: format!(
            "{}={}; {}={}",
            s.access_cookie(),
            issued.access,
            s.refresh_cookie(),
            issued.refresh
        ),
        refresh: issued.refresh,
    }
}

/// `req` with `session`'s cookies.
pub fn with_session(mut req: Request<Body>, session: &Session) -> Request<Body> {
    req.headers_mut().insert(
        axum::http::header::COOKIE,
        session.cookie.parse().expect("cookie header"),
    );
    req
}

/// The `Set-Cookie` values of a response, by cookie name.
pub fn set_cookies(res: &Response<Body>) -> std::collections::HashMap<String, String> {
    res.headers()
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (name, rest) = v.split_once('=')?;
            let value = rest.split(';').next().unwrap_or("");
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}
