//! Whole pages for visitors, rendered once and served from memory for a moment.
//!
//! The pages a visitor (no session cookie) sees on `/`, `/explore` and `/images/{id}` are the
//! same for every visitor, so rendering each for every request only burns CPU: on a 2-core
//! machine the Explore page's 0.26 ms of rendering is what bounded its throughput and queued
//! its tail (docs/PERFORMANCE.md). Here a rendered page is kept for `PAGE_CACHE_TTL_MS`
//! (2 s), with its gzip and brotli forms made once, so a hit costs a map lookup and a copy of
//! bytes already compressed.
//!
//! - **Freshness**: an entry also remembers the gallery's public version; a share, unshare or
//!   delete in this process bumps it and the entry is not served again. Once an entry is past
//!   its time, one request renders it anew while the others are still served the old one
//!   (stale-while-revalidate), so a popular page never stampedes the renderer.
//! - **The CSP**: a page's inline scripts normally carry a per-response nonce, which cannot
//!   be baked into stored (and compressed) bytes. A cached page drops its nonce attributes and
//!   its policy lists the SHA-256 of each inline script instead, which allows exactly those
//!   scripts and nothing else, for as long as the bytes are served.
//! - **Only what is the same for everyone**: GET requests with no session cookie, answered
//!   200 with HTML and no `Set-Cookie`. Signed-in pages are never cached.
//! - **Keyed on what the page reads**: the path and the few query parameters the page uses
//!   ([`page_params`]), so made-up parameters neither add entries nor push real ones out.
//! - **Bounded**: at most `PAGE_CACHE_MAX_ENTRIES` pages; when full, expired entries make
//!   room, and a page that finds no room is served without being kept.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest page kept (larger ones are served, just not cached).
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCacheSettings {
    /// How long a page is served before it is rendered again; zero turns the cache off.
    pub ttl: Duration,
    /// How many pages are kept at most.
    pub max_entries: usize,
}

impl Default for PageCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(2),
            max_entries: 500,
        }
    }
}

struct Entry {
    made: Instant,
    version: u64,
    csp: HeaderValue,
    identity: Bytes,
    gzip: Bytes,
    br: Bytes,
}

struct Inner {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    refreshing: Mutex<HashSet<String>>,
    settings: PageCacheSettings,
    gallery: Arc<domain::gallery::cache::Gallery>,
    cookies: [&'static str; 2],
}

/// The cache, shared by every request of the process. Cheap to clone.
#[derive(Clone)]
pub struct PageCache(Arc<Inner>);

impl PageCache {
    /// A cache for `state`'s pages.
    pub fn new(state: &domain::state::AppState, settings: PageCacheSettings) -> Self {
        Self(Arc::new(Inner {
            entries: RwLock::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
            settings,
            gallery: state.gallery.clone(),
            cookies: [
                state.auth.settings.access_cookie(),
                state.auth.settings.refresh_cookie(),
            ],
        }))
    }

    /// Pages held now.
    pub fn len(&self) -> usize {
        self.0.entries.read().map_or(0, |m| m.len())
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache key of a request that may be served from the cache, else `None`.
    ///
    /// The key holds only what the page reads (see [`page_params`]), so `/?x=1`, `/?x=2`, ...
    /// are all `/` and cannot fill the table. A value the page would refuse (a cursor this
    /// server did not sign, an id that is not one) is not cached at all: it renders every
    /// time, and never takes a place a real page could have.
    fn key(&self, req: &Request) -> Option<String> {
        if self.0.settings.ttl.is_zero() || req.method() != Method::GET {
            return None;
        }
        let path = req.uri().path();
        let (mut key, params) = if path == "/" || path == "/explore" {
            (path.to_owned(), page_params(path))
        } else {
            let id = path.strip_prefix("/images/")?;
            // The page parses the id; its canonical form is the key, so letter case cannot
            // make one image many entries.
            let id = uuid::Uuid::parse_str(id).ok()?;
            (format!("/images/{id}"), page_params("/images/"))
        };
        if has_session_cookie(req.headers(), &self.0.cookies) {
            return None;
        }
        let query = req.uri().query().unwrap_or("");
        // The outcome of a form posted without JavaScript is shown on the page: rare, and
        // not for everyone, so such a page is rendered each time rather than stored.
        if query_values(query).any(|(k, _)| {
            app::posted::PARAMS.contains(&k) || app::posted::LEPTOS_PARAMS.contains(&k)
        }) {
            return None;
        }
        let mut sep = '?';
        for name in params {
            let Some(value) = query_values(query).find(|(k, _)| k == name).map(|(_, v)| v) else {
                continue;
            };
            if *name == "after" && !self.0.gallery.explore_cursor_is_valid(value) {
                return None;
            }
            key.push(sep);
            key.push_str(name);
            key.push('=');
            key.push_str(value);
            sep = '&';
        }
        Some(key)
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        self.0.entries.read().ok()?.get(key).cloned()
    }

    fn put(&self, key: String, entry: Entry) {
        let Ok(mut map) = self.0.entries.write() else {
            return;
        };
        if map.len() >= self.0.settings.max_entries && !map.contains_key(&key) {
            // Full: make room from what is past its time or out of date, never from pages
            // still being served fresh; with none of those, this page is simply not kept.
            let ttl = self.0.settings.ttl;
            let version = entry.version;
            map.retain(|_, e| e.version == version && e.made.elapsed() < ttl);
            if map.len() >= self.0.settings.max_entries {
                return;
            }
        }
        map.insert(key, Arc::new(entry));
    }

    /// Marks `key` as being rendered again; `false` when another request already is.
    fn start_refresh(&self, key: &str) -> bool {
        self.0
            .refreshing
            .lock()
            .map(|mut s| s.insert(key.to_owned()))
            .unwrap_or(false)
    }

    fn end_refresh(&self, key: &str) {
        if let Ok(mut s) = self.0.refreshing.lock() {
            s.remove(key);
        }
    }
}

/// A page being rendered again, marked so that other requests meanwhile are served the old
/// copy. The mark ends when this is dropped, however the request ends: answered, cancelled
/// (the client went away and its future was dropped mid-render) or unwound by a panic. A
/// mark left behind would have every later request served the stale page until the gallery
/// next changed.
struct Refreshing<'a> {
    cache: &'a PageCache,
    key: &'a str,
}

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.cache.end_refresh(self.key);
    }
}

/// The query parameters each cached page reads for a visitor, in the order they go into the
/// key. A page that starts reading another parameter for visitors must list it here, or every
/// value of it would be served the first one's page.
fn page_params(path: &str) -> &'static [&'static str] {
    match path {
        // The gallery's page cursor.
        "/explore" => &["after"],
        // `/` reads `prompt` only for a signed-in creator (whose pages are never cached); an
        // image page reads nothing from its query.
        _ => &[],
    }
}

/// The raw `name=value` pairs of a query string (undecoded: only compared and copied).
fn query_values(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Whether the request carries one of our session cookies.
fn has_session_cookie(headers: &HeaderMap, names: &[&str; 2]) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, _)| names.contains(&name))
}

/// The encoding to answer with: brotli, else gzip, else none, as the client accepts.
pub(crate) fn pick_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accepted: Vec<(&str, bool)> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|part| {
            let mut pieces = part.split(';');
            let name = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name, !refused)
        })
        .collect();
    let accepts = |enc: &str| {
        accepted
            .iter()
            .any(|(n, ok)| *ok && n.eq_ignore_ascii_case(enc))
    };
    if accepts("br") {
        Some("br")
    } else if accepts("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// The middleware: serves a visitor's page from the cache, or renders it and keeps it.
/// Sits inside the compression layer (so what it stores is the page itself) and outside
/// the response timeout (a hit needs no timer).
pub async fn serve(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
    let Some(key) = cache.key(&req) else {
        return next.run(req).await;
    };
    let metrics = domain::metrics::global();
    let version = cache.0.gallery.public_version();
    let mut _refreshing = None;
    if let Some(entry) = cache.get(&key)
        && entry.version == version
    {
        let fresh = entry.made.elapsed() < cache.0.settings.ttl;
        if fresh || !cache.start_refresh(&key) {
            metrics.page_cache_hit(fresh);
            return hit(&entry, req.headers());
        }
        _refreshing = Some(Refreshing {
            cache: &cache,
            key: &key,
        });
    }
    metrics.page_cache_miss();
    let nonce = req
        .extensions()
        .get::<app::csp::PageNonce>()
        .map(|n| n.0.clone());
    let res = next.run(req).await;
    if cacheable(&res) {
        store(&cache, key.clone(), version, nonce.as_deref(), res).await
    } else {
        res
    }
}

fn cacheable(res: &Response) -> bool {
    res.status() == StatusCode::OK
        && !res.headers().contains_key(header::SET_COOKIE)
        && !res.headers().contains_key(header::CONTENT_ENCODING)
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
}

/// Reads the rendered page, answers with it as it is, and keeps a nonce-free copy with its
/// compressed forms.
async fn store(
    cache: &PageCache,
    key: String,
    version: u64,
    nonce: Option<&str>,
    res: Response,
) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_PAGE_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            // The body failed or outgrew the limit while it streamed: nothing good to send.
            tracing::error!(error = %e, "could not read a page to cache it");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let original = bytes.clone();
    let nonce = nonce.map(str::to_owned);
    let made = tokio::task::spawn_blocking(move || prepare(&bytes, nonce.as_deref())).await;
    match made {
        Ok(Some((identity, hashes, gzip, br))) => {
            match HeaderValue::from_str(&app::csp::policy_with_hashes(&hashes)) {
                Ok(csp) => cache.put(
                    key,
                    Entry {
                        made: Instant::now(),
                        version,
                        csp,
                        identity,
                        gzip,
                        br,
                    },
                ),
                Err(e) => tracing::warn!(error = %e, "a cached page's policy is not a header"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not prepare a page for the cache"),
    }
    let mut res = Response::from_parts(parts, Body::from(original));
    res.headers_mut()
        .insert("x-page-cache", HeaderValue::from_static("miss"));
    res
}

type Prepared = (Bytes, Vec<String>, Bytes, Bytes);

/// The page without its nonce attributes, the hashes of its inline scripts, and its gzip and
/// brotli forms. `None` for a page that is not UTF-8 (never ours).
fn prepare(page: &[u8], nonce: Option<&str>) -> Option<Prepared> {
    use std::io::Write;
    let html = std::str::from_utf8(page).ok()?;
    let html = match nonce {
        Some(n) => html.replace(&format!(" nonce=\"{n}\""), ""),
        None => html.to_owned(),
    };
    let hashes = inline_script_hashes(&html);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(html.as_bytes()).ok()?;
    let gzip = gz.finish().ok()?;
    let mut br = Vec::new();
    {
        // Quality 9 with a 4 MiB window: most of brotli's gain on HTML at a few
        // milliseconds per page (made once per page per TTL, not per request).
        let mut w = brotli::CompressorWriter::new(&mut br, 16 * 1024, 9, 22);
        w.write_all(html.as_bytes()).ok()?;
    }
    Some((
        Bytes::from(html),
        hashes,
        Bytes::from(gzip),
        Bytes::from(br),
    ))
}

/// Base64 SHA-256 of the content of every inline `<script>` (one without `src`), as a CSP
/// hash source wants it.
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    use base64::Engine;
    use sha2::Digest;
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start + "<script".len()..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let attributes = &after[..open_end];
        let content_and_rest = &after[open_end + 1..];
        let Some(close) = content_and_rest.find("</script>") else {
            break;
        };
        if !attributes.contains("src=") {
            let digest = sha2::Sha256::digest(&content_and_rest.as_bytes()[..close]);
            let hash = base64::engine::general_purpose::STANDARD.encode(digest);
            if !hashes.contains(&hash) {
                hashes.push(hash);
            }
        }
        rest = &content_and_rest[close + "</script>".len()..];
    }
    hashes
}

/// A cached page, in the encoding the client takes best.
fn hit(entry: &Entry, request: &HeaderMap) -> Response {
    let (body, encoding) = match pick_encoding(request) {
        Some("br") => (entry.br.clone(), Some("br")),
        Some(_) => (entry.gzip.clone(), Some("gzip")),
        None => (entry.identity.clone(), None),
    };
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, entry.csp.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert("x-page-cache", HeaderValue::from_static("hit"));
    if let Some(enc) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request cancelled while its page was being rendered again (the client went away)
    /// must not leave the page marked as being rendered: the next request past the TTL
    /// renders it, rather than every later one being served the stale copy.
    #[tokio::test]
    async fn a_refresh_cancelled_mid_render_does_not_leave_the_page_stale() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tower::ServiceExt;

        let dir = std::env::temp_dir().join(format!("sc-pagecache-{}", std::process::id()));
        let vars = [("DATA_DIR".to_owned(), dir.display().to_string())].into();
        let config = crate::config::Config::from_map(&vars).unwrap();
        // Never connected: the cache needs the state's gallery version, not its database.
        let pool = domain::db::pool::build_pool(
            "postgres://none:none@127.0.0.1:9/none",
            1,
            Duration::from_secs(1),
        )
        .unwrap();
        let state = crate::wiring::build_state(&config, pool).unwrap();
        let ttl = Duration::from_millis(50);
        let cache = PageCache::new(
            &state,
            PageCacheSettings {
                ttl,
                max_entries: 10,
            },
        );
        let renders = Arc::new(AtomicUsize::new(0));
        let counter = renders.clone();
        // The second render never finishes; the others answer at once with their number.
        let page = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n == 2 {
                    std::future::pending::<()>().await;
                }
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    format!("<p>render {n}</p>"),
                )
            }
        };
        let app = axum::Router::new()
            .route("/explore", axum::routing::get(page))
            .layer(axum::middleware::from_fn_with_state(cache.clone(), serve));
        let get = || {
            axum::http::Request::get("/explore")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let body = |res: Response| async move {
            String::from_utf8(
                axum::body::to_bytes(res.into_body(), 1 << 20)
                    .await
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        };

        assert_eq!(
            body(app.clone().oneshot(get()).await.unwrap()).await,
            "<p>render 1</p>"
        );
        tokio::time::sleep(ttl * 2).await;
        // Stale: this request renders again, and is cancelled before the render ends.
        let cancelled = tokio::time::timeout(ttl, app.clone().oneshot(get())).await;
        assert!(cancelled.is_err(), "the second render was meant to hang");
        assert_eq!(renders.load(Ordering::SeqCst), 2);

        let next = body(app.clone().oneshot(get()).await.unwrap()).await;
        assert_eq!(
            next, "<p>render 3</p>",
            "the page stayed marked as being rendered by a request that was gone"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn inline_scripts_are_hashed_and_loaded_ones_are_not() {
        let html = r#"<head><script type="module">import('/pkg/a.js')</script>
            <script src="/pkg/b.js"></script><script>window.x=1</script>
            <script>window.x=1</script></head>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 2, "{hashes:?}");
        // echo -n "window.x=1" | openssl dgst -sha256 -binary | base64
        assert!(hashes.contains(&"hUmDl3yY/7GaaX+Zuy8aEy8IzxgpBs7xccqYHs2/7kQ=".to_owned()));
    }

    #[test]
    fn encodings_follow_accept_encoding_and_refusals() {
        let mut h = HeaderMap::new();
        assert_eq!(pick_encoding(&h), None);
        h.insert(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br".parse().unwrap(),
        );
        assert_eq!(pick_encoding(&h), Some("br"));
        h.insert(
            header::ACCEPT_ENCODING,
            "gzip;q=1.0, br;q=0".parse().unwrap(),
        );
        assert_eq!(pick_encoding(&h), Some("gzip"));
        h.insert(header::ACCEPT_ENCODING, "identity".parse().unwrap());
        assert_eq!(pick_encoding(&h), None);
    }

    #[test]
    fn session_cookies_keep_a_request_out_of_the_cache() {
        let names = ["sc_access", "sc_refresh"];
        let mut h = HeaderMap::new();
        assert!(!has_session_cookie(&h, &names));
        h.insert(
            header::COOKIE,
            "theme=dark; sc_refresh=abc".parse().unwrap(),
        );
        assert!(has_session_cookie(&h, &names));
        h.insert(header::COOKIE, "theme=dark; xsc_access=1".parse().unwrap());
        assert!(!has_session_cookie(&h, &names));
    }

    #[test]
    fn a_prepared_page_loses_its_nonce_and_compresses() {
        let page = r#"<html><script nonce="N0NCE">go()</script><p>hello</p></html>"#.repeat(20);
        let (identity, hashes, gzip, br) = prepare(page.as_bytes(), Some("N0NCE")).unwrap();
        assert!(!std::str::from_utf8(&identity).unwrap().contains("N0NCE"));
        assert_eq!(hashes.len(), 1);
        assert!(gzip.len() < identity.len() && br.len() < identity.len());
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut back)
            .unwrap();
        assert_eq!(back.as_bytes(), &identity[..]);
    }
}
